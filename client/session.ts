// The client side of one HTTVPS session (docs/03-httvps-protocol.md): one WebSocket, hello →
// auth_result, then streams that are Duplexes (transport/stream.ts), so the SOCKS5 and HTTP
// proxies pipe local sockets into them exactly as they would into TCP.
//
// Memory is bounded both ways:
// - gateway → app: the gateway may only send `window` bytes per stream beyond what we have
//   handed to the app; credit goes back (window_update) only as the app takes bytes, so a
//   slow local reader stops its own stream at the gateway and nothing else.
// - app → gateway: a stream sends only within the gateway's credit and while the socket is
//   under its high-water mark; beyond that write() returns false and the local socket pauses.
import type { Logger } from "../logging/logger.ts";
import type { AccessKey } from "../protocol/access-key.ts";
import * as codec from "../protocol/codec.ts";
import { Code } from "../protocol/errors.ts";
import { type Feature, type Frame, PROTOCOL_VERSION, type SessionLimits } from "../protocol/frames.ts";
import { runtime, type SessionHandler, type SessionSocket, WS_HIGH_WATER } from "../runtime/index.ts";
import { type Duplex, type DuplexHandlers, StreamError, type Target } from "../transport/stream.ts";
import { DatagramStream, udpUnsupported } from "./datagram-stream.ts";
import { GatewaySocketError, type GatewayTls, openGatewaySocket, type OpenSocket } from "./gateway-socket.ts";

/** hello.client_version: the gateway logs it, so it says which runtime a misbehaving client was on. */
export const CLIENT_VERSION = `httvps/0.1.0 ${runtime}`;
/** What we let the gateway send per stream ahead of the app: 1 MiB is ~80 Mbit/s per stream at 100 ms RTT. */
export const DEFAULT_CLIENT_WINDOW = 1024 * 1024;
/** A stream's write() reports false above this many queued bytes, so its source pauses. */
export const STREAM_HIGH_WATER = 128 * 1024;
const REQUESTED: Feature[] = ["flow", "binary", "half_close", "udp"];
const BLOCKED_POLL_MS = 100;
const MAX_CREDIT = 2 ** 31 - 1;
const MAX_BAD_FRAMES = 100;

/** A client-side failure (a session that could not open, a bad access key): `code` is a protocol/errors.ts code. */
export class ClientError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "ClientError";
  }
}

export interface ClientSessionOptions {
  key: AccessKey;
  tls?: GatewayTls;
  /** Per-stream credit granted to the gateway (hello.window). */
  window?: number;
  clientVersion?: string;
  /** Bound on the WebSocket open and, separately, on the wait for auth_result. Default 15 s. */
  connectTimeoutMs?: number;
  /** Overrides limits.ping_interval_ms for our own pings. */
  pingIntervalMs?: number;
  /** The gateway counts as gone after this long without a message. Default: min(idle timeout, 2 pings + 5 s). */
  deadAfterMs?: number;
  logger?: Logger;
  /** Test seam: how the WebSocket is opened. */
  openSocket?: OpenSocket;
}

export interface SessionEvents {
  /** The gateway is going away: open no new streams here (open ones may finish). */
  goaway?(session: ClientSession, code: string, message: string): void;
  /** The session is over; every stream on it has been closed with session_closed. */
  closed?(session: ClientSession, code: string, message: string): void;
}

type State = "handshake" | "open" | "draining" | "closed";

export class ClientSession {
  sessionId = "";
  features = new Set<Feature>();
  limits: SessionLimits = { ...codec.DEFAULT_LIMITS };
  /** The gateway's per-stream credit for us. */
  sendWindow = codec.DEFAULT_WINDOW;
  readonly recvWindow: number;
  bytesUp = 0;
  bytesDown = 0;

  private state: State = "handshake";
  private socket: SessionSocket | null = null;
  private readonly streams = new Map<string, TunnelStream>();
  /** UDP streams (docs/03 §11): same id counter and max_streams as the byte streams. */
  private readonly datagrams = new Map<string, DatagramStream>();
  private nextId = 1;
  private blocked = false;
  private blockedPoll: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private deadTimer: ReturnType<typeof setTimeout> | undefined;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private lastReceived = Date.now();
  private pingSeq = 0;
  private badFrames = 0;
  /** An error frame without a stream (revoked during the session…) explains the close that follows. */
  private lastError: { code: string; message: string } | undefined;
  private localClose: { code: string; message: string } | undefined;
  private settle: { resolve: () => void; reject: (e: ClientError) => void } | undefined;
  private readonly log: Logger | undefined;

