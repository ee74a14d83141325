// `connect(accessKey)`: a Dialer over ONE long-lived session to the gateway, kept up with
// jittered exponential backoff. Dials made while there is no session wait for one (bounded);
// streams that were open when a session died end with `session_closed`; a goaway opens the
// next session at once while the old one drains (make-before-break). Auth answers that more
// attempts cannot change (revoked, bad_token, …) stop the retrying and put the tunnel in the
// `failed` state, which the CLI reports and exits on.
import type { Logger } from "../logging/logger.ts";
import { type AccessKey, parseAccessKey, redactAccessKey, type TransportKind } from "../protocol/access-key.ts";
import { Code } from "../protocol/errors.ts";
import type { PacketConn, PacketDialer } from "../transport/packet.ts";
import { type Dialer, type Duplex, StreamError, type Target } from "../transport/stream.ts";
import { type GatewayTls, gatewayWhere, type OpenSocket } from "./gateway-socket.ts";
import { ClientError, ClientSession, type ClientSessionOptions } from "./session.ts";
import { selectTransport, type TransportSelector } from "./transport-select.ts";

/**
 * Auth failures that retrying with the same key cannot fix: `auth_failed`, which a gateway says
 * for an unknown device, a wrong token and a disabled, revoked or expired device alike (docs/07),
 * and those five by name, which gateways before that said (and a live session's end still says).
 */
export const FINAL_AUTH_CODES: ReadonlySet<string> = new Set([
  Code.auth_failed,
  Code.bad_token,
  Code.revoked,
  Code.disabled,
  Code.expired,
  Code.unknown_device,
]);

/** Why a live session's access ended, as the gateway tells a session that proved its token. */
const ACCESS_ENDED: ReadonlySet<string> = new Set([Code.revoked, Code.disabled, Code.expired]);

export interface ConnectOptions {
  tls?: GatewayTls;
  /** The transport to try first, instead of the access key's; the other one is the fallback. */
  transport?: TransportKind;
  logger?: Logger;
  /** Per-stream credit granted to the gateway. */
  window?: number;
  clientVersion?: string;
  /** Bound on one connection attempt (WebSocket open, then auth_result). Default 15 s. */
  connectTimeoutMs?: number;
  /** First reconnect delay; doubles per failed attempt up to backoffMaxMs, with jitter. Default 250 ms. */
  backoffInitialMs?: number;
  /** Default 30 s. */
  backoffMaxMs?: number;
  /** How long a dial waits for a session before failing with `unavailable`. Default 10 s. */
  waitForSessionMs?: number;
  /**
   * How long a dial waits for the gateway's first word on a new stream, so that a refused or
   * unreachable target fails the dial (a SOCKS5 error reply) instead of a stream that closes
   * at once. The protocol has no "opened" frame, and client-first protocols (HTTP, TLS) send
   * nothing back until they hear from us, so every such dial pays this in full: default 0,
   * optimistic like Shadowsocks clients.
   */
  confirmMs?: number;
  /** A session counts as healthy (the backoff starts over) after this long. Default 10 s. */
  stableAfterMs?: number;
  /** Ask for "padding" (docs/03 §12). Default true. */
  padding?: boolean;
  /**
   * Use early data (docs/03 §13) once a session of this tunnel was granted it: later sessions
   * give a dial that arrives during their handshake its stream right behind the hello. Default true.
   */
  earlyData?: boolean;
  /**
   * Test seams and keepalive tuning for the sessions. `openSocket` replaces the transports
   * entirely; `openers` replaces them one by one (the fallback between them stays).
   */
  session?: Pick<ClientSessionOptions, "pingIntervalMs" | "deadAfterMs"> & {
    openSocket?: OpenSocket;
    openers?: Record<TransportKind, OpenSocket>;
  };
}

export type TunnelState = "connecting" | "connected" | "reconnecting" | "failed" | "closed";

