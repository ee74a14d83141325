// Every environment variable HTTVPS reads, parsed once with zod into one typed object.
// Services take the object (or the part they need) as an argument; nothing below this
// file reads the environment, so tests build configs by hand.
import { availableParallelism } from "node:os";
import { z } from "zod";
import { type Cidr, parseCidrList, urlHost } from "../protocol/ip-address.ts";
import { loadEnv } from "./dotenv.ts";

/** "250ms", "5s", "2m", "1h", "14d"; a bare number means seconds. Parsed to milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  const factor = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : unit === "h" ? 3_600_000 : 86_400_000;
  return Math.round(n * factor);
}

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s, ctx) => {
      const ms = parseDuration(s);
      if (ms === undefined) {
        ctx.addIssue({ code: "custom", message: `expected a duration like 500ms, 30s, 2m or 14d, got "${s}"` });
        return z.NEVER;
      }
      return ms;
    });

const port = (fallback: number) =>
  z.coerce
    .number({ error: "expected a port number 1-65535" })
    .int("expected a port number 1-65535")
    .min(1, "expected a port number 1-65535")
    .max(65535, "expected a port number 1-65535")
    .default(fallback);

const flag = (fallback: boolean) =>
  z
    .enum(["1", "0", "true", "false", "yes", "no", "on", "off", ""], { error: "expected 1 or 0" })
    .optional()
    .transform((v) => (v === undefined || v === "" ? fallback : ["1", "true", "yes", "on"].includes(v)));

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

const secret = optionalText.refine((v) => v === undefined || v.length >= 16, {
  message: "expected at least 16 characters (generate one with: openssl rand -hex 32)",
});

/** host:port with an IPv4 address, a name or a bracketed IPv6 address. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const p = Number(m[3]);
  if (p < 0 || p > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port: p };
}

const hostPort = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s, ctx) => {
      const hp = parseHostPort(s);
      if (!hp) {
        ctx.addIssue({ code: "custom", message: `expected host:port like 0.0.0.0:8443 or [::1]:8443, got "${s}"` });
        return z.NEVER;
      }
      return hp;
    });

const url = z.url({ error: "expected a URL" });

/** Let's Encrypt's production directory; its staging one is in docs/09 (Certificates). */
export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

const hostname = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** Comma-separated DNS names for ACME; wildcards need DNS-01, which the gateway cannot answer. */
const acmeDomains = optionalText.transform((v, ctx) => {
  if (v === undefined) return undefined;
  const names = [...new Set(v.split(",").map((d) => d.trim().toLowerCase()).filter(Boolean))];
  const bad = names.find((d) => !hostname.test(d) || /\.\d+$/.test(d)); // a numeric last label is an address
  if (bad !== undefined || names.length === 0 || names.length > 100) {
    ctx.addIssue({
      code: "custom",
      message: `expected DNS names like vpn.example.com, comma-separated (no wildcards, no addresses; 1-100), got "${v}"`,
    });
    return z.NEVER;
  }
  return names;
});

/** host:port, or :port for every IPv4 address (0.0.0.0). */
const listenAddr = optionalText.transform((v, ctx) => {
  if (v === undefined) return undefined;
  const hp = parseHostPort(v.startsWith(":") ? "0.0.0.0" + v : v);
  if (!hp) {
    ctx.addIssue({ code: "custom", message: `expected host:port or :port like :80 or 0.0.0.0:80, got "${v}"` });
    return z.NEVER;
  }
  return hp;
});

/** Comma-separated CIDRs (IPv4 and IPv6; a bare address is a /32 or /128). */
const cidrList = optionalText.transform((v, ctx): Cidr[] => {
  try {
    return parseCidrList(v);
  } catch (e) {
    ctx.addIssue({
      code: "custom",
      message: `${(e as Error).message}; expected IP ranges like 127.0.0.1/32, 10.0.0.0/8, ::1/128 (comma-separated)`,
    });
    return z.NEVER;
  }
});

/** Where the gateway listens when GATEWAY_LISTEN_ADDR is not set: everywhere, or loopback only when a proxy in front terminates TLS. */
export const DEFAULT_LISTEN_ADDR = "0.0.0.0:8443";
export const DEFAULT_PLAIN_LISTEN_ADDR = "127.0.0.1:8443";

