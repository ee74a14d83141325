// The client side of one UDP stream (docs/03 §11) as a PacketConn: every send() is one
// stream_data, every stream_data from the gateway one datagram. Nothing waits: a datagram
// that finds the WebSocket over its high-water mark, or that is too large, is dropped and
// counted, as a full UDP socket buffer would drop it.
import { Code } from "../protocol/errors.ts";
import { type PacketConn, type PacketHandlers, PacketInbox } from "../transport/packet.ts";
import { StreamError, type Target } from "../transport/stream.ts";
import type { StreamHost } from "./stream-host.ts";

export class DatagramStream implements PacketConn {
  private readonly inbox = new PacketInbox();
  private sendDrops = 0;

  constructor(
    private readonly host: StreamHost,
    readonly id: string,
    readonly target: Target,
  ) {}

  get dropped(): number {
    return this.inbox.dropped + this.sendDrops;
  }

  get isClosed(): boolean {
    return this.inbox.isClosed;
  }

  start(h: PacketHandlers): void {
    this.inbox.start(h);
  }

  send(datagram: Uint8Array): boolean {
    if (this.inbox.isClosed || datagram.length > this.host.maxDatagram || !this.host.canSend) {
      this.sendDrops++;
      return false;
    }
    this.host.sendData(this.id, datagram);
    return true;
  }

  close(err?: StreamError): void {
    if (this.inbox.isClosed) return;
    this.host.sendClose(this.id, err);
    this.finish(err);
  }

  // ---- from the session ----

  onDatagram(datagram: Uint8Array): void {
    this.inbox.deliver(datagram);
  }

  onRemoteClose(code?: string, message?: string): void {
    this.finish(code ? new StreamError(code, message ?? code) : undefined);
  }

  /** Forget the stream and tell the owner, once. */
  finish(err?: StreamError): void {
    if (this.inbox.isClosed) return;
    this.host.forget(this);
    this.inbox.close(err);
  }
}

/** Why a UDP stream cannot be opened on a session that did not get the feature. */
export const udpUnsupported = () =>
  new StreamError(Code.udp_unsupported, "the gateway did not grant the udp feature on this session");
