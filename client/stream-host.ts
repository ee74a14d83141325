// What a client session lends the streams it carries (TunnelStream, DatagramStream): its
// negotiated sizes, a way out for their frames, and its bookkeeping. Streams see this, not
// the session, so neither imports the other.
import { MIN_WINDOW } from "../protocol/codec.ts";
import type { Frame } from "../protocol/frames.ts";
import type { StreamError } from "../transport/stream.ts";

/**
 * Bytes an early stream (docs/03 §13) may send before auth_result: the smallest window any
 * gateway may grant (MIN_WINDOW), so they are within its credit whatever auth_result says. A
 * TLS ClientHello (0.5–2 KB) or an ordinary HTTP request fits; the rest waits for auth_result.
 */
export const EARLY_DATA_BYTES = MIN_WINDOW;

export interface StreamHost {
  /** The gateway granted "flow": byte streams keep per-stream credit both ways. */
  readonly flow: boolean;
  /** The gateway's per-stream credit for us (auth_result.window). */
  readonly sendWindow: number;
  /** The per-stream credit we grant the gateway (hello.window). */
  readonly recvWindow: number;
  /** The largest payload of one stream_data. */
  readonly maxData: number;
  /** The largest datagram a UDP stream may send. */
  readonly maxDatagram: number;
  /** Whether stream data may go out now (the socket is under its high-water mark). */
  readonly canSend: boolean;
  sendFrame(frame: Frame): void;
  /** stream_close for a stream we end, with `err`'s code when there is one. */
  sendClose(id: string, err?: StreamError): void;
  /** Still before auth_result: a stream opened now is early data (EARLY_DATA_BYTES, then negotiated()). */
  readonly handshaking: boolean;
  /** One stream_data (counted in the session's bytes); `padded` for one of the stream's first PADDED_FRAMES. */
  sendData(id: string, data: Uint8Array, padded?: boolean): void;
  /** The stream is over: the session forgets it (and may close, once drained after goaway). */
  forget(stream: { readonly id: string }): void;
}
