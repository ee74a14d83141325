// IP address text ⇄ bytes, the one parser every layer uses (the SOCKS address codec, the
// direct-mode address guard, UDP source checks, certificates, ss:// URLs, rate-limit keys).
// Hosts inside HTTVPS never carry IPv6 brackets: they are removed where text is parsed
// (a URL's hostname, a `[host]:port`) and added back only where host and port are written
// together (`formatHostPort`). Address ranges (CIDRs: direct mode's allow list, the trusted
// proxies) are here too. Pure: no I/O.

/** Four bytes for a dotted-quad IPv4 literal (no leading zeros), else null. */
export function parseIPv4(text: string): Uint8Array<ArrayBuffer> | null {
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

/** Sixteen bytes for an IPv6 literal in any RFC 4291 text form (`::1`, `::ffff:1.2.3.4`, full), else null. No zone, no brackets. */
export function parseIPv6(text: string): Uint8Array<ArrayBuffer> | null {
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

/** The bytes of an IPv4 (4) or IPv6 (16) literal, else null. */
export function parseIP(text: string): Uint8Array<ArrayBuffer> | null {
  return parseIPv4(text) ?? parseIPv6(text);
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), else null. */
export function unmapIPv4(ip: Uint8Array): Uint8Array | null {
  if (ip.length !== 16 || ip[10] !== 0xff || ip[11] !== 0xff) return null;
  return ip.subarray(0, 10).every((b) => b === 0) ? ip.subarray(12) : null;
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

/** An IPv6 host as written beside a port or in a URL (`[2001:db8::1]`) without its brackets; other text as it is. */
export function unbracketHost(host: string): string {
  return host.startsWith("[") && host.endsWith("]") && host.includes(":") ? host.slice(1, -1) : host;
}

/** A URL's host as a Target host: WHATWG URL writes IPv6 hostnames in brackets (`[::1]`). */
export function urlHost(url: URL): string {
  return unbracketHost(url.hostname);
}

/** `host:port`, with the brackets an IPv6 host needs there (`[::1]:443`). */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export interface Cidr {
  bytes: Uint8Array;
  bits: number;
  text: string;
}

export class CidrError extends Error {
  readonly code = "bad_cidr";
}

export function parseCidr(text: string): Cidr {
  const [addr, bitsText] = text.trim().split("/");
  const bytes = parseIP(addr ?? "");
  if (!bytes) throw new CidrError(`"${text}" is not an IP address or CIDR`);
  const max = bytes.length * 8;
  const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= max)) throw new CidrError(`"${text}": prefix length must be 0-${max}`);
  return { bytes, bits, text: text.trim() };
}

/** "10.0.0.0/8, ::1" → CIDRs; throws CidrError naming the bad entry. */
export function parseCidrList(text: string | undefined): Cidr[] {
  if (!text) return [];
  return text
    .split(/[,\s]+/)
    .filter(Boolean)
    .map(parseCidr);
}

export function inCidr(ip: Uint8Array, c: Cidr): boolean {
  if (ip.length !== c.bytes.length) return false;
  let bits = c.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i]! & mask) !== (c.bytes[i]! & mask)) return false;
  }
  return true;
}
