// One client WebSocket: hello → auth_result → many streams to the upstream. Runtime-free:
// the runtime adapter hands us a SessionSocket and feeds our SessionHandler methods. The
// session owns the handshake, keepalive, re-validation, the frame dispatch and the socket;
// the streams live in tcp-streams.ts and udp-streams.ts and see the session as their host.
//
// Memory is bounded by construction, whatever the peer does: per stream by its window
// (tcp-streams.ts, udp-streams.ts), for the socket by its high-water mark (SendGate), before
// auth by MAX_PREAUTH_FRAMES/BYTES; and a peer that only sends garbage gets
// `maxConsecutiveErrors` error frames and is then disconnected, so it cannot burn CPU forever.
import { randomBytes } from "node:crypto";
import type { Logger } from "../logging/logger.ts";
import type { SessionHandler, SessionSocket } from "../runtime/types.ts";
import { BadFrameRun } from "../protocol/bad-frames.ts";
import * as codec from "../protocol/codec.ts";
import { closeCodeFor, Code, type ErrorCode, isErrorCode, WS_CLOSE } from "../protocol/errors.ts";
import { encodePaddedStreamData, padJson } from "../protocol/padding.ts";
import {
  type AuthResult,
  type Feature,
  FEATURES,
  type Frame,
  type Hello,
  PROTOCOL_VERSION,
  type SessionLimits,
  type StreamOpen,
} from "../protocol/frames.ts";
import { Keepalive, type KeepaliveEvents } from "../transport/keepalive.ts";
import { SendGate, type SendGateEvents } from "../transport/send-gate.ts";
import { StreamError } from "../transport/stream.ts";
import type { AuthOutcome, Credentials } from "./auth.ts";
import { refusalForClient } from "./auth-refusal.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { type AccessHost, SessionAccess, type SessionAuth } from "./session-access.ts";
import { type TcpHost, TcpStreams } from "./tcp-streams.ts";
import { type UdpHost, UdpStreams } from "./udp-streams.ts";
import type { Upstream, UpstreamFor } from "./upstream/upstream.ts";
import type { UsageSink, UsageSource } from "./usage.ts";

export type { SessionHandler, SessionSocket };

export interface SessionConfig {
  helloTimeoutMs: number;
  pingIntervalMs: number;
  idleTimeoutMs: number;
  dialTimeoutMs: number;
  maxStreams: number;
  /** Per-stream receive window (bytes); also the non-flow bound on bytes waiting for an upstream. */
  window: number;
  /** socket.bufferedAmount above which every upstream read pauses until drain(); the adapters' WS_HIGH_WATER, so their drain() matches. */
  socketHighWater: number;
  /** Error frames in a row (no valid frame between) after which the session is closed. */
  maxConsecutiveErrors: number;
  /** UDP streams: closed after this long without a datagram either way. Default codec.UDP_IDLE_TIMEOUT_MS. */
  udpIdleTimeoutMs?: number;
  /**
   * A masked refusal (auth-refusal.ts) is answered no sooner than this after the hello arrived,
   * whichever reason it had and however fast the backend said so (docs/07 "No oracle"). Default 0.
   */
  authFailureDelayMs?: number;
  /** Grant "padding" to clients that ask (docs/03 §12). Default true. */
  padding?: boolean;
  /** Grant "early_data" to clients that ask (docs/03 §13). Default true. */
  earlyData?: boolean;
}

/**
 * What a client may pipeline behind its hello before auth_result (early data, docs/03 §13);
 * more is a flood and ends the handshake. Nothing of it is dialled or even looked at beyond
 * counting until the device is validated; a refusal drops it. A client sends one stream and at
 * most EARLY_DATA_BYTES (4 KiB) of its bytes, so these leave room for clients that pipeline a
 * little more while keeping what an unauthenticated peer makes us hold small.
 */
export const MAX_PREAUTH_FRAMES = 256;
export const MAX_PREAUTH_BYTES = 64 * 1024;
export const MAX_PREAUTH_STREAMS = 4;

