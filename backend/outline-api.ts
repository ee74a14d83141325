// A client for an Outline server's management API (outline-server's shadowbox `api.yml`).
// The API has no credential but its URL's secret path, and a self-signed certificate
// whose sha256 the installer prints: so we trust that one certificate and nothing else.
//
// Pinning, portably: `checkServerIdentity` is never called for a self-signed peer once
// `rejectUnauthorized` is false, and a request written before 'secureConnect' may leave
// with the handshake. So each call opens its own TLS socket, waits for the handshake,
// compares the sha256 of the peer's DER certificate with the pin, and only then hands the
// socket to node:https (`createConnection`). Node 20, Bun 1.4 and Deno 2.9 all expose
// `getPeerCertificate(true).raw` and honour `createConnection`; outline-api.test.ts proves it.
import { createHash } from "node:crypto";
import * as https from "node:https";
import { isIP } from "node:net";
import * as tls from "node:tls";
import { z } from "zod";
import { urlHost } from "../protocol/ip-address.ts";

export type OutlineApiErrorCode =
  | "outline_api_unreachable"
  | "outline_api_pin_mismatch"
  | "outline_api_error"
  | "outline_api_bad_config";

/** Messages name the server by origin only: the path is the API's only secret. */
export class OutlineApiError extends Error {
  constructor(
    readonly code: OutlineApiErrorCode,
    message: string,
    /** The HTTP status, for `outline_api_error` answers. */
    readonly status?: number,
  ) {
    super(message);
    this.name = "OutlineApiError";
  }
}

export interface OutlineApiConfig {
  /** `https://HOST:PORT/SECRET`, as the installer prints it. */
  apiUrl: string;
  /** sha256 of the server certificate's DER, hex (either case, colons allowed). */
  certSha256: string;
  /** Bound on one call: connect, handshake, request and answer. */
  timeoutMs?: number;
}

const AccessKey = z.object({
  id: z.string().min(1).max(200),
  name: z.string().optional().nullable(),
  password: z.string().min(1).max(1024),
  port: z.number().int().min(1).max(65535),
  method: z.string().min(1).max(64),
  dataLimit: z.object({ bytes: z.number().int().min(0) }).optional().nullable(),
  accessUrl: z.string().optional(),
});
export type OutlineAccessKey = z.infer<typeof AccessKey>;

const ServerInfo = z.object({
  name: z.string().optional(),
  serverId: z.string().optional(),
  version: z.string().optional(),
  portForNewAccessKeys: z.number().int().min(1).max(65535).optional(),
  hostnameForAccessKeys: z.string().max(255).optional(),
  accessKeyDataLimit: z.object({ bytes: z.number().int().min(0) }).optional().nullable(),
});
export type OutlineServerInfo = z.infer<typeof ServerInfo>;

export interface CreateKeyOptions {
  name?: string;
  method?: string;
  /** Outline's per-key data limit; null or undefined → none (the server default applies). */
  limitBytes?: number | null;
}

export interface OutlineApi {
  /** `https://host:port` — safe to log. */
  readonly origin: string;
  server(): Promise<OutlineServerInfo>;
  listKeys(): Promise<OutlineAccessKey[]>;
  createKey(opts?: CreateKeyOptions): Promise<OutlineAccessKey>;
  /** false when the key was already gone (404). */
  deleteKey(id: string): Promise<boolean>;
  /** null removes the key's own limit. */
  setDataLimit(id: string, bytes: number | null): Promise<void>;
}

const MAX_BODY = 4 << 20;

export function normalizeSha256(hex: string): string | undefined {
  const h = hex.replaceAll(":", "").trim().toLowerCase();
  return /^[0-9a-f]{64}$/.test(h) ? h : undefined;
}

interface Target {
  host: string;
  port: number;
  basePath: string;
  origin: string;
  pin: string;
}

