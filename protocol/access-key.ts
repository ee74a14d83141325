// httvps:// access keys: one pasteable line with everything a device needs to connect.
//
//   httvps://<device_id>:<token>@<host>:<port>/<path>?sni=<name>&pin=sha256:<hex>&transport=ws#<name>
//
// Parsed by hand rather than with URL: WHATWG URL treats unknown schemes' hosts as opaque, and
// we want one precise, typed message per mistake. Messages never contain the token or the key.
import { formatHostPort, parseIPv6 } from "./ip-address.ts";

export type TransportKind = "ws" | "h2";

export interface AccessKey {
  /** DNS name, IPv4, or IPv6 without brackets. */
  host: string;
  port: number;
  /** The WebSocket path, GATEWAY_WS_PATH on the gateway. */
  path: string;
  deviceId: string;
  token: string;
  /** TLS server name to send when it differs from host (for example when host is an IP). */
  sni?: string;
  /** SHA-256 of the gateway certificate's DER bytes, 64 lowercase hex digits. */
  pin?: string;
  transport: TransportKind;
  /** A label for humans ("Home gateway"). */
  name?: string;
}

/** What formatAccessKey needs; port, path and transport have defaults. */
export type AccessKeyInput =
  & Omit<AccessKey, "port" | "path" | "transport">
  & Partial<Pick<AccessKey, "port" | "path" | "transport">>;

export type AccessKeyError = { code: "bad_access_key"; message: string };
export type AccessKeyResult = { ok: true; key: AccessKey } | { ok: false; error: AccessKeyError };

export const ACCESS_KEY_SCHEME = "httvps://";
export const DEFAULT_PORT = 443;
export const DEFAULT_PATH = "/ws";
const MAX_KEY_LENGTH = 8192;

const bad = (message: string): AccessKeyResult => ({ ok: false, error: { code: "bad_access_key", message } });

// Same rule as GATEWAY_WS_PATH in config/config.ts.
const PATH_RE = /^\/[A-Za-z0-9._~\/-]*$/;
const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

function pctDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Accepts `sha256:` + 64 hex digits, optionally colon-separated pairs as openssl prints them. */
function parsePin(v: string): string | undefined {
  if (!/^sha256:/i.test(v)) return undefined;
  const hex = v.slice(7).replace(/:/g, "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

function isHostname(s: string): boolean {
  return HOSTNAME_RE.test(s);
}

export function parseAccessKey(input: string): AccessKeyResult {
  if (typeof input !== "string") return bad("expected a string");
  const s = input.trim();
  if (s.length > MAX_KEY_LENGTH) return bad(`longer than ${MAX_KEY_LENGTH} characters`);
  if (s.slice(0, ACCESS_KEY_SCHEME.length).toLowerCase() !== ACCESS_KEY_SCHEME) {
    return bad("expected a key starting with httvps://");
  }
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(s)) return bad("contains whitespace or control characters");

  let rest = s.slice(ACCESS_KEY_SCHEME.length);
  let name: string | undefined;
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    const raw = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
    if (raw !== "") {
      name = pctDecode(raw);
      if (name === undefined) return bad("name (after #): bad percent-encoding");
      if (name.length > 256 || CONTROL_RE.test(name)) return bad("name (after #): expected at most 256 printable characters");
    }
  }
  let query = "";
  const q = rest.indexOf("?");
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const slash = rest.indexOf("/");
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash) : DEFAULT_PATH;
  if (!PATH_RE.test(path)) return bad("path: expected / followed by letters, digits and . _ ~ / -");

  const at = authority.lastIndexOf("@");
  if (at < 0) return bad("missing <device_id>:<token>@ before the host");
  const userinfo = authority.slice(0, at);
  const colon = userinfo.indexOf(":");
  if (colon < 0) return bad("missing token: expected <device_id>:<token>@");
  const deviceId = pctDecode(userinfo.slice(0, colon));
  if (deviceId === undefined) return bad("device id: bad percent-encoding");
  if (deviceId.length < 1 || deviceId.length > 128 || CONTROL_RE.test(deviceId)) {
    return bad("device id: expected 1-128 printable characters");
  }
  const token = pctDecode(userinfo.slice(colon + 1));
  if (token === undefined) return bad("token: bad percent-encoding");
  if (token.length < 1 || token.length > 4096 || CONTROL_RE.test(token)) {
    return bad("token: expected 1-4096 printable characters");
  }

  const hostPort = authority.slice(at + 1);
  let host: string;
  let portText: string | undefined;
  if (hostPort.startsWith("[")) {
    const close = hostPort.indexOf("]");
    if (close < 0) return bad("host: unclosed [ in IPv6 address");
    host = hostPort.slice(1, close);
    if (!parseIPv6(host)) return bad("host: expected an IPv6 address inside [ ]");
    const after = hostPort.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) return bad("host: expected :port after ]");
      portText = after.slice(1);
    }
  } else {
    const c = hostPort.indexOf(":");
    if (c >= 0 && hostPort.indexOf(":", c + 1) >= 0) return bad("host: an IPv6 address must be in brackets, like [::1]:8443");
    host = c >= 0 ? hostPort.slice(0, c) : hostPort;
    portText = c >= 0 ? hostPort.slice(c + 1) : undefined;
    if (host === "") return bad("missing host");
    if (!isHostname(host)) return bad("host: expected a DNS name or an IP address");
  }
  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return bad("port: expected 1-65535");
    port = Number(portText);
  }

  const key: AccessKey = { host, port, path, deviceId, token, transport: "ws" };
  const seen = new Set<string>();
  for (const part of query === "" ? [] : query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const k = eq >= 0 ? part.slice(0, eq) : part;
    const v = pctDecode(eq >= 0 ? part.slice(eq + 1) : "");
    if (v === undefined) return bad(`${k}: bad percent-encoding`);
    // Unknown parameters are skipped so a newer key still works with an older client.
    if (k !== "sni" && k !== "pin" && k !== "transport") continue;
    if (seen.has(k)) return bad(`${k}: given twice`);
    seen.add(k);
    if (k === "sni") {
      if (!isHostname(v)) return bad("sni: expected a DNS name");
      key.sni = v;
    } else if (k === "pin") {
      const pin = parsePin(v);
      if (pin === undefined) return bad("pin: expected sha256:<64 hex digits>");
      key.pin = pin;
    } else {
      if (v !== "ws" && v !== "h2") return bad("transport: expected ws or h2");
      key.transport = v;
    }
  }
  if (name !== undefined) key.name = name;
  return { ok: true, key };
}

export function formatAccessKey(k: AccessKeyInput): string {
  const params: string[] = [];
  if (k.sni !== undefined) params.push("sni=" + encodeURIComponent(k.sni));
  if (k.pin !== undefined) params.push("pin=sha256:" + k.pin);
  if (k.transport !== undefined && k.transport !== "ws") params.push("transport=" + k.transport);
  return (
    ACCESS_KEY_SCHEME +
    encodeURIComponent(k.deviceId) +
    ":" +
    encodeURIComponent(k.token) +
    "@" +
    formatHostPort(k.host, k.port ?? DEFAULT_PORT) +
    (k.path ?? DEFAULT_PATH) +
    (params.length ? "?" + params.join("&") : "") +
    (k.name ? "#" + encodeURIComponent(k.name) : "")
  );
}

/** The key with its token masked, safe for logs and error messages. */
export function redactAccessKey(k: AccessKeyInput | string): string {
  if (typeof k === "string") {
    const r = parseAccessKey(k);
    if (!r.ok) return "httvps://[unparseable access key]";
    k = r.key;
  }
  return formatAccessKey({ ...k, token: "REDACTED" });
}
