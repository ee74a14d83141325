// One client WebSocket: hello → auth_result → many streams to the upstream. Runtime-free:
// the runtime adapter hands us a SessionSocket and feeds our SessionHandler methods.
//
// Memory is bounded by construction, whatever the peer does:
// - client → upstream: per stream, at most `window` bytes wait for a slow (or still
//   dialling) upstream. A "flow" client is held to that by credit (overrun =
//   flow_violation); a client without flow gets the stream closed with flow_violation too.
// - upstream → client: all upstream reads pause while the socket's bufferedAmount is over
//   the high-water mark (a client that stops reading stalls its upstreams, not our heap),
//   and with "flow" each stream also pauses when the client's credit for it runs out, so
//   one stalled stream never holds up the others.
// - a peer that only sends garbage gets `maxConsecutiveErrors` error frames and is then
//   disconnected, so it cannot burn CPU forever.
import { randomBytes } from "node:crypto";
import type { Logger } from "../logging/logger.ts";
import { type SessionHandler, type SessionSocket, WS_HIGH_WATER } from "../runtime/types.ts";
import * as codec from "../protocol/codec.ts";
import { closeCodeFor, Code, type ErrorCode, isErrorCode, WS_CLOSE } from "../protocol/errors.ts";
import {
  type AuthResult,
  type Feature,
  FEATURES,
  type Frame,
  type Hello,
  PROTOCOL_VERSION,
  type SessionLimits,
  type StreamClose,
  type StreamOpen,
} from "../protocol/frames.ts";
import type { PacketDialer } from "../transport/packet.ts";
import { type Dialer, type Duplex, StreamError, type Target } from "../transport/stream.ts";
import type { AuthOutcome, CheckOptions, Credentials } from "./auth.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { UdpStreams } from "./udp-streams.ts";
import type { UsageSink, UsageSource } from "./usage.ts";

export type { SessionHandler, SessionSocket };

/** The one thing a session needs from auth: DeviceAuth implements it. */
export interface SessionAuth {
  readonly ttlMs: number;
  check(creds: Credentials, opts?: CheckOptions): Promise<AuthOutcome>;
}

/** How this session reaches the outside world, chosen once per session from the auth answer (outline needs its node). */
export interface Upstream {
  dialer: Dialer;
  /** UDP streams (the udp feature); without one the feature is not granted. */
  packetDialer?: PacketDialer;
  /** Used when stream_open has no target (only the fake echo has one). */
  defaultTarget?: Target;
  /**
   * The session's own bound on one dial, when the dialer needs longer than the configured
   * dial timeout (outline: a failed node, a re-validation and a second node in one dial).
   */
  dialTimeoutMs?: number;
}

/** What a session offers its upstream beyond the auth answer: outline's failover needs all of it. */
export interface UpstreamContext {
  readonly session_id: string;
  readonly logger: Logger;
  /**
   * Ask the control plane about this device again, past the cache (with the nodes to avoid).
   * If the answer is that access has ended, the session closes as on its periodic re-check.
   */
  revalidate(opts?: { exclude_node_ids?: string[] }): Promise<AuthOutcome>;
  /** The session's streams now go to this node. */
  nodeChanged(node_id: string): void;
}
export type UpstreamFor = (grant: Extract<AuthOutcome, { ok: true }>, ctx: UpstreamContext) => Upstream;

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
}

export const DEFAULT_SOCKET_HIGH_WATER = WS_HIGH_WATER;
export const DEFAULT_MAX_CONSECUTIVE_ERRORS = 100;
/** Frames a client may pipeline behind its hello before auth_result; more is a flood. */
const MAX_PREAUTH_FRAMES = 256;
const MAX_PREAUTH_BYTES = 1024 * 1024;
const BLOCKED_POLL_MS = 100;
/** Credit past 2^31-1 is a flow_violation (protocol/errors.ts), as in HTTP/2. */
const MAX_CREDIT = 2 ** 31 - 1;

/**
 * Error code for the session-level give-up after maxConsecutiveErrors bad frames in a row.
 * Not (yet) in protocol/errors.ts; peers treat unknown codes like `internal`.
 */
