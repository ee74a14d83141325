// The client side of one HTTVPS session (docs/03-httvps-protocol.md): one WebSocket, hello →
// auth_result, then streams — byte streams (TunnelStream, tunnel-stream.ts) and UDP streams
// (DatagramStream, datagram-stream.ts) — which see the session only as their StreamHost.
//
// Memory is bounded both ways: the gateway may only send `window` bytes per stream beyond what
// the app has taken, and a stream sends only within the gateway's credit and while the socket
// is under its high-water mark (tunnel-stream.ts).
import type { Logger } from "../logging/logger.ts";
import type { AccessKey } from "../protocol/access-key.ts";
import * as codec from "../protocol/codec.ts";
import { BadFrameRun } from "../protocol/bad-frames.ts";
import { Code } from "../protocol/errors.ts";
import { encodePadded, encodePaddedStreamData, padJson, padPath } from "../protocol/padding.ts";
import { type Feature, type Frame, PROTOCOL_VERSION, type SessionLimits } from "../protocol/frames.ts";
import { runtime, type SessionHandler, type SessionSocket, WS_HIGH_WATER } from "../runtime/index.ts";
import { Keepalive } from "../transport/keepalive.ts";
import { SendGate } from "../transport/send-gate.ts";
import { HeldOpens } from "./held-opens.ts";
import { StreamError, type Target } from "../transport/stream.ts";
import { DatagramStream, udpUnsupported } from "./datagram-stream.ts";
import { GatewaySocketError, type GatewayTls, openGatewaySocket, type OpenSocket } from "./gateway-socket.ts";
import type { StreamHost } from "./stream-host.ts";
import { TunnelStream } from "./tunnel-stream.ts";

/** hello.client_version: the gateway logs it, so it says which runtime a misbehaving client was on. */
export const CLIENT_VERSION = `httvps/0.1.0 ${runtime}`;
/** What we let the gateway send per stream ahead of the app: 1 MiB is ~80 Mbit/s per stream at 100 ms RTT. */
export const DEFAULT_CLIENT_WINDOW = 1024 * 1024;
/**
 * What the hello asks for. "early_data" is always asked for: the answer tells the caller whether
 * the next session may open its first stream before auth_result (docs/03 §13).
 */
const REQUESTED: Feature[] = ["flow", "binary", "half_close", "udp", "early_data"];

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
  /**
   * Ask for "padding" (docs/03 §12): pad the hello, the early frames and the session request's
   * URL, and, once granted, the first frames of every stream. Default true.
   */
  padding?: boolean;
  /**
   * This gateway granted "early_data" before: one stream may be opened right behind the hello,
   * without waiting for auth_result (docs/03 §13). Default false.
   */
  earlyData?: boolean;
}

export interface SessionEvents {
  /** The gateway is going away: open no new streams here (open ones may finish). */
  goaway?(session: ClientSession, code: string, message: string): void;
  /** The session is over; every stream on it has been closed with session_closed. */
  closed?(session: ClientSession, code: string, message: string): void;
  /** The hello is out: with `earlyData`, a stream may be opened now (canOpenEarly). */
  helloSent?(session: ClientSession): void;
}

type State = "handshake" | "open" | "draining" | "closed";

