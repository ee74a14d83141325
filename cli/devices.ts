// `httvps device …`: devices through the admin API — create, list (search, status), show,
// update (limits, quota and its period, expiry), rotate, reset-usage, disable, enable, revoke,
// bulk actions by ids or by filter, usage (with a series), sessions, and the apps' links.
// deno-lint-ignore-file no-explicit-any -- the commands print the API's JSON answers, whose shapes docs/02 and the OpenAPI document own
import type { Env } from "../config/config.ts";
import { adminCall, output, type Print, table } from "./admin-api.ts";
import { oneOf, type ParsedOptions, UsageError, wholeNumberOrNone } from "./args.ts";
import { renderQrTerminal } from "../protocol/app-links/qr.ts";

/** The links the apps people already have import (docs/08-clients.md). */
export interface AppLinks {
  ssconf: string;
  ss_url: string;
  subscription_url: string;
}

export interface DeviceHooks {
  /** Turns a created device into an access key, when the gateway address is known. */
  accessKey?: (device: { device_id: string; token: string; name: string }) => string | undefined;
  /** Turns a device's app identity into its app links. */
  appLinks?: (device: { name: string; app: { path: string; cipher: string; secret: string } }) => AppLinks;
  /** Whether QR codes may use colours (stdout is a terminal); plain half blocks otherwise. */
  colour?: boolean;
}

const QUOTA_PERIODS = ["none", "day", "week", "month"] as const;
const STATUSES = ["active", "on_hold", "disabled", "revoked", "expired", "over_quota", "online"] as const;
const BULK_ACTIONS = ["disable", "enable", "revoke", "reset-usage"] as const;

export const DEVICE_OPTIONS = {
  name: { type: "string" },
  "max-sessions": { type: "string" },
  "quota-bytes": { type: "string" },
  "quota-period": { type: "string" },
  "expires-at": { type: "string" },
  "expire-after-days": { type: "string" },
  search: { type: "string" },
  status: { type: "string" },
  "created-by": { type: "string" },
  ids: { type: "string" },
  bucket: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  open: { type: "boolean" },
  json: { type: "boolean" },
  qr: { type: "boolean" },
} as const;

type DeviceArgs = ParsedOptions<typeof DEVICE_OPTIONS>;

const LINK_LABELS: [keyof AppLinks, string][] = [
  ["ssconf", "Outline Client (ssconf://, its config fetched on every connect)"],
  ["ss_url", "ss:// link, v2ray-plugin over WebSocket (v2rayN, NekoBox, sing-box, Shadowrocket)"],
  ["subscription_url", "subscription URL (mihomo / Clash, sing-box, Hiddify, v2rayN)"],
];

/** The app links as labelled lines, each with its QR code under it when asked. */
function printLinks(print: Print, links: AppLinks, qr: { on: boolean; colour: boolean }): void {
  for (const [key, label] of LINK_LABELS) {
    print(`${label}:`);
    print(`  ${links[key]}`);
    if (qr.on) print(renderQrTerminal(links[key], { ansi: qr.colour }));
  }
}

/** The device fields the options set (create and update take the same ones). */
function deviceFields(values: DeviceArgs["values"]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (values.name !== undefined) body.name = values.name;
  const maxSessions = wholeNumberOrNone(values, "max-sessions");
  if (maxSessions !== undefined) body.max_sessions = maxSessions;
  const quota = wholeNumberOrNone(values, "quota-bytes");
  if (quota !== undefined) body.data_quota_bytes = quota;
  const period = oneOf(values, "quota-period", QUOTA_PERIODS);
  if (period !== undefined) body.quota_period = period;
  if (values["expires-at"] !== undefined) body.expires_at = values["expires-at"] === "none" ? null : values["expires-at"];
  const days = wholeNumberOrNone(values, "expire-after-days");
  if (days !== undefined) body.expire_after_days = days;
  return body;
}

/** The list's filter from --search, --status, --created-by, as a query string and as a body. */
function selection(values: DeviceArgs["values"]): Record<string, string> {
  const sel: Record<string, string> = {};
  if (values.search !== undefined) sel.q = values.search;
  const status = oneOf(values, "status", STATUSES);
  if (status !== undefined) sel.status = status;
  if (values["created-by"] !== undefined) sel.created_by = values["created-by"];
  return sel;
}

