// ss:// access keys: SIP002 (`ss://USERINFO@HOST:PORT[/][?QUERY][#TAG]`, USERINFO either
// base64(url)(method:password) or percent-encoded method:password), Outline's `/?outline=1`
// marker and `prefix=` parameter, and the legacy `ss://BASE64(method:password@host:port)#tag`.
// Pure and I/O-free. The method is returned as written: whether it is supported is the
// dialer's decision (shadowsocks/ciphers.ts), not the URL syntax's.
// Error messages never quote the URL: it carries the password.
import { formatHostPort, formatIPv6, parseIPv6 } from "./ip-address.ts";

export interface SsUrl {
  method: string;
  password: string;
  /** Without brackets; IPv6 in the expanded form outline-server writes ("2001:db8:0:0:0:0:0:1"). */
  host: string;
  port: number;
  /** Display name after `#`, percent-decoded; "" when absent. */
  tag: string;
  /** Bytes an Outline client puts at the start of its TCP salt (`prefix=`). */
  prefix?: Uint8Array;
  /** Every query parameter, percent-decoded (`outline`, `prefix`, `plugin`, …). */
  extra: Record<string, string>;
}

export interface SsUrlInput {
  method: string;
  password: string;
  host: string;
  port: number;
  tag?: string;
  /** Adds Outline's `outline=1` marker. */
  outline?: boolean | number;
  prefix?: Uint8Array;
  /** Further query parameters, written after `outline` and `prefix`. */
  extra?: Record<string, string>;
}

export class SsUrlError extends Error {
  readonly code = "bad_ss_url";
  constructor(message: string) {
    super(`bad ss:// URL: ${message}`);
    this.name = "SsUrlError";
  }
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

function decodeBase64(text: string): string | null {
  let t = text.replace(/%3D/gi, "=").replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t)) return null;
  t = t.replace(/=+$/, "");
  if (t.length % 4 === 1) return null;
  try {
    const bin = atob(t + "=".repeat((4 - (t.length % 4)) % 4));
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return utf8Strict.decode(bytes);
  } catch {
    return null;
  }
}

function encodeBase64Url(text: string): string {
  let bin = "";
  for (const b of utf8.encode(text)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function percentDecode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new SsUrlError(`${what} has invalid percent-encoding`);
  }
}

function splitMethodPassword(text: string): { method: string; password: string } {
  const colon = text.indexOf(":");
  if (colon <= 0) throw new SsUrlError("user info must be method:password");
  const method = text.slice(0, colon);
  const password = text.slice(colon + 1);
  if (password === "") throw new SsUrlError("the password is empty");
  if (!/^[A-Za-z0-9._-]+$/.test(method)) throw new SsUrlError("the method name has characters no method has");
  return { method, password };
}

function parseHostPort(text: string): { host: string; port: number } {
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") throw new SsUrlError("expected [IPv6]:port");
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    const v6 = normalizeIPv6(host);
    if (v6 === null) throw new SsUrlError("bad IPv6 address");
    host = v6;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) throw new SsUrlError("missing :port");
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) {
      // Only the legacy form writes IPv6 without brackets.
      const v6 = normalizeIPv6(host);
      if (v6 === null) throw new SsUrlError("bad host");
      host = v6;
    } else if (!/^[A-Za-z0-9._~%!$&'()*+,;=-]+$/.test(host)) {
      throw new SsUrlError(host === "" ? "missing host" : "bad host");
    }
  }
  if (!/^\d{1,5}$/.test(portText)) throw new SsUrlError("the port must be a number 1-65535");
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new SsUrlError("the port must be a number 1-65535");
  return { host, port };
}

/** Eight groups, no leading zeros, no "::": what outline-server (ipaddr.js) writes. */
function normalizeIPv6(text: string): string | null {
  const bytes = parseIPv6(text);
  return bytes ? formatIPv6(bytes, "expanded") : null;
}

function parseQuery(query: string): Record<string, string> {
  const extra: Record<string, string> = {};
  for (const pair of query.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const k = eq < 0 ? pair : pair.slice(0, eq);
    const v = eq < 0 ? "" : pair.slice(eq + 1);
    // Form encoding, as Go's url.ParseQuery (outline-sdk) reads it: '+' is a space.
    extra[percentDecode(k.replace(/\+/g, " "), "a query key")] = percentDecode(v.replace(/\+/g, " "), "a query value");
  }
  return extra;
}

