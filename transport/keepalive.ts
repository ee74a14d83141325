// A session's keepalive, the same on the gateway and the client: a ping every `pingMs`, and the
// peer counts as gone once nothing has been heard from it for `quietMs`. The quiet check is one
// timer re-armed lazily, not one reset per message: a message only stamps `heard`.

export interface KeepaliveEvents {
  /** Time to send a ping with this id. */
  ping(id: string): void;
  /** Nothing heard for `quietMs` (this many ms, in fact): the peer is presumed dead. */
  quiet(ms: number): void;
}

export class Keepalive {
  /** When the peer was last heard from: stamp it on every message. */
  heard = Date.now();
  private pings = 0;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private quietTimer: ReturnType<typeof setTimeout> | undefined;
  private quietMs = 0;

  constructor(private readonly events: KeepaliveEvents) {}

  start(pingMs: number, quietMs: number): void {
    this.quietMs = quietMs;
    // Module-level callbacks with this keepalive as their argument: no closure per session.
    this.pingTimer = setInterval(ping, pingMs, this);
    this.quietTimer = setTimeout(check, quietMs, this);
  }

  stop(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.quietTimer);
  }

  /** The ping timer fired. */
  ping(): void {
    this.events.ping(String(++this.pings));
  }

  /** The quiet timer fired: the peer is gone, or the timer is re-armed for the rest of the span. */
  check(): void {
    const quiet = Date.now() - this.heard;
    if (quiet >= this.quietMs) return this.events.quiet(quiet);
    this.quietTimer = setTimeout(check, this.quietMs - quiet, this);
  }
}

const ping = (k: Keepalive) => k.ping();
const check = (k: Keepalive) => k.check();
