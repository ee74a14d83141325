// The `fake` upstream: every stream is an echo. It behaves like a well-mannered TCP peer
// so the session's flow control can be tested without a network: write() reports a full
// buffer, pause() really stops delivery (and so, once the echo buffer fills, write() keeps
// returning false), and closeWrite() is answered with end() only after every byte written
// before it has been echoed back — the ordering a TCP FIN gives.
import { setImmediate } from "node:timers";
import { type Dialer, type Duplex, type DuplexHandlers, StreamError, type Target } from "../../transport/stream.ts";

export interface FakeDialerOptions {
  /** Echo bytes held before write() returns false (like a socket's writableHighWaterMark). */
  highWaterMark?: number;
}

const DEFAULT_HIGH_WATER = 64 * 1024;

export function fakeDialer(options: FakeDialerOptions = {}): Dialer {
  const highWater = options.highWaterMark ?? DEFAULT_HIGH_WATER;
  return {
    dial(_target: Target, signal?: AbortSignal): Promise<Duplex> {
      if (signal?.aborted) return Promise.reject(new StreamError("dial_aborted", "dial aborted"));
      return Promise.resolve(new EchoDuplex(highWater));
    },
  };
}

class EchoDuplex implements Duplex {
  private handlers: DuplexHandlers | null = null;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private paused = false;
  private wantDrain = false;
  private writeClosed = false;
  private endSent = false;
  private closed = false;
  private scheduled = false;

  constructor(private readonly highWater: number) {}

  start(handlers: DuplexHandlers): void {
    if (this.handlers) throw new StreamError("already_started", "start() called twice");
    this.handlers = handlers;
    this.schedule();
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed || this.writeClosed) return false;
    if (chunk.length > 0) {
      // The caller may reuse its buffer after write() returns; an echo must not alias it.
      this.queue.push(chunk.slice());
      this.queued += chunk.length;
    }
    this.schedule();
    if (this.queued >= this.highWater) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  closeWrite(): void {
    if (this.closed || this.writeClosed) return;
    this.writeClosed = true;
    this.schedule();
  }

  close(err?: StreamError): void {
    this.finish(err);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.schedule();
  }

  // Delivery is always on a later turn: a consumer that writes from inside data() must
  // not recurse into itself, and a large echo must not starve the event loop.
  private schedule(): void {
    if (this.scheduled || this.closed || !this.handlers) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const h = this.handlers;
    if (!h || this.closed) return;
    // A bounded batch per turn keeps other streams and timers fair.
    let budget = 16;
    while (!this.paused && this.queue.length > 0 && budget-- > 0) {
      const chunk = this.queue.shift()!;
      this.queued -= chunk.length;
      h.data(chunk);
      if (this.closed) return;
    }
    if (this.wantDrain && this.queued < this.highWater) {
      this.wantDrain = false;
      h.drain();
      if (this.closed) return;
    }
    if (this.queue.length > 0) {
      if (!this.paused) this.schedule();
      return;
    }
    if (this.writeClosed && !this.endSent) {
      this.endSent = true;
      h.end();
      // Both directions are done once our FIN follows theirs, as with TCP.
      this.finish();
    }
  }

  private finish(err?: StreamError): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queued = 0;
    this.handlers?.close(err);
  }
}