export const envSchema = z.object({
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"], { error: "expected debug, info, warn or error" }).default("info"),
  DATA_DIR: z.string().min(1).default("./data"),

  // backend
  BACKEND_HOST: z.string().min(1).default("127.0.0.1"),
  BACKEND_PORT: port(8080),
  BACKEND_URL: url.optional(),
  DATABASE_URL: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()))
    .refine((v) => v === undefined || /^postgres(ql)?:\/\//.test(v), { message: "expected postgres://user@host:port/db" }),
  POSTGRES_PORT: port(5432),
  ADMIN_TOKEN: secret,
  GATEWAY_API_KEY: secret,
  MIGRATE_ON_START: flag(false),
  NODE_CHECK_INTERVAL: duration("30s"),
  NODE_PROBE_TARGET: optionalText
    .refine((v) => v === undefined || parseHostPort(v) !== undefined, { message: "expected host:port like example.com:80" })
    .transform((v) => (v === undefined ? undefined : parseHostPort(v)!)),
  SESSION_STALE_AFTER: duration("3m"),
  /** Hourly usage buckets older than this are rolled up into daily ones (docs/10-console.md). */
  USAGE_HOURLY_RETENTION: duration("14d"),
  /** Closed sessions (and open ones no gateway reported for this long) are deleted after this. */
  SESSION_RETENTION: duration("30d"),
  /** Node health checks are kept this long for the history charts. */
  NODE_HEALTH_RETENTION: duration("2d"),
  /** Audit log entries are kept this long. */
  AUDIT_RETENTION: duration("365d"),
  /** How often the maintenance job (roll-up, pruning) runs; each run does a bounded amount of work. */
  MAINTENANCE_INTERVAL: duration("5m"),
  /** A signed-in admin session ends after this long without a request. */
  ADMIN_SESSION_IDLE: duration("30m"),
  /** …and this long after sign-in, whatever its use. */
  ADMIN_SESSION_MAX: duration("12h"),

  // gateway
  GATEWAY_ID: z.string().min(1).max(64).default("gateway-1"),
  GATEWAY_LISTEN_ADDR: hostPort(DEFAULT_LISTEN_ADDR),
  /** off: plain HTTP (and h2c) for a reverse proxy or CDN that terminates TLS; the listen address defaults to loopback then (docs/09). */
  GATEWAY_TLS: flag(true),
  /** Peers whose X-Forwarded-For / Forwarded is believed (the proxy in front); nobody's by default. */
  GATEWAY_TRUSTED_PROXIES: cidrList,
  GATEWAY_TLS_CERT: z.string().min(1).default("deploy/certs/cert.pem"),
  GATEWAY_TLS_KEY: z.string().min(1).default("deploy/certs/key.pem"),
  /** How often GATEWAY_TLS_CERT/KEY are checked for a change (certbot renewing them); 0 = never. */
  GATEWAY_TLS_RELOAD_INTERVAL: duration("1m"),
  /** Certificates from an ACME CA for these names instead of the files; kept in DATA_DIR/acme. */
  GATEWAY_ACME_DOMAINS: acmeDomains,
  GATEWAY_ACME_EMAIL: optionalText.refine((v) => v === undefined || /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v), {
    message: "expected an e-mail address",
  }),
  GATEWAY_ACME_DIRECTORY: url.default(LETS_ENCRYPT_DIRECTORY),
  /** A PEM file of CAs to trust for the ACME server's own HTTPS (a private CA, pebble), beside the system's. */
  GATEWAY_ACME_CA_FILE: optionalText,
  /** A plain-HTTP listener: ACME HTTP-01 answers, and a 301 to https for everything else. */
  GATEWAY_HTTP_ADDR: listenAddr,
  /** How devices reach this gateway, for the access keys `httvps device create` prints (default: localhost and the listen port). */
  GATEWAY_PUBLIC_URL: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()))
    .refine((v) => v === undefined || /^(wss|https):\/\/[^\s/]+(\/\S*)?$/.test(v), {
      message: "expected wss://host[:port][/path]",
    }),
  /** The apps' subscription refresh interval in hours (the `profile-update-interval` header). */
  GATEWAY_APP_SUB_UPDATE_HOURS: z.coerce.number({ error: "expected a whole number of hours 1-8760" }).int().min(1).max(8760)
    .default(12),
  GATEWAY_WS_PATH: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, "expected a path starting with /").default("/ws"),
  /** The operator's own site (static files). Unset, and no GATEWAY_DECOY_UPSTREAM: a site generated for this install (DATA_DIR/decoy-seed). */
  GATEWAY_DECOY_DIR: optionalText,
  /** A real site every request that is not the tunnel is passed to (streamed, its own answers; docs/09). */
  GATEWAY_DECOY_UPSTREAM: optionalText.refine((v) => v === undefined || /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(v), {
    message: "expected http(s)://host[:port][/path] of the site to show, like https://www.example.com",
  }),
  /** How long GATEWAY_DECOY_UPSTREAM may take to answer, and the longest silence within a body. */
  GATEWAY_DECOY_TIMEOUT: duration("15s"),
  GATEWAY_BACKEND_URL: url.optional(),
  GATEWAY_BACKEND_TIMEOUT: duration("2s"),
  GATEWAY_AUTH_CACHE_TTL: duration("30s"),
  GATEWAY_UPSTREAM_MODE: z.enum(["fake", "outline", "direct"], { error: "expected fake, outline or direct" }).default("fake"),
  GATEWAY_DIAL_TIMEOUT: duration("5s"),
  GATEWAY_DIRECT_ALLOW: optionalText,
  /** A TLS handshake not finished this long after TCP accept is closed (docs/07 "Before authentication"). */
  GATEWAY_TLS_HANDSHAKE_TIMEOUT: duration("10s"),
  /** A request head not complete this long after the TLS handshake is closed. */
  GATEWAY_REQUEST_HEAD_TIMEOUT: duration("10s"),
  /** An upgraded WebSocket or HTTP/2 session request without a hello this long is closed (hello_timeout). */
  GATEWAY_HELLO_TIMEOUT: duration("10s"),
  /** Connections not yet authenticated per source address (IPv6: per /64); past it new ones are closed at once; 0 = no cap. */
  GATEWAY_PREAUTH_PER_ADDRESS: z.coerce.number({ error: "expected a whole number 0-1000000" }).int().min(0).max(1_000_000)
    .default(64),
  GATEWAY_PING_INTERVAL: duration("30s"),
  GATEWAY_IDLE_TIMEOUT: duration("120s"),
  GATEWAY_UDP_IDLE_TIMEOUT: duration("60s"),
  GATEWAY_DRAIN_TIMEOUT: duration("10s"),
  /**
   * Gateway processes sharing the listening port (gateway/workers.ts), each with its own
   * sessions; 1 = one process. Default: the number of cores. ACME certificates keep it at 1.
   */
  GATEWAY_WORKERS: z.coerce.number({ error: "expected a whole number 1-256" }).int().min(1).max(256).default(() =>
    availableParallelism()
  ),
  /**
   * Not for operators: the primary sets it on each worker it starts (gateway/workers.ts), as
   * "<index>" (Node: node:cluster shares the port) or "<index>:claim" / "<index>:join" (SO_REUSEPORT).
   */
  HTTVPS_GATEWAY_WORKER: optionalText.refine((v) => v === undefined || /^\d{1,3}(:claim|:join)?$/.test(v), {
    error: "set by the gateway for its workers: <index>[:claim|:join]",
  }),
  GATEWAY_MAX_STREAMS: z.coerce.number({ error: "expected a whole number 1-65535" }).int().min(1).max(65535).default(1024),
  /** The operator endpoints (/metrics, /healthz, /readyz) on their own listener: GATEWAY_METRICS_ADDR, by default 127.0.0.1:9100. */
  GATEWAY_METRICS: flag(false),
  /** The HTTP/2 transport beside the WebSocket one, where the runtime serves it (Node, Deno; not Bun). */
  GATEWAY_H2: flag(true),
  /** Grant "padding" to clients that ask: the handshake and each stream's first frames padded (docs/03 §12). */
  GATEWAY_PADDING: flag(true),
  /** Grant "early_data" to clients that ask: they may open a stream right behind the hello (docs/03 §13). */
  GATEWAY_EARLY_DATA: flag(true),
  /** Where the operator endpoints listen (plain HTTP); setting it turns them on. Never the public port. */
  GATEWAY_METRICS_ADDR: optionalText.refine((v) => v === undefined || parseHostPort(v) !== undefined, {
    message: "expected host:port like 127.0.0.1:9100",
  }),
  GATEWAY_USAGE_FLUSH_INTERVAL: duration("10s"),
  /** Failed hellos (unknown device, bad token) per source address (IPv6: per /64) within GATEWAY_HELLO_FAIL_WINDOW; 0 = off. */
  GATEWAY_HELLO_FAIL_LIMIT: z.coerce.number({ error: "expected a whole number 0-1000000" }).int().min(0).max(1_000_000).default(
    20,
  ),
  /** Failed hellos per claimed device id within GATEWAY_HELLO_FAIL_WINDOW; 0 = off. */
  GATEWAY_HELLO_FAIL_DEVICE_LIMIT: z.coerce.number({ error: "expected a whole number 0-1000000" }).int().min(0).max(1_000_000)
    .default(50),
  GATEWAY_HELLO_FAIL_WINDOW: duration("1m"),
  /** A hello refused for its credentials is answered this long after it arrived at the earliest, whatever the reason (docs/07). */
  GATEWAY_AUTH_FAIL_DELAY: duration("200ms"),
  /** Rate-limit buckets kept per kind (addresses, devices); the least recently used go first. */
  GATEWAY_HELLO_FAIL_ENTRIES: z.coerce.number({ error: "expected a whole number 100-10000000" }).int().min(100).max(10_000_000)
    .default(100_000),
  /** An app connection on a device path whose data does not authenticate is read and discarded this long, then closed (docs/07). */
  GATEWAY_APP_PROBE_TIMEOUT: duration("59s"),
  /** Salts of app streams remembered against replays (0 = off; outline-ss-server's --replay_history). */
  GATEWAY_APP_REPLAY_HISTORY: z.coerce.number({ error: "expected a whole number 0-100000" }).int().min(0).max(100_000).default(
    10_000,
  ),
  /** An app session (one device's connections from one address) closes this long after its last connection. */
  GATEWAY_APP_SESSION_LINGER: duration("60s"),
});