  private constructor(
    private readonly opts: ClientSessionOptions,
    private readonly events: SessionEvents,
  ) {
    this.recvWindow = Math.min(codec.MAX_WINDOW, Math.max(codec.MIN_WINDOW, Math.floor(opts.window ?? DEFAULT_CLIENT_WINDOW)));
    this.log = opts.logger;
  }

  /** Connects, says hello and resolves once the gateway accepted us; rejects with a ClientError. */
  static async open(opts: ClientSessionOptions, events: SessionEvents = {}): Promise<ClientSession> {
    const s = new ClientSession(opts, events);
    const timeoutMs = opts.connectTimeoutMs ?? 15_000;
    const authenticated = new Promise<void>((resolve, reject) => (s.settle = { resolve, reject }));
    authenticated.catch(() => {}); // observed below, or the open itself failed first
    try {
      await (opts.openSocket ?? openGatewaySocket)(opts.key, opts.tls ?? {}, timeoutMs, (socket): SessionHandler => {
        s.socket = socket;
        s.sendHello();
        s.handshakeTimer = setTimeout(
          () => s.abort(new ClientError(Code.unavailable, `no auth_result from the gateway in ${timeoutMs} ms`)),
          timeoutMs,
        );
        return { message: (m) => s.message(m), drain: () => s.drain(), close: (code, reason) => s.socketClosed(code, reason) };
      });
    } catch (e) {
      s.state = "closed";
      if (e instanceof GatewaySocketError) throw new ClientError(e.code, e.message);
      throw new ClientError(Code.unavailable, (e as Error).message);
    }
    await authenticated;
    return s;
  }

  get isOpen(): boolean {
    return this.state === "open";
  }
  get isDraining(): boolean {
    return this.state === "draining";
  }
  get isClosed(): boolean {
    return this.state === "closed";
  }
  get streamCount(): number {
    return this.streams.size + this.datagrams.size;
  }
  get flow(): boolean {
    return this.features.has("flow");
  }
  get binary(): boolean {
    return this.features.has("binary");
  }

  /** Open a stream to `target`. It is usable at once (the gateway buffers while it dials). */
  openStream(target: Target): TunnelStream {
    if (this.state === "draining") {
      throw new StreamError(Code.shutdown, "the gateway is going away; open the stream on a new session");
    }
    if (this.state !== "open") throw new StreamError(Code.session_closed, "the session is not open");
    if (this.streamCount >= this.limits.max_streams) {
      throw new StreamError(Code.too_many_streams, `at most ${this.limits.max_streams} streams per session`);
    }
    const id = String(this.nextId++);
    const st = new TunnelStream(this, id, target);
    this.streams.set(id, st);
    this.sendFrame({ type: "stream_open", stream_id: id, target: { host: target.host, port: target.port } });
    return st;
  }

  /** Open a UDP stream to `target` (needs the udp feature): datagrams go out at once, no dial to wait for. */
  openDatagrams(target: Target): DatagramStream {
    if (this.state === "draining") {
      throw new StreamError(Code.shutdown, "the gateway is going away; open the stream on a new session");
    }
    if (this.state !== "open") throw new StreamError(Code.session_closed, "the session is not open");
    if (!this.features.has("udp")) throw udpUnsupported();
    if (this.streamCount >= this.limits.max_streams) {
      throw new StreamError(Code.too_many_streams, `at most ${this.limits.max_streams} streams per session`);
    }
    const id = String(this.nextId++);
    const st = new DatagramStream(this, id, target);
    this.datagrams.set(id, st);
    this.sendFrame({ type: "stream_open", stream_id: id, target: { host: target.host, port: target.port }, network: "udp" });
    return st;
  }

  /** End the session: every stream closes with session_closed. */
  close(code: string = "client_closed", message = "closed by the client"): void {
    if (this.state === "closed") return;
    this.localClose ??= { code, message };
    try {
      this.socket?.close(1000, code.slice(0, 64));
    } catch {
      // the socket is already gone; teardown below still runs
    }
    this.teardown(code, message);
  }

