// Node's side of the bounds before authentication (docs/07 "Before authentication"): the
// https.Server options that time out a TLS handshake (tls handshakeTimeout, 120 s by default)
// and a request head (http headersTimeout, 60 s by default, checked every
// connectionsCheckingInterval, 30 s by default), and the per-address count of connections from
// TCP accept until released. Only runtime/node.ts and node-h2.ts use it.
import type { Server } from "node:net";
import type { Socket } from "node:net";
import type { PreauthLimits } from "./types.ts";

/** Node's own default for the whole request (requestTimeout), kept unless the head timeout is longer. */
const NODE_REQUEST_TIMEOUT = 300_000;

/** The https.createServer options that apply `limits`; none (Node's defaults) without them. */
export function preauthServerOptions(limits: PreauthLimits | undefined): Record<string, number> {
  if (!limits) return {};
  const head = limits.requestHeadTimeoutMs;
  return {
    handshakeTimeout: limits.tlsHandshakeTimeoutMs,
    headersTimeout: head,
    requestTimeout: Math.max(NODE_REQUEST_TIMEOUT, head),
    // Node checks both only this often: a quarter of the timeout (within 0.1-1 s) keeps the
    // overshoot small without a busy timer.
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(head / 4))),
  };
}

const kRelease = Symbol("httvps.preauthRelease");
type Counted = { [kRelease]?: () => void; _parent?: Counted };

/**
 * Count every accepted TCP connection with `limits.gate`: over the cap it is destroyed at once
 * (before any TLS byte is read); otherwise it is released when it closes, or earlier by
 * releaseConnection.
 */
export function countConnections(server: Server, limits: PreauthLimits | undefined): void {
  const gate = limits?.gate;
  if (!gate) return;
  server.on("connection", (socket: Socket) => {
    const release = gate.admit(socket.remoteAddress ?? "");
    if (!release) return void socket.destroy();
    (socket as Counted)[kRelease] = release;
    socket.once("close", release);
  });
}

/**
 * The release of the TCP connection under `socket` (the TLS socket, or HTTP/2's proxy of it,
 * whose `_parent` is the TCP socket countConnections saw); a no-op when it was not counted.
 */
export function releaseOf(socket: unknown): () => void {
  const s = socket as Counted | undefined;
  return s?.[kRelease] ?? s?._parent?.[kRelease] ?? noop;
}

const noop = () => {};
