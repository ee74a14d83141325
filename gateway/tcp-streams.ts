// A session's byte streams (docs/03 §4–5): stream_open dials the upstream, stream_data goes
// to it, what it sends comes back as stream_data, with half-close and per-stream credit.
//
// Memory is bounded by construction, whatever the client does:
// - client → upstream: per stream, at most `window` bytes wait for a slow (or still dialling)
//   upstream. A "flow" client is held to that by credit (overrun = flow_violation); a client
//   without flow gets the stream closed with flow_violation too.
// - upstream → client: every upstream read pauses while the session's socket is over its
//   high-water mark (the session's SendGate; a client that stops reading stalls its upstreams,
//   not our heap), and with "flow" each stream also pauses when the client's credit for it
//   runs out, so one stalled stream never holds up the others.
import * as codec from "../protocol/codec.ts";
import { StreamCredit } from "../protocol/credit.ts";
import { Code, type ErrorCode, isErrorCode } from "../protocol/errors.ts";
import type { Feature, StreamClose, StreamOpen } from "../protocol/frames.ts";
import { PADDED_FRAMES } from "../protocol/padding.ts";
import { type Duplex, StreamError } from "../transport/stream.ts";
import type { StreamsHost } from "./stream-host.ts";

/** What the session lends its byte streams, beyond what every stream gets. */
export interface TcpHost extends StreamsHost {
  /** Our per-stream receive window; also the non-flow bound on bytes waiting for an upstream. */
  readonly window: number;
  /** The client's per-stream window (hello.window). */
  readonly clientWindow: number;
  /** What the handshake granted: "flow" (credit both ways), "half_close" (stream_end both ways). */
  readonly features: ReadonlySet<Feature>;
  /** The session is open (a stream's frames may go out). */
  readonly isOpen: boolean;
  /** The session's socket is over its high-water mark: every upstream stays paused. */
  readonly socketBlocked: boolean;
  /** Look at the socket after sending; over its high-water mark the session blocks (and calls socketChanged()). */
  checkSocket(): void;
  /** A dial took this long (for the metric). */
  dialed(seconds: number): void;
  /** A frame broke the rules and its stream pays (flow_violation), without an error frame (for the metric). */
  rejected(code: ErrorCode): void;
}

export class TcpStream {
  upstream: Duplex | null = null;
  dial: AbortController | null = new AbortController();
  dialTimer: ReturnType<typeof setTimeout> | undefined;
  /** Client bytes waiting for the dial or for the upstream's drain(). */
  pending: Uint8Array[] = [];
  pendingBytes = 0;
  /** The last write() returned false: wait for drain() before writing more. */
  upstreamBlocked = false;
  /** Bytes written while blocked, granted back to the client on drain(). */
  heldGrant = 0;
  /** flow: what the client may still send us, and we it. */
  readonly credit: StreamCredit;
  /** flow: upstream bytes that arrived beyond the client's credit (at most what a pause lets through). */
  outQueue: Uint8Array[] = [];
  outBytes = 0;
  paused = false;
  clientEnded = false;
  upstreamWriteClosed = false;
  /** Without half_close the upstream's end finishes our write side too (see upstreamEnd). */
  finishWrite = false;
  upstreamEnded = false;
  endSent = false;
  /** The upstream closed while outQueue still held data for the client: finish after it is sent. */
  upstreamClosed = false;
  closed = false;
  /** Frames to the client still to be padded (docs/03 §12). */
  padLeft = PADDED_FRAMES;

  constructor(readonly id: string, recvWindow: number, sendWindow: number) {
    this.credit = new StreamCredit(recvWindow, sendWindow);
  }
}

export class TcpStreams {
  private readonly streams = new Map<string, TcpStream>();
  /** Bytes held in the streams' queues (client bytes for an upstream, upstream bytes for the client). */
  bufferedBytes = 0;

  constructor(private readonly host: TcpHost) {}

  private get flow(): boolean {
    return this.host.features.has("flow");
  }

  get size(): number {
    return this.streams.size;
  }

  has(id: string): boolean {
    return this.streams.has(id);
  }

  get(id: string): TcpStream | undefined {
    return this.streams.get(id);
  }