  // ---- what the socket reports ----

  private message(msg: string | Uint8Array): void {
    if (this.state === "closed") return;
    this.lastReceived = Date.now();
    const limits = {
      maxFrameBytes: Math.max(codec.MAX_FRAME_BYTES, this.limits.max_frame_bytes),
      maxDataBytes: Math.max(codec.MAX_DATA_BYTES, this.limits.max_data_bytes),
    };
    const r = typeof msg === "string" ? codec.decodeText(msg, limits) : codec.decodeBinary(msg, limits);
    if (!r.ok) {
      this.log?.debug("undecodable frame from the gateway", { code: r.error.code, error: r.error.message });
      if (this.state === "handshake") {
        return this.abort(new ClientError(r.error.code, `the gateway sent an undecodable frame: ${r.error.message}`));
      }
      this.sendFrame(
        r.error.stream_id
          ? { type: "error", code: r.error.code, message: r.error.message, stream_id: r.error.stream_id }
          : { type: "error", code: r.error.code, message: r.error.message },
      );
      if (++this.badFrames >= MAX_BAD_FRAMES) this.close(Code.too_many_errors, "the gateway sent too many bad frames");
      return;
    }
    this.badFrames = 0;
    const f = r.frame;
    if (this.state === "handshake") return this.onHandshakeFrame(f);
    this.onFrame(f);
  }

  private drain(): void {
    if (this.blocked) this.unblock();
  }

  // ---- handshake ----

  private sendHello(): void {
    const k = this.opts.key;
    this.sendFrame({
      type: "hello",
      device_id: k.deviceId,
      token: k.token,
      client_version: this.opts.clientVersion ?? CLIENT_VERSION,
      features: REQUESTED,
      window: this.recvWindow,
      protocol: PROTOCOL_VERSION,
    });
  }

  private onHandshakeFrame(f: Frame): void {
    switch (f.type) {
      case "auth_result": {
        clearTimeout(this.handshakeTimer);
        if (!f.ok) return this.abort(new ClientError(f.code, f.message || f.code));
        this.sessionId = f.session_id;
        this.features = new Set(f.features);
        this.limits = f.limits;
        if (this.flow) this.sendWindow = f.window ?? codec.DEFAULT_WINDOW;
        this.state = "open";
        this.startKeepalive();
        this.log?.info("session open", { session_id: f.session_id, features: f.features });
        const s = this.settle;
        this.settle = undefined;
        s?.resolve();
        return;
      }
      case "ping":
        return this.sendFrame(f.id === undefined ? { type: "pong" } : { type: "pong", id: f.id });
      case "error":
        this.lastError = { code: f.code, message: f.message };
        return;
      default:
        return; // nothing else is meaningful before auth_result
    }
  }

  /** Fail the handshake, or end an open session, with `err`. */
  private abort(err: ClientError): void {
    if (this.state === "closed") return;
    this.localClose ??= { code: err.code, message: err.message };
    try {
      this.socket?.close(1000, err.code.slice(0, 64));
    } catch {
      // already closed
    }
    this.teardown(err.code, err.message);
  }

  // ---- frames of an open session ----

  private onFrame(f: Frame): void {
    switch (f.type) {
      case "stream_data": {
        const st = this.streams.get(f.stream_id) ?? this.datagrams.get(f.stream_id);
        if (!st) return this.unknownStream(f.stream_id);
        this.bytesDown += f.data.length;
        return st instanceof DatagramStream ? st.onDatagram(f.data) : st.onData(f.data);
      }
      case "stream_end": {
        const st = this.streams.get(f.stream_id);
        if (!st) return this.unknownStream(f.stream_id);
        return st.onRemoteEnd();
      }
      case "stream_close":
        // Both sides may close at once: a close for a stream we already forgot is normal.
        return (this.streams.get(f.stream_id) ?? this.datagrams.get(f.stream_id))?.onRemoteClose(f.code, f.message);
      case "window_update":
        if (this.flow) this.streams.get(f.stream_id)?.onCredit(f.increment);
        return;
      case "ping":
        return this.sendFrame(f.id === undefined ? { type: "pong" } : { type: "pong", id: f.id });
      case "pong":
        return;
      case "error": {
        const st = f.stream_id === undefined ? undefined : this.streams.get(f.stream_id);
        this.log?.debug("error from the gateway", { code: f.code, stream_id: f.stream_id, error: f.message });
        // A datagram stream may lose a datagram (datagram_too_large): it goes on.
        if (f.stream_id !== undefined && this.datagrams.has(f.stream_id)) return;
        // The gateway dropped bytes of this stream (or lost track of it): it has a hole, so end it.
        if (st) return st.abort(new StreamError(f.code, f.message));
        this.lastError = { code: f.code, message: f.message };
        return;
      }
      case "goaway":
        return this.onGoaway(f.code, f.message ?? "the gateway is going away");
      default:
        // hello, auth_result, stream_open: frames a gateway does not send.
        return this.sendFrame({ type: "error", code: Code.unexpected_frame, message: `a gateway does not send ${f.type}` });
    }
  }