export interface SessionDeps {
  socket: SessionSocket;
  /** The client's address for the log (gateway/client-address.ts: behind a trusted proxy, the one it forwarded); default the socket's. */
  remoteAddress?: string;
  auth: SessionAuth;
  upstreamFor: UpstreamFor;
  config: SessionConfig;
  logger: Logger;
  metrics?: GatewayMetrics;
  usage?: UsageSink;
  /** Called once when the session is over (the gateway removes it from its set). */
  onClose?: (session: Session) => void;
}

/** Everything this protocol version knows is implemented, so every requested feature is granted. */
const GRANTABLE: readonly Feature[] = FEATURES;

type State = "hello" | "auth" | "open" | "closed";

export class Session implements SessionHandler, UsageSource {
  session_id = "";
  device_id = "";
  bytesUp = 0;
  bytesDown = 0;

  private state: State = "hello";
  private readonly socket: SessionSocket;
  private readonly cfg: SessionConfig;
  private log: Logger;
  /** The byte streams. */
  private readonly tcp: TcpStreams;
  /** The UDP streams (docs/03 §11), which share the id space and max_streams with the TCP ones. */
  readonly udp: UdpStreams;
  private readonly features = new Set<Feature>();
  private clientWindow = codec.DEFAULT_WINDOW;
  private creds: Credentials | null = null;
  private upstream: Upstream | null = null;
  private preauth: Array<string | Uint8Array> = [];
  private preauthBytes = 0;
  private preauthStreams = 0;
  /** Every upstream read pauses while the socket is over cfg.socketHighWater. */
  private readonly gate: SendGate;
  private readonly badFrames: BadFrameRun;
  private draining = false;
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  /** Pings the client; no message from it for idleTimeoutMs closes the session. */
  private readonly keepalive = new Keepalive(this.keepaliveEvents());
  /** The periodic re-check and the upstream's re-validation, from auth_result on. */
  private access: SessionAccess | null = null;
  private outcomeCounted = false;
  private closeReason = "";

  constructor(private readonly deps: SessionDeps) {
    this.socket = deps.socket;
    this.cfg = deps.config;
    this.log = deps.logger.child({ remote: deps.remoteAddress ?? deps.socket.remoteAddress });
    this.gate = new SendGate(deps.socket, this.cfg.socketHighWater, this.gateEvents());
    this.badFrames = new BadFrameRun(this.cfg.maxConsecutiveErrors);
    const host = this.streamsHost();
    this.tcp = new TcpStreams(host);
    this.udp = new UdpStreams(host);
    this.helloTimer = setTimeout(() => this.failHandshake(Code.hello_timeout, "no hello in time"), this.cfg.helloTimeoutMs);
  }

  /** Bytes this session holds in its own queues (not counting the socket's bufferedAmount). */
  get bufferedBytes(): number {
    return this.tcp.bufferedBytes + this.preauthBytes;
  }