export interface TunnelStatus {
  state: TunnelState;
  /** host:port of the gateway. */
  gateway: string;
  sessionId?: string;
  /** Streams open on all live sessions (a draining one included). */
  streams: number;
  /** Payload bytes sent and received over the tunnel's lifetime. */
  bytesUp: number;
  bytesDown: number;
  /** Sessions that completed their handshake so far. */
  sessions: number;
  /** The transport of the current session, or the one tried first before any. */
  transport: TransportKind;
  /** The last failure: why the tunnel is reconnecting or failed. */
  error?: { code: string; message: string };
  /** While reconnecting: the delay before the next attempt. */
  retryInMs?: number;
}

interface Waiter {
  /** A byte-stream dial, which may take a session still in its handshake (early data). */
  early: boolean;
  resolve(s: ClientSession): void;
  reject(e: StreamError): void;
}

export class Tunnel implements Dialer {
  private state: TunnelState = "connecting";
  private current: ClientSession | null = null;
  /** A session whose hello is out and which may take one stream before auth_result. */
  private handshaking: ClientSession | null = null;
  /** A session of this tunnel was granted "early_data": the gateway holds a stream sent behind the hello. */
  private earlyDataGranted = false;
  private readonly live = new Set<ClientSession>();
  private waiters = new Set<Waiter>();
  private listeners = new Set<(s: TunnelStatus) => void>();
  private attempts = 0;
  private connecting = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryInMs: number | undefined;
  private error: { code: string; message: string } | undefined;
  private sessionsOpened = 0;
  private closedUp = 0;
  private closedDown = 0;
  private sessionSince = 0;
  private readonly readyPromise: Promise<void>;
  private readySettle: { resolve: () => void; reject: (e: ClientError) => void } | undefined;
  private readonly log: Logger | undefined;
  private readonly transports: TransportSelector;

  constructor(
    readonly key: AccessKey,
    private readonly opts: ConnectOptions = {},
  ) {
    this.log = opts.logger;
    this.transports = selectTransport(opts.transport ?? key.transport, { logger: opts.logger, openers: opts.session?.openers });
    this.readyPromise = new Promise<void>((resolve, reject) => (this.readySettle = { resolve, reject }));
    this.readyPromise.catch(() => {});
    this.log?.info("tunnel starting", { access_key: redactAccessKey(key), transport: this.transports.current });
    void this.attempt();
  }

  get status(): TunnelStatus {
    let streams = 0;
    let up = this.closedUp;
    let down = this.closedDown;
    for (const s of this.live) {
      streams += s.streamCount;
      up += s.bytesUp;
      down += s.bytesDown;
    }
    const st: TunnelStatus = {
      state: this.state,
      gateway: gatewayWhere(this.key),
      streams,
      bytesUp: up,
      bytesDown: down,
      sessions: this.sessionsOpened,
      transport: this.transports.current,
    };
    if (this.current) st.sessionId = this.current.sessionId;
    if (this.error) st.error = { ...this.error };
    if (this.retryInMs !== undefined && (this.state === "reconnecting" || this.state === "connecting")) {
      st.retryInMs = this.retryInMs;
    }
    return st;
  }

