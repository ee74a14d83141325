// The HTTP/2 transport's message layer (docs/03-httvps-protocol.md §1.2): WebSocket-like
// messages as length-prefixed records on one byte stream each way — the h2 request body
// (client → gateway) and the response body (gateway → client) — exposed as the same
// SessionSocket/SessionHandler pair the WebSocket adapters give, so the session layers never
// learn which transport carries them. Runtime-free: each side's glue feeds bytes in
// (receive/ended/failed/writable) and gives a ByteSink for the bytes out.
//
//   record = kind (1 byte) | length (uint32, big-endian) | payload (length bytes)
//   kind 0: text message (UTF-8), 1: binary message, 2: close (uint16 code | UTF-8 reason)
import { CLOSE_GRACE_MS, type SessionHandler, type SessionSocket, WS_CLOSE_TOO_BIG, WS_MAX_MESSAGE } from "./types.ts";
import { guard, Watermark } from "./web-socket.ts";

export const RECORD_TEXT = 0;
export const RECORD_BINARY = 1;
export const RECORD_CLOSE = 2;
export const RECORD_HEADER_BYTES = 5;
/** A close record's reason, like a WebSocket close frame's: at most 123 bytes of UTF-8. */
const MAX_CLOSE_REASON = 123;
/** Close code for a record stream that broke its format (RFC 6455's "protocol error"). */
export const CLOSE_PROTOCOL_ERROR = 1002;
/** Close code for a text record that is not UTF-8 (RFC 6455's "invalid frame payload data"). */
export const CLOSE_BAD_UTF8 = 1007;
/** What the handler hears when the stream ended or broke without a close record (RFC 6455's 1006). */
export const CLOSE_ABNORMAL = 1006;

export type RecordErrorCode = "bad_record" | "record_too_large" | "bad_utf8" | "truncated_record";

/** A byte stream that is not a valid record stream; `closeCode` is what the socket closes with. */
export class RecordError extends Error {
  constructor(
    readonly code: RecordErrorCode,
    message: string,
    readonly closeCode: number,
  ) {
    super(message);
    this.name = "RecordError";
  }
}

export type ParsedRecord =
  | { kind: typeof RECORD_TEXT; text: string }
  | { kind: typeof RECORD_BINARY; bytes: Uint8Array }
  | { kind: typeof RECORD_CLOSE; code: number; reason: string };

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function record(kind: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
  out[0] = kind;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, RECORD_HEADER_BYTES);
  return out;
}

/** One message as one record (the copy buys a single write per message). */
export function encodeMessage(msg: string | Uint8Array): Uint8Array {
  return typeof msg === "string" ? record(RECORD_TEXT, utf8.encode(msg)) : record(RECORD_BINARY, msg);
}

export function encodeClose(code: number, reason = ""): Uint8Array {
  let r = utf8.encode(reason);
  if (r.length > MAX_CLOSE_REASON) r = utf8.encode(reason.slice(0, MAX_CLOSE_REASON / 3)); // whole characters, still ≤ 123 bytes
  const payload = new Uint8Array(2 + r.length);
  new DataView(payload.buffer).setUint16(0, code & 0xffff);
  payload.set(r, 2);
  return record(RECORD_CLOSE, payload);
}

/**
 * Splits a byte stream into records, across any chunking. A record inside one chunk is handed
 * out as a view of it (no copy); one spread over chunks is assembled into its own buffer.
 */
export class RecordDecoder {
  private header = new Uint8Array(RECORD_HEADER_BYTES);
  private headerHave = 0;
  private kind = 0;
  private payload: Uint8Array | undefined;
  private payloadHave = 0;
  private failed = false;

  constructor(private readonly maxPayload: number = WS_MAX_MESSAGE) {}

