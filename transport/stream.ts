// The one byte-stream shape every upstream, every tunnel stream and every local proxy
// connection shares (after outline-sdk's StreamConn): a duplex with half-close and
// push-style delivery with explicit backpressure. It is callback based rather than
// Web Streams because the tunnel's hot path moves one chunk per callback, and a promise
// per chunk costs more than the copy.
import type { StreamError } from "../protocol/errors.ts";
import type { Target } from "../protocol/frames.ts";

// Part of every Duplex's contract, defined in protocol/ (the lowest layer, where the address
// codec needs them too) and re-exported so a stream's user finds them beside the shapes.
export { StreamError } from "../protocol/errors.ts";
export type { Target } from "../protocol/frames.ts";

export interface DuplexHandlers {
  /** Bytes from the peer. The chunk is ours to keep (never reused by the producer). */
  data(chunk: Uint8Array): void;
  /** The peer will send no more (TCP FIN). Writing may go on. */
  end(): void;
  /** The write buffer fell below its high-water mark after write() returned false. */
  drain(): void;
  /** Both directions are finished; `err` when it ended abnormally. Called exactly once. */
  close(err?: StreamError): void;
}

export interface Duplex {
  /** Install the handlers. Data arriving before this call is held (bounded) and then delivered. */
  start(handlers: DuplexHandlers): void;
  /** Queue bytes. Returns false when buffered output is above the high-water mark: wait for drain(). */
  write(chunk: Uint8Array): boolean;
  /** Half-close: we will write no more. */
  closeWrite(): void;
  /** Tear down both directions now. */
  close(err?: StreamError): void;
  /** Stop / restart delivering data(), so a slow consumer pushes back on the producer. */
  pause(): void;
  resume(): void;
}

/** Something that makes byte streams to targets: TCP, Shadowsocks over TCP, the echo fake, the tunnel client. */
export interface Dialer {
  dial(target: Target, signal?: AbortSignal): Promise<Duplex>;
}
