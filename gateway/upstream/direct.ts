// Direct mode: the gateway dials targets itself. The name is resolved once, here, and the
// checked address is what gets dialed — so a DNS answer that changes between the check and
// the connect (DNS rebinding) cannot slip a private address through.
import { lookup } from "node:dns/promises";
import type { PacketDialer } from "../../transport/packet.ts";
import { type Dialer, StreamError, type Target } from "../../transport/stream.ts";
import { parseIP } from "../../protocol/ip-address.ts";
import { type AddressGuard, addressGuard, type Cidr } from "./address-guard.ts";

export interface DirectDialerOptions {
  /** Ranges allowed besides global unicast addresses (GATEWAY_DIRECT_ALLOW). */
  allow?: Cidr[];
  /** Name resolution; tests replace it to play a rebinding resolver. */
  resolve?: (host: string) => Promise<string[]>;
}

const defaultResolve = async (host: string) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * The addresses direct mode may use for `target`: an IP literal as is, a name resolved once;
 * then only those the guard allows. Throws bad_target, upstream_unreachable or target_forbidden.
 */
export async function allowedAddresses(
  target: Target,
  guard: AddressGuard,
  resolve: (host: string) => Promise<string[]>,
): Promise<string[]> {
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw new StreamError("bad_target", `port ${target.port} is out of range`);
  }
  let candidates: string[];
  if (parseIP(target.host)) {
    candidates = [target.host];
  } else {
    if (target.host.length > 253 || !/^[A-Za-z0-9._-]+$/.test(target.host)) {
      throw new StreamError("bad_target", "not a valid host name");
    }
    try {
      candidates = await resolve(target.host);
    } catch {
      throw new StreamError("upstream_unreachable", `cannot resolve ${target.host}`);
    }
    if (!candidates.length) throw new StreamError("upstream_unreachable", `no address for ${target.host}`);
  }
  const allowed = candidates.filter((a) => {
    const b = parseIP(a);
    return b !== null && guard.allows(b);
  });
  if (!allowed.length) {
    throw new StreamError(
      "target_forbidden",
      `${target.host} is not a public address (direct mode refuses private, loopback and other non-global ranges)`,
    );
  }
  return allowed;
}

export function directDialer(base: Dialer, opts: DirectDialerOptions = {}): Dialer {
  const guard: AddressGuard = addressGuard(opts.allow);
  const resolve = opts.resolve ?? defaultResolve;
  return {
    async dial(target: Target, signal?: AbortSignal) {
      const allowed = await allowedAddresses(target, guard, resolve);
      let last: unknown;
      for (const address of allowed.slice(0, 2)) {
        try {
          return await base.dial({ host: address, port: target.port }, signal);
        } catch (e) {
          last = e;
          if (signal?.aborted) break;
        }
      }
      throw last;
    },
  };
}

/** Direct mode for UDP streams: the same guard and one resolution; the first allowed address is the association's peer. */
export function directPacketDialer(base: PacketDialer, opts: DirectDialerOptions = {}): PacketDialer {
  const guard: AddressGuard = addressGuard(opts.allow);
  const resolve = opts.resolve ?? defaultResolve;
  return {
    async dial(target: Target, signal?: AbortSignal) {
      const [address] = await allowedAddresses(target, guard, resolve);
      return base.dial({ host: address!, port: target.port }, signal);
    },
  };
}