function parseConfig(cfg: OutlineApiConfig): Target {
  let u: URL;
  try {
    u = new URL(cfg.apiUrl);
  } catch {
    throw new OutlineApiError("outline_api_bad_config", "apiUrl is not a URL");
  }
  if (u.protocol !== "https:") throw new OutlineApiError("outline_api_bad_config", "apiUrl must be https://");
  const pin = normalizeSha256(cfg.certSha256);
  if (!pin) throw new OutlineApiError("outline_api_bad_config", "certSha256 must be 64 hex digits");
  return { host: urlHost(u), port: Number(u.port || 443), basePath: u.pathname.replace(/\/+$/, ""), origin: u.origin, pin };
}

/** `https://host:port` of an apiUrl, for logs and messages; never the secret path. */
export function apiOrigin(apiUrl: string): string {
  try {
    return new URL(apiUrl).origin;
  } catch {
    return "(invalid apiUrl)";
  }
}

/**
 * The JSON the Outline installer prints, `{"apiUrl":"…","certSha256":"…"}`, possibly with the
 * text around it (the installer's own line, a log prefix): the first {…} is taken.
 */
export function parseOutlineManagerConfig(text: string): { apiUrl: string; certSha256: string } {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  let json: unknown;
  try {
    json = start >= 0 && end > start ? JSON.parse(text.slice(start, end + 1)) : undefined;
  } catch {
    json = undefined;
  }
  const r = z.object({ apiUrl: z.string(), certSha256: z.string() }).safeParse(json);
  if (!r.success) {
    throw new OutlineApiError("outline_api_bad_config", 'expected the installer\'s {"apiUrl":"https://…","certSha256":"…"}');
  }
  const t = parseConfig(r.data);
  return { apiUrl: r.data.apiUrl, certSha256: t.pin };
}

function errorText(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" ? code : e instanceof Error ? e.message : String(e);
}

/** A TLS socket to the server whose certificate hashes to the pin; nothing has been written on it. */
function connectPinned(t: Target, signal: AbortSignal): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: t.host,
      port: t.port,
      // SNI must be a name; the pin, not the name, is what we check.
      ...(isIP(t.host) ? {} : { servername: t.host }),
      rejectUnauthorized: false,
    });
    const fail = (err: OutlineApiError) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(err);
    };
    const onAbort = () => fail(new OutlineApiError("outline_api_unreachable", `${t.origin}: no TLS handshake in time`));
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort();
    socket.once("error", (e) => fail(new OutlineApiError("outline_api_unreachable", `${t.origin}: ${errorText(e)}`)));
    socket.once("secureConnect", () => {
      const raw = (socket.getPeerCertificate(true) as { raw?: Uint8Array } | null)?.raw;
      // A runtime that cannot show the certificate fails closed: no pin check, no request.
      const got = raw && raw.length ? createHash("sha256").update(raw).digest("hex") : "";
      if (got !== t.pin) {
        fail(
          new OutlineApiError(
            "outline_api_pin_mismatch",
            `${t.origin}: the server certificate's sha256 ${got ? got.slice(0, 16) + "…" : "(not available)"} is not the pinned ${
              t.pin.slice(0, 16)
            }…`,
          ),
        );
        return;
      }
      signal.removeEventListener("abort", onAbort);
      // From here node:https owns the socket's errors; the no-op only covers the hand-over.
      socket.removeAllListeners("error");
      socket.on("error", () => {});
      resolve(socket);
    });
  });
}

interface Answer {
  status: number;
  json: unknown;
}