  private unknownStream(id: string): void {
    // Ids are a counter: data for an id we issued is in flight for a stream we just closed.
    const n = Number(id);
    if (Number.isInteger(n) && n >= 1 && n < this.nextId) return;
    this.sendFrame({ type: "error", code: Code.unknown_stream, message: "no such stream", stream_id: id });
  }

  private onGoaway(code: string, message: string): void {
    if (this.state !== "open") return;
    this.log?.info("goaway from the gateway", { code, session_id: this.sessionId });
    if (code === Code.idle_timeout) {
      this.lastError = { code, message };
      return;
    }
    this.state = "draining";
    this.events.goaway?.(this, code, message);
    if (this.streams.size === 0) this.close(code, message);
  }

  // ---- keepalive ----

  private startKeepalive(): void {
    const pingMs = Math.max(1000, this.opts.pingIntervalMs ?? this.limits.ping_interval_ms);
    const deadMs = this.opts.deadAfterMs ?? Math.min(this.limits.idle_timeout_ms, 2 * pingMs + 5000);
    this.pingTimer = setInterval(() => this.sendFrame({ type: "ping", id: String(++this.pingSeq) }), pingMs);
    const check = () => {
      const quiet = Date.now() - this.lastReceived;
      if (quiet >= deadMs) return this.abort(new ClientError(Code.idle_timeout, `nothing from the gateway for ${quiet} ms`));
      this.deadTimer = setTimeout(check, deadMs - quiet);
    };
    this.deadTimer = setTimeout(check, deadMs);
  }

  // ---- output ----

  /** Whether stream data may go out now (the socket is under its high-water mark). */
  get canSend(): boolean {
    if (this.state === "closed" || !this.socket) return false;
    if (this.blocked) return false;
    if (this.socket.bufferedAmount > WS_HIGH_WATER) {
      this.block();
      return false;
    }
    return true;
  }

  sendFrame(frame: Frame): void {
    if (this.state === "closed" || !this.socket) return;
    const compact = this.binary &&
      (frame.type === "stream_data" || frame.type === "window_update" || frame.type === "stream_end");
    this.socket.send(compact ? codec.encodeBinary(frame) : codec.encodeText(frame));
  }

  sendData(id: string, data: Uint8Array): void {
    if (this.state === "closed" || !this.socket) return;
    this.bytesUp += data.length;
    this.socket.send(this.binary ? codec.encodeStreamDataBinary(id, data) : codec.encodeStreamDataText(id, data));
  }

  get maxData(): number {
    return Math.min(codec.MAX_DATA_BYTES, this.limits.max_data_bytes);
  }

  private block(): void {
    if (this.blocked) return;
    this.blocked = true;
    // drain() is the adapter's promise; a slow poll rules out a stall if it never comes.
    const poll = () => {
      this.blockedPoll = undefined;
      if (!this.blocked || this.state === "closed") return;
      if ((this.socket?.bufferedAmount ?? 0) <= WS_HIGH_WATER / 2) this.unblock();
      else this.blockedPoll = setTimeout(poll, BLOCKED_POLL_MS);
    };
    this.blockedPoll = setTimeout(poll, BLOCKED_POLL_MS);
  }

  private unblock(): void {
    this.blocked = false;
    clearTimeout(this.blockedPoll);
    this.blockedPoll = undefined;
    for (const st of this.streams.values()) {
      st.flush();
      if (this.blocked) break;
    }
  }

  // ---- stream bookkeeping (called by TunnelStream) ----

