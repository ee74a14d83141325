// What a gateway session lends the streams it carries, TCP (tcp-streams.ts) and UDP
// (udp-streams.ts) alike: its way out for frames, its bad-frame accounting, its counters.
// The streams see this, not the session.
import type { Logger } from "../logging/logger.ts";
import type { ErrorCode } from "../protocol/errors.ts";
import type { Frame } from "../protocol/frames.ts";
import type { Upstream } from "./upstream/upstream.ts";

export interface StreamsHost {
  readonly log: Logger;
  /** What the session dials through (streams exist only once it is chosen). */
  readonly upstream: Upstream;
  /** The bound on one dial: the upstream's own, else the configured one. */
  readonly dialTimeoutMs: number;
  sendControl(frame: Frame): void;
  /** One stream_data frame; `padded` for one of the stream's first PADDED_FRAMES (sent padded once "padding" is granted). */
  sendData(id: string, data: Uint8Array, padded?: boolean): void;
  /** An `error` frame that counts towards the bad-frame limit. */
  reject(code: ErrorCode, message: string, stream_id?: string): void;
  /** Refuse a stream_open with stream_close (counts as a bad frame). */
  refuse(stream_id: string, code: ErrorCode, message: string): void;
  /** A good frame: the bad-frame run is over. */
  good(): void;
  bytes(direction: "up" | "down", n: number): void;
  streamOpened(): void;
  /** The stream is gone; `dropped` datagrams were lost on it (UDP; for the metric). */
  streamClosed(dropped: number): void;
}
