// The client side of one UDP stream (docs/03 §11) as a PacketConn: every send() is one
// stream_data, every stream_data from the gateway one datagram. Nothing waits: a datagram
// that finds the WebSocket over its high-water mark, or that is too large, is dropped and
// counted, as a full UDP socket buffer would drop it.
import { Code } from "../protocol/errors.ts";
import { EARLY_DATAGRAMS, type PacketConn, type PacketHandlers } from "../transport/packet.ts";
import { StreamError, type Target } from "../transport/stream.ts";
import type { ClientSession } from "./session.ts";

export class DatagramStream implements PacketConn {
  dropped = 0;
  private h: PacketHandlers | null = null;
  private early: Uint8Array[] = [];
  private closed = false;
  private closeErr: StreamError | undefined;

  constructor(
    private readonly session: ClientSession,
    readonly id: string,
    readonly target: Target,
  ) {}

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

  send(datagram: Uint8Array): boolean {
    if (this.closed || datagram.length > this.session.maxDatagram || !this.session.canSend) {
      this.dropped++;
      return false;
    }
    this.session.sendData(this.id, datagram);
    return true;
  }

  close(err?: StreamError): void {
    if (this.closed) return;
    const code = err?.code;
    this.session.sendFrame(code ? { type: "stream_close", stream_id: this.id, code: code.slice(0, 64), message: err!.message } : { type: "stream_close", stream_id: this.id });
    this.finish(err);
  }

  // ---- from the session ----

  onDatagram(datagram: Uint8Array): void {
    if (this.closed) return;
    if (this.h) return this.h.data(datagram);
    if (this.early.length < EARLY_DATAGRAMS) this.early.push(datagram);
    else this.dropped++;
  }

  onRemoteClose(code?: string, message?: string): void {
    this.finish(code ? new StreamError(code, message ?? code) : undefined);
  }

  /** Forget the stream and tell the owner, once. */
  finish(err?: StreamError): void {
    if (this.closed) return;
    this.closed = true;
    this.closeErr = err;
    this.early = [];
    this.session.forget(this);
    this.h?.close(err);
  }
}

/** Why a UDP stream cannot be opened on a session that did not get the feature. */
export const udpUnsupported = () => new StreamError(Code.udp_unsupported, "the gateway did not grant the udp feature on this session");