  /** A stream_open for a byte stream; the session has checked the id, draining and max_streams. */
  open(f: StreamOpen): void {
    const h = this.host;
    const target = f.target ?? h.upstream.defaultTarget;
    if (!target) return h.refuse(f.stream_id, Code.target_required, "stream_open needs a target in this upstream mode");
    h.good();

    const st = new TcpStream(f.stream_id, h.window, h.clientWindow);
    this.streams.set(st.id, st);
    h.streamOpened();
    if (f.data && f.data.length > 0) this.data(st, f.data);
    if (st.closed) return;

    const ctrl = st.dial!;
    // Our own timer rather than trusting every dialer to honour the signal promptly.
    st.dialTimer = setTimeout(() => {
      ctrl.abort();
      this.closeStream(st, Code.upstream_timeout, "the upstream did not answer in time");
    }, h.dialTimeoutMs);
    const t0 = performance.now();
    let dialing: Promise<Duplex>;
    try {
      dialing = h.upstream.dialer.dial(target, ctrl.signal);
    } catch (e) {
      dialing = Promise.reject(e);
    }
    dialing.then(
      (duplex) => {
        clearTimeout(st.dialTimer);
        st.dial = null;
        if (st.closed || !h.isOpen) {
          duplex.close();
          return;
        }
        h.dialed((performance.now() - t0) / 1000);
        st.upstream = duplex;
        duplex.start({
          data: (chunk) => this.upstreamData(st, chunk),
          end: () => this.upstreamEnd(st),
          drain: () => this.upstreamDrain(st),
          close: (err) => this.upstreamClose(st, err),
        });
        if (st.closed) return;
        this.updatePause(st);
        this.flushPending(st);
      },
      (e: unknown) => {
        clearTimeout(st.dialTimer);
        st.dial = null;
        if (st.closed) return;
        const code = e instanceof StreamError ? e.code : Code.upstream_unreachable;
        h.log.debug("dial failed", { stream_id: st.id, code });
        this.closeStream(st, code, e instanceof StreamError ? e.message : "could not reach the upstream");
      },
    );
  }

  /** stream_data from the client. */
  data(st: TcpStream, data: Uint8Array): void {
    const h = this.host;
    const n = data.length;
    if (st.clientEnded) return h.reject(Code.unexpected_frame, "data after stream_end", st.id);
    h.good();
    if (this.flow && !st.credit.received(n)) return this.violation(st, "data beyond the granted window");
    h.bytes("up", n);
    if (st.finishWrite) return; // the upstream ended and the client cannot half-close: nothing more can reach it
    if (st.upstream && !st.upstreamBlocked && st.pending.length === 0) {
      if (st.upstream.write(data)) this.grant(st, n);
      else {
        st.upstreamBlocked = true;
        st.heldGrant += n;
      }
      return;
    }
    if (!this.flow && st.pendingBytes + n > h.window) {
      // Without "flow" the window is implicit; overrunning it is the same violation.
      return this.violation(
        st,
        `the upstream is slower than the client; without flow control at most ${h.window} bytes may wait per stream`,
      );
    }
    st.pending.push(data);
    st.pendingBytes += n;
    this.bufferedBytes += n;
  }

  /** stream_end from the client. */
  end(st: TcpStream): void {
    if (st.clientEnded) return;
    st.clientEnded = true;
    this.flushPending(st);
    this.maybeFinished(st);
  }

  /** window_update from the client. */
  windowUpdate(st: TcpStream, increment: number): void {
    if (!this.flow) return;
    if (!st.credit.granted(increment)) return this.violation(st, "window_update overflows 2^31-1");
    this.flushOut(st);
    if (!st.closed) this.updatePause(st);
  }

  /** stream_close from the client: forget the stream without a word. */
  clientClose(st: TcpStream): void {
    this.drop(st);
  }

  /** The session is gone: every stream goes, without a frame. */
  closeAll(): void {
    for (const st of this.streams.values()) this.drop(st);
    this.streams.clear();
  }

  /** The session's socket blocked or drained: pause or resume every upstream to match. */
  socketChanged(): void {
    for (const st of this.streams.values()) this.updatePause(st);
  }

  private flushPending(st: TcpStream): void {
    const up = st.upstream;
    if (!up || st.closed) return;
    while (st.pending.length > 0 && !st.upstreamBlocked) {
      const chunk = st.pending.shift()!;
      st.pendingBytes -= chunk.length;
      this.bufferedBytes -= chunk.length;
      if (up.write(chunk)) this.grant(st, chunk.length);
      else {
        st.upstreamBlocked = true;
        st.heldGrant += chunk.length;
      }
      if (st.closed) return;
    }
    if (st.pending.length === 0 && (st.clientEnded || st.finishWrite) && !st.upstreamWriteClosed) {
      st.upstreamWriteClosed = true;
      up.closeWrite();
    }
  }

  /** Return credit for bytes the upstream accepted, batched (StreamCredit) so window_update frames stay rare. */
  private grant(st: TcpStream, n: number): void {
    if (!this.flow || st.clientEnded) return;
    const increment = st.credit.consumed(n);
    if (increment > 0) this.host.sendControl({ type: "window_update", stream_id: st.id, increment });
  }

  private upstreamData(st: TcpStream, chunk: Uint8Array): void {
    const h = this.host;
    if (st.closed || !h.isOpen) return;
    h.bytes("down", chunk.length);
    const credit = st.credit;
    if (!this.flow) {
      this.sendData(st, chunk);
    } else if (st.outBytes > 0 || credit.send < chunk.length) {
      // Send what the credit allows now, keep the rest: the pause below stops the upstream,
      // so this holds at most one chunk.
      let rest = chunk;
      if (st.outBytes === 0 && credit.send > 0) {
        this.sendData(st, chunk.subarray(0, credit.send));
        rest = chunk.subarray(credit.send);
        credit.send = 0;
      }
      st.outQueue.push(rest);
      st.outBytes += rest.length;
      this.bufferedBytes += rest.length;
    } else {
      credit.send -= chunk.length;
      this.sendData(st, chunk);
    }
    h.checkSocket();
    this.updatePause(st);
  }

