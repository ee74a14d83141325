// What a client session lends the streams it carries (TunnelStream, DatagramStream): its
// negotiated sizes, a way out for their frames, and its bookkeeping. Streams see this, not
// the session, so neither imports the other.
import type { Frame } from "../protocol/frames.ts";
import type { StreamError } from "../transport/stream.ts";

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
  /** One stream_data (counted in the session's bytes). */
  sendData(id: string, data: Uint8Array): void;
  /** The stream is over: the session forgets it (and may close, once drained after goaway). */
  forget(stream: { readonly id: string }): void;
}
