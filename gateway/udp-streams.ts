// A session's UDP streams (docs/03 §11): `stream_open` with `"network":"udp"`, then every
// `stream_data` is one datagram to the target and every datagram from it one `stream_data`
// back. Datagrams may be lost but never pile up: there are no windows, and each queue on the
// way is bounded and drops (counted in `dropped`):
// - client → upstream: at most PENDING_DATAGRAMS / PENDING_BYTES wait per stream while it
//   dials; after that the PacketConn's own bounded send queue drops.
// - upstream → client: a datagram that finds the session's socket over its high-water mark is
//   dropped instead of queued (TCP streams pause their upstream there; UDP cannot).
// A stream with no datagram either way for `idleTimeoutMs` closes with `idle_timeout`.
import { Code, type ErrorCode, isErrorCode } from "../protocol/errors.ts";
import type { Frame, StreamOpen } from "../protocol/frames.ts";
import type { PacketConn } from "../transport/packet.ts";
import { StreamError } from "../transport/stream.ts";
import type { StreamsHost } from "./stream-host.ts";

/** Datagrams (and bytes) a UDP stream holds while its dial is in progress; more are dropped. */
export const PENDING_DATAGRAMS = 64;
export const PENDING_BYTES = 256 * 1024;

/** What the session lends its UDP streams, beyond what every stream gets. */
export interface UdpHost extends StreamsHost {
  readonly idleTimeoutMs: number;
  readonly maxDatagramBytes: number;
  /** The session's socket is over its high-water mark: a datagram for the client is dropped. */
  socketFull(): boolean;
}

class UdpStream {
  conn: PacketConn | null = null;
  dial: AbortController | null = new AbortController();
  dialTimer: ReturnType<typeof setTimeout> | undefined;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  lastActivity = Date.now();
  pending: Uint8Array[] = [];
  pendingBytes = 0;
  /** Dropped here (full pending queue, oversize, a full socket); the conn counts its own. */
  dropped = 0;
  closed = false;
  constructor(readonly id: string) {}
}

export class UdpStreams {
  private readonly streams = new Map<string, UdpStream>();
  /** Datagrams dropped by streams already closed. */
  private droppedClosed = 0;
  datagramsUp = 0;
  datagramsDown = 0;

  constructor(private readonly host: UdpHost) {}

  get size(): number {
    return this.streams.size;
  }

  get dropped(): number {
    let n = this.droppedClosed;
    for (const st of this.streams.values()) n += st.dropped + (st.conn?.dropped ?? 0);
    return n;
  }

  /** Bytes held in pending queues (the memory bound the flood test checks). */
  get pendingBytes(): number {
    let n = 0;
    for (const st of this.streams.values()) n += st.pendingBytes;
    return n;
  }

  has(id: string): boolean {
    return this.streams.has(id);
  }

  /** A stream_open with network "udp"; the session has checked the id, draining and max_streams. */
  open(f: StreamOpen, granted: boolean): void {
    const h = this.host;
    const dialer = h.upstream.packetDialer;
    if (!granted || !dialer) {
      return h.refuse(f.stream_id, Code.udp_unsupported, "this session did not negotiate the udp feature");
    }
    const target = f.target ?? h.upstream.defaultTarget;
    if (!target) return h.refuse(f.stream_id, Code.target_required, "stream_open needs a target in this upstream mode");
    h.good();
    const st = new UdpStream(f.stream_id);
    this.streams.set(st.id, st);
    h.streamOpened();
    this.armIdle(st);
    if (f.data) this.data(st.id, f.data);

    const ctrl = st.dial!;
    st.dialTimer = setTimeout(() => {
      ctrl.abort();
      this.closeStream(st, Code.upstream_timeout, "the upstream did not answer in time");
    }, h.dialTimeoutMs);
    let dialing: Promise<PacketConn>;
    try {
      dialing = dialer.dial(target, ctrl.signal);
    } catch (e) {
      dialing = Promise.reject(e);
    }
    dialing.then(
      (conn) => {
        clearTimeout(st.dialTimer);
        st.dial = null;
        if (st.closed) return conn.close();
        st.conn = conn;
        conn.start({
          data: (d) => this.fromUpstream(st, d),
          close: (err) => this.closeStream(st, err?.code, err?.message, false),
        });
        const pending = st.pending;
        st.pending = [];
        st.pendingBytes = 0;
        for (const d of pending) if (!st.closed) this.toUpstream(st, d);
      },
      (e: unknown) => {
        clearTimeout(st.dialTimer);
        st.dial = null;
        if (st.closed) return;
        const code = e instanceof StreamError ? e.code : Code.upstream_unreachable;
        h.log.debug("udp dial failed", { stream_id: st.id, code });
        this.closeStream(st, code, e instanceof StreamError ? e.message : "could not reach the upstream");
      },
    );
  }

