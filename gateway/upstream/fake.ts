// The `fake` upstream: every stream is an echo. It behaves like a well-mannered TCP peer
// so the session's flow control can be tested without a network: write() reports a full
// buffer, pause() really stops delivery (and so, once the echo buffer fills, write() keeps
// returning false), and closeWrite() is answered with end() only after every byte written
// before it has been echoed back — the ordering a TCP FIN gives.
import { setImmediate } from "node:timers";
import { type Dialer, type Duplex, type DuplexHandlers, DuplexInbox, StreamError, type Target } from "../../transport/stream.ts";

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
  private readonly inbox = new DuplexInbox();
  /** Written bytes not yet echoed: the echo's "socket buffer", what write() reports full. */
  private queue: Uint8Array[] = [];
  private queued = 0;
  private wantDrain = false;
  private writeClosed = false;
  private scheduled = false;

  constructor(private readonly highWater: number) {}

  start(handlers: DuplexHandlers): void {
    if (!this.inbox.start(handlers)) throw new StreamError("already_started", "start() called twice");
    this.schedule();
  }

  write(chunk: Uint8Array): boolean {
    if (this.inbox.isClosed || this.writeClosed) return false;
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
    if (this.inbox.isClosed || this.writeClosed) return;
    this.writeClosed = true;
    this.schedule();
  }

  close(err?: StreamError): void {
    this.queue = [];
    this.queued = 0;
    this.inbox.close(err);
  }

  pause(): void {
    this.inbox.pause();
  }

  resume(): void {
    if (!this.inbox.isPaused) return;
    this.inbox.resume();
    this.schedule();
  }

  // Delivery is always on a later turn: a consumer that writes from inside data() must
  // not recurse into itself, and a large echo must not starve the event loop.
  private schedule(): void {
    if (this.scheduled || this.inbox.isClosed || !this.inbox.started) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const inbox = this.inbox;
    if (inbox.isClosed) return;
    // A bounded batch per turn keeps other streams and timers fair. Only an unpaused inbox
    // is fed, so it never holds anything: what waits stays here, where write() sees it.
    let budget = 16;
    while (!inbox.isPaused && this.queue.length > 0 && budget-- > 0) {
      const chunk = this.queue.shift()!;
      this.queued -= chunk.length;
      inbox.deliver(chunk);
      if (inbox.isClosed) return;
    }
    if (this.wantDrain && this.queued < this.highWater) {
      this.wantDrain = false;
      inbox.drain();
      if (inbox.isClosed) return;
    }
    if (this.queue.length > 0) {
      if (!inbox.isPaused) this.schedule();
      return;
    }
    if (this.writeClosed) {
      inbox.end();
      // Both directions are done once our FIN follows theirs, as with TCP.
      inbox.closeAfterData();
    }
  }
}
