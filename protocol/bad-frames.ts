// Bad frames in a row (docs/03 §7): a session survives a bad frame, but a peer that sends
// nothing else is cut off (too_many_errors), so it cannot make the other end burn CPU forever.

/** Bad frames in a row, with no good frame between, after which the session is closed. */
export const MAX_BAD_FRAMES = 100;

export class BadFrameRun {
  /** Bad frames since the last good one. */
  count = 0;

  constructor(readonly limit: number = MAX_BAD_FRAMES) {}

  /** A good frame ends the run. */
  good(): void {
    this.count = 0;
  }

  /** One more bad frame: true once the run has reached the limit (close the session). */
  bad(): boolean {
    return ++this.count >= this.limit;
  }
}