  /** Called on every state change; returns an unsubscribe function. */
  onStatus(listener: (s: TunnelStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when the first session is up; rejects if the tunnel fails or closes first. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  async dial(target: Target, signal?: AbortSignal): Promise<Duplex> {
    const st = await this.openOnSession(target, signal, (s) => s.openStream(target), true);
    const confirmMs = this.opts.confirmMs ?? 0;
    if (confirmMs > 0) {
      await confirmWithin(st.confirmed, confirmMs, signal, () => st.close(new StreamError(Code.cancelled, "dial abandoned")));
    }
    return st;
  }

  /** A UDP stream to `target` over the current session (udp_unsupported if the gateway did not grant the feature). */
  dialPacket(target: Target, signal?: AbortSignal): Promise<PacketConn> {
    return this.openOnSession(target, signal, (s) => s.openDatagrams(target));
  }

  /** This tunnel as a PacketDialer, for the SOCKS5 server's UDP ASSOCIATE. */
  readonly packets: PacketDialer = { dial: (target, signal) => this.dialPacket(target, signal) };

  private async openOnSession<T>(
    target: Target,
    signal: AbortSignal | undefined,
    open: (s: ClientSession) => T,
    early = false,
  ): Promise<T> {
    if (
      typeof target?.host !== "string" || target.host === "" || !Number.isInteger(target.port) || target.port < 1 ||
      target.port > 65535
    ) {
      throw new StreamError(Code.bad_target, "the target needs a host and a port 1-65535");
    }
    // One retry: a goaway may land between getting a session and opening the stream on it.
    for (let i = 0;; i++) {
      const session = await this.sessionFor(signal, early);
      try {
        return open(session);
      } catch (e) {
        if (i === 0 && e instanceof StreamError && (e.code === Code.shutdown || e.code === Code.session_closed)) continue;
        throw e;
      }
    }
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.setState("closed");
    clearTimeout(this.retryTimer);
    this.rejectWaiters(new StreamError(Code.session_closed, "the tunnel was closed"));
    for (const s of [...this.live]) s.close("client_closed", "the client is shutting down");
    this.current = null;
    this.readySettle?.reject(new ClientError(Code.session_closed, "the tunnel was closed"));
    this.readySettle = undefined;
  }

  // ---- sessions ----

  private sessionFor(signal?: AbortSignal, early = false): Promise<ClientSession> {
    if (this.current?.isOpen) return Promise.resolve(this.current);
    if (early && this.handshaking?.canOpenEarly) return Promise.resolve(this.handshaking);
    if (this.state === "failed") {
      return Promise.reject(new StreamError(this.error?.code ?? Code.unavailable, this.error?.message ?? "the tunnel failed"));
    }
    if (this.state === "closed") return Promise.reject(new StreamError(Code.session_closed, "the tunnel is closed"));
    if (signal?.aborted) return Promise.reject(new StreamError(Code.cancelled, "dial aborted"));
    const waitMs = this.opts.waitForSessionMs ?? 10_000;
    return new Promise<ClientSession>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.waiters.delete(w);
      };
      const w: Waiter = {
        early,
        resolve: (s) => (done(), resolve(s)),
        reject: (e) => (done(), reject(e)),
      };
      const onAbort = () => w.reject(new StreamError(Code.cancelled, "dial aborted"));
      const timer = setTimeout(() => {
        const why = this.error ? ` (last error: ${this.error.code}: ${this.error.message})` : "";
        w.reject(new StreamError(Code.unavailable, `no session to the gateway within ${waitMs} ms${why}`));
      }, waitMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(w);
    });
  }

  private async attempt(): Promise<void> {
    if (this.connecting || this.state === "closed" || this.state === "failed") return;
    this.connecting = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryInMs = undefined;
    let session: ClientSession;
    try {
      session = await ClientSession.open(
        {
          key: this.key,
          tls: this.opts.tls,
          window: this.opts.window,
          clientVersion: this.opts.clientVersion,
          connectTimeoutMs: this.opts.connectTimeoutMs,
          logger: this.log,
          pingIntervalMs: this.opts.session?.pingIntervalMs,
          deadAfterMs: this.opts.session?.deadAfterMs,
          openSocket: this.opts.session?.openSocket ?? this.transports.open,
          padding: this.opts.padding,
          earlyData: this.earlyDataGranted && this.opts.earlyData !== false,
        },
        {
          helloSent: (s) => this.onHelloSent(s),
          goaway: (s) => this.onGoaway(s),
          closed: (s, code, message) => this.onSessionClosed(s, code, message),
        },
      );
    } catch (e) {
      this.connecting = false;
      this.handshaking = null;
      const err = e instanceof ClientError ? e : new ClientError(Code.internal, (e as Error).message);
      return this.onAttemptFailed(err);
    }
    this.connecting = false;
    this.handshaking = null;
    // The latest answer counts: a gateway that stopped granting it (downgraded) gets none next time.
    this.earlyDataGranted = session.features.has("early_data");
    // close() may have run while we awaited (TypeScript keeps the narrowing from before the await).
    if ((this.state as TunnelState) === "closed") {
      session.close("client_closed", "the tunnel was closed");
      return;
    }
    if (!session.isOpen) {
      // Closed (or got a goaway) between auth_result and here: it never served a dial.
      session.close(Code.session_closed, "replaced");
      return this.onAttemptFailed(new ClientError(Code.session_closed, "the session ended right after it opened"));
    }
    this.live.add(session);
    this.current = session;
    this.sessionsOpened++;
    this.sessionSince = Date.now();
    this.error = undefined;
    this.setState("connected");
    this.readySettle?.resolve();
    this.readySettle = undefined;
    for (const w of [...this.waiters]) w.resolve(session);
  }

