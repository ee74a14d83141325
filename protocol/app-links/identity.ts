// What every app link and config is built from: a device's Shadowsocks identity at the gateway
// (its secret WebSocket path and its own key) and its usage. One place decides the routes under
// the device path and checks every value that is written outside a quoted string (hosts, ports,
// paths, cipher names), so a config can never be broken by what it is built from. Pure: no I/O.
import { parseIPv4, parseIPv6, unbracketHost } from "../ip-address.ts";
import { type ShadowsocksMethod, shadowsocksMethod } from "../ss-methods.ts";

export interface AppIdentity {
  /** The device's display name; any text (it is always quoted or percent-encoded). */
  name: string;
  /** The gateway's public host name (or IP literal, IPv6 with or without brackets). */
  host: string;
  port: number;
  /** The device's secret WebSocket path prefix, e.g. "/AbC…": URL-safe segments, no trailing slash. */
  path: string;
  /** A Shadowsocks AEAD method, any spelling outline-sdk accepts. */
  cipher: string;
  /** The device's Shadowsocks password. */
  secret: string;
}

export interface AppUsage {
  /** Bytes sent by the device. */
  upload: number;
  /** Bytes received by the device. */
  download: number;
  /** The data quota in bytes; absent or null for none. */
  total?: number | null;
  /** When access ends; absent or null for never. */
  expire?: Date | string | null;
}

/** A checked identity: canonical cipher name, host without brackets, a name that is never empty. */
export interface CheckedIdentity extends AppIdentity {
  cipher: ShadowsocksMethod;
}

export class AppLinkError extends Error {
  readonly code = "bad_app_identity";
  constructor(message: string) {
    super(`bad app identity: ${message}`);
    this.name = "AppLinkError";
  }
}

const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const DOMAIN = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);
const SEGMENT = /^[A-Za-z0-9._~-]+$/;

/** Lone UTF-16 surrogates become U+FFFD: they cannot be percent-encoded, nor written in UTF-8. */
function wellFormed(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

/** Validates and normalises an identity; AppLinkError (code `bad_app_identity`) names the bad field, never the secret. */
export function checkIdentity(id: AppIdentity): CheckedIdentity {
  const host = unbracketHost(id.host.trim().toLowerCase());
  if (!(parseIPv4(host) || (host.includes(":") && parseIPv6(host)) || (!host.includes(":") && DOMAIN.test(host)))) {
    throw new AppLinkError("the host must be a domain name or an IP address");
  }
  if (!Number.isInteger(id.port) || id.port < 1 || id.port > 65535) throw new AppLinkError("the port must be 1-65535");
  const segments = id.path.split("/");
  if (
    segments[0] !== "" || segments.length < 2 ||
    !segments.slice(1).every((s) => SEGMENT.test(s) && s !== "." && s !== "..")
  ) {
    throw new AppLinkError("the path must be /segment[/segment…] of letters, digits and . _ ~ -");
  }
  const cipher = shadowsocksMethod(id.cipher);
  if (!cipher) throw new AppLinkError("the cipher is not a Shadowsocks AEAD method");
  if (id.secret === "") throw new AppLinkError("the secret is empty");
  // Rewriting a lone surrogate would silently change the password; a stored one never has any.
  if (wellFormed(id.secret) !== id.secret) throw new AppLinkError("the secret is not well-formed Unicode");
  const name = wellFormed(id.name).trim() || host;
  return { name, host, port: id.port, path: id.path, cipher, secret: id.secret };
}

/** The routes under a device path: Outline's and v2ray-plugin's TCP WebSocket, Outline's UDP one, the configs. */
export function appPaths(path: string): { tcp: string; udp: string; outlineConfig: string; subscription: string } {
  return { tcp: `${path}/tcp`, udp: `${path}/udp`, outlineConfig: `${path}/outline`, subscription: `${path}/sub` };
}

/** host[:port] as a URL authority: IPv6 bracketed, the port omitted when it is 443. */
export function authority(id: CheckedIdentity): string {
  const host = id.host.includes(":") ? `[${id.host}]` : id.host;
  return id.port === 443 ? host : `${host}:${id.port}`;
}

// Characters YAML requires escaped in a double-quoted scalar that JSON leaves raw (DEL, C1
// controls, BOM, U+FFFE/U+FFFF), and the line separators YAML 1.1 (go-yaml v2) breaks lines at.
const YAML_UNSAFE = /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g;

/**
 * A string as a YAML double-quoted scalar. A JSON string is one, so nothing a device name holds
 * (quotes, newlines, `#`, `: `, `{`) can end the scalar or start YAML structure.
 */
export function yamlString(text: string): string {
  return JSON.stringify(wellFormed(text)).replace(YAML_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
