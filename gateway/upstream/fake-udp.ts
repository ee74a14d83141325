// The `fake` upstream for UDP streams: every datagram comes back, on a later turn, as the
// datagram itself. A bounded echo queue drops the excess like a full socket buffer, so the
// session's datagram bounds can be tested without a network.
import { setImmediate } from "node:timers";
import { EARLY_DATAGRAMS, type PacketConn, type PacketDialer, type PacketHandlers } from "../../transport/packet.ts";
import { StreamError, type Target } from "../../transport/stream.ts";

export interface FakePacketDialerOptions {
  /** Datagrams waiting to be echoed; more are dropped. Default 64. */
  queue?: number;
}

export function fakePacketDialer(opts: FakePacketDialerOptions = {}): PacketDialer {
  const max = opts.queue ?? 64;
  return {
    dial(_target: Target, signal?: AbortSignal): Promise<PacketConn> {
      if (signal?.aborted) return Promise.reject(new StreamError("aborted", "dial aborted"));
      return Promise.resolve(new EchoPackets(max));
    },
  };
}

class EchoPackets implements PacketConn {
  dropped = 0;
  private h: PacketHandlers | null = null;
  private queue: Uint8Array[] = [];
  private scheduled = false;
  private closed = false;
  private closeErr: StreamError | undefined;

  constructor(private readonly max: number) {}

  start(h: PacketHandlers): void {
    if (this.h) return;
    this.h = h;
    if (this.closed) return h.close(this.closeErr);
    this.schedule();
  }

  send(datagram: Uint8Array): boolean {
    if (this.closed || this.queue.length >= Math.min(this.max, this.h ? this.max : EARLY_DATAGRAMS)) {
      this.dropped++;
      return false;
    }
    this.queue.push(datagram.slice()); // the caller may reuse its buffer
    this.schedule();
    return true;
  }

  close(err?: StreamError): void {
    if (this.closed) return;
    this.closed = true;
    this.closeErr = err;
    this.queue = [];
    this.h?.close(err);
  }

  private schedule(): void {
    if (this.scheduled || this.closed || !this.h) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.queue;
      this.queue = [];
      for (const d of batch) {
        if (this.closed) return;
        this.h!.data(d);
      }
    });
  }
}
