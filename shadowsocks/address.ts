// The SOCKS5 address form that Shadowsocks puts in front of every stream and packet:
// ATYP(1) ‖ address ‖ port(2, big-endian); ATYP 1 = IPv4 (4 bytes), 3 = domain (1-byte
// length + 1..255 bytes), 4 = IPv6 (16 bytes). The SOCKS5 server uses the same codec.
// Pure: no I/O, no runtime-specific API.
import { StreamError, type Target } from "../transport/stream.ts";

export const ATYP_IPV4 = 1;
export const ATYP_DOMAIN = 3;
export const ATYP_IPV6 = 4;

export interface DecodedAddress extends Target {
  atyp: 1 | 3 | 4;
  /** Bytes the address took, port included. */
  length: number;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Four bytes for a dotted-quad IPv4 literal (no leading zeros), else null. */
export function parseIPv4(text: string): Uint8Array | null {
  const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(text);
  if (!m) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const v = Number(m[i + 1]);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Sixteen bytes for an IPv6 literal in any RFC 4291 text form (`::1`, `::ffff:1.2.3.4`, full), else null. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parseGroups = (part: string): number[] | null => {
    if (part === "") return [];
    const groups: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = parseIPv4(item);
        if (!v4) return null;
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) {
        groups.push(parseInt(item, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >>> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/**
 * Text for 16 IPv6 bytes: RFC 5952 ("2001:db8::1") by default; "expanded" writes all eight
 * groups without leading zeros ("2001:db8:0:0:0:0:0:1"), the form Outline's access keys use.
 */
export function formatIPv6(bytes: Uint8Array, style: "compressed" | "expanded" = "compressed"): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  if (style === "expanded") return groups.map((g) => g.toString(16)).join(":");
  let bestStart = -1;
  let bestLen = 1; // RFC 5952: a single zero group is not shortened
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

function badAddress(message: string): StreamError {
  return new StreamError("bad_address", message);
}

/** The wire form of a target; StreamError `bad_address` for an empty or over-long name or a bad port. */
export function encodeAddress(target: Target): Uint8Array {
  const { port } = target;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw badAddress(`port must be 0-65535, got ${String(port)}`);
  let host = target.host;
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  let out: Uint8Array;
  const v4 = parseIPv4(host);
  const v6 = v4 ? null : host.includes(":") ? parseIPv6(host) : null;
  if (v4) {
    out = new Uint8Array(1 + 4 + 2);
    out[0] = ATYP_IPV4;
    out.set(v4, 1);
  } else if (v6) {
    out = new Uint8Array(1 + 16 + 2);
    out[0] = ATYP_IPV6;
    out.set(v6, 1);
  } else {
    if (host.includes(":")) throw badAddress("host is neither an IPv6 address nor a domain name");
    const name = utf8.encode(host);
    if (name.length < 1 || name.length > 255) throw badAddress(`a domain name must be 1-255 bytes, got ${name.length}`);
    out = new Uint8Array(1 + 1 + name.length + 2);
    out[0] = ATYP_DOMAIN;
    out[1] = name.length;
    out.set(name, 2);
  }
  out[out.length - 2] = port >>> 8;
  out[out.length - 1] = port & 0xff;
  return out;
}

/**
 * Reads an address at `offset`. StreamError `short_address` when `bytes` ends before the
 * address does (a streaming reader waits for more), `bad_address` for an unknown ATYP,
 * an empty or non-UTF-8 domain.
 */
export function decodeAddress(bytes: Uint8Array, offset = 0): DecodedAddress | StreamError {
  const avail = bytes.length - offset;
  if (avail < 1) return new StreamError("short_address", "address truncated");
  const atyp = bytes[offset]!;
  let hostLen: number;
  let hostStart = offset + 1;
  if (atyp === ATYP_IPV4) hostLen = 4;
  else if (atyp === ATYP_IPV6) hostLen = 16;
  else if (atyp === ATYP_DOMAIN) {
    if (avail < 2) return new StreamError("short_address", "address truncated");
    hostLen = bytes[offset + 1]!;
    hostStart++;
    if (hostLen === 0) return badAddress("empty domain name");
  } else return badAddress(`unknown address type ${atyp}`);
  const length = hostStart - offset + hostLen + 2;
  if (avail < length) return new StreamError("short_address", "address truncated");
  const raw = bytes.subarray(hostStart, hostStart + hostLen);
  let host: string;
  if (atyp === ATYP_IPV4) host = Array.from(raw).join(".");
  else if (atyp === ATYP_IPV6) host = formatIPv6(raw);
  else {
    try {
      host = utf8Strict.decode(raw);
    } catch {
      return badAddress("domain name is not UTF-8");
    }
  }
  const p = hostStart + hostLen;
  const port = (bytes[p]! << 8) | bytes[p + 1]!;
  return { atyp: atyp as 1 | 3 | 4, host, port, length };
}
