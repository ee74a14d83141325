// `httvps device …` and `httvps node …`: thin clients of the backend's admin API. They go
// through HTTP rather than the database because an embedded PGlite directory belongs to
// the one backend process that has it open.
// deno-lint-ignore-file no-explicit-any -- the commands print the API's JSON answers, whose shapes docs/02 and the OpenAPI document own
import { backendUrl, type Env } from "../config/config.ts";
import { parseOutlineManagerConfig } from "../backend/outline-api.ts";
import { ADMIN_TOKEN_FILE, readSecretFile, secretPath } from "../config/secret-files.ts";
import { type ParsedOptions, UsageError, wholeNumber } from "./args.ts";
import { renderQrTerminal } from "./qr.ts";

export class AdminApiError extends Error {
  constructor(readonly code: string, message: string, readonly status?: number) {
    super(message);
  }
}

export function adminToken(env: Env): string {
  const t = env.ADMIN_TOKEN ?? readSecretFile(env.DATA_DIR, ADMIN_TOKEN_FILE);
  if (!t) {
    throw new AdminApiError(
      "no_admin_token",
      `ADMIN_TOKEN is not set and ${
        secretPath(env.DATA_DIR, ADMIN_TOKEN_FILE)
      } does not exist (start the backend once, or set ADMIN_TOKEN)`,
    );
  }
  return t;
}