  /** Calls `onRecord` for each complete record; throws a RecordError (and stays failed) on bad input. */
  push(chunk: Uint8Array, onRecord: (r: ParsedRecord) => void): void {
    if (this.failed) throw new RecordError("bad_record", "the record stream already failed", CLOSE_PROTOCOL_ERROR);
    let at = 0;
    while (at < chunk.length) {
      if (this.payload === undefined) {
        if (this.headerHave === 0 && chunk.length - at >= RECORD_HEADER_BYTES) {
          // The common case: the whole header, and often the whole record, in this chunk.
          const len = this.start(chunk[at]!, readUint32(chunk, at + 1));
          at += RECORD_HEADER_BYTES;
          if (chunk.length - at >= len) {
            this.emit(chunk.subarray(at, at + len), onRecord);
            at += len;
            continue;
          }
          this.payload = new Uint8Array(len);
          this.payloadHave = 0;
          continue;
        }
        const take = Math.min(RECORD_HEADER_BYTES - this.headerHave, chunk.length - at);
        this.header.set(chunk.subarray(at, at + take), this.headerHave);
        this.headerHave += take;
        at += take;
        if (this.headerHave < RECORD_HEADER_BYTES) return;
        this.headerHave = 0;
        const len = this.start(this.header[0]!, readUint32(this.header, 1));
        this.payload = new Uint8Array(len);
        this.payloadHave = 0;
        if (len === 0) this.finishPayload(onRecord);
        continue;
      }
      const take = Math.min(this.payload.length - this.payloadHave, chunk.length - at);
      this.payload.set(chunk.subarray(at, at + take), this.payloadHave);
      this.payloadHave += take;
      at += take;
      if (this.payloadHave === this.payload.length) this.finishPayload(onRecord);
    }
  }

  /** The byte stream ended: throws `truncated_record` if it stopped inside a record. */
  end(): void {
    if (this.failed) return;
    if (this.headerHave > 0 || this.payload !== undefined) {
      this.failed = true;
      throw new RecordError("truncated_record", "the stream ended inside a record", CLOSE_PROTOCOL_ERROR);
    }
  }

  private start(kind: number, len: number): number {
    if (kind !== RECORD_TEXT && kind !== RECORD_BINARY && kind !== RECORD_CLOSE) {
      this.fail("bad_record", `unknown record kind ${kind}`, CLOSE_PROTOCOL_ERROR);
    }
    if (kind === RECORD_CLOSE ? len < 2 || len > 2 + MAX_CLOSE_REASON : len > this.maxPayload) {
      if (kind === RECORD_CLOSE) {
        this.fail("bad_record", `a close record of ${len} bytes (expected 2-${2 + MAX_CLOSE_REASON})`, CLOSE_PROTOCOL_ERROR);
      }
      this.fail("record_too_large", `a record of ${len} bytes (at most ${this.maxPayload})`, WS_CLOSE_TOO_BIG);
    }
    this.kind = kind;
    return len;
  }

  private finishPayload(onRecord: (r: ParsedRecord) => void): void {
    const p = this.payload!;
    this.payload = undefined;
    this.emit(p, onRecord);
  }

  private emit(p: Uint8Array, onRecord: (r: ParsedRecord) => void): void {
    if (this.kind === RECORD_BINARY) return onRecord({ kind: RECORD_BINARY, bytes: p });
    const textAt = this.kind === RECORD_CLOSE ? 2 : 0;
    let text: string;
    try {
      text = strictUtf8.decode(p.subarray(textAt));
    } catch {
      this.fail("bad_utf8", "a text or close record that is not UTF-8", CLOSE_BAD_UTF8);
    }
    if (this.kind === RECORD_TEXT) onRecord({ kind: RECORD_TEXT, text });
    else onRecord({ kind: RECORD_CLOSE, code: readUint16(p, 0), reason: text });
  }

  private fail(code: RecordErrorCode, message: string, closeCode: number): never {
    this.failed = true;
    throw new RecordError(code, message, closeCode);
  }
}

const readUint32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
const readUint16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;

/** Where a RecordSocket's outgoing bytes go: one direction of an h2 stream. */
export interface ByteSink {
  /** Queue bytes; never refuses (the watermark above keeps the queue bounded). */
  write(bytes: Uint8Array): void;
  /** Bytes queued and not yet handed to the network (the h2 stream's own buffer). */
  readonly buffered: number;
  /** End this direction after what is queued. */
  end(): void;
  /** Tear the stream down at once (RST_STREAM). */
  abort(): void;
}

export interface RecordSocketOptions {
  remoteAddress: string;
  maxMessageBytes?: number;
  /** The sink reports 'writable' itself (Node streams' 'drain'); otherwise buffered is polled while above the mark. */
  sinkSignalsDrain?: boolean;
  /** The handler threw: the socket was closed with 1011; this is for the log. */
  onError?: (err: unknown) => void;
  closeGraceMs?: number;
}

/**
 * A SessionSocket over a record stream, with the WebSocket semantics the session layers rely
 * on: close(code, reason) sends a close record and ends our side; the handler's close() comes
 * exactly once — when the peer answered (its close record or its end) after our close, at once
 * after the peer's close record (which we echo) or a broken stream (1006), or after a bad
 * record (1002, 1007, 1009, also sent to the peer). A peer that does not end its side within
 * the grace after the close has the stream reset. bufferedAmount/drain() follow
 * WS_HIGH_WATER/WS_LOW_WATER like the WebSocket adapters.
 */