/** Each code point of the decoded `prefix` value is one byte (so 0xA8 is written %C2%A8). */
export function prefixBytes(decoded: string): Uint8Array {
  const cps = Array.from(decoded, (c) => c.codePointAt(0)!);
  if (cps.some((c) => c > 0xff)) throw new SsUrlError("prefix has a character above U+00FF");
  return Uint8Array.from(cps);
}

/** Parses an ss:// URL; throws SsUrlError (code `bad_ss_url`) with a reason that never includes the URL. */
export function parseSsUrl(url: string): SsUrl {
  const text = url.trim();
  if (!/^ss:\/\//i.test(text)) throw new SsUrlError("it must start with ss://");
  let rest = text.slice(5);
  let tag = "";
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    tag = percentDecode(rest.slice(hash + 1), "the tag");
    rest = rest.slice(0, hash);
  }
  const at = rest.indexOf("@");
  if (at < 0) {
    // Legacy: everything is one base64 blob; the password may contain '@', the host cannot.
    const decoded = decodeBase64(rest.replace(/\/$/, ""));
    if (decoded === null) throw new SsUrlError("neither SIP002 (userinfo@host:port) nor legacy base64");
    const lastAt = decoded.lastIndexOf("@");
    if (lastAt < 0) throw new SsUrlError("legacy form lacks @host:port");
    return { ...splitMethodPassword(decoded.slice(0, lastAt)), ...parseHostPort(decoded.slice(lastAt + 1)), tag, extra: {} };
  }
  const userinfo = rest.slice(0, at);
  let after = rest.slice(at + 1);
  let query = "";
  const q = after.indexOf("?");
  if (q >= 0) {
    query = after.slice(q + 1);
    after = after.slice(0, q);
  }
  if (after.endsWith("/")) after = after.slice(0, -1);
  if (after.includes("/")) throw new SsUrlError("unexpected path after host:port");
  let creds: { method: string; password: string };
  if (userinfo.includes(":") || /%3A/i.test(userinfo)) {
    creds = splitMethodPassword(percentDecode(userinfo, "the user info"));
  } else {
    const decoded = decodeBase64(userinfo);
    if (decoded === null) throw new SsUrlError("user info is neither base64 nor method:password");
    creds = splitMethodPassword(decoded);
  }
  const extra = parseQuery(query);
  const out: SsUrl = { ...creds, ...parseHostPort(after), tag, extra };
  if (extra.prefix !== undefined) out.prefix = prefixBytes(extra.prefix);
  return out;
}

function formatHost(host: string): string {
  if (!host.includes(":")) return host;
  const v6 = normalizeIPv6(host);
  if (v6 === null) throw new SsUrlError("bad IPv6 host");
  return v6;
}

function checkInput(c: SsUrlInput): void {
  if (!/^[A-Za-z0-9._-]+$/.test(c.method)) throw new SsUrlError("bad method name");
  if (c.password === "") throw new SsUrlError("the password is empty");
  if (!Number.isInteger(c.port) || c.port < 1 || c.port > 65535) throw new SsUrlError("the port must be a number 1-65535");
  if (c.host === "") throw new SsUrlError("missing host");
}

/** SIP002 as outline-server writes access keys: base64url userinfo without padding, `/?` before the query. */
export function formatSsUrl(c: SsUrlInput): string {
  checkInput(c);
  const host = formatHost(c.host);
  const params: string[] = [];
  if (c.outline) params.push("outline=1");
  if (c.prefix) params.push(`prefix=${encodeURIComponent(String.fromCharCode(...c.prefix))}`);
  for (const [k, v] of Object.entries(c.extra ?? {})) {
    if (k === "outline" || k === "prefix") continue;
    params.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  const query = params.length ? `/?${params.join("&")}` : "";
  const tag = c.tag ? `#${encodeURIComponent(c.tag)}` : "";
  return `ss://${encodeBase64Url(`${c.method}:${c.password}`)}@${formatHostPort(host, c.port)}${query}${tag}`;
}

/** The legacy `ss://BASE64(method:password@host:port)#tag` form; it cannot carry query parameters. */
export function formatLegacySsUrl(c: SsUrlInput): string {
  checkInput(c);
  const tag = c.tag ? `#${encodeURIComponent(c.tag)}` : "";
  return `ss://${encodeBase64Url(`${c.method}:${c.password}@${formatHost(c.host)}:${c.port}`)}${tag}`;
}