export type Env = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  readonly code = "bad_config";
  constructor(readonly variable: string, readonly expected: string) {
    super(`config: ${variable}: ${expected}`);
  }
}

/** Parse an environment (defaults to `.env` under `process.env`). Throws ConfigError naming the first bad variable. */
export function loadConfig(env: Record<string, string | undefined> = loadEnv()): Env {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(envSchema.shape)) input[key] = env[key];
  const r = envSchema.safeParse(input);
  if (r.success) return plainListenerChecked(r.data, input);
  const issue = r.error.issues[0]!;
  const variable = String(issue.path[0] ?? "environment");
  const got = env[variable];
  const shown = /TOKEN|KEY|PASSWORD|DATABASE_URL/.test(variable) || got === undefined ? "" : ` (got "${got}")`;
  const msg = issue.message.includes("got ") ? issue.message : issue.message + shown;
  throw new ConfigError(variable, msg);
}

/**
 * GATEWAY_TLS=off: loopback unless GATEWAY_LISTEN_ADDR says otherwise (plain HTTP is for the
 * proxy on this machine), and none of the variables that only mean something with TLS here.
 */
function plainListenerChecked(env: Env, input: Record<string, string | undefined>): Env {
  if (env.GATEWAY_TLS) return env;
  for (const v of ["GATEWAY_ACME_DOMAINS", "GATEWAY_HTTP_ADDR"] as const) {
    if (env[v] !== undefined) {
      throw new ConfigError(v, "not with GATEWAY_TLS=off: the proxy in front holds the certificate and port 80");
    }
  }
  if (input.GATEWAY_LISTEN_ADDR?.trim()) return env;
  return { ...env, GATEWAY_LISTEN_ADDR: parseHostPort(DEFAULT_PLAIN_LISTEN_ADDR)! };
}

