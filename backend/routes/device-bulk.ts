// Bulk actions on devices: by ids (at most BULK_MAX), or by the list's filter, at most `limit`
// of the matches oldest first; `more` tells the caller to send the filter again. A filter
// picks only devices the action would change (not already disabled, revoked, or with no usage
// to reset), so repeating its request until `more` is false ends.
import type { z } from "zod";
import type * as S from "../schemas.ts";
import { devicesInScope, listDevices } from "../store/device-list.ts";
import { type DeviceScope, revokeDevices, setDevicesDisabled } from "../store/devices.ts";
import { resetUsage } from "../store/usage.ts";
import type { RouteContext } from "./context.ts";

export async function runBulk(
  ctx: RouteContext,
  body: z.output<typeof S.DeviceBulk>,
  scope: DeviceScope,
): Promise<{ action: typeof body.action; ids: string[]; affected: number; more: boolean }> {
  const { db } = ctx;
  let targets: string[];
  let more = false;
  if (body.ids) targets = await devicesInScope(db, body.ids, scope);
  else {
    const rows = await listDevices(
      db,
      { ...body.filter, changedBy: body.action },
      scope,
      { limit: body.limit + 1, order: "asc" },
      {
        now: ctx.now(),
        staleAfterSec: ctx.staleSec,
      },
    );
    more = rows.length > body.limit;
    targets = rows.slice(0, body.limit).map((d) => d.id);
  }
  let done: string[];
  switch (body.action) {
    case "disable":
      done = await setDevicesDisabled(db, targets, true);
      break;
    case "enable":
      done = await setDevicesDisabled(db, targets, false);
      break;
    case "revoke":
      done = await revokeDevices(db, targets);
      break;
    case "reset_usage":
      done = await resetUsage(db, targets, ctx.now());
      break;
  }
  // Their Outline keys (deleted, data limit lifted) in the background: one request must not
  // wait on a slow management API once per device.
  if ((body.action === "revoke" || body.action === "reset_usage") && done.length) void ctx.outline.sync();
  for (const id of done) ctx.deps.onDeviceChanged?.(id, body.action === "revoke" ? "revoked" : "updated");
  return { action: body.action, ids: done, affected: done.length, more };
}
