// The per-address cap on connections that have not authenticated (docs/07 "Before
// authentication"). A connection is counted from TCP accept (where the runtime has an accept
// hook) until its session authenticates, its request is answered by the site, or it closes;
// past `perAddress` such connections from one address, a new one is closed at once. One
// machine can then hold at most `perAddress` of the gateway's descriptors in the phase where it
// has proved nothing, and the handshake, request-head and hello timeouts bound how long.
// IPv6 addresses count per /64 (addressKey), as the hello rate limit does: one host usually
// owns a whole /64, so counting single addresses would cap nothing.
// Connections from GATEWAY_TRUSTED_PROXIES are not counted: behind nginx, Caddy or a CDN every
// client arrives from the proxy's address, and the cap would be on all clients together (the
// proxy limits its own clients: nginx limit_conn, Caddy's timeouts; docs/09).
import { type Cidr, inCidr, parseIP, unmapIPv4 } from "../protocol/ip-address.ts";
import type { PreauthGate } from "../runtime/types.ts";
import { addressKey } from "./rate-limit.ts";

export class PreauthCounter implements PreauthGate {
  private readonly open = new Map<string, number>();
  /** Connections closed at accept because their address was at the cap (for metrics and tests). */
  refused = 0;

  /** `perAddress` 0 turns the cap off (admit always succeeds and nothing is counted); `exempt`: the trusted proxies. */
  constructor(private readonly perAddress: number, private readonly exempt: readonly Cidr[] = []) {}

  admit(remoteAddress: string): (() => void) | undefined {
    if (this.perAddress === 0 || this.isExempt(remoteAddress)) return () => {};
    const key = addressKey(remoteAddress);
    const n = this.open.get(key) ?? 0;
    if (n >= this.perAddress) {
      this.refused++;
      return undefined;
    }
    this.open.set(key, n + 1);
    let released = false;
    // Once: a connection is released by whichever comes first (auth, an answered request, close).
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(key) ?? 1) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key); // nothing is kept for an address with nothing open
    };
  }

  private isExempt(remoteAddress: string): boolean {
    if (this.exempt.length === 0) return false;
    const ip = parseIP(remoteAddress);
    const v4 = ip && unmapIPv4(ip);
    return !!ip && this.exempt.some((c) => inCidr(v4 ?? ip, c));
  }

  /** Unauthenticated connections now counted for this address (its /64 for IPv6). */
  count(remoteAddress: string): number {
    return this.open.get(addressKey(remoteAddress)) ?? 0;
  }

  /** Addresses with a connection counted: the map's size, which the cap keeps to live connections. */
  get addresses(): number {
    return this.open.size;
  }
}
