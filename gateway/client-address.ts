// Who the client is, for the hello-failure limits, the logs and the app sessions. Behind a
// reverse proxy or CDN (GATEWAY_TRUSTED_PROXIES) the TCP peer is the proxy, and the client is
// what the proxy says in X-Forwarded-For (or, without it, Forwarded: for=). Anybody can send
// those headers, so they are believed only when the TCP peer is a trusted proxy, and then only
// up to the right-most hop that is not itself trusted: every proxy appends the address it saw,
// so the hops left of the first untrusted one were written by the client (RFC 7239 8.1; the
// rule of nginx's real_ip_recursive and Caddy's trusted_proxies). Pure: no I/O.
import { type Cidr, formatIPv6, inCidr, parseIP, unbracketHost, unmapIPv4 } from "../protocol/ip-address.ts";

/** An address as text in one form (IPv4-mapped IPv6 as IPv4, IPv6 compressed), or undefined when it is none. */
function canonical(text: string): { ip: Uint8Array; text: string } | undefined {
  const ip = parseIP(text);
  if (!ip) return undefined;
  const v4 = unmapIPv4(ip);
  if (v4) return { ip: v4, text: [...v4].join(".") };
  return { ip, text: ip.length === 4 ? text : formatIPv6(ip) };
}

const trustedIn = (ip: Uint8Array, trusted: readonly Cidr[]) => trusted.some((c) => inCidr(ip, c));

/**
 * One hop as a proxy writes it: `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`,
 * `[2001:db8::1]:4711`, and in Forwarded also quoted; undefined for `unknown`, obfuscated
 * identifiers (`_hidden`) and anything else that is not an address.
 */
function hopAddress(hop: string): { ip: Uint8Array; text: string } | undefined {
  let h = hop.trim();
  if (h.startsWith('"') && h.endsWith('"') && h.length >= 2) h = h.slice(1, -1);
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(h);
  if (bracketed) return canonical(bracketed[1]!);
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(h);
  return canonical(v4port ? v4port[1]! : unbracketHost(h));
}

/** The hops of X-Forwarded-For, left (the first client) to right (the last proxy's peer); every header line in order. */
function forwardedForHops(headers: Headers): string[] | undefined {
  const xff = headers.get("x-forwarded-for"); // Headers joins repeated lines with ", ", in order
  if (xff !== null) return xff.split(",");
  const fwd = headers.get("forwarded");
  if (fwd === null) return undefined;
  // Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:4711"
  const hops: string[] = [];
  for (const element of fwd.split(",")) {
    const pair = element.split(";").map((p) => p.trim()).find((p) => p.toLowerCase().startsWith("for="));
    hops.push(pair ? pair.slice(4) : "unknown");
  }
  return hops;
}

/**
 * The client's address for a request that came from TCP peer `peer` with `headers`:
 * the peer itself unless it is in `trusted`; else the right-most hop of X-Forwarded-For
 * (Forwarded's `for=` when there is no X-Forwarded-For) that is not in `trusted`; when every
 * hop is trusted, the left-most. A hop that is not an address (`unknown`, garbage) ends the
 * walk: the last address known, a trusted proxy's, is the answer then. IPv4-mapped IPv6 is
 * written as IPv4, so a dual-stack listener and a proxy's header agree on one client.
 */
export function clientAddress(peer: string, headers: Headers, trusted: readonly Cidr[]): string {
  const p = canonical(peer);
  if (!p || trusted.length === 0 || !trustedIn(p.ip, trusted)) return p?.text ?? peer;
  const hops = forwardedForHops(headers);
  let known = p.text;
  if (!hops) return known;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hopAddress(hops[i]!);
    if (!hop) return known;
    if (!trustedIn(hop.ip, trusted)) return hop.text;
    known = hop.text;
  }
  return known;
}