/** Where the operator endpoints listen when GATEWAY_METRICS is on and GATEWAY_METRICS_ADDR is not set: loopback only. */
export const DEFAULT_METRICS_ADDR = "127.0.0.1:9100";

/** The operator listener's address, or undefined when it is off (GATEWAY_METRICS off and no GATEWAY_METRICS_ADDR). */
export function metricsListenAddr(env: Env): { host: string; port: number } | undefined {
  if (env.GATEWAY_METRICS_ADDR) return parseHostPort(env.GATEWAY_METRICS_ADDR)!; // validated by the schema
  return env.GATEWAY_METRICS ? parseHostPort(DEFAULT_METRICS_ADDR) : undefined;
}

/** GATEWAY_PUBLIC_URL's parts: the host without brackets, the port (443 when none is given) and the path ("/" when none). */
export function publicGatewayAddress(publicUrl: string): { host: string; port: number; path: string } {
  const u = new URL(publicUrl.replace(/^wss:/, "https:"));
  return { host: urlHost(u), port: Number(u.port || 443), path: u.pathname };
}

/** The backend URL the CLI and the gateway talk to when none is configured. */
export function backendUrl(env: Env): string {
  return env.BACKEND_URL ?? `http://${env.BACKEND_HOST === "0.0.0.0" ? "127.0.0.1" : env.BACKEND_HOST}:${env.BACKEND_PORT}`;
}