  /** One datagram from the client. */
  data(id: string, datagram: Uint8Array): void {
    const st = this.streams.get(id)!;
    const h = this.host;
    if (datagram.length > h.maxDatagramBytes) {
      st.dropped++;
      // The stream stays: losing a datagram is what UDP does anyway.
      return h.reject(
        Code.datagram_too_large,
        `a datagram of ${datagram.length} bytes exceeds max_datagram_bytes ${h.maxDatagramBytes}`,
        id,
      );
    }
    h.good();
    st.lastActivity = Date.now();
    this.datagramsUp++;
    h.bytes("up", datagram.length);
    if (st.conn) return this.toUpstream(st, datagram);
    if (st.pending.length >= PENDING_DATAGRAMS || st.pendingBytes + datagram.length > PENDING_BYTES) {
      st.dropped++;
      return;
    }
    // The decoder's payload is a view into the received message; keep only the datagram.
    st.pending.push(datagram.slice());
    st.pendingBytes += datagram.length;
  }

  /** stream_end makes no sense for datagrams: reported, the stream goes on. */
  end(id: string): void {
    this.host.reject(Code.unexpected_frame, "stream_end on a UDP stream (close it with stream_close)", id);
  }

  /** The client closed the stream. */
  clientClose(id: string): void {
    const st = this.streams.get(id);
    if (st) this.drop(st);
  }

  /** Every stream ends: the session is going away (`code` sent when the session is still open), or it is gone (no code). */
  closeAll(code?: ErrorCode, message?: string): void {
    for (const st of [...this.streams.values()]) {
      if (code) this.closeStream(st, code, message);
      else this.drop(st);
    }
  }

  private toUpstream(st: UdpStream, datagram: Uint8Array): void {
    // A refusal is counted in the conn's own `dropped`.
    st.conn!.send(datagram);
  }

  private fromUpstream(st: UdpStream, datagram: Uint8Array): void {
    if (st.closed) return;
    const h = this.host;
    if (datagram.length > h.maxDatagramBytes || h.socketFull()) {
      st.dropped++;
      return;
    }
    st.lastActivity = Date.now();
    this.datagramsDown++;
    h.bytes("down", datagram.length);
    h.sendData(st.id, datagram);
  }

  private armIdle(st: UdpStream): void {
    const ms = this.host.idleTimeoutMs;
    const check = () => {
      if (st.closed) return;
      const idle = Date.now() - st.lastActivity;
      if (idle >= ms) return this.closeStream(st, Code.idle_timeout, `no datagram either way for ${ms} ms`);
      // Lazily re-armed, like the session's idle timer: one timer per stream, not one per datagram.
      st.idleTimer = setTimeout(check, ms - idle);
    };
    st.idleTimer = setTimeout(check, ms);
  }

  /** Gateway-initiated end: tell the client, release everything. */
  private closeStream(st: UdpStream, code?: string, message?: string, closeConn = true): void {
    if (st.closed) return;
    const frame: Frame = { type: "stream_close", stream_id: st.id };
    if (code) frame.code = isErrorCode(code) ? code : code === "aborted" ? Code.cancelled : Code.upstream_unreachable;
    if (code && message) frame.message = message;
    this.host.sendControl(frame);
    this.drop(st, closeConn ? (code ? new StreamError(code, message) : undefined) : null);
  }

  private drop(st: UdpStream, err: StreamError | undefined | null = undefined): void {
    if (st.closed) return;
    st.closed = true;
    if (this.streams.get(st.id) === st) this.streams.delete(st.id);
    clearTimeout(st.dialTimer);
    clearTimeout(st.idleTimer);
    st.dial?.abort();
    st.dial = null;
    st.pending = [];
    st.pendingBytes = 0;
    const conn = st.conn;
    st.conn = null;
    if (conn && err !== null) conn.close(err);
    const dropped = st.dropped + (conn?.dropped ?? 0);
    this.droppedClosed += dropped;
    // Last: a draining session may close its socket once its last stream is gone.
    this.host.streamClosed(dropped);
  }
}