  forget(st: TunnelStream | DatagramStream): void {
    if (this.streams.get(st.id) === st) this.streams.delete(st.id);
    if (this.datagrams.get(st.id) === st) this.datagrams.delete(st.id);
    if (this.state === "draining" && this.streamCount === 0) this.close(Code.shutdown, "drained after goaway");
  }

  /** The largest datagram a UDP stream may send. */
  get maxDatagram(): number {
    return Math.min(codec.MAX_DATAGRAM_BYTES, this.limits.max_datagram_bytes ?? codec.MAX_DATAGRAM_BYTES);
  }

  // ---- teardown ----

  /** The socket closed, whoever closed it. */
  private socketClosed(code: number, reason: string): void {
    if (this.state === "closed") return;
    const known = /^[a-z_]{1,64}$/.test(reason) ? reason : undefined;
    const err = this.lastError;
    const why = err?.code ?? known ?? (code === 1000 || code === 1001 ? Code.session_closed : Code.unavailable);
    const message = err?.message ?? `the gateway closed the session (${code}${reason ? ` ${reason}` : ""})`;
    this.teardown(why, message);
  }

  private teardown(code: string, message: string): void {
    if (this.state === "closed") return;
    const wasHandshake = this.state === "handshake";
    this.state = "closed";
    clearTimeout(this.handshakeTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.deadTimer);
    clearTimeout(this.blockedPoll);
    const err = new StreamError(Code.session_closed, `the session ended: ${code}`);
    for (const st of [...this.streams.values()]) st.finish(err);
    this.streams.clear();
    for (const st of [...this.datagrams.values()]) st.finish(err);
    this.datagrams.clear();
    if (wasHandshake) {
      const s = this.settle;
      this.settle = undefined;
      const c = this.lastError && code === Code.unavailable && !this.localClose ? this.lastError : { code, message };
      s?.reject(new ClientError(c.code, c.message));
      return;
    }
    this.log?.info("session closed", { session_id: this.sessionId, code, bytes_up: this.bytesUp, bytes_down: this.bytesDown });
    this.events.closed?.(this, code, message);
  }
}

/** One tunnel stream as a Duplex. */
export class TunnelStream implements Duplex {
  private handlers: DuplexHandlers | null = null;
  private paused = false;
  private inbound: Uint8Array[] = [];
  private remoteEnded = false;
  private endDelivered = false;
  /** A normal stream_close arrived while bytes still wait for the app: finish after them. */
  private remoteClosed = false;
  private outbound: Uint8Array[] = [];
  private outBytes = 0;
  private wantDrain = false;
  private localEnded = false;
  private endSent = false;
  private closed = false;
  private closeErr: StreamError | undefined;
  private closeDelivered = false;
  private sendCredit: number;
  private recvCredit: number;
  private ungranted = 0;
  private delivering = false;
  private firstFrame: { resolve: () => void; reject: (e: StreamError) => void } | undefined;
  /** Settles on the first sign from the gateway: data/credit/end (resolves) or a coded close (rejects). */
  readonly confirmed: Promise<void>;