async function call(t: Target, timeoutMs: number, method: string, path: string, body?: unknown): Promise<Answer> {
  const signal = AbortSignal.timeout(timeoutMs);
  const socket = await connectPinned(t, signal);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), "utf8");
  return new Promise<Answer>((resolve, reject) => {
    let settled = false;
    const done = (err: OutlineApiError | undefined, answer?: Answer) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    const onAbort = () => {
      done(new OutlineApiError("outline_api_unreachable", `${t.origin}: no answer within ${timeoutMs} ms`));
      req.destroy();
    };
    const req = https.request(
      {
        method,
        host: t.host,
        port: t.port,
        path: t.basePath + path,
        createConnection: () => socket,
        headers: {
          host: t.origin.replace(/^https:\/\//, ""),
          accept: "application/json",
          connection: "close",
          ...(payload ? { "content-type": "application/json", "content-length": String(payload.length) } : {}),
        },
      } as https.RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) {
            done(new OutlineApiError("outline_api_error", `${t.origin}: answer over ${MAX_BODY} bytes`, res.statusCode));
            res.destroy();
          } else chunks.push(c);
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown = undefined;
          if (text.trim()) {
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
          }
          done(undefined, { status: res.statusCode ?? 0, json });
        });
        res.on("error", (e) => done(new OutlineApiError("outline_api_unreachable", `${t.origin}: ${errorText(e)}`)));
      },
    );
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort();
    req.on("error", (e) => done(new OutlineApiError("outline_api_unreachable", `${t.origin}: ${errorText(e)}`)));
    req.end(payload);
  });
}

/** An error answer as Outline words it (`{code, message}`), trimmed; never the request. */
function apiError(t: Target, what: string, a: Answer): OutlineApiError {
  const body = a.json as { code?: unknown; message?: unknown } | undefined;
  const detail = [body?.code, body?.message].filter((x) => typeof x === "string" && x).join(": ").slice(0, 200);
  return new OutlineApiError(
    "outline_api_error",
    `${t.origin}: ${what} answered HTTP ${a.status}${detail ? ` (${detail})` : ""}`,
    a.status,
  );
}

function parse<T>(t: Target, what: string, schema: z.ZodType<T>, a: Answer): T {
  const r = schema.safeParse(a.json);
  if (!r.success) throw new OutlineApiError("outline_api_error", `${t.origin}: ${what} answered an unexpected body`, a.status);
  return r.data;
}

export function outlineApi(cfg: OutlineApiConfig): OutlineApi {
  const t = parseConfig(cfg);
  const timeoutMs = cfg.timeoutMs ?? 5000;
  const keyPath = (id: string) => `/access-keys/${encodeURIComponent(id)}`;
  return {
    origin: t.origin,
    async server() {
      const a = await call(t, timeoutMs, "GET", "/server");
      if (a.status !== 200) throw apiError(t, "GET /server", a);
      return parse(t, "GET /server", ServerInfo, a);
    },
    async listKeys() {
      const a = await call(t, timeoutMs, "GET", "/access-keys");
      if (a.status !== 200) throw apiError(t, "GET /access-keys", a);
      return parse(t, "GET /access-keys", z.object({ accessKeys: z.array(AccessKey) }), a).accessKeys;
    },
    async createKey(opts = {}) {
      const body: Record<string, unknown> = {};
      if (opts.name !== undefined) body.name = opts.name;
      if (opts.method !== undefined) body.method = opts.method;
      if (opts.limitBytes !== undefined && opts.limitBytes !== null) body.limit = { bytes: opts.limitBytes };
      const a = await call(t, timeoutMs, "POST", "/access-keys", body);
      if (a.status !== 201 && a.status !== 200) throw apiError(t, "POST /access-keys", a);
      return parse(t, "POST /access-keys", AccessKey, a);
    },
    async deleteKey(id) {
      const a = await call(t, timeoutMs, "DELETE", keyPath(id));
      if (a.status === 404) return false;
      if (a.status !== 204 && a.status !== 200) throw apiError(t, "DELETE /access-keys/{id}", a);
      return true;
    },
    async setDataLimit(id, bytes) {
      const a = bytes === null
        ? await call(t, timeoutMs, "DELETE", `${keyPath(id)}/data-limit`)
        : await call(t, timeoutMs, "PUT", `${keyPath(id)}/data-limit`, { limit: { bytes } });
      if (a.status !== 204 && a.status !== 200) {
        throw apiError(t, `${bytes === null ? "DELETE" : "PUT"} /access-keys/{id}/data-limit`, a);
      }
    },
  };
}
