// The SOCKS5 address form that Shadowsocks puts in front of every stream and packet:
// ATYP(1) ‖ address ‖ port(2, big-endian); ATYP 1 = IPv4 (4 bytes), 3 = domain (1-byte
// length + 1..255 bytes), 4 = IPv6 (16 bytes). The SOCKS5 server (TCP and UDP) uses the same
// codec. Pure: no I/O, no runtime-specific API.
import { StreamError } from "./errors.ts";
import type { Target } from "./frames.ts";
import { formatIPv6, parseIPv4, parseIPv6 } from "./ip-address.ts";

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

function badAddress(message: string): StreamError {
  return new StreamError("bad_address", message);
}

/** The wire form of a target; StreamError `bad_address` for an empty or over-long name or a bad port. */
export function encodeAddress(target: Target): Uint8Array {
  const { port } = target;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw badAddress(`port must be 0-65535, got ${String(port)}`);
  const host = target.host;
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