  /** The hello is out: a session that may take an early stream gives it to the first dial waiting. */
  private onHelloSent(s: ClientSession): void {
    if (!s.canOpenEarly || this.state === "closed") return;
    this.handshaking = s;
    for (const w of this.waiters) {
      if (!w.early) continue;
      w.resolve(s);
      return;
    }
  }

  private onAttemptFailed(err: ClientError): void {
    if (this.state === "closed") return;
    // A hello refused with auth_failed right after a live session was told why its access ended
    // (revoked, disabled, expired: the gateway tells a session that proved its token) keeps that
    // reason: it is the same refusal, and the user gets the specific advice.
    const ended = this.error && ACCESS_ENDED.has(this.error.code) ? this.error : undefined;
    if (err.code === Code.auth_failed && ended) err = new ClientError(ended.code, ended.message);
    this.error = { code: err.code, message: err.message };
    if (FINAL_AUTH_CODES.has(err.code)) {
      this.log?.error("the gateway refused this device; not retrying", { code: err.code, error: err.message });
      this.setState("failed");
      this.rejectWaiters(new StreamError(err.code, err.message));
      this.readySettle?.reject(err);
      this.readySettle = undefined;
      return;
    }
    this.log?.warn("cannot open a session; retrying", { code: err.code, error: err.message });
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    const initial = this.opts.backoffInitialMs ?? 250;
    const max = this.opts.backoffMaxMs ?? 30_000;
    const base = Math.min(max, initial * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    // "Equal jitter": never less than half the step, so retries still back off, but clients
    // cut off together (a gateway restart) do not come back in lockstep.
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.retryInMs = delay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.attempt(), delay);
    this.setState(this.sessionsOpened > 0 ? "reconnecting" : "connecting");
  }

  private onGoaway(s: ClientSession): void {
    if (s !== this.current || this.state === "closed") return;
    this.current = null;
    this.attempts = 0;
    this.setState("reconnecting");
    void this.attempt();
  }

  private onSessionClosed(s: ClientSession, code: string, message: string): void {
    this.live.delete(s);
    this.closedUp += s.bytesUp;
    this.closedDown += s.bytesDown;
    if (s !== this.current) return; // a drained session, or one a goaway already replaced
    this.current = null;
    if (this.state === "closed" || this.state === "failed") return;
    this.log?.warn("session lost; reconnecting", { code, error: message });
    this.error = { code, message };
    if (Date.now() - this.sessionSince >= (this.opts.stableAfterMs ?? 10_000)) this.attempts = 0;
    if (!this.connecting) this.scheduleRetry();
  }

  private rejectWaiters(e: StreamError): void {
    for (const w of [...this.waiters]) w.reject(e);
  }

  private setState(state: TunnelState): void {
    this.state = state;
    const s = this.status;
    for (const l of [...this.listeners]) {
      try {
        l(s);
      } catch (e) {
        this.log?.error("a status listener threw", { error: e });
      }
    }
  }
}

function confirmWithin(
  confirmed: Promise<void>,
  ms: number,
  signal: AbortSignal | undefined,
  abandon: () => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(finish, ms);
    const onAbort = () => {
      abandon();
      finish(new StreamError(Code.cancelled, "dial aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    confirmed.then(() => finish(), (e: StreamError) => finish(e));
    function finish(err?: StreamError) {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve();
    }
  });
}

/**
 * A Dialer over one self-healing session to the gateway named by `accessKey`. Throws a
 * ClientError `bad_access_key` for a malformed key (the message never contains the token).
 */
export function connect(accessKey: string | AccessKey, opts: ConnectOptions = {}): Tunnel {
  let key: AccessKey;
  if (typeof accessKey === "string") {
    const r = parseAccessKey(accessKey);
    if (!r.ok) throw new ClientError(r.error.code, `bad access key: ${r.error.message}`);
    key = r.key;
  } else key = accessKey;
  return new Tunnel(key, opts);
}
