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

/**
 * The receiving half a PacketConn needs: datagrams that arrive before start() are held (at
 * most EARLY_DATAGRAMS, the rest counted as dropped), and close reaches the handlers exactly
 * once, even when it happens before start().
 */
export class PacketInbox {
  dropped = 0;
  private h: PacketHandlers | null = null;
  private early: Uint8Array[] = [];
  private closed = false;
  private closeErr: StreamError | undefined;

  get isClosed(): boolean {
    return this.closed;
  }

  start(h: PacketHandlers): void {
    if (this.h) return;
    this.h = h;
    if (this.closed) return h.close(this.closeErr);
    const early = this.early;
    this.early = [];
    for (const d of early) {
      if (this.closed) return;
      h.data(d);
    }
  }

  deliver(datagram: Uint8Array): void {
    if (this.closed) return;
    if (this.h) this.h.data(datagram);
    else if (this.early.length < EARLY_DATAGRAMS) this.early.push(datagram);
    else this.dropped++;
  }

  /** False when it was already closed. */
  close(err?: StreamError): boolean {
    if (this.closed) return false;
    this.closed = true;
    this.closeErr = err;
    this.early = [];
    this.h?.close(err);
    return true;
  }
}