  get streamCount(): number {
    return this.tcp.size + this.udp.size;
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  get isClosed(): boolean {
    return this.state === "closed";
  }

  // ---- SessionHandler ----

  message(msg: string | Uint8Array): void {
    if (this.state === "closed") return;
    this.keepalive.heard = Date.now();
    if (this.state === "auth") {
      // A client may pipeline streams behind its hello; they run once auth_result is sent.
      const size = typeof msg === "string" ? msg.length : msg.byteLength;
      const r = typeof msg === "string" ? codec.decodeText(msg) : codec.decodeBinary(msg);
      if (r.ok && r.frame.type === "stream_open") this.preauthStreams++;
      if (
        this.preauth.length >= MAX_PREAUTH_FRAMES || this.preauthBytes + size > MAX_PREAUTH_BYTES ||
        this.preauthStreams > MAX_PREAUTH_STREAMS
      ) {
        const message =
          `at most ${MAX_PREAUTH_FRAMES} frames, ${MAX_PREAUTH_BYTES} bytes and ${MAX_PREAUTH_STREAMS} streams may follow hello before auth_result`;
        this.sendControl({ type: "error", code: Code.unexpected_frame, message });
        this.failHandshake(Code.unexpected_frame, "pre-auth flood");
        return;
      }
      this.preauth.push(msg);
      this.preauthBytes += size;
      return;
    }
    const r = typeof msg === "string" ? codec.decodeText(msg) : codec.decodeBinary(msg);
    if (this.state === "hello") {
      if (!r.ok) {
        this.sendControl({ type: "error", code: r.error.code, message: r.error.message });
        this.failHandshake(r.error.code, r.error.message);
      } else if (r.frame.type !== "hello") {
        this.sendControl({ type: "error", code: Code.hello_required, message: "the first frame must be hello" });
        this.failHandshake(Code.hello_required, `got ${r.frame.type} before hello`);
      } else {
        this.startAuth(r.frame);
      }
      return;
    }
    this.handle(r);
  }

  drain(): void {
    if (this.state === "closed") return;
    this.gate.drain();
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.log.debug("socket closed by peer", { code, reason: reason.slice(0, 64) });
    this.teardown(this.closeReason || "client_closed");
  }

  // ---- lifecycle ----

  /** Graceful shutdown: goaway, refuse new streams, close once the open ones finish. */
  goaway(code: string = Code.shutdown, message = "the gateway is shutting down", drainMs?: number): void {
    if (this.state === "closed") return;
    if (this.state !== "open") {
      this.closeSocket(code);
      return;
    }
    if (this.draining) return;
    this.draining = true;
    this.sendControl(
      drainMs === undefined ? { type: "goaway", code, message } : { type: "goaway", code, message, drain_ms: drainMs },
    );
    // Datagram streams never finish by themselves: they move to the next session now.
    this.udp.closeAll(Code.shutdown, "the gateway is shutting down; open the UDP stream on a new session");
    if (this.tcp.size === 0) this.closeSocket(code);
  }

  /** Close now (drain timeout, process exit). */
  terminate(code: string = Code.shutdown): void {
    this.closeSocket(code);
  }

  private startAuth(hello: Hello): void {
    this.state = "auth";
    // The hello timer keeps running until auth_result: a validator that never answers must
    // not leave a half-open session behind.
    const t0 = performance.now();
    this.creds = { device_id: hello.device_id, token: hello.token, client_version: hello.client_version };
    this.device_id = hello.device_id;
    for (const f of hello.features ?? []) if (GRANTABLE.includes(f)) this.features.add(f);
    // Padding travels in 0x04 binary messages, which only a "binary" client reads.
    if (this.cfg.padding === false || !this.features.has("binary")) this.features.delete("padding");
    if (this.cfg.earlyData === false) this.features.delete("early_data");
    if (hello.window !== undefined) this.clientWindow = Math.max(1, Math.floor(hello.window));
    // DeviceAuth decides whether its cache may answer (never for a device the backend must count).
    // The id is chosen now so that a counted device's slot is reserved under it.
    const sessionId = randomBytes(16).toString("hex");
    this.deps.auth.check(this.creds, { new_session_id: sessionId }).then(
      (outcome) => this.finishAuth(outcome, t0, undefined, sessionId),
      (err) =>
        this.finishAuth({ ok: false, code: "unavailable", message: "the control plane is unavailable; retry later" }, t0, err),
    );
  }

  private finishAuth(outcome: AuthOutcome, t0: number, err?: unknown, sessionId = randomBytes(16).toString("hex")): void {
    if (this.state !== "auth") return; // the socket went away (or the hello timer fired) meanwhile
    clearTimeout(this.helloTimer);
    this.helloTimer = undefined; // a cleared Timeout kept in the field is ~100 bytes for the session's life on Node
    this.deps.metrics?.handshakeSeconds.observe((performance.now() - t0) / 1000);
    if (err) this.log.error("auth check threw", { error: err });
    if (!outcome.ok) return this.refuse(outcome.code, outcome.message, t0);
    this.session_id = sessionId;
    this.log = this.log.child({ session_id: this.session_id, device_id: this.device_id });
    this.access = new SessionAccess(this.deps.auth, this.creds!, sessionId, this.accessHost());
    try {
      this.upstream = this.deps.upstreamFor(outcome, this.access.upstreamContext());
    } catch (e) {
      const code = e instanceof StreamError ? e.code : Code.unavailable;
      this.log.error("no upstream for session", { code, error: e });
      this.sendControl({ type: "auth_result", ok: false, code, message: "no upstream is available; retry later" });
      this.failHandshake(code, "no upstream");
      return;
    }
    this.state = "open";
    this.socket.authenticated?.(); // the connection leaves the pre-authentication cap (docs/07)
    if (!this.upstream.packetDialer) this.features.delete("udp");
    const limits: SessionLimits = {
      max_frame_bytes: codec.MAX_FRAME_BYTES,
      max_data_bytes: codec.MAX_DATA_BYTES,
      max_streams: this.cfg.maxStreams,
      idle_timeout_ms: this.cfg.idleTimeoutMs,
      ping_interval_ms: this.cfg.pingIntervalMs,
    };
    if (this.features.has("udp")) {
      limits.max_datagram_bytes = codec.MAX_DATAGRAM_BYTES;
      limits.udp_idle_timeout_ms = this.cfg.udpIdleTimeoutMs ?? codec.UDP_IDLE_TIMEOUT_MS;
    }
    const result: AuthResult = {
      type: "auth_result",
      ok: true,
      session_id: this.session_id,
      features: GRANTABLE.filter((f) => this.features.has(f)),
      limits,
      protocol: PROTOCOL_VERSION,
    };
    if (this.flow) result.window = this.cfg.window;
    const text = codec.encodeText(result);
    this.send(this.features.has("padding") ? padJson(text) : text);
    this.outcomeCounted = true;
    this.deps.metrics?.sessionsTotal.inc({ outcome: "ok" });
    this.deps.metrics?.sessionsActive.inc();
    this.deps.usage?.open(this, outcome.assignment?.node_id ?? null);
    this.log.info("session open", { features: result.features });
    this.keepalive.start(this.cfg.pingIntervalMs, this.cfg.idleTimeoutMs);
    this.access.schedule();
    const queued = this.preauth;
    this.preauth = [];
    this.preauthBytes = 0;
    this.preauthStreams = 0;
    for (const msg of queued) {
      if (this.state !== "open") break;
      this.handle(typeof msg === "string" ? codec.decodeText(msg) : codec.decodeBinary(msg));
    }
  }

  /**
   * The client hears `auth_failed` for every credential refusal, after the same delay from its
   * hello; the log and the metric label keep the real reason. The wait reuses the hello timer,
   * so a socket that goes away meanwhile cancels it.
   */
  private refuse(reason: string, message: string, t0: number): void {
    const told = refusalForClient(reason, message);
    const send = () => {
      if (this.state !== "auth") return;
      this.sendControl({ type: "auth_result", ok: false, code: told.code, message: told.message });
      this.failHandshake(told.code, "auth refused", reason);
    };
    const wait = told.masked ? t0 + (this.cfg.authFailureDelayMs ?? 0) - performance.now() : 0;
    if (wait <= 0) return send();
    this.helloTimer = setTimeout(send, wait);
  }

  private accessHost(): AccessHost {
    // deno-lint-ignore no-this-alias -- the getters below read the session's fields as they are when called
    const session = this;
    return {
      get isOpen() {
        return session.state === "open";
      },
      get log() {
        return session.log;
      },
      ended(code, message) {
        if (session.state !== "open") return;
        session.log.info("session no longer authorised", { code });
        session.sendControl({ type: "error", code, message });
        session.closeSocket(code);
      },
      nodeChanged(node_id) {
        if (session.state !== "open") return;
        session.log.info("session moved to another node", { node_id });
        session.deps.usage?.nodeChanged?.(session, node_id);
      },
    };
  }

  // The events objects below are method shorthand, not arrow functions, for memory: every
  // session holds them for its whole life, and on Node, tsx (esbuild keepNames) wraps an arrow
  // in an object literal in __name(), which gives each arrow its own property store: about 256
  // bytes more per function per session (docs/06 "Memory per session").

  private keepaliveEvents(): KeepaliveEvents {
    // deno-lint-ignore no-this-alias -- the methods below act on the session
    const session = this;
    return {
      ping(id) {
        session.sendControl({ type: "ping", id });
      },
      quiet(ms) {
        session.log.info("idle timeout", { idle_ms: ms });
        session.sendControl({ type: "goaway", code: Code.idle_timeout, message: "no traffic from the client" });
        session.closeSocket(Code.idle_timeout);
      },
    };
  }

  private gateEvents(): SendGateEvents {
    // deno-lint-ignore no-this-alias -- the methods below act on the session
    const session = this;
    return {
      blocked() {
        session.tcp.socketChanged();
      },
      unblocked() {
        session.tcp.socketChanged();
      },
    };
  }

  /**
   * Any handshake failure ends the same way — close code 1008, whatever the reason (even
   * `unavailable`, which closeCodeFor would map to 1011) — so the close reveals nothing
   * the auth_result did not already say.
   */
  private failHandshake(code: string, why: string, reason = code): void {
    if (this.state === "closed") return;
    this.outcomeCounted = true;
    // The operator sees the real reason (`reason`), the client only `code`. Label values come
    // from a closed list, so a backend inventing reasons cannot blow up the series count.
    this.deps.metrics?.sessionsTotal.inc({ outcome: isErrorCode(reason) ? reason : "other" });
    this.log.info("handshake failed", reason === code ? { code, why } : { code, reason, why });
    this.closeSocket(code, WS_CLOSE.policy);
  }

  /** Close with an error code as the WebSocket close reason (and the usage report's reason). */
  private closeSocket(code: string, wsCode = closeCodeFor(code)): void {
    if (this.state === "closed") return;
    if (!this.closeReason) this.closeReason = code;
    try {
      this.socket.close(wsCode, code);
    } catch {
      // already closed underneath us: nothing else to do
    }
    this.teardown(this.closeReason);
  }

  private teardown(reason: string): void {
    if (this.state === "closed") return;
    const wasOpen = this.state === "open";
    if (!this.outcomeCounted && this.state === "hello") this.deps.metrics?.sessionsTotal.inc({ outcome: "closed_before_hello" });
    if (!this.outcomeCounted && this.state === "auth") this.deps.metrics?.sessionsTotal.inc({ outcome: "closed_during_auth" });
    this.state = "closed";
    clearTimeout(this.helloTimer);
    this.keepalive.stop();
    this.access?.stop();
    this.gate.stop();
    this.tcp.closeAll();
    this.udp.closeAll();
    this.preauth = [];
    this.preauthBytes = 0;
    this.preauthStreams = 0;
    if (wasOpen) {
      this.deps.metrics?.sessionsActive.dec();
      this.deps.usage?.close(this, reason);
      this.log.info("session closed", { reason, bytes_up: this.bytesUp, bytes_down: this.bytesDown });
    }
    this.deps.onClose?.(this);
  }

  // ---- frames ----

  private get flow(): boolean {
    return this.features.has("flow");
  }

  private handle(r: codec.DecodeResult): void {
    if (this.state !== "open") return;
    if (!r.ok) return this.reject(r.error.code, r.error.message, r.error.stream_id);
    const f = r.frame;
    switch (f.type) {
      case "stream_open":
        return this.onOpen(f);
      case "stream_data": {
        const st = this.tcp.get(f.stream_id);
        if (st) return this.tcp.data(st, f.data);
        if (this.udp.has(f.stream_id)) return this.udp.data(f.stream_id, f.data);
        return this.reject(Code.unknown_stream, "no such stream", f.stream_id);
      }
      case "stream_end": {
        const st = this.tcp.get(f.stream_id);
        if (!st && this.udp.has(f.stream_id)) return this.udp.end(f.stream_id);
        if (!st) return this.reject(Code.unknown_stream, "no such stream", f.stream_id);
        this.badFrames.good();
        return this.tcp.end(st);
      }
      case "stream_close": {
        // Both sides may close at once, so a close for a stream we already dropped is normal.
        this.badFrames.good();
        const st = this.tcp.get(f.stream_id);
        if (st) this.tcp.clientClose(st);
        else this.udp.clientClose(f.stream_id);
        return;
      }
      case "window_update": {
        // Likewise a late window_update for a stream that just ended is not an error.
        this.badFrames.good();
        const st = this.tcp.get(f.stream_id);
        if (st) this.tcp.windowUpdate(st, f.increment);
        return;
      }
      case "ping":
        this.badFrames.good();
        return this.sendControl(f.id === undefined ? { type: "pong" } : { type: "pong", id: f.id });
      case "pong":
        this.badFrames.good();
        return;
      case "error":
        this.badFrames.good();
        this.log.debug("client reported an error", { code: f.code, stream_id: f.stream_id });
        return;
      case "goaway":
        this.badFrames.good();
        return;
      case "hello":
        return this.reject(Code.unexpected_frame, "hello was already received");
      default:
        return this.reject(Code.unexpected_frame, `a client does not send ${(f as Frame).type}`);
    }
  }

  /** Answer a bad frame with an error; the session and its other streams carry on. */
  private reject(code: ErrorCode, message: string, stream_id?: string): void {
    this.deps.metrics?.framesRejectedTotal.inc({ code });
    this.sendControl(stream_id === undefined ? { type: "error", code, message } : { type: "error", code, message, stream_id });
    this.countError();
  }

  private countError(): void {
    if (!this.badFrames.bad()) return;
    const errors = this.badFrames.count;
    this.log.warn("too many errors in a row; closing", { errors });
    this.sendControl({ type: "error", code: Code.too_many_errors, message: `${errors} bad frames in a row` });
    this.closeSocket(Code.too_many_errors);
  }

  private refuseStream(stream_id: string, code: ErrorCode, message: string): void {
    this.deps.metrics?.framesRejectedTotal.inc({ code });
    this.sendControl({ type: "stream_close", stream_id, code, message });
    this.countError();
  }

  private onOpen(f: StreamOpen): void {
    if (this.tcp.has(f.stream_id) || this.udp.has(f.stream_id)) {
      return this.reject(Code.duplicate_stream, "stream id already open", f.stream_id);
    }
    if (this.draining) return this.refuseStream(f.stream_id, Code.shutdown, "the gateway is shutting down");
    if (this.streamCount >= this.cfg.maxStreams) {
      return this.refuseStream(f.stream_id, Code.too_many_streams, `at most ${this.cfg.maxStreams} streams`);
    }
    if (f.network === "udp") return this.udp.open(f, this.features.has("udp"));
    this.tcp.open(f);
  }

  /** What the streams borrow from the session: its upstream, socket, counters and bad-frame accounting. */
  private streamsHost(): TcpHost & UdpHost {
    return new StreamsHostOf(this);
  }

  // ---- output ----

  private sendControl(frame: Frame): void {
    // The per-stream hot control frames have a compact binary form once "binary" is agreed.
    const compact = (frame.type === "window_update" || frame.type === "stream_end") && this.features.has("binary");
    this.send(compact ? codec.encodeBinary(frame) : codec.encodeText(frame));
  }

  /** A message, or a binary one as [head, body] for a socket that joins them itself (sendParts). */
  private send(msg: string | Uint8Array | [Uint8Array, Uint8Array]): void {
    if (this.state === "closed") return;
    try {
      if (Array.isArray(msg)) this.socket.sendParts!(msg[0], msg[1]);
      else this.socket.send(msg);
    } catch (e) {
      this.log.debug("send failed; closing", { error: e });
      this.teardown("send_failed");
    }
  }
}

/**
 * What the streams borrow from their session (Session.streamsHost), as a class: its getters and
 * methods live once on the prototype. As an object literal of getters and arrows it cost every
 * session about 20 closures and a dictionary-mode property store: ~2.5 KiB per session on Node
 * (docs/06 "Memory per session"). It reads the session's private members by index access,
 * TypeScript's own way in for a class that belongs to another; it lives here, beside the
 * session, as the two are one thing (a file of its own would import the session back).
 */
class StreamsHostOf implements TcpHost, UdpHost {
  readonly window: number;
  readonly idleTimeoutMs: number;
  readonly maxDatagramBytes = codec.MAX_DATAGRAM_BYTES;
  readonly features: ReadonlySet<Feature>;

