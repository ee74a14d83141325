// One tunnel stream as a Duplex (docs/03 §4–5), so the SOCKS5 and HTTP proxies pipe local
// sockets into it exactly as they would into TCP.
// - gateway → app: bytes wait in the inbox while the app is paused; credit goes back
//   (window_update) only as the app takes them, so a slow local reader stops its own stream
//   at the gateway and nothing else.
// - app → gateway: bytes go out only within the gateway's credit and while the session's
//   socket is under its high-water mark; beyond STREAM_HIGH_WATER queued, write() returns
//   false and the local socket pauses.
import { StreamCredit } from "../protocol/credit.ts";
import { Code } from "../protocol/errors.ts";
import { PADDED_FRAMES } from "../protocol/padding.ts";
import { type Duplex, type DuplexHandlers, DuplexInbox, StreamError, type Target } from "../transport/stream.ts";
import { EARLY_DATA_BYTES, type StreamHost } from "./stream-host.ts";

/** A stream's write() reports false above this many queued bytes, so its source pauses. */
export const STREAM_HIGH_WATER = 128 * 1024;

export class TunnelStream implements Duplex {
  private readonly inbox: DuplexInbox;
  private readonly credit: StreamCredit;
  private flow: boolean;
  /** Opened before auth_result: sends at most EARLY_DATA_BYTES until negotiated(). */
  private early: boolean;
  /** Frames still to be padded (docs/03 §12). */
  private padLeft = PADDED_FRAMES;
  private remoteEnded = false;
  private outbound: Uint8Array[] = [];
  private outBytes = 0;
  private wantDrain = false;
  private localEnded = false;
  private endSent = false;
  private closed = false;
  private firstFrame: { resolve: () => void; reject: (e: StreamError) => void } | undefined;
  /** Settles on the first sign from the gateway: data/credit/end (resolves) or a coded close (rejects). */
  readonly confirmed: Promise<void>;

  constructor(
    private readonly host: StreamHost,
    readonly id: string,
    readonly target: Target,
  ) {
    this.flow = host.flow;
    this.early = host.handshaking;
    this.credit = new StreamCredit(host.recvWindow, this.early ? EARLY_DATA_BYTES : this.flow ? host.sendWindow : Infinity);
    this.inbox = new DuplexInbox({
      consumed: (n) => this.consumed(n),
      // A normal stream_close reaches the app after the bytes before it: the stream ends then.
      closing: () => this.settle(),
    });
    this.confirmed = new Promise<void>((resolve, reject) => (this.firstFrame = { resolve, reject }));
    this.confirmed.catch(() => {});
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- Duplex ----

  start(h: DuplexHandlers): void {
    this.inbox.start(h);
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed || this.localEnded) return false;
    if (chunk.length === 0) return true;
    this.outbound.push(chunk);
    this.outBytes += chunk.length;
    this.flush();
    if (this.outBytes >= STREAM_HIGH_WATER) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  closeWrite(): void {
    if (this.closed || this.localEnded) return;
    this.localEnded = true;
    this.flush();
  }

  close(err?: StreamError): void {
    if (this.closed) return;
    this.host.sendClose(this.id, err);
    this.finish(err);
  }

  pause(): void {
    this.inbox.pause();
  }

  resume(): void {
    this.inbox.resume();
  }

  // ---- from the session ----

  onData(data: Uint8Array): void {
    if (this.closed) return;
    this.confirm();
    if (this.flow && !this.credit.received(data.length)) {
      return this.abort(new StreamError(Code.flow_violation, "the gateway sent beyond the window we granted"));
    }
    if (this.remoteEnded) return; // data after stream_end: the gateway's bug; drop it
    if (data.length === 0) return;
    this.inbox.deliver(data);
  }

  onRemoteEnd(): void {
    if (this.closed || this.remoteEnded) return;
    this.confirm();
    this.remoteEnded = true;
    this.inbox.end();
  }

  onRemoteClose(code?: string, message?: string): void {
    if (this.closed) return;
    if (code) {
      const err = new StreamError(code, message ?? code);
      this.firstFrame?.reject(err);
      this.firstFrame = undefined;
      return this.finish(err);
    }
    this.confirm();
    this.remoteEnded = true;
    this.inbox.end();
    this.inbox.closeAfterData();
  }

  onCredit(increment: number): void {
    if (this.closed) return;
    this.confirm();
    if (!this.credit.granted(increment)) {
      return this.abort(new StreamError(Code.flow_violation, "window_update overflows 2^31-1"));
    }
    this.flush();
  }

  /** auth_result arrived after this stream was opened early: the session's terms apply from now on. */
  negotiated(): void {
    if (!this.early) return;
    this.early = false;
    this.flow = this.host.flow;
    const sent = EARLY_DATA_BYTES - this.credit.send;
    this.credit.send = this.flow ? this.host.sendWindow - sent : Infinity;
    this.flush();
  }

  /** Our side ends the stream with a code the gateway is told. */
  abort(err: StreamError): void {
    this.close(err);
  }

  /** Send what credit and the socket allow; stream_end once everything is out. */
  flush(): void {
    if (this.closed) return;
    const host = this.host;
    const max = host.maxData;
    const credit = this.credit;
    while (this.outbound.length > 0 && credit.send > 0 && host.canSend) {
      const head = this.outbound[0]!;
      const n = Math.min(head.length, max, credit.send);
      const padded = this.padLeft > 0;
      if (padded) this.padLeft--;
      host.sendData(this.id, n === head.length ? head : head.subarray(0, n), padded);
      credit.send -= n;
      this.outBytes -= n;
      if (n === head.length) this.outbound.shift();
      else this.outbound[0] = head.subarray(n);
    }
    if (this.outbound.length === 0 && this.localEnded && !this.endSent) {
      this.endSent = true;
      host.sendFrame({ type: "stream_end", stream_id: this.id });
    }
    if (this.wantDrain && this.outBytes < STREAM_HIGH_WATER && this.inbox.started) {
      this.wantDrain = false;
      this.inbox.drain();
    }
  }

  /** Forget the stream and tell the app, once; what the app has not taken yet is dropped. */
  finish(err?: StreamError): void {
    if (this.closed) return;
    this.settle(err);
    this.inbox.close(err);
  }

  private settle(err?: StreamError): void {
    if (this.closed) return;
    this.closed = true;
    if (this.firstFrame) {
      if (err) this.firstFrame.reject(err);
      else this.firstFrame.resolve();
      this.firstFrame = undefined;
    }
    this.outbound = [];
    this.outBytes = 0;
    this.host.forget(this);
  }

  private confirm(): void {
    this.firstFrame?.resolve();
    this.firstFrame = undefined;
  }

  /** The app took `n` bytes: hand the credit back, batched (StreamCredit). */
  private consumed(n: number): void {
    if (!this.flow || this.remoteEnded || this.closed) return;
    const increment = this.credit.consumed(n);
    if (increment > 0) this.host.sendFrame({ type: "window_update", stream_id: this.id, increment });
  }
}