  private flushOut(st: TcpStream): void {
    const credit = st.credit;
    while (st.outQueue.length > 0 && credit.send > 0 && !st.closed) {
      const head = st.outQueue[0]!;
      const n = Math.min(head.length, credit.send);
      this.sendData(st, head.subarray(0, n));
      credit.send -= n;
      st.outBytes -= n;
      this.bufferedBytes -= n;
      if (n === head.length) st.outQueue.shift();
      else st.outQueue[0] = head.subarray(n);
    }
    this.host.checkSocket();
    if (st.outQueue.length === 0) this.maybeFinished(st);
  }

  /** stream_data frames of at most MAX_DATA_BYTES each; the stream's first PADDED_FRAMES are marked for padding. */
  private sendData(st: TcpStream, data: Uint8Array): void {
    const max = codec.MAX_DATA_BYTES;
    let at = 0;
    do {
      const part = data.length <= max ? data : data.subarray(at, Math.min(data.length, at + max));
      const padded = st.padLeft > 0;
      if (padded) st.padLeft--;
      this.host.sendData(st.id, part, padded);
      at += max;
    } while (at < data.length);
  }

  private upstreamEnd(st: TcpStream): void {
    if (st.closed) return;
    st.upstreamEnded = true;
    if (!this.host.features.has("half_close") && !st.upstreamWriteClosed) {
      // The client cannot half-close, so the stream ends when the upstream's does, as a
      // TCP socket without allowHalfOpen would: finish our side too and let it close.
      st.finishWrite = true;
      this.flushPending(st);
    }
    this.maybeFinished(st);
  }

  private upstreamDrain(st: TcpStream): void {
    if (st.closed) return;
    st.upstreamBlocked = false;
    const held = st.heldGrant;
    st.heldGrant = 0;
    if (held > 0) this.grant(st, held);
    this.flushPending(st);
  }

  private upstreamClose(st: TcpStream, err?: StreamError): void {
    if (st.closed) return;
    st.upstream = null;
    if (st.outBytes > 0 && !err) {
      // Data the client has no credit for yet is still owed to it: finish after it is sent.
      st.upstreamClosed = true;
      return;
    }
    this.closeStream(st, err?.code, err?.message, false);
  }

  /** stream_end / stream_close once everything owed to the client has been sent. */
  private maybeFinished(st: TcpStream): void {
    if (st.closed || st.outBytes > 0) return;
    if (st.upstreamEnded && !st.endSent && this.host.features.has("half_close")) {
      st.endSent = true;
      this.host.sendControl({ type: "stream_end", stream_id: st.id });
    }
    if (st.upstreamClosed) this.closeStream(st, undefined, undefined, false);
  }

  /** The client broke flow control on this stream: only the stream pays. */
  private violation(st: TcpStream, message: string): void {
    this.host.rejected(Code.flow_violation);
    this.closeStream(st, Code.flow_violation, message);
  }

  /** Gateway-initiated end of a stream: tell the client, release everything. */
  private closeStream(st: TcpStream, code?: string, message?: string, closeUpstream = true): void {
    if (st.closed) return;
    const frame: StreamClose = { type: "stream_close", stream_id: st.id };
    // Only protocol codes go on the wire (docs/03 §7); an upstream's own code becomes the closest one.
    if (code) frame.code = isErrorCode(code) ? code : code === "aborted" ? Code.cancelled : Code.upstream_reset;
    if (code && message) frame.message = message;
    // The frame first: dropping the last stream of a draining session closes the socket.
    if (this.host.isOpen) this.host.sendControl(frame);
    this.drop(st, closeUpstream ? (code ? new StreamError(code, message) : undefined) : null);
  }

  /** Forget a stream without telling the client (it closed it, or the session is ending). */
  private drop(st: TcpStream, err: StreamError | undefined | null = undefined): void {
    if (st.closed) return;
    st.closed = true;
    if (this.streams.get(st.id) === st) this.streams.delete(st.id);
    clearTimeout(st.dialTimer);
    st.dial?.abort();
    st.dial = null;
    this.bufferedBytes -= st.pendingBytes + st.outBytes;
    st.pending = [];
    st.outQueue = [];
    st.pendingBytes = st.outBytes = 0;
    const up = st.upstream;
    st.upstream = null;
    if (up && err !== null) up.close(err);
    // Last: a draining session may close its socket once its last stream is gone.
    this.host.streamClosed(0);
  }

  private updatePause(st: TcpStream): void {
    const up = st.upstream;
    if (!up || st.closed) return;
    const want = this.host.socketBlocked || st.outBytes > 0 || (this.flow && st.credit.send <= 0);
    if (want === st.paused) return;
    st.paused = want;
    if (want) up.pause();
    else up.resume();
  }
}