export class RecordSocket implements SessionSocket {
  readonly remoteAddress: string;
  private handler: SessionHandler | undefined;
  private readonly decoder: RecordDecoder;
  private readonly mark: Watermark;
  /** A close record went out or the stream broke: no more sends, no more messages to the handler. */
  private closing = false;
  /** The handler heard close(). */
  private finished = false;
  /** Our direction was ended or aborted. */
  private sinkDone = false;
  private peerEnded = false;
  private aborted = false;
  private graceTimer: ReturnType<typeof setTimeout> | undefined;
  private localClose: [number, string] | undefined;

  constructor(
    private readonly sink: ByteSink,
    private readonly opts: RecordSocketOptions,
  ) {
    this.remoteAddress = opts.remoteAddress;
    this.decoder = new RecordDecoder(opts.maxMessageBytes ?? WS_MAX_MESSAGE);
    this.mark = new Watermark(() => this.sink.buffered, () => this.run(() => this.handler?.drain()), !opts.sinkSignalsDrain);
  }

  /** Hand the socket to its session; from now on every event goes to the handler `accept` returns. */
  start(accept: (socket: SessionSocket) => SessionHandler): void {
    this.run(() => (this.handler = accept(this)));
  }

  // ---- SessionSocket ----

  send(msg: string | Uint8Array): void {
    if (this.closing) return;
    this.sink.write(encodeMessage(msg));
    this.mark.sent();
  }

  get bufferedAmount(): number {
    return this.sinkDone ? 0 : this.sink.buffered;
  }

  close(code = 1000, reason = ""): void {
    if (this.closing) return;
    this.localClose = [code, reason];
    this.sendCloseAndEnd(code, reason);
    this.armGrace();
  }

  // ---- from the glue ----

  /** Bytes from the peer. */
  receive(chunk: Uint8Array): void {
    if (this.finished || this.peerEnded) return;
    try {
      this.decoder.push(chunk, (r) => this.onRecord(r));
    } catch (e) {
      if (e instanceof RecordError) this.protocolError(e);
      else throw e;
    }
  }

  /** The peer ended its direction. */
  ended(): void {
    if (this.peerEnded) return;
    this.peerEnded = true;
    clearTimeout(this.graceTimer);
    if (!this.finished) {
      try {
        this.decoder.end();
      } catch (e) {
        if (e instanceof RecordError) return this.protocolError(e);
        throw e;
      }
    }
    this.endSink();
    // After our close: the orderly end. Without any close record: like a TCP drop under a WebSocket.
    this.finish(...(this.localClose ?? [CLOSE_ABNORMAL, "the stream ended without a close record"]));
  }

  /** The stream broke (reset, connection lost). */
  failed(why: string): void {
    this.peerEnded = true;
    clearTimeout(this.graceTimer);
    this.abortSink();
    this.finish(...(this.localClose ?? [CLOSE_ABNORMAL, why]));
  }

  /** The sink's queue went down (Node's 'drain', a web stream's pull). */
  writable(): void {
    this.mark.check();
  }

  // ---- inside ----

  private onRecord(r: ParsedRecord): void {
    if (this.closing) {
      // Waiting for the peer's answer to our close: its close record ends the wait.
      if (r.kind === RECORD_CLOSE && this.localClose) this.finish(...this.localClose);
      return;
    }
    if (r.kind === RECORD_CLOSE) {
      this.sendCloseAndEnd(r.code, r.reason); // the echo, as a WebSocket peer answers a close frame
      this.armGrace();
      return this.finish(r.code, r.reason);
    }
    if (r.kind === RECORD_TEXT) return this.run(() => this.handler?.message(r.text));
    return this.run(() => this.handler?.message(r.bytes));
  }

  private protocolError(e: RecordError): void {
    if (!this.closing) this.sendCloseAndEnd(e.closeCode, e.message);
    if (this.peerEnded) this.endSink();
    else this.armGrace();
    this.finish(e.closeCode, e.message);
  }

  private sendCloseAndEnd(code: number, reason: string): void {
    this.closing = true;
    if (this.sinkDone) return;
    this.sink.write(encodeClose(code, reason));
    this.endSink();
  }

  private endSink(): void {
    if (this.sinkDone) return;
    this.sinkDone = true;
    this.sink.end();
  }