export const TOO_MANY_ERRORS = "too_many_errors";

export interface SessionDeps {
  socket: SessionSocket;
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

class StreamState {
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
  /** Accepted bytes not yet announced in a window_update (batched). */
  ungranted = 0;
  /** flow: bytes the client may still send us. */
  recvCredit: number;
  /** flow: bytes we may still send the client. */
  sendCredit: number;
  /** flow: upstream bytes that arrived beyond the client's credit (at most what a pause lets through). */
  outQueue: Uint8Array[] = [];
  outBytes = 0;
  paused = false;
  clientEnded = false;
  upstreamWriteClosed = false;
  /** Without half_close the upstream's end finishes our write side too (see onUpstreamEnd). */
  finishWrite = false;
  upstreamEnded = false;
  endSent = false;
  /** The upstream closed while outQueue still held data for the client: finish after it is sent. */
  upstreamClosed = false;
  closed = false;

  constructor(readonly id: string, recvWindow: number, sendWindow: number) {
    this.recvCredit = recvWindow;
    this.sendCredit = sendWindow;
  }
}

export class Session implements SessionHandler, UsageSource {
  session_id = "";
  device_id = "";
  bytesUp = 0;
  bytesDown = 0;

  private state: State = "hello";
  private readonly socket: SessionSocket;
  private readonly cfg: SessionConfig;
  private log: Logger;
  private readonly streams = new Map<string, StreamState>();
  /** The UDP streams (docs/03 §11), which share the id space and max_streams with the TCP ones. */
  readonly udp: UdpStreams;
  private features = new Set<Feature>();
  private clientWindow = codec.DEFAULT_WINDOW;
  private creds: Credentials | null = null;
  private upstream: Upstream | null = null;
  private preauth: Array<string | Uint8Array> = [];
  private preauthBytes = 0;
  private buffered = 0;
  private socketBlocked = false;
  private consecutiveErrors = 0;
  private draining = false;
  private lastActivity = Date.now();
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private revalidateTimer: ReturnType<typeof setTimeout> | undefined;
  private blockedPoll: ReturnType<typeof setTimeout> | undefined;
  private pingSeq = 0;
  private outcomeCounted = false;
  private closeReason = "";

  constructor(private readonly deps: SessionDeps) {
    this.socket = deps.socket;
    this.cfg = deps.config;
    this.log = deps.logger.child({ remote: deps.socket.remoteAddress });
    this.udp = this.udpStreams();
    this.helloTimer = setTimeout(() => this.failHandshake(Code.hello_timeout, "no hello in time"), this.cfg.helloTimeoutMs);
  }

  /** Bytes this session holds in its own queues (not counting the socket's bufferedAmount). */
  get bufferedBytes(): number {
    return this.buffered + this.preauthBytes;
  }