export async function adminCall(env: Env, method: string, path: string, body?: unknown): Promise<any> {
  const base = backendUrl(env);
  let res: Response;
  try {
    res = await fetch(base + path, {
      method,
      headers: {
        authorization: `Bearer ${adminToken(env)}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (e) {
    throw new AdminApiError(
      "backend_unreachable",
      `cannot reach the backend at ${base} (${(e as Error).message}); is it running? (npm run backend)`,
    );
  }
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AdminApiError("bad_response", `backend answered ${res.status} with a non-JSON body`, res.status);
  }
  if (!res.ok) throw new AdminApiError(json?.error?.code ?? "error", json?.error?.message ?? `HTTP ${res.status}`, res.status);
  return json;
}

type Print = (line: string) => void;

function table(rows: Record<string, unknown>[], cols: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? "-" : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join("\n");
}

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

export const DEVICE_OPTIONS = {
  name: { type: "string" },
  "max-sessions": { type: "string" },
  "quota-bytes": { type: "string" },
  "expires-at": { type: "string" },
  json: { type: "boolean" },
  qr: { type: "boolean" },
} as const;

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

export async function deviceCommand(
  env: Env,
  args: ParsedOptions<typeof DEVICE_OPTIONS>,
  print: Print,
  hooks: DeviceHooks = {},
): Promise<void> {
  const [sub, id] = args.positionals;
  const { values } = args;
  const json = values.json === true;
  switch (sub) {
    case "create": {
      const name = values.name;
      if (!name) throw new UsageError("device create needs --name NAME");
      const body: Record<string, unknown> = { name };
      const maxSessions = wholeNumber(values, "max-sessions");
      if (maxSessions !== undefined) body.max_sessions = maxSessions;
      const quota = wholeNumber(values, "quota-bytes");
      if (quota !== undefined) body.data_quota_bytes = quota;
      if (values["expires-at"] !== undefined) body.expires_at = values["expires-at"];
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
      if (!id) throw new UsageError("device links needs a device id");
      if (json && values.qr) throw new UsageError("device links: --json or --qr, not both");
      if (!hooks.appLinks) throw new UsageError("device links: the gateway address is unknown");
      const d = await adminCall(env, "GET", `/api/v1/devices/${encodeURIComponent(id)}`);
      const app = await adminCall(env, "GET", `/api/v1/devices/${encodeURIComponent(id)}/app`);
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
      let cursor: string | null = null;
      do {
        const page: any = await adminCall(env, "GET", `/api/v1/devices?limit=500${cursor ? `&cursor=${cursor}` : ""}`);
        all.push(...page.devices);
        cursor = page.next_cursor;
      } while (cursor);
      print(
        json
          ? JSON.stringify(all, null, 2)
          : table(all, ["id", "name", "status", "node_id", "max_sessions", "data_quota_bytes", "created_at"]),
      );
      return;
    }
    case "revoke": {
      if (!id) throw new UsageError("device revoke needs a device id");
      const d = await adminCall(env, "DELETE", `/api/v1/devices/${encodeURIComponent(id)}`);
      print(json ? JSON.stringify(d, null, 2) : `revoked ${d.id} (${d.name})`);
      return;
    }
    case "usage": {
      if (!id) throw new UsageError("device usage needs a device id");
      print(JSON.stringify(await adminCall(env, "GET", `/api/v1/devices/${encodeURIComponent(id)}/usage`), null, 2));
      return;
    }
    default:
      throw new UsageError("device: expected create, list, links, revoke or usage");
  }
}

export const NODE_OPTIONS = {
  "ss-url": { type: "string" },
  "outline-api": { type: "string" },
  host: { type: "string" },
  port: { type: "string" },
  method: { type: "string" },
  password: { type: "string" },
  name: { type: "string" },
  region: { type: "string" },
  weight: { type: "string" },
  json: { type: "boolean" },
} as const;

export async function nodeCommand(env: Env, args: ParsedOptions<typeof NODE_OPTIONS>, print: Print): Promise<void> {
  const [sub, id] = args.positionals;
  const { values } = args;
  const json = values.json === true;
  switch (sub) {
    case "add": {
      const ssUrl = values["ss-url"];
      const common: Record<string, unknown> = {};
      const name = values.name;
      if (name) common.name = name;
      const region = values.region;
      if (region) common.region = region;
      const weight = wholeNumber(values, "weight");
      if (weight !== undefined) common.weight = weight;
      const outlineApi = values["outline-api"];
      let n;
      if (outlineApi) {
        // The installer's line as printed; parsed here so a typo never reaches the server, and the pin is normalised.
        let cfg;
        try {
          cfg = parseOutlineManagerConfig(outlineApi);
        } catch (e) {
          throw new UsageError(`--outline-api: ${(e as Error).message}`);
        }
        const host = values.host;
        n = await adminCall(env, "POST", "/api/v1/nodes/outline", {
          api_url: cfg.apiUrl,
          cert_sha256: cfg.certSha256,
          ...(host ? { host } : {}),
          ...common,
        });
      } else if (ssUrl) {
        n = await adminCall(env, "POST", "/api/v1/nodes/import", { ss_url: ssUrl, ...common });
      } else {
        const host = values.host;
        const port = wholeNumber(values, "port");
        const method = values.method ?? "chacha20-ietf-poly1305";
        const password = values.password;
        if (!host || !port || !password) {
          throw new UsageError(
            "node add needs --ss-url URL, --outline-api JSON, or --host H --port P --password PW [--method M]",
          );
        }
        n = await adminCall(env, "POST", "/api/v1/nodes", {
          name: name ?? `${host}:${port}`,
          host,
          port,
          method,
          password,
          ...common,
        });
      }
      print(
        json
          ? JSON.stringify(n, null, 2)
          : `added node ${n.id} (${n.name}, ${n.host}:${n.port}, ${n.method}${
            n.api_url ? ", per-device keys through its management API" : ""
          })`,
      );
      return;
    }
    case "list": {
      const { nodes } = await adminCall(env, "GET", "/api/v1/nodes");
      const rows = nodes.map((n: any) => ({
        ...n,
        status: n.health.status,
        latency_ms: n.health.latency_ms,
        address: `${n.host}:${n.port}`,
      }));
      print(
        json
          ? JSON.stringify(nodes, null, 2)
          : table(rows, ["id", "name", "address", "method", "enabled", "status", "latency_ms", "sessions_active", "weight"]),
      );
      return;
    }
    case "remove": {
      if (!id) throw new UsageError("node remove needs a node id");
      await adminCall(env, "DELETE", `/api/v1/nodes/${encodeURIComponent(id)}`);
      print(`removed node ${id}`);
      return;
    }
    default:
      throw new UsageError("node: expected add, list or remove");
  }
}
