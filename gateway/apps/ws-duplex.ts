// An app's WebSocket as the Duplex the layers above read and write (Shadowsocks, Mux.Cool):
// binary messages are a byte stream (their boundaries mean nothing, as in outline-sdk's
// websocket-stream and v2ray's ws), one write is one message. Before start() it holds what
// arrives, so the connection can look at the first bytes (peek) and choose a layer; and it can
// be told to absorb: read and discard everything until a deadline, then close, as an Outline
// server treats a probe.
//
// WebSockets have no half-close that every server library gives (RFC 6455: no data after a
// Close; ws, Bun and Deno answer a Close at once), so closeWrite() is the end: Close 1000,
// which outline-sdk reads as EOF, after the data in order. v2ray's WebSocket reader instead
// takes a Close as an error and drops what it has not yet handed to the app (the tail of a
// download, or a whole small reply), and v2ray's own server never closes at the end of the
// target's data: the app closes, or an idle timer of seconds does. So for the v2ray family
// closeWrite() waits `endDelayMs` (and for the send queue to empty), unless the app closes
// first. A Close from the app ends the stream either way.
import { StreamError } from "../../protocol/errors.ts";
import type { SessionHandler, SessionSocket } from "../../runtime/types.ts";
import { type Duplex, type DuplexHandlers, DuplexInbox } from "../../transport/stream.ts";

/** Close code for an upstream that failed (outline-sdk reads anything but 1000 as an error). */
export const WS_CLOSE_UPSTREAM_FAILED = 1011;

/** How long v2ray-family apps get to close first after the upstream ended (cf. v2ray's uplinkOnly policy, seconds). */
export const V2RAY_END_DELAY_MS = 2000;
/** While the end waits for the send queue to empty, it looks this often. */
const END_POLL_MS = 100;

/** Bytes held before start() beyond which the socket is paused: the choice of a layer needs far fewer. */
const HELD_BEFORE_START = 64 * 1024;

export class WsDuplex implements Duplex {
  private readonly inbox = new DuplexInbox();
  /** Messages held before start(), so peek() can read them; null once started. */
  private early: Uint8Array[] | null = [];
  private earlyBytes = 0;
  private absorbing = false;
  private absorbTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private ending = false;
  private endTimer: ReturnType<typeof setTimeout> | undefined;
  /** closeWrite() closes this long later (0: at once, Outline's behaviour); see the top of the file. */
  endDelayMs = 0;
  /** What arrived and was not binary (the owner decides what bad input costs). */
  onBadInput?: (err: StreamError) => void;
  /** Each message before start(), after it is held: the owner may peek() and choose. */
  onEarly?: () => void;
  /** The socket is gone (after every handler was told). */
  onClosed?: () => void;

  constructor(private readonly socket: SessionSocket, private readonly highWater: number, earlyData?: Uint8Array) {
    if (earlyData && earlyData.length > 0) this.hold(earlyData);
  }

  /** The SessionHandler the runtime adapter feeds. */
  handler(): SessionHandler {
    return {
      message: (m) => {
        if (this.absorbing || this.closed) return;
        if (typeof m === "string") {
          return this.onBadInput?.(new StreamError("app_text_message", "a text message on a binary stream"));
        }
        if (m.length === 0) return;
        if (this.early) {
          this.hold(m);
          return this.onEarly?.();
        }
        this.inbox.deliver(m);
      },
      drain: () => {
        if (!this.closed && !this.absorbing) this.inbox.drain();
      },
      close: (code) => {
        this.closed = true;
        clearTimeout(this.absorbTimer);
        clearTimeout(this.endTimer);
        this.early = null;
        if (code === 1000 || code === 1005) {
          // The app finished: an end, then the close, after what is held.
          this.inbox.end();
          this.inbox.closeAfterData();
        } else this.inbox.close(new StreamError("app_ws_closed", `the app's WebSocket closed with ${code}`));
        this.onClosed?.();
      },
    };
  }

  /** Bytes held before start(). */
  get heldBytes(): number {
    return this.earlyBytes;
  }

  /** The first `n` bytes held before start(), or undefined while fewer have arrived. */
  peek(n: number): Uint8Array | undefined {
    if (!this.early || this.earlyBytes < n) return undefined;
    const first = this.early[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let o = 0;
    for (const m of this.early) {
      const take = Math.min(m.length, n - o);
      out.set(m.subarray(0, take), o);
      o += take;
      if (o === n) break;
    }
    return out;
  }

  /**
   * Read and discard until `deadline` (performance.now() time), then close with 1000; never
   * earlier, whatever the layers above do meanwhile (their close() and closeWrite() are ignored).
   */
  absorb(deadline: number): void {
    if (this.closed || this.absorbing) return;
    this.absorbing = true;
    this.early = null;
    this.earlyBytes = 0;
    this.socket.resume?.();
    this.absorbTimer = setTimeout(() => this.socket.close(1000, ""), Math.max(0, deadline - performance.now()));
    this.inbox.close(new StreamError("app_probe", "the connection is absorbed as a probe"));
  }

  get isAbsorbing(): boolean {
    return this.absorbing;
  }

  start(h: DuplexHandlers): void {
    if (!this.inbox.start(h)) return;
    const early = this.early ?? [];
    this.early = null;
    this.earlyBytes = 0;
    this.socket.resume?.();
    for (const m of early) this.inbox.deliver(m);
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed || this.absorbing || this.ending) return false;
    if (chunk.length > 0) this.socket.send(chunk);
    return this.socket.bufferedAmount <= this.highWater;
  }

  closeWrite(): void {
    if (this.closed || this.absorbing || this.ending) return;
    if (this.endDelayMs <= 0) return this.close();
    this.ending = true;
    const end = () => {
      if (this.closed || this.absorbing) return;
      if (this.socket.bufferedAmount > 0) this.endTimer = setTimeout(end, END_POLL_MS);
      else this.socket.close(1000, "");
    };
    this.endTimer = setTimeout(end, this.endDelayMs);
  }

  close(err?: StreamError): void {
    if (this.closed || this.absorbing) return;
    this.socket.close(err ? WS_CLOSE_UPSTREAM_FAILED : 1000, "");
  }

  pause(): void {
    this.inbox.pause();
    this.socket.pause?.();
  }

  resume(): void {
    this.inbox.resume();
    if (!this.inbox.isPaused) this.socket.resume?.();
  }

  private hold(m: Uint8Array): void {
    this.early!.push(m);
    this.earlyBytes += m.length;
    if (this.earlyBytes > HELD_BEFORE_START) this.socket.pause?.();
  }
}