  get streamCount(): number {
    return this.streams.size + this.udp.size;
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
    this.lastActivity = Date.now();
    if (this.state === "auth") {
      // A client may pipeline streams behind its hello; they run once auth_result is sent.
      const size = typeof msg === "string" ? msg.length : msg.byteLength;
      if (this.preauth.length >= MAX_PREAUTH_FRAMES || this.preauthBytes + size > MAX_PREAUTH_BYTES) {
        const message = `at most ${MAX_PREAUTH_FRAMES} frames (${MAX_PREAUTH_BYTES} bytes) may follow hello before auth_result`;
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
    if (this.state === "closed" || !this.socketBlocked) return;
    // No re-check of bufferedAmount here: the adapter's low-water mark is its business,
    // and the next upstream chunk re-blocks us if the socket is still full.
    this.unblockSocket();
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
    if (this.streams.size === 0) this.closeSocket(code);
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
    this.deps.metrics?.handshakeSeconds.observe((performance.now() - t0) / 1000);
    if (err) this.log.error("auth check threw", { error: err });
    if (!outcome.ok) {
      this.sendControl({ type: "auth_result", ok: false, code: outcome.code, message: outcome.message });
      this.failHandshake(outcome.code, "auth refused");
      return;
    }
    this.session_id = sessionId;
    this.log = this.log.child({ session_id: this.session_id, device_id: this.device_id });
    try {
      this.upstream = this.deps.upstreamFor(outcome, this.upstreamContext());
    } catch (e) {
      const code = e instanceof StreamError ? e.code : Code.unavailable;
      this.log.error("no upstream for session", { code, error: e });
      this.sendControl({ type: "auth_result", ok: false, code, message: "no upstream is available; retry later" });
      this.failHandshake(code, "no upstream");
      return;
    }
    this.state = "open";
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
    this.sendControl(result);
    this.outcomeCounted = true;
    this.deps.metrics?.sessionsTotal.inc({ outcome: "ok" });
    this.deps.metrics?.sessionsActive.inc();
    this.deps.usage?.open(this, outcome.assignment?.node_id ?? null);
    this.log.info("session open", { features: result.features });
    this.startKeepalive();
    this.scheduleRevalidation();
    const queued = this.preauth;
    this.preauth = [];
    this.preauthBytes = 0;
    for (const msg of queued) {
      if (this.state !== "open") break;
      this.handle(typeof msg === "string" ? codec.decodeText(msg) : codec.decodeBinary(msg));
    }
  }

  private upstreamContext(): UpstreamContext {
    const session = this;
    return {
      session_id: this.session_id,
      get logger() {
        return session.log;
      },
      revalidate: async (opts = {}) => {
        const creds = this.creds;
        if (this.state === "closed" || !creds) return { ok: false, code: Code.session_closed, message: "the session is closed" };
        const r = await this.deps.auth.check(creds, {
          session_id: this.session_id,
          exclude_node_ids: opts.exclude_node_ids,
          fresh: true,
        });
        if (!r.ok && r.code !== Code.unavailable) this.accessEnded(r.code, r.message);
        return r;
      },
      nodeChanged: (node_id) => {
        if (this.state !== "open") return;
        this.log.info("session moved to another node", { node_id });
        this.deps.usage?.nodeChanged?.(this, node_id);
      },
    };
  }

  /** The control plane says this device may no longer connect: tell the client why and close. */
  private accessEnded(code: string, message: string): void {
    if (this.state !== "open") return;
    this.log.info("session no longer authorised", { code });
    this.sendControl({ type: "error", code, message });
    this.closeSocket(code);
  }

  /**
   * Any handshake failure ends the same way — close code 1008, whatever the reason (even
   * `unavailable`, which closeCodeFor would map to 1011) — so the close reveals nothing
   * the auth_result did not already say.
   */
  private failHandshake(code: string, why: string): void {
    if (this.state === "closed") return;
    this.outcomeCounted = true;
    // Label values come from a closed list, so a backend inventing reasons cannot blow up the series count.
    this.deps.metrics?.sessionsTotal.inc({ outcome: isErrorCode(code) ? code : "other" });
    this.log.info("handshake failed", { code, why });
    this.closeSocket(code, WS_CLOSE.policy);
  }

  private startKeepalive(): void {
    this.pingTimer = setInterval(() => {
      this.sendControl({ type: "ping", id: String(++this.pingSeq) });
    }, this.cfg.pingIntervalMs);
    const check = () => {
      const idle = Date.now() - this.lastActivity;
      if (idle >= this.cfg.idleTimeoutMs) {
        this.log.info("idle timeout", { idle_ms: idle });
        this.sendControl({ type: "goaway", code: Code.idle_timeout, message: "no traffic from the client" });
        this.closeSocket(Code.idle_timeout);
        return;
      }
      // Lazily re-armed: one timer per session, not one reset per frame.
      this.idleTimer = setTimeout(check, this.cfg.idleTimeoutMs - idle);
    };
    this.idleTimer = setTimeout(check, this.cfg.idleTimeoutMs);
  }

  private scheduleRevalidation(): void {
    if (this.state !== "open") return;
    this.revalidateTimer = setTimeout(() => {
      this.revalidateTimer = undefined;
      if (this.state !== "open" || !this.creds) return;
      this.deps.auth.check(this.creds, { session_id: this.session_id }).then(
        (r) => {
          if (this.state !== "open") return;
          // unavailable: the backend is down; live sessions keep flowing and we ask again later.
          if (r.ok || r.code === "unavailable") return this.scheduleRevalidation();
          this.accessEnded(r.code, r.message);
        },
        () => this.scheduleRevalidation(),
      );
    }, this.deps.auth.ttlMs);
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
    clearInterval(this.pingTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.revalidateTimer);
    clearTimeout(this.blockedPoll);
    for (const st of this.streams.values()) this.dropStream(st);
    this.streams.clear();
    this.udp.closeAll();
    this.preauth = [];
    this.preauthBytes = 0;
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
        const st = this.streams.get(f.stream_id);
        if (!st) {
          if (this.udp.has(f.stream_id)) return this.udp.data(f.stream_id, f.data);
          return this.reject(Code.unknown_stream, "no such stream", f.stream_id);
        }
        return this.onData(st, f.data);
      }
      case "stream_end": {
        const st = this.streams.get(f.stream_id);
        if (!st && this.udp.has(f.stream_id)) return this.udp.end(f.stream_id);
        if (!st) return this.reject(Code.unknown_stream, "no such stream", f.stream_id);
        this.consecutiveErrors = 0;
        return this.onClientEnd(st);
      }
      case "stream_close": {
        // Both sides may close at once, so a close for a stream we already dropped is normal.
        this.consecutiveErrors = 0;
        const st = this.streams.get(f.stream_id);
        if (st) this.dropStream(st);
        else this.udp.clientClose(f.stream_id);
        return;
      }
      case "window_update": {
        // Likewise a late window_update for a stream that just ended is not an error.
        this.consecutiveErrors = 0;
        const st = this.streams.get(f.stream_id);
        if (st) this.onWindowUpdate(st, f.increment);
        return;
      }
      case "ping":
        this.consecutiveErrors = 0;
        return this.sendControl(f.id === undefined ? { type: "pong" } : { type: "pong", id: f.id });
      case "pong":
        this.consecutiveErrors = 0;
        return;
      case "error":
        this.consecutiveErrors = 0;
        this.log.debug("client reported an error", { code: f.code, stream_id: f.stream_id });
        return;
      case "goaway":
        this.consecutiveErrors = 0;
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
    if (++this.consecutiveErrors < this.cfg.maxConsecutiveErrors) return;
    this.log.warn("too many errors in a row; closing", { errors: this.consecutiveErrors });
    this.sendControl({ type: "error", code: TOO_MANY_ERRORS, message: `${this.consecutiveErrors} bad frames in a row` });
    this.closeSocket(TOO_MANY_ERRORS);
  }

  private refuseStream(stream_id: string, code: ErrorCode, message: string): void {
    this.deps.metrics?.framesRejectedTotal.inc({ code });
    this.sendControl({ type: "stream_close", stream_id, code, message });
    this.countError();
  }

  private onOpen(f: StreamOpen): void {
    if (this.streams.has(f.stream_id) || this.udp.has(f.stream_id)) {
      return this.reject(Code.duplicate_stream, "stream id already open", f.stream_id);
    }
    if (this.draining) return this.refuseStream(f.stream_id, Code.shutdown, "the gateway is shutting down");
    if (this.streamCount >= this.cfg.maxStreams) {
      return this.refuseStream(f.stream_id, Code.too_many_streams, `at most ${this.cfg.maxStreams} streams`);
    }
    if (f.network === "udp") return this.udp.open(f, this.features.has("udp"));
    const target = f.target ?? this.upstream!.defaultTarget;
    if (!target) return this.refuseStream(f.stream_id, Code.target_required, "stream_open needs a target in this upstream mode");
    this.consecutiveErrors = 0;

    const st = new StreamState(f.stream_id, this.cfg.window, this.clientWindow);
    this.streams.set(st.id, st);
    this.deps.metrics?.streamsActive.inc();
    if (f.data && f.data.length > 0) this.onData(st, f.data);
    if (st.closed) return;

    const ctrl = st.dial!;
    // Our own timer rather than trusting every dialer to honour the signal promptly.
    st.dialTimer = setTimeout(() => {
      ctrl.abort();
      this.closeStream(st, Code.upstream_timeout, "the upstream did not answer in time");
    }, this.upstream!.dialTimeoutMs ?? this.cfg.dialTimeoutMs);
    const t0 = performance.now();
    let dialing: Promise<Duplex>;
    try {
      dialing = this.upstream!.dialer.dial(target, ctrl.signal);
    } catch (e) {
      dialing = Promise.reject(e);
    }
    dialing.then(
      (duplex) => {
        clearTimeout(st.dialTimer);
        st.dial = null;
        if (st.closed || this.state === "closed") {
          duplex.close();
          return;
        }
        this.deps.metrics?.upstreamDialSeconds.observe((performance.now() - t0) / 1000);
        st.upstream = duplex;
        duplex.start({
          data: (chunk) => this.onUpstreamData(st, chunk),
          end: () => this.onUpstreamEnd(st),
          drain: () => this.onUpstreamDrain(st),
          close: (err) => this.onUpstreamClose(st, err),
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
        this.log.debug("dial failed", { stream_id: st.id, code });
        this.closeStream(st, code, e instanceof StreamError ? e.message : "could not reach the upstream");
      },
    );
  }

  private onData(st: StreamState, data: Uint8Array): void {
    const n = data.length;
    if (st.clientEnded) return this.reject(Code.unexpected_frame, "data after stream_end", st.id);
    this.consecutiveErrors = 0;
    if (this.flow) {
      st.recvCredit -= n;
      if (st.recvCredit < 0) return this.violation(st, "data beyond the granted window");
    }
    this.bytesUp += n;
    this.deps.metrics?.bytesTotal.inc({ direction: "up" }, n);
    if (st.finishWrite) return; // the upstream ended and the client cannot half-close: nothing more can reach it
    if (st.upstream && !st.upstreamBlocked && st.pending.length === 0) {
      if (st.upstream.write(data)) this.grant(st, n);
      else {
        st.upstreamBlocked = true;
        st.heldGrant += n;
      }
      return;
    }
    if (!this.flow && st.pendingBytes + n > this.cfg.window) {
      // Without "flow" the window is implicit; overrunning it is the same violation.
      return this.violation(
        st,
        `the upstream is slower than the client; without flow control at most ${this.cfg.window} bytes may wait per stream`,
      );
    }
    st.pending.push(data);
    st.pendingBytes += n;
    this.buffered += n;
  }

  private flushPending(st: StreamState): void {
    const up = st.upstream;
    if (!up || st.closed) return;
    while (st.pending.length > 0 && !st.upstreamBlocked) {
      const chunk = st.pending.shift()!;
      st.pendingBytes -= chunk.length;
      this.buffered -= chunk.length;
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

  /** Return credit for bytes the upstream accepted, batched so window_update frames stay rare. */
  private grant(st: StreamState, n: number): void {
    if (!this.flow || st.clientEnded) return;
    st.ungranted += n;
    if (st.ungranted < Math.max(1, Math.floor(this.cfg.window / 4))) return;
    const increment = st.ungranted;
    st.ungranted = 0;
    st.recvCredit += increment;
    this.sendControl({ type: "window_update", stream_id: st.id, increment });
  }

  private onClientEnd(st: StreamState): void {
    if (st.clientEnded) return;
    st.clientEnded = true;
    this.flushPending(st);
    this.maybeFinished(st);
  }

  private onWindowUpdate(st: StreamState, increment: number): void {
    if (!this.flow) return;
    if (st.sendCredit + increment > MAX_CREDIT) return this.violation(st, "window_update overflows 2^31-1");
    st.sendCredit += increment;
    this.flushOut(st);
    if (!st.closed) this.updatePause(st);
  }

  private onUpstreamData(st: StreamState, chunk: Uint8Array): void {
    if (st.closed || this.state !== "open") return;
    this.bytesDown += chunk.length;
    this.deps.metrics?.bytesTotal.inc({ direction: "down" }, chunk.length);
    if (!this.flow) {
      this.sendData(st.id, chunk);
    } else if (st.outBytes > 0 || st.sendCredit < chunk.length) {
      // Send what the credit allows now, keep the rest: the pause below stops the upstream,
      // so this holds at most one chunk.
      let rest = chunk;
      if (st.outBytes === 0 && st.sendCredit > 0) {
        this.sendData(st.id, chunk.subarray(0, st.sendCredit));
        rest = chunk.subarray(st.sendCredit);
        st.sendCredit = 0;
      }
      st.outQueue.push(rest);
      st.outBytes += rest.length;
      this.buffered += rest.length;
    } else {
      st.sendCredit -= chunk.length;
      this.sendData(st.id, chunk);
    }
    this.checkSocket();
    this.updatePause(st);
  }

  private flushOut(st: StreamState): void {
    while (st.outQueue.length > 0 && st.sendCredit > 0 && !st.closed) {
      const head = st.outQueue[0]!;
      const n = Math.min(head.length, st.sendCredit);
      this.sendData(st.id, head.subarray(0, n));
      st.sendCredit -= n;
      st.outBytes -= n;
      this.buffered -= n;
      if (n === head.length) st.outQueue.shift();
      else st.outQueue[0] = head.subarray(n);
    }
    this.checkSocket();
    if (st.outQueue.length === 0) this.maybeFinished(st);
  }

  private sendData(id: string, data: Uint8Array): void {
    const max = codec.MAX_DATA_BYTES;
    const binary = this.features.has("binary");
    for (let at = 0; at < data.length; at += max) {
      const piece = data.subarray(at, Math.min(data.length, at + max));
      this.send(binary ? codec.encodeStreamDataBinary(id, piece) : codec.encodeStreamDataText(id, piece));
    }
  }

  private onUpstreamEnd(st: StreamState): void {
    if (st.closed) return;
    st.upstreamEnded = true;
    if (!this.features.has("half_close") && !st.upstreamWriteClosed) {
      // The client cannot half-close, so the stream ends when the upstream's does, as a
      // TCP socket without allowHalfOpen would: finish our side too and let it close.
      st.finishWrite = true;
      this.flushPending(st);
    }
    this.maybeFinished(st);
  }

  private onUpstreamDrain(st: StreamState): void {
    if (st.closed) return;
    st.upstreamBlocked = false;
    const held = st.heldGrant;
    st.heldGrant = 0;
    if (held > 0) this.grant(st, held);
    this.flushPending(st);
  }

  private onUpstreamClose(st: StreamState, err?: StreamError): void {
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
  private maybeFinished(st: StreamState): void {
    if (st.closed || st.outBytes > 0) return;
    if (st.upstreamEnded && !st.endSent && this.features.has("half_close")) {
      st.endSent = true;
      this.sendControl({ type: "stream_end", stream_id: st.id });
    }
    if (st.upstreamClosed) this.closeStream(st, undefined, undefined, false);
  }

  /** The client broke flow control on this stream: only the stream pays. */
  private violation(st: StreamState, message: string): void {
    this.deps.metrics?.framesRejectedTotal.inc({ code: Code.flow_violation });
    this.closeStream(st, Code.flow_violation, message);
  }

  /** Gateway-initiated end of a stream: tell the client, release everything. */
  private closeStream(st: StreamState, code?: string, message?: string, closeUpstream = true): void {
    if (st.closed) return;
    const frame: StreamClose = { type: "stream_close", stream_id: st.id };
    // Only protocol codes go on the wire (docs/03 §7); an upstream's own code becomes the closest one.
    if (code) frame.code = isErrorCode(code) ? code : code === "aborted" ? Code.cancelled : Code.upstream_reset;
    if (code && message) frame.message = message;
    // The frame first: dropping the last stream of a draining session closes the socket.
    if (this.state === "open") this.sendControl(frame);
    this.dropStream(st, closeUpstream ? (code ? new StreamError(code, message) : undefined) : null);
  }

  /** Forget a stream without telling the client (it closed it, or the session is ending). */
  private dropStream(st: StreamState, err: StreamError | undefined | null = undefined): void {
    if (st.closed) return;
    st.closed = true;
    if (this.streams.get(st.id) === st) this.streams.delete(st.id);
    this.deps.metrics?.streamsActive.dec();
    clearTimeout(st.dialTimer);
    st.dial?.abort();
    st.dial = null;
    this.buffered -= st.pendingBytes + st.outBytes;
    st.pending = [];
    st.outQueue = [];
    st.pendingBytes = st.outBytes = 0;
    const up = st.upstream;
    st.upstream = null;
    if (up && err !== null) up.close(err);
    if (this.draining && this.streams.size === 0 && this.state === "open") this.closeSocket(Code.shutdown);
  }

  /** What the UDP streams borrow from the session: its socket, counters and bad-frame accounting. */
  private udpStreams(): UdpStreams {
    const session = this;
    return new UdpStreams({
      get log() {
        return session.log;
      },
      get packetDialer() {
        return session.upstream?.packetDialer;
      },
      get defaultTarget() {
        return session.upstream?.defaultTarget;
      },
      get dialTimeoutMs() {
        return session.upstream?.dialTimeoutMs ?? session.cfg.dialTimeoutMs;
      },
      idleTimeoutMs: this.cfg.udpIdleTimeoutMs ?? codec.UDP_IDLE_TIMEOUT_MS,
      maxDatagramBytes: codec.MAX_DATAGRAM_BYTES,
      socketFull: () => this.socket.bufferedAmount > this.cfg.socketHighWater,
      sendControl: (frame) => this.sendControl(frame),
      sendData: (id, data) =>
        this.send(this.features.has("binary") ? codec.encodeStreamDataBinary(id, data) : codec.encodeStreamDataText(id, data)),
      reject: (code, message, id) => this.reject(code, message, id),
      refuse: (id, code, message) => this.refuseStream(id, code, message),
      good: () => {
        this.consecutiveErrors = 0;
      },
      bytes: (direction, n) => {
        if (direction === "up") this.bytesUp += n;
        else this.bytesDown += n;
        this.deps.metrics?.bytesTotal.inc({ direction }, n);
      },
      streamOpened: () => this.deps.metrics?.streamsActive.inc(),
      streamClosed: (dropped) => {
        this.deps.metrics?.streamsActive.dec();
        if (dropped > 0) this.deps.metrics?.udpDatagramsDroppedTotal.inc(dropped);
        if (this.draining && this.streamCount === 0 && this.state === "open") this.closeSocket(Code.shutdown);
      },
    });
  }

  // ---- backpressure ----

  private checkSocket(): void {
    if (this.socketBlocked || this.socket.bufferedAmount <= this.cfg.socketHighWater) return;
    this.socketBlocked = true;
    for (const st of this.streams.values()) this.updatePause(st);
    // drain() is the adapter's promise, but if its high-water mark is above ours it never
    // saw the socket "full" and will not call: a slow poll while blocked rules out a stall.
    const poll = () => {
      this.blockedPoll = undefined;
      if (!this.socketBlocked || this.state === "closed") return;
      if (this.socket.bufferedAmount <= this.cfg.socketHighWater / 2) this.unblockSocket();
      else this.blockedPoll = setTimeout(poll, BLOCKED_POLL_MS);
    };
    this.blockedPoll = setTimeout(poll, BLOCKED_POLL_MS);
  }

  private unblockSocket(): void {
    this.socketBlocked = false;
    clearTimeout(this.blockedPoll);
    this.blockedPoll = undefined;
    for (const st of this.streams.values()) this.updatePause(st);
  }

  private updatePause(st: StreamState): void {
    const up = st.upstream;
    if (!up || st.closed) return;
    const want = this.socketBlocked || st.outBytes > 0 || (this.flow && st.sendCredit <= 0);
    if (want === st.paused) return;
    st.paused = want;
    if (want) up.pause();
    else up.resume();
  }

  // ---- output ----

  private sendControl(frame: Frame): void {
    // The per-stream hot control frames have a compact binary form once "binary" is agreed.
    const compact = (frame.type === "window_update" || frame.type === "stream_end") && this.features.has("binary");
    this.send(compact ? codec.encodeBinary(frame) : codec.encodeText(frame));
  }

  private send(msg: string | Uint8Array): void {
    if (this.state === "closed") return;
    try {
      this.socket.send(msg);
    } catch (e) {
      this.log.debug("send failed; closing", { error: e });
      this.teardown("send_failed");
    }
  }
}