  constructor(
    private readonly session: ClientSession,
    readonly id: string,
    readonly target: Target,
  ) {
    this.sendCredit = session.flow ? session.sendWindow : Infinity;
    this.recvCredit = session.recvWindow;
    this.confirmed = new Promise<void>((resolve, reject) => (this.firstFrame = { resolve, reject }));
    this.confirmed.catch(() => {});
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- Duplex ----

  start(h: DuplexHandlers): void {
    if (this.handlers) return;
    this.handlers = h;
    if (this.closed) this.deliverClose();
    else this.deliver();
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed || this.localEnded) return false;
    if (chunk.length === 0) return true;
    this.outbound.push(chunk);
    this.outBytes += chunk.length;
    this.flush();
    if (this.outBytes >= STREAM_HIGH_WATER) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  closeWrite(): void {
    if (this.closed || this.localEnded) return;
    this.localEnded = true;
    this.flush();
  }

  close(err?: StreamError): void {
    if (this.closed) return;
    const code = err?.code;
    this.session.sendFrame(
      code
        ? { type: "stream_close", stream_id: this.id, code: code.slice(0, 64), message: err!.message }
        : { type: "stream_close", stream_id: this.id },
    );
    this.finish(err);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.deliver();
  }

  // ---- from the session ----

  onData(data: Uint8Array): void {
    if (this.closed) return;
    this.confirm();
    if (this.session.flow) {
      this.recvCredit -= data.length;
      if (this.recvCredit < 0) {
        return this.abort(new StreamError(Code.flow_violation, "the gateway sent beyond the window we granted"));
      }
    }
    if (this.remoteEnded) return; // data after stream_end: the gateway's bug; drop it
    if (data.length === 0) return;
    this.inbound.push(data);
    this.deliver();
  }

  onRemoteEnd(): void {
    if (this.closed || this.remoteEnded) return;
    this.confirm();
    this.remoteEnded = true;
    this.deliver();
  }

  onRemoteClose(code?: string, message?: string): void {
    if (this.closed) return;
    if (code) {
      const err = new StreamError(code, message ?? code);
      this.firstFrame?.reject(err);
      this.firstFrame = undefined;
      return this.finish(err);
    }
    this.confirm();
    this.remoteClosed = true;
    this.remoteEnded = true;
    this.deliver();
  }

  onCredit(increment: number): void {
    if (this.closed) return;
    this.confirm();
    if (this.sendCredit + increment > MAX_CREDIT) {
      return this.abort(new StreamError(Code.flow_violation, "window_update overflows 2^31-1"));
    }
    this.sendCredit += increment;
    this.flush();
  }

  /** Our side ends the stream with a code the gateway is told. */
  abort(err: StreamError): void {
    this.close(err);
  }

  /** Send what credit and the socket allow; stream_end once everything is out. */
  flush(): void {
    if (this.closed) return;
    const max = this.session.maxData;
    while (this.outbound.length > 0 && this.sendCredit > 0 && this.session.canSend) {
      const head = this.outbound[0]!;
      const n = Math.min(head.length, max, this.sendCredit);
      this.session.sendData(this.id, n === head.length ? head : head.subarray(0, n));
      this.sendCredit -= n;
      this.outBytes -= n;
      if (n === head.length) this.outbound.shift();
      else this.outbound[0] = head.subarray(n);
    }
    if (this.outbound.length === 0 && this.localEnded && !this.endSent) {
      this.endSent = true;
      this.session.sendFrame({ type: "stream_end", stream_id: this.id });
    }
    if (this.wantDrain && this.outBytes < STREAM_HIGH_WATER && this.handlers) {
      this.wantDrain = false;
      this.handlers.drain();
    }
  }

  /** Forget the stream and tell the owner, once. */
  finish(err?: StreamError): void {
    if (this.closed) return;
    this.closed = true;
    this.closeErr = err;
    if (this.firstFrame) {
      if (err) this.firstFrame.reject(err);
      else this.firstFrame.resolve();
      this.firstFrame = undefined;
    }
    this.inbound = [];
    this.outbound = [];
    this.outBytes = 0;
    this.session.forget(this);
    this.deliverClose();
  }

  private confirm(): void {
    this.firstFrame?.resolve();
    this.firstFrame = undefined;
  }

  private deliver(): void {
    const h = this.handlers;
    if (!h || this.delivering || this.closed) return;
    this.delivering = true;
    try {
      while (!this.paused && this.inbound.length > 0 && !this.closed) {
        const chunk = this.inbound.shift()!;
        h.data(chunk);
        this.consumed(chunk.length);
      }
      if (this.closed || this.paused || this.inbound.length > 0) return;
      if (this.remoteEnded && !this.endDelivered) {
        this.endDelivered = true;
        h.end();
      }
      if (this.remoteClosed && !this.closed) this.finish();
    } finally {
      this.delivering = false;
    }
  }

  /** The app took `n` bytes: hand the credit back, batched to a quarter window. */
  private consumed(n: number): void {
    if (!this.session.flow || this.remoteEnded || this.closed) return;
    this.ungranted += n;
    if (this.ungranted < Math.max(1, Math.floor(this.session.recvWindow / 4))) return;
    const increment = this.ungranted;
    this.ungranted = 0;
    this.recvCredit += increment;
    this.session.sendFrame({ type: "window_update", stream_id: this.id, increment });
  }

  private deliverClose(): void {
    const h = this.handlers;
    if (!h || this.closeDelivered) return;
    this.closeDelivered = true;
    h.close(this.closeErr);
  }
}