export class ClientSession implements StreamHost {
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
  /** Streams opened before auth_result (at most one); they learn the negotiated features with it. */
  private early: TunnelStream[] = [];
  /** stream_open frames held to the end of the turn, so a proxy's reply goes out first (held-opens.ts). */
  private readonly opens = new HeldOpens((msg) => this.send(msg));
  /** Stream output stops while the socket is over WS_HIGH_WATER; set once the socket is there. */
  private gate: SendGate | null = null;
  /** Our pings; nothing from the gateway for a while means it is gone. */
  private readonly keepalive = new Keepalive({
    ping: (id) => this.sendFrame({ type: "ping", id }),
    quiet: (ms) => this.abort(new ClientError(Code.idle_timeout, `nothing from the gateway for ${ms} ms`)),
  });
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly badFrames = new BadFrameRun();
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
      const key = s.padding ? { ...opts.key, path: padPath(opts.key.path) } : opts.key;
      await (opts.openSocket ?? openGatewaySocket)(key, opts.tls ?? {}, timeoutMs, (socket): SessionHandler => {
        s.socket = socket;
        s.gate = new SendGate(socket, WS_HIGH_WATER, { unblocked: () => s.unblocked() });
        s.sendHello();
        queueMicrotask(() => events.helloSent?.(s));
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
  /** Padding was asked for (the handshake and early frames are padded as JSON). */
  private get padding(): boolean {
    return this.opts.padding !== false;
  }
  /** Still waiting for auth_result (a stream opened now is early data). */
  get handshaking(): boolean {
    return this.state === "handshake";
  }
  /** A stream may be opened before auth_result: early data allowed, the hello out, none opened early yet. */
  get canOpenEarly(): boolean {
    return this.state === "handshake" && this.opts.earlyData === true && this.socket !== null && this.nextId === 1;
  }

  /** Open a stream to `target`. It is usable at once (the gateway buffers while it dials). */
  openStream(target: Target): TunnelStream {
    if (this.state === "draining") {
      throw new StreamError(Code.shutdown, "the gateway is going away; open the stream on a new session");
    }
    const early = this.canOpenEarly;
    if (this.state !== "open" && !early) throw new StreamError(Code.session_closed, "the session is not open");
    if (this.streamCount >= this.limits.max_streams) {
      throw new StreamError(Code.too_many_streams, `at most ${this.limits.max_streams} streams per session`);
    }
    const id = String(this.nextId++);
    const st = new TunnelStream(this, id, target);
    this.streams.set(id, st);
    if (early) this.early.push(st);
    const open: Frame = { type: "stream_open", stream_id: id, target: { host: target.host, port: target.port } };
    this.opens.hold(this.features.has("padding") ? encodePadded(open) : this.encode(open));
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
    this.keepalive.heard = Date.now();
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
      if (this.badFrames.bad()) this.close(Code.too_many_errors, "the gateway sent too many bad frames");
      return;
    }
    this.badFrames.good();
    const f = r.frame;
    if (this.state === "handshake") return this.onHandshakeFrame(f);
    this.onFrame(f);
  }

  private drain(): void {
    this.gate?.drain();
  }

  // ---- handshake ----

  private sendHello(): void {
    const k = this.opts.key;
    this.sendFrame({
      type: "hello",
      device_id: k.deviceId,
      token: k.token,
      client_version: this.opts.clientVersion ?? CLIENT_VERSION,
      features: this.padding ? [...REQUESTED, "padding"] : REQUESTED,
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
        // Early streams sent JSON within EARLY_DATA_BYTES; now they know the real terms.
        for (const st of this.early) st.negotiated();
        this.early = [];
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
    this.keepalive.start(pingMs, deadMs);
  }

  // ---- output ----

  /** Whether stream data may go out now (the socket is under its high-water mark). */
  get canSend(): boolean {
    if (this.state === "closed" || !this.gate) return false;
    return !this.gate.full();
  }

  sendFrame(frame: Frame): void {
    if (this.state === "closed" || !this.socket) return;
    this.send(this.encode(frame));
  }

  private encode(frame: Frame): string | Uint8Array {
    const compact = this.binary &&
      (frame.type === "stream_data" || frame.type === "window_update" || frame.type === "stream_end");
    if (compact) return codec.encodeBinary(frame);
    const text = codec.encodeText(frame);
    // Before auth_result everything is JSON; with padding asked for, it is padded as JSON.
    return this.state === "handshake" && this.padding ? padJson(text) : text;
  }

  /** Every message goes out here, after the held stream_open frames (nothing may overtake its open). */
  private send(msg: string | Uint8Array): void {
    if (this.state === "closed" || !this.socket) return;
    this.opens.flush();
    this.socket.send(msg);
  }

  sendClose(id: string, err?: StreamError): void {
    const code = err?.code;
    this.sendFrame(
      code
        ? { type: "stream_close", stream_id: id, code: code.slice(0, 64), message: err.message }
        : { type: "stream_close", stream_id: id },
    );
  }

  sendData(id: string, data: Uint8Array, padded = false): void {
    if (this.state === "closed" || !this.socket) return;
    this.bytesUp += data.length;
    if (this.state === "handshake") {
      const text = codec.encodeStreamDataText(id, data);
      return this.send(this.padding ? padJson(text) : text);
    }
    if (padded && this.features.has("padding")) return this.send(encodePaddedStreamData(id, data));
    this.send(this.binary ? codec.encodeStreamDataBinary(id, data) : codec.encodeStreamDataText(id, data));
  }

  get maxData(): number {
    return Math.min(codec.MAX_DATA_BYTES, this.limits.max_data_bytes);
  }

  /** The socket drained: the streams send what they hold, until it fills again. */
  private unblocked(): void {
    for (const st of this.streams.values()) {
      st.flush();
      if (this.gate!.blocked) break;
    }
  }

  // ---- stream bookkeeping (StreamHost) ----

  forget(st: { readonly id: string }): void {
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
    this.early = [];
    this.opens.drop();
    clearTimeout(this.handshakeTimer);
    this.keepalive.stop();
    this.gate?.stop();
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
