// The one byte-stream shape every upstream, every tunnel stream and every local proxy
// connection shares (after outline-sdk's StreamConn): a duplex with half-close and
// push-style delivery with explicit backpressure. It is callback based rather than
// Web Streams because the tunnel's hot path moves one chunk per callback, and a promise
// per chunk costs more than the copy.
import type { StreamError } from "../protocol/errors.ts";
import type { Target } from "../protocol/frames.ts";

// Part of every Duplex's contract, defined in protocol/ (the lowest layer, where the address
// codec needs them too) and re-exported so a stream's user finds them beside the shapes.
export { StreamError } from "../protocol/errors.ts";
export type { Target } from "../protocol/frames.ts";

export interface DuplexHandlers {
  /** Bytes from the peer. The chunk is ours to keep (never reused by the producer). */
  data(chunk: Uint8Array): void;
  /** The peer will send no more (TCP FIN). Writing may go on. */
  end(): void;
  /** The write buffer fell below its high-water mark after write() returned false. */
  drain(): void;
  /** Both directions are finished; `err` when it ended abnormally. Called exactly once. */
  close(err?: StreamError): void;
}

export interface Duplex {
  /** Install the handlers. Data arriving before this call is held (bounded) and then delivered. */
  start(handlers: DuplexHandlers): void;
  /** Queue bytes. Returns false when buffered output is above the high-water mark: wait for drain(). */
  write(chunk: Uint8Array): boolean;
  /** Half-close: we will write no more. */
  closeWrite(): void;
  /** Tear down both directions now. */
  close(err?: StreamError): void;
  /** Stop / restart delivering data(), so a slow consumer pushes back on the producer. */
  pause(): void;
  resume(): void;
}

/** Something that makes byte streams to targets: TCP, Shadowsocks over TCP, the echo fake, the tunnel client. */
export interface Dialer {
  dial(target: Target, signal?: AbortSignal): Promise<Duplex>;
}

/** What the owner of a DuplexInbox hears about the consumer. */
export interface InboxEvents {
  /** The consumer's data() returned for a chunk of `n` bytes (flow credit can go back). */
  consumed?(n: number): void;
  /** close() is about to reach the consumer (the stream's own bookkeeping goes first). */
  closing?(): void;
}

/**
 * The receiving half every Duplex needs (the stream twin of PacketInbox in packet.ts): data
 * that arrives before start() or while paused is held and then delivered in order; end() and
 * close() reach the handlers exactly once, after the data held before them (an end or a close
 * waits only while data is held, never for resume() alone); a close(err) drops what is held.
 * Delivery is never re-entered: what a handler causes is delivered after it returns.
 */
export class DuplexInbox {
  /** Bytes held for the consumer (before start(), or while paused). */
  heldBytes = 0;
  private h: DuplexHandlers | null = null;
  private held: Uint8Array[] = [];
  private paused = false;
  private delivering = false;
  private ending = false;
  private endDelivered = false;
  private closing = false;
  /** close() (not closeAfterData()) was called. */
  private aborted = false;
  private closeErr: StreamError | undefined;
  private closeDelivered = false;

  constructor(private readonly events?: InboxEvents) {}

  get started(): boolean {
    return this.h !== null;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** end() was called (the peer will send no more). */
  get isEnded(): boolean {
    return this.ending;
  }

  /** close() or closeAfterData() was called: nothing more is taken. */
  get isClosed(): boolean {
    return this.closing;
  }

  /** Install the handlers; false when they already were. */
  start(h: DuplexHandlers): boolean {
    if (this.h) return false;
    this.h = h;
    this.flush();
    return true;
  }

  /** Bytes from the peer. */
  deliver(chunk: Uint8Array): void {
    if (this.closing) return;
    const h = this.h;
    if (h !== null && !this.paused && !this.delivering && this.held.length === 0) {
      // The hot path: straight through, nothing held.
      this.delivering = true;
      try {
        h.data(chunk);
        this.events?.consumed?.(chunk.length);
      } finally {
        this.delivering = false;
      }
      // What the handler caused meanwhile (more data, an end, a close) waits to be delivered.
      if (this.held.length > 0 || this.ending || this.closing) this.flush();
      return;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    this.flush();
  }

  /** The peer will send no more; delivered once, after the data held before it. */
  end(): void {
    if (this.ending || this.closing) return;
    this.ending = true;
    this.flush();
  }

  /** The write side can take more: tell the consumer, if it is there to hear it. */
  drain(): void {
    if (this.h !== null && !this.closeDelivered) this.h.drain();
  }

  /** Abnormal or local end: what is held (and an end not yet delivered) is dropped; close is delivered now, or at start(). */
  close(err?: StreamError): void {
    // A graceful close still waiting behind held data becomes this one.
    if (this.closeDelivered || this.aborted) return;
    this.closing = this.aborted = true;
    this.closeErr = err;
    this.held = [];
    this.heldBytes = 0;
    this.ending = this.endDelivered;
    this.flush();
  }

  /** The producer finished normally: the held data, then end (if end() was called), then close. */
  closeAfterData(): void {
    if (this.closing) return;
    this.closing = true;
    this.flush();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.flush();
  }

  private flush(): void {
    const h = this.h;
    if (h === null || this.delivering || this.closeDelivered) return;
    this.delivering = true;
    try {
      while (!this.paused && this.held.length > 0) {
        const chunk = this.held.shift()!;
        this.heldBytes -= chunk.length;
        h.data(chunk);
        this.events?.consumed?.(chunk.length);
      }
      if (this.held.length > 0) return; // paused: the end and the close wait for the data
      if (this.ending && !this.endDelivered) {
        this.endDelivered = true;
        h.end();
      }
      if (this.closing && !this.closeDelivered) {
        this.closeDelivered = true;
        this.events?.closing?.();
        h.close(this.closeErr);
      }
    } finally {
      this.delivering = false;
    }
  }
}