const quotaText = (d: any) =>
  d.data_quota_bytes === null
    ? "-"
    : `${d.quota_used_bytes}/${d.data_quota_bytes}${d.quota_period === "none" ? "" : `/${d.quota_period}`}`;

function deviceText(d: any): string {
  const rows: [string, unknown][] = [
    ["id", d.id],
    ["name", d.name],
    ["status", d.status],
    ["online", d.online ? `yes (${d.sessions_active} sessions)` : "no"],
    ["last seen", d.last_seen_at],
    ["quota", d.data_quota_bytes === null ? "none" : `${d.quota_used_bytes} of ${d.data_quota_bytes} bytes`],
    ["quota period", d.quota_period === "none" ? "none" : `${d.quota_period} (resets ${d.quota_resets_at})`],
    ["expiry", d.expiry_mode === "first_connection" ? `${d.expire_after_days} days from the first connection` : d.expiry_mode],
    ["expires at", d.expires_at],
    ["first connected", d.first_connected_at],
    ["max sessions", d.max_sessions],
    ["traffic", `${d.bytes_up} up, ${d.bytes_down} down`],
    ["node", d.node_id],
  ];
  return rows.map(([k, v]) => `${k.padEnd(16)}${v === null || v === undefined ? "-" : String(v)}`).join("\n");
}

export async function deviceCommand(env: Env, args: DeviceArgs, print: Print, hooks: DeviceHooks = {}): Promise<void> {
  const [sub, id, ...rest] = args.positionals;
  const { values } = args;
  const json = values.json === true;
  const path = (suffix = "") => {
    if (!id) throw new UsageError(`device ${sub} needs a device id`);
    if (rest.length && sub !== "bulk") throw new UsageError(`device ${sub}: unexpected "${rest[0]}"`);
    return `/api/v1/devices/${encodeURIComponent(id)}${suffix}`;
  };
  const patch = async (body: Record<string, unknown>, done: (d: any) => string) => {
    const d = await adminCall(env, "PATCH", path(), body);
    output(print, json, d, () => done(d));
  };
  switch (sub) {
    case "create": {
      const body = deviceFields(values);
      if (!body.name) throw new UsageError("device create needs --name NAME");
      if (values.qr) throw new UsageError("device create prints no QR codes: use device links ID --qr");
      const d = await adminCall(env, "POST", "/api/v1/devices", body);
      const accessKey = hooks.accessKey?.(d);
      const links = hooks.appLinks?.(d);
      if (json) {
        print(JSON.stringify({ ...d, ...(accessKey ? { access_key: accessKey } : {}), ...links }, null, 2));
      } else {
        print(`device_id  ${d.device_id}`);
        print(`token      ${d.token}   (shown once: only its hash is stored)`);
        if (accessKey) print(`access key ${accessKey}`);
        if (links) {
          printLinks(print, links, { on: false, colour: false });
          print(`(again, as QR codes for a phone: httvps device links ${d.device_id} --qr)`);
        }
      }
      return;
    }
    case "links": {
      if (json && values.qr) throw new UsageError("device links: --json or --qr, not both");
      if (!hooks.appLinks) throw new UsageError("device links: the gateway address is unknown");
      const d = await adminCall(env, "GET", path());
      const app = await adminCall(env, "GET", path("/app"));
      const links = hooks.appLinks({ name: d.name, app });
      if (json) print(JSON.stringify({ device_id: d.id, name: d.name, ...links }, null, 2));
      else {
        print(`device ${d.id} (${d.name})`);
        printLinks(print, links, { on: values.qr === true, colour: hooks.colour === true });
      }
      return;
    }
    case "list": {
      const all: any[] = [];
      const query = new URLSearchParams({ limit: "500", ...selection(values) });
      let cursor: string | null = null;
      do {
        if (cursor) query.set("cursor", cursor);
        const page: any = await adminCall(env, "GET", `/api/v1/devices?${query}`);
        all.push(...page.devices);
        cursor = page.next_cursor;
      } while (cursor);
      output(
        print,
        json,
        all,
        () =>
          table(all.map((d) => ({ ...d, online: d.online ? "yes" : "no", quota: quotaText(d) })), [
            "id",
            "name",
            "status",
            "online",
            "quota",
            "expires_at",
            "last_seen_at",
            "created_at",
          ]),
      );
      return;
    }
    case "show": {
      const d = await adminCall(env, "GET", path());
      output(print, json, d, () => deviceText(d));
      return;
    }
    case "update": {
      const body = deviceFields(values);
      if (!Object.keys(body).length) {
        throw new UsageError(
          "device update needs a change: --name, --max-sessions, --quota-bytes, --quota-period, --expires-at, --expire-after-days",
        );
      }
      await patch(body, (d) => `updated ${d.id} (${d.name})\n${deviceText(d)}`);
      return;
    }
    case "disable":
      await patch({ disabled: true }, (d) => `disabled ${d.id} (${d.name})`);
      return;
    case "enable":
      await patch({ disabled: false }, (d) => `enabled ${d.id} (${d.name}): ${d.status}`);
      return;
    case "revoke": {
      const d = await adminCall(env, "DELETE", path());
      output(print, json, d, () => `revoked ${d.id} (${d.name})`);
      return;
    }
    case "rotate": {
      const r = await adminCall(env, "POST", path("/rotate-token"));
      const d = await adminCall(env, "GET", path());
      const accessKey = hooks.accessKey?.({ device_id: r.device_id, token: r.token, name: d.name });
      output(print, json, { ...r, ...(accessKey ? { access_key: accessKey } : {}) }, () =>
        [
          `device_id  ${r.device_id}`,
          `token      ${r.token}   (shown once; the old token, app path and app key stop working)`,
          ...(accessKey ? [`access key ${accessKey}`] : []),
        ].join("\n"));
      return;
    }
    case "reset-usage": {
      const d = await adminCall(env, "POST", path("/reset-usage"));
      output(print, json, d, () => `reset the usage of ${d.id} (${d.name}): its quota counts from zero again`);
      return;
    }
    case "usage": {
      const q = new URLSearchParams();
      const bucket = oneOf(values, "bucket", ["hour", "day"] as const);
      if (bucket) q.set("bucket", bucket);
      if (values.from) q.set("from", values.from);
      if (values.to) q.set("to", values.to);
      print(JSON.stringify(await adminCall(env, "GET", path(`/usage${q.size ? `?${q}` : ""}`)), null, 2));
      return;
    }
    case "sessions": {
      const r = await adminCall(env, "GET", path(`/sessions?state=${values.open ? "open" : "all"}`));
      output(
        print,
        json,
        r,
        () =>
          table(r.sessions.map((s: any) => ({ ...s, online: s.online ? "yes" : "no" })), [
            "id",
            "online",
            "gateway_id",
            "node_id",
            "opened_at",
            "closed_at",
            "close_reason",
            "bytes_up",
            "bytes_down",
          ]),
      );
      return;
    }
    case "bulk":
      await bulk(env, args, print);
      return;
    default:
      throw new UsageError(
        "device: expected create, list, show, update, disable, enable, revoke, rotate, reset-usage, bulk, usage, sessions or links",
      );
  }
}

