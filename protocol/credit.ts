// One stream's flow-control credit (docs/03 §5), kept the same way by both ends of a session:
// what the peer may still send us, what we may still send it, and the credit we owe it back,
// returned in batches of a quarter window so window_update frames stay rare.
import { MAX_CREDIT } from "./codec.ts";

/** Consumed bytes are given back once this many have gathered: a quarter of the window (at least 1). */
export function grantBatch(window: number): number {
  return Math.max(1, Math.floor(window / 4));
}

export class StreamCredit {
  /** Bytes the peer may still send us. */
  recv: number;
  /** Bytes we may still send the peer (Infinity on a session without flow). */
  send: number;
  /** Bytes consumed but not yet given back. */
  private owed = 0;
  private readonly batch: number;

  constructor(recvWindow: number, sendWindow: number) {
    this.recv = recvWindow;
    this.send = sendWindow;
    this.batch = grantBatch(recvWindow);
  }

  /** The peer sent `n` bytes. False when that is beyond its credit: a flow_violation. */
  received(n: number): boolean {
    this.recv -= n;
    return this.recv >= 0;
  }

  /**
   * `n` received bytes were consumed (the upstream or the application took them). Returns the
   * increment to announce in a window_update now, or 0 while the batch is still short.
   */
  consumed(n: number): number {
    this.owed += n;
    if (this.owed < this.batch) return 0;
    const increment = this.owed;
    this.owed = 0;
    this.recv += increment;
    return increment;
  }

  /** The peer's window_update. False when it would push our credit past MAX_CREDIT: a flow_violation. */
  granted(increment: number): boolean {
    if (this.send + increment > MAX_CREDIT) return false;
    this.send += increment;
    return true;
  }
}