  private abortSink(): void {
    this.closing = true;
    if (this.aborted) return;
    this.aborted = true;
    this.sinkDone = true;
    try {
      this.sink.abort();
    } catch {
      // already gone
    }
  }

  /** Bound the wait for the peer's end after a close: then the stream is reset. */
  private armGrace(): void {
    if (this.graceTimer !== undefined || this.peerEnded) return;
    this.graceTimer = setTimeout(() => {
      this.abortSink();
      this.finish(...(this.localClose ?? [CLOSE_ABNORMAL, "the peer did not end the stream after the close"]));
    }, this.opts.closeGraceMs ?? CLOSE_GRACE_MS);
  }

  /** The handler hears close(), exactly once. */
  private finish(code: number, reason: string): void {
    this.closing = true;
    this.mark.stop();
    if (this.finished) return;
    this.finished = true;
    const h = this.handler;
    this.handler = undefined;
    if (h) this.run(() => h.close(code, reason));
  }

  private run(fn: () => void): void {
    guard(this, this.opts.onError, fn);
  }
}

/** The slice of a Node stream.Duplex (an Http2Stream) that attachNodeStream uses. */
export interface NodeDuplexLike {
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  readonly writableLength: number;
  on(event: "data", fn: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "drain", fn: () => void): unknown;
  on(event: "error", fn: (e: Error) => void): unknown;
  on(event: "close", fn: () => void): unknown;
}

/**
 * A RecordSocket on a node:http2 stream (the Node gateway's, and the client's on every runtime):
 * its write queue is the sink, its 'drain' the writable signal.
 */
export function attachNodeStream(
  stream: NodeDuplexLike,
  opts: Omit<RecordSocketOptions, "sinkSignalsDrain">,
  accept: (s: SessionSocket) => SessionHandler,
): RecordSocket {
  const socket = new RecordSocket(
    {
      write: (b) => void stream.write(b),
      get buffered() {
        return stream.writableLength;
      },
      end: () => stream.end(),
      abort: () => stream.destroy(),
    },
    { ...opts, sinkSignalsDrain: true },
  );
  socket.start(accept);
  // Plain Uint8Array views, not Buffers: handlers get the same type on every transport.
  stream.on("data", (c) => socket.receive(new Uint8Array(c.buffer, c.byteOffset, c.byteLength)));
  stream.on("end", () => socket.ended());
  stream.on("drain", () => socket.writable());
  stream.on("error", (e) => socket.failed(e.message));
  stream.on("close", () => socket.failed("the stream closed"));
  return socket;
}

/**
 * A RecordSocket on a request body (in) and a response body it returns (out), for servers
 * that speak Request/Response (Deno.serve). The response body is pulled by the server as the
 * connection takes it; what waits here is the socket's bufferedAmount.
 */
export function attachWebStreams(
  body: ReadableStream<Uint8Array>,
  opts: Omit<RecordSocketOptions, "sinkSignalsDrain">,
  accept: (s: SessionSocket) => SessionHandler,
): ReadableStream<Uint8Array> {
  const queue: Uint8Array[] = [];
  let queued = 0;
  let ending = false;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let wake: (() => void) | undefined;
  const reader = body.getReader();
  const flushEnd = () => {
    if (ending && queue.length === 0) {
      try {
        controller.close();
      } catch {
        // cancelled meanwhile
      }
    }
  };
  const pull = async (): Promise<void> => {
    while (queue.length === 0 && !ending) await new Promise<void>((resolve) => (wake = resolve));
    const next = queue.shift();
    if (next !== undefined) {
      queued -= next.length;
      controller.enqueue(next);
    }
    flushEnd();
    socket.writable();
  };
  const out = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull,
      cancel() {
        void reader.cancel().catch(() => {});
        socket.failed("the response stream was cancelled");
      },
    },
    { highWaterMark: 0 },
  );
  const socket = new RecordSocket(
    {
      write(b) {
        queue.push(b);
        queued += b.length;
        wake?.();
        wake = undefined;
      },
      get buffered() {
        return queued;
      },
      end() {
        ending = true;
        wake?.();
        wake = undefined;
      },
      abort() {
        queue.length = 0;
        queued = 0;
        try {
          controller.error(new Error("reset"));
        } catch {
          // already closed
        }
        void reader.cancel().catch(() => {});
      },
    },
    { ...opts, sinkSignalsDrain: true },
  );
  socket.start(accept);
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return socket.ended();
        socket.receive(value);
      }
    } catch (e) {
      socket.failed((e as Error).message);
    }
  })();
  return out;
}
