// Backpressure from a session's socket (WebSocket, or HTTP/2 records) to the streams it
// carries, the same on the gateway and the client: while the socket's bufferedAmount is over
// the high-water mark, stream output stops; it starts again on the adapter's drain().

/** While blocked, how often the socket is looked at again in case drain() never comes. */
export const BLOCKED_POLL_MS = 100;

export interface BufferedSocket {
  readonly bufferedAmount: number;
}

export interface SendGateEvents {
  /** The socket just went over the high-water mark. */
  blocked?(): void;
  /** Output may go on. */
  unblocked(): void;
}

export class SendGate {
  /** Over the high-water mark: no stream output until unblocked(). */
  blocked = false;
  private poll: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly socket: BufferedSocket,
    private readonly highWater: number,
    private readonly events: SendGateEvents,
  ) {}

  /** Whether stream output must stop now; checks the socket (and blocks) unless already blocked. */
  full(): boolean {
    if (this.blocked) return true;
    if (this.socket.bufferedAmount <= this.highWater) return false;
    this.blocked = true;
    // drain() is the adapter's promise, but if its high-water mark is above ours it never saw
    // the socket "full" and will not call: a slow poll while blocked rules out a stall.
    this.poll = setTimeout(recheck, BLOCKED_POLL_MS, this);
    this.events.blocked?.();
    return true;
  }

  /** The adapter's drain(). No re-check of bufferedAmount: the next full() blocks again if need be. */
  drain(): void {
    if (this.blocked) this.unblock();
  }

  /** The session is over: no more polling. */
  stop(): void {
    this.blocked = false;
    clearTimeout(this.poll);
    this.poll = undefined;
  }

  /** The poll while blocked; a prototype method, not an arrow field: no closure per session. */
  recheck(): void {
    this.poll = undefined;
    if (!this.blocked) return;
    if (this.socket.bufferedAmount <= this.highWater / 2) this.unblock();
    else this.poll = setTimeout(recheck, BLOCKED_POLL_MS, this);
  }

  private unblock(): void {
    this.blocked = false;
    clearTimeout(this.poll);
    this.poll = undefined;
    this.events.unblocked();
  }
}

const recheck = (gate: SendGate) => gate.recheck();
