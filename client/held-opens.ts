// stream_open messages held to the end of the event-loop turn that opened them.
//
// A SOCKS5 or HTTP CONNECT dial resolves in microtasks after openStream() returns, and the
// success reply to the application is written there. Sending the stream_open first put one
// WebSocket frame, one TLS record and one write() on the critical path ahead of that reply,
// which the application waits for before it sends its first byte (docs/06, "First byte of a
// new stream"). Held until setImmediate — after every microtask of this turn, so after the
// reply — the open still leaves in the same turn, before the application's request can arrive,
// so the gateway's dial keeps overlapping the application's round trip.
//
// Order on the wire is kept: the session flushes what is held before it sends anything else.
import { setImmediate } from "node:timers";

export class HeldOpens {
  private held: (string | Uint8Array)[] = [];

  constructor(private readonly out: (msg: string | Uint8Array) => void) {}

  /** Send `msg` at the end of this turn, or before whatever the session sends first. */
  hold(msg: string | Uint8Array): void {
    if (this.held.push(msg) === 1) setImmediate(() => this.flush());
  }

  /** Send what is held, in order. */
  flush(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    for (const msg of held) this.out(msg);
  }

  /** The session ended: nothing held goes out. */
  drop(): void {
    this.held = [];
  }
}
