// Which addresses direct mode may dial. A gateway that dials whatever a device names would
// be an open door into the operator's own network (and the cloud's metadata service), so
// everything that is not a global unicast address is refused unless the operator allows it
// (GATEWAY_DIRECT_ALLOW). The list follows the IANA special-purpose registries, as
// outline-ss-server's public-IP check does; IPv6 forms that embed an IPv4 address
// (mapped, NAT64, 6to4) are judged by the IPv4 address inside.
import { type Cidr, inCidr, parseCidr } from "../../protocol/ip-address.ts";

export { type Cidr, CidrError, inCidr, parseCidr, parseCidrList } from "../../protocol/ip-address.ts";

const NON_GLOBAL_V4 = [
  "0.0.0.0/8", // "this network"
  "10.0.0.0/8", // private
  "100.64.0.0/10", // carrier-grade NAT
  "127.0.0.0/8", // loopback
  "169.254.0.0/16", // link-local (cloud metadata lives here)
  "172.16.0.0/12", // private
  "192.0.0.0/24", // IETF protocol assignments
  "192.0.2.0/24", // documentation
  "192.88.99.0/24", // 6to4 relay anycast (deprecated)
  "192.168.0.0/16", // private
  "198.18.0.0/15", // benchmarking
  "198.51.100.0/24", // documentation
  "203.0.113.0/24", // documentation
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved, broadcast
].map(parseCidr);

const NON_GLOBAL_V6 = [
  "::/128", // unspecified
  "::1/128", // loopback
  "100::/64", // discard
  "2001::/23", // IETF protocol assignments (Teredo, ORCHID, …)
  "2001:db8::/32", // documentation
  "fc00::/7", // unique local
  "fe80::/10", // link-local
  "fec0::/10", // site-local (deprecated)
  "ff00::/8", // multicast
].map(parseCidr);

const MAPPED_V4 = parseCidr("::ffff:0:0/96");
const NAT64 = parseCidr("64:ff9b::/96");
const SIX_TO_FOUR = parseCidr("2002::/16");

/** The IPv4 address an IPv6 address stands for, if it embeds one in a well-known way. */
function embeddedV4(ip: Uint8Array): Uint8Array | undefined {
  if (inCidr(ip, MAPPED_V4) || inCidr(ip, NAT64)) return ip.subarray(12, 16);
  if (inCidr(ip, SIX_TO_FOUR)) return ip.subarray(2, 6);
  if (
    ip.subarray(0, 12).every((b) => b === 0) && !ip.subarray(12).every((b) => b === 0) &&
    !(ip[15] === 1 && ip.subarray(12, 15).every((b) => b === 0))
  ) {
    return ip.subarray(12, 16); // deprecated IPv4-compatible ::a.b.c.d
  }
  return undefined;
}

export function isGlobalAddress(ip: Uint8Array): boolean {
  if (ip.length === 4) return !NON_GLOBAL_V4.some((c) => inCidr(ip, c));
  const v4 = embeddedV4(ip);
  if (v4) return isGlobalAddress(v4);
  return !NON_GLOBAL_V6.some((c) => inCidr(ip, c));
}

export interface AddressGuard {
  /** True when direct mode may dial this address. */
  allows(ip: Uint8Array): boolean;
}

export function addressGuard(allow: Cidr[] = []): AddressGuard {
  return {
    allows(ip) {
      if (allow.some((c) => inCidr(ip, c))) return true;
      const v4 = ip.length === 16 ? embeddedV4(ip) : undefined;
      if (v4 && allow.some((c) => inCidr(v4, c))) return true;
      return isGlobalAddress(ip);
    },
  };
}
