// The datagram counterpart of transport/stream.ts (after outline-sdk's PacketConn): one
// association with one target, datagrams in and out, boundaries kept, loss allowed. There is
// no backpressure: every queue on the way is bounded and drops, as a UDP socket buffer does,
// so a flood costs a counter, never memory.
import type { StreamError, Target } from "./stream.ts";

export interface PacketHandlers {
  /** One datagram from the target. Ours to keep. */
  data(datagram: Uint8Array): void;
  /** The association is over; `err` when it ended abnormally. Called exactly once. */
  close(err?: StreamError): void;
}

export interface PacketConn {
  /** Install the handlers. Datagrams arriving before this call are held (bounded) and then delivered. */
  start(handlers: PacketHandlers): void;
  /** Send one datagram. False when it was dropped (a full queue, a closed conn): the caller only counts it. */
  send(datagram: Uint8Array): boolean;
  /** Tear down now. */
  close(err?: StreamError): void;
  /** Datagrams this conn dropped so far, both ways (full queues, packets that failed checks). */
  readonly dropped: number;
}

/** Something that makes datagram associations to targets: UDP, Shadowsocks over UDP, the echo fake, the tunnel client. */
export interface PacketDialer {
  dial(target: Target, signal?: AbortSignal): Promise<PacketConn>;
}

/** Datagrams a conn holds between its creation and start(); more are dropped. */
export const EARLY_DATAGRAMS = 32;
