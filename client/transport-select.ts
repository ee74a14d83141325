// Which transport a session goes over, and the fallback: the access key (or --transport) names
// the first choice; when it cannot be opened — no h2 by ALPN, the path refused, a timeout, a
// network error — the other one is tried at once (not when the TCP connection is refused: then
// nothing listens on that port for either). The one that worked is kept for later
// sessions, so the fallback costs one failed attempt per run, not one per reconnect. A pin
// mismatch is never retried over the other transport: it is the same certificate.
import type { Logger } from "../logging/logger.ts";
import type { TransportKind } from "../protocol/access-key.ts";
import { GatewaySocketError, openGatewaySocket, type OpenSocket } from "./gateway-socket.ts";
import { openH2Socket } from "./h2-socket.ts";

export const DEFAULT_OPENERS: Readonly<Record<TransportKind, OpenSocket>> = { ws: openGatewaySocket, h2: openH2Socket };

export interface TransportSelector {
  readonly open: OpenSocket;
  /** The transport the last successful open used (before any: the first choice). */
  readonly current: TransportKind;
}

const other = (t: TransportKind): TransportKind => (t === "ws" ? "h2" : "ws");

export function selectTransport(
  first: TransportKind,
  opts: { logger?: Logger; openers?: Readonly<Record<TransportKind, OpenSocket>>; fallback?: boolean } = {},
): TransportSelector {
  const openers = opts.openers ?? DEFAULT_OPENERS;
  let current = first;
  const open: OpenSocket = async (key, tlsOpts, timeoutMs, accept) => {
    const tryFirst = current;
    try {
      return await openers[tryFirst](key, tlsOpts, timeoutMs, accept);
    } catch (e) {
      if (opts.fallback === false || (e instanceof GatewaySocketError && e.code === "pin_mismatch")) throw e;
      // Refused at TCP (a gateway restarting): the other transport is the same port, and if it
      // won the race with the listener coming back it would be kept for every later session.
      if (e instanceof GatewaySocketError && e.nothingListens) throw e;
      const next = other(tryFirst);
      const why = (e as Error).message;
      opts.logger?.warn(`transport ${tryFirst} failed; falling back to ${next}`, {
        transport: tryFirst,
        fallback: next,
        error: why,
      });
      try {
        const socket = await openers[next](key, tlsOpts, timeoutMs, accept);
        current = next;
        opts.logger?.info(`using transport ${next}`, { transport: next });
        return socket;
      } catch (e2) {
        if (e2 instanceof GatewaySocketError && e2.code === "pin_mismatch") throw e2;
        throw new GatewaySocketError("unavailable", `${tryFirst}: ${why}; ${next}: ${(e2 as Error).message}`);
      }
    }
  };
  return {
    open,
    get current() {
      return current;
    },
  };
}
