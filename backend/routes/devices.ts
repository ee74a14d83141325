// /api/v1/devices…: any admin. An operator created with own_devices_only sees and changes only
// the devices it created (others are "not found"), and one with max_devices cannot create more
// than that many (not revoked) devices.
import type { Context } from "hono";
import { deviceScope } from "../auth.ts";
import { ApiError, notFound } from "../errors.ts";
import * as S from "../schemas.ts";
import { listDevices } from "../store/device-list.ts";
import { deviceJson } from "../store/device-view.ts";
import * as devices from "../store/devices.ts";
import { deviceSessions, deviceUsage } from "../store/sessions.ts";
import { resetUsage } from "../store/usage.ts";
import { decodeCursor, encodeCursor, idParam, principalOf, type RouteContext } from "./context.ts";
import { runBulk } from "./device-bulk.ts";
import { seriesJson, seriesRange } from "./series.ts";

export function deviceRoutes(ctx: RouteContext): void {
  const { r, db, deps, outline, now } = ctx;
  const read = () => ({ now: now(), staleAfterSec: ctx.staleSec });
  const scopeOf = (c: Context) => deviceScope(principalOf(c));
  /** The device as the API shows it, or 404 (also when it is outside the caller's scope). */
  const shown = async (c: Context, id = idParam(c)) => {
    const o = read();
    const d = await devices.getDevice(db, id, o, scopeOf(c));
    if (!d) throw notFound("device");
    return deviceJson(d, o.now);
  };
  /** After a change: the device's Outline keys follow it (limits, deletion), listeners hear of it; the answer is the device now. */
  const changed = async (c: Context, id: string, change: "revoked" | "updated") => {
    await outline.deviceChanged(id);
    deps.onDeviceChanged?.(id, change);
    return shown(c, id);
  };

  r.add({
    method: "post",
    path: "/api/v1/devices",
    auth: "admin",
    audit: "device.create",
    summary: "Create a device; its token is shown once",
    body: S.DeviceCreate,
    response: S.DeviceCreated,
    status: 201,
    handler: async ({ c, body }) => {
      const p = principalOf(c);
      const created = p.adminId && p.maxDevices !== null
        ? await devices.createDeviceCapped(db, body, p.adminId, p.maxDevices)
        : await devices.createDevice(db, body, p.adminId);
      if (!created) {
        throw new ApiError(403, "device_cap_reached", `this account may have at most ${p.maxDevices} devices (not revoked)`);
      }
      c.set("audit", { targetId: created.id });
      return { ...(await shown(c, created.id)), device_id: created.id, token: created.token, app: created.app };
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/devices",
    auth: "admin",
    summary: "List devices: search, filter by status, keyset pagination",
    query: S.DeviceListQuery,
    response: S.DeviceList,
    handler: async ({ c, query }) => {
      const after = query.cursor ? decodeCursor(query.cursor) : undefined;
      if (after !== undefined && !devices.isUuid(after)) {
        throw new ApiError(400, "validation_failed", "cursor: not a cursor this API returned");
      }
      const o = read();
      const rows = await listDevices(db, query, scopeOf(c), { limit: query.limit + 1, afterId: after, order: query.order }, o);
      const page = rows.slice(0, query.limit);
      return {
        devices: page.map((d) => deviceJson(d, o.now)),
        next_cursor: rows.length > query.limit ? encodeCursor(page.at(-1)!.id) : null,
      };
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/devices/bulk",
    auth: "admin",
    audit: "device.bulk",
    summary: `Disable, enable, revoke or reset the usage of devices by ids or by filter (at most ${S.BULK_MAX})`,
    body: S.DeviceBulk,
    response: S.DeviceBulkResult,
    handler: async ({ c, body }) => {
      const out = await runBulk(ctx, body, scopeOf(c));
      c.set("audit", { targetId: null, detail: { ids: out.ids, more: out.more } });
      return out;
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/devices/:id",
    auth: "admin",
    summary: "One device",
    response: S.Device,
    handler: ({ c }) => shown(c),
  });

  r.add({
    method: "patch",
    path: "/api/v1/devices/:id",
    auth: "admin",
    audit: "device.update",
    summary: "Change name, disabled, limits, quota and its period, expiry (a date or N days from the first connection)",
    body: S.DevicePatch,
    response: S.Device,
    handler: async ({ c, body }) => {
      const id = idParam(c);
      if (!(await devices.updateDevice(db, id, body, now(), scopeOf(c)))) throw notFound("device");
      return changed(c, id, "updated");
    },
  });

  r.add({
    method: "delete",
    path: "/api/v1/devices/:id",
    auth: "admin",
    audit: "device.revoke",
    summary: "Revoke a device (its usage history stays)",
    response: S.Device,
    handler: async ({ c }) => {
      const d = await shown(c);
      await devices.revokeDevices(db, [d.id]);
      return changed(c, d.id, "revoked");
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/devices/:id/rotate-token",
    auth: "admin",
    audit: "device.rotate_token",
    summary: "Issue a new token and app identity; the old token, app path and app key stop working",
    response: S.TokenRotated,
    handler: async ({ c }) => {
      const id = idParam(c);
      const rotated = await devices.rotateDeviceToken(db, id, scopeOf(c));
      if (!rotated) throw notFound("device");
      deps.onDeviceChanged?.(id, "updated");
      return { device_id: id, ...rotated };
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/devices/:id/reset-usage",
    auth: "admin",
    audit: "device.reset_usage",
    summary: "The quota counts from zero again (in the current period); the usage history stays",
    response: S.Device,
    handler: async ({ c }) => {
      const d = await shown(c);
      await resetUsage(db, [d.id], now());
      return changed(c, d.id, "updated");
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/devices/:id/app",
    auth: "admin",
    summary: "The device's app identity (path, cipher, secret), to print its app links again",
    response: S.DeviceApp,
    handler: async ({ c }) => {
      const found = await devices.getDeviceApp(db, idParam(c), scopeOf(c));
      if (!found) throw notFound("device");
      if (found.revoked) throw new ApiError(409, "revoked", "the device is revoked: its app links no longer work");
      return found.app;
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/devices/:id/usage",
    auth: "admin",
    summary: "Bytes and sessions the gateways reported, the quota period's use, and with ?bucket= a series for a chart",
    query: S.UsageQuery,
    response: S.Usage,
    handler: async ({ c, query }) => {
      const d = await shown(c);
      const range = query.bucket ? seriesRange(query.bucket, now(), query.from, query.to) : undefined;
      const u = await deviceUsage(db, d.id, ctx.staleSec);
      return {
        device_id: d.id,
        bytes_up: u.bytes_up,
        bytes_down: u.bytes_down,
        bytes_total: u.bytes_up + u.bytes_down,
        sessions_total: u.sessions_total,
        sessions_active: u.sessions_active,
        last_seen_at: u.last_seen_at ? new Date(u.last_seen_at).toISOString() : null,
        data_quota_bytes: d.data_quota_bytes,
        quota_period: d.quota_period,
        quota_used_bytes: d.quota_used_bytes,
        quota_remaining_bytes: d.quota_remaining_bytes,
        quota_period_start: d.quota_period_start,
        quota_resets_at: d.quota_resets_at,
        ...(range ? { series: await seriesJson(db, "device", d.id, query.bucket!, range) } : {}),
      };
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/devices/:id/sessions",
    auth: "admin",
    summary: "The device's sessions, newest first, with their gateway and node",
    query: S.DeviceSessionsQuery,
    response: S.DeviceSessions,
    handler: async ({ c, query }) => {
      const d = await shown(c);
      const rows = await deviceSessions(db, d.id, {
        limit: query.limit,
        open: query.state === "open",
        staleAfterSec: ctx.staleSec,
      });
      const iso = (t: Date | null) => (t ? new Date(t).toISOString() : null);
      return {
        device_id: d.id,
        sessions: rows.map((s) => ({
          ...s,
          opened_at: iso(s.opened_at)!,
          last_seen_at: iso(s.last_seen_at)!,
          closed_at: iso(s.closed_at),
        })),
      };
    },
  });
}