/**
 * `device bulk ACTION --ids A,B,…` or `device bulk ACTION [--search Q] [--status S] [--created-by ID]`:
 * a filter is sent again while the backend says more devices matched than it acted on.
 */
async function bulk(env: Env, args: DeviceArgs, print: Print): Promise<void> {
  const { values } = args;
  const [, action, ...rest] = args.positionals;
  if (!action || !(BULK_ACTIONS as readonly string[]).includes(action) || rest.length) {
    throw new UsageError(`device bulk: expected ${BULK_ACTIONS.join(", ")} and --ids or a filter`);
  }
  const sel = selection(values);
  const ids = values.ids?.split(",").map((s) => s.trim()).filter(Boolean);
  if (ids && Object.keys(sel).length) throw new UsageError("device bulk: --ids or a filter, not both");
  if (!ids && !Object.keys(sel).length) {
    throw new UsageError("device bulk: give --ids, or a filter (--search, --status, --created-by); all devices: --status active");
  }
  const apiAction = action === "reset-usage" ? "reset_usage" : action;
  const done: string[] = [];
  if (ids) done.push(...(await adminCall(env, "POST", "/api/v1/devices/bulk", { action: apiAction, ids })).ids);
  else {
    for (let rounds = 0;; rounds++) {
      const r = await adminCall(env, "POST", "/api/v1/devices/bulk", { action: apiAction, filter: sel });
      done.push(...r.ids);
      if (!r.more || !r.ids.length || rounds > 10_000) break;
    }
  }
  output(
    print,
    values.json === true,
    { action: apiAction, ids: done, affected: done.length },
    () => `${action}: ${done.length} device${done.length === 1 ? "" : "s"}`,
  );
}