  constructor(private readonly session: Session) {
    const cfg = session["cfg"];
    this.window = cfg.window;
    this.idleTimeoutMs = cfg.udpIdleTimeoutMs ?? codec.UDP_IDLE_TIMEOUT_MS;
    this.features = session["features"];
  }

  get log(): Logger {
    return this.session["log"];
  }

  get upstream(): Upstream {
    return this.session["upstream"]!;
  }

  get dialTimeoutMs(): number {
    return this.session["upstream"]?.dialTimeoutMs ?? this.session["cfg"].dialTimeoutMs;
  }

  get clientWindow(): number {
    return this.session["clientWindow"];
  }

  get isOpen(): boolean {
    return this.session.isOpen;
  }

  get socketBlocked(): boolean {
    return this.session["gate"].blocked;
  }

  checkSocket(): void {
    this.session["gate"].full();
  }

  socketFull(): boolean {
    return this.session["socket"].bufferedAmount > this.session["cfg"].socketHighWater;
  }

  sendControl(frame: Frame): void {
    this.session["sendControl"](frame);
  }

  sendData(id: string, data: Uint8Array, padded?: boolean): void {
    const s = this.session;
    if (padded && this.features.has("padding")) return s["send"](encodePaddedStreamData(id, data));
    if (!this.features.has("binary")) return s["send"](codec.encodeStreamDataText(id, data));
    // Where the socket takes a frame in parts (runtime/node-ws-frame.ts), the payload is not copied here.
    const head = s["socket"].sendParts ? codec.streamDataHead(id) : undefined;
    s["send"](head ? [head, data] : codec.encodeStreamDataBinary(id, data));
  }

  reject(code: ErrorCode, message: string, stream_id?: string): void {
    this.session["reject"](code, message, stream_id);
  }

  refuse(stream_id: string, code: ErrorCode, message: string): void {
    this.session["refuseStream"](stream_id, code, message);
  }

  rejected(code: ErrorCode): void {
    this.session["deps"].metrics?.framesRejectedTotal.inc({ code });
  }

  good(): void {
    this.session["badFrames"].good();
  }

  bytes(direction: "up" | "down", n: number): void {
    if (direction === "up") this.session.bytesUp += n;
    else this.session.bytesDown += n;
    this.session["deps"].metrics?.bytesTotal.inc({ direction }, n);
  }

  dialed(seconds: number): void {
    this.session["deps"].metrics?.upstreamDialSeconds.observe(seconds);
  }

  streamOpened(): void {
    this.session["deps"].metrics?.streamsActive.inc();
  }

  streamClosed(dropped: number): void {
    const s = this.session;
    const metrics = s["deps"].metrics;
    metrics?.streamsActive.dec();
    if (dropped > 0) metrics?.udpDatagramsDroppedTotal.inc(dropped);
    if (s["draining"] && s.streamCount === 0 && s["state"] === "open") s["closeSocket"](Code.shutdown);
  }
}
