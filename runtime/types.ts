// The contract every runtime adapter (node.ts, bun.ts, deno.ts) implements with the same
// exported names, after Hono's src/adapter/<runtime>/ layout: the adapters only translate a
// runtime's server and WebSocket APIs into these Web-standard shapes, and nothing outside
// runtime/ asks which runtime it is on.

/** Above this many bytes queued on a WebSocket, the session stops sending and waits for drain(). */
export const WS_HIGH_WATER = 1024 * 1024;
/** drain() fires once the queue is back under this, so a sender resumes with room for a burst. */
export const WS_LOW_WATER = 256 * 1024;
/** Largest incoming message: a 1 MiB data frame plus room for its header. Larger ones close with 1009. */
export const WS_MAX_MESSAGE = 1024 * 1024 + 64 * 1024;
/** Close code for an oversized message (RFC 6455 7.4.1). */
export const WS_CLOSE_TOO_BIG = 1009;
/**
 * After we sent our close (a WebSocket close frame, an HTTP/2 close record), how long the peer
 * has to answer before its connection is closed anyway: a peer that never answers (a flood's
 * silent WebSocket after hello_timeout) must not hold a descriptor for long.
 */
export const CLOSE_GRACE_MS = 5_000;
/** Close code when our own handler threw. */
export const WS_CLOSE_INTERNAL = 1011;
/**
 * Where a runtime cannot stop reading a WebSocket (Deno), pause() holds the messages that still
 * arrive, at most this many bytes; past it the socket closes with WS_CLOSE_TOO_BIG.
 */
export const WS_PAUSED_MAX_HELD = 8 * 1024 * 1024;

export interface ConnInfo {
  remoteAddress: string;
}

export type FetchHandler = (req: Request, info: ConnInfo) => Response | Promise<Response>;

export interface TlsFiles {
  /** PEM text, not paths. */
  cert: string;
  key: string;
}

/** The ALPN protocol of a TLS-ALPN-01 validation (RFC 8737). */
export const ACME_TLS_ALPN = "acme-tls/1";

/**
 * TLS-ALPN-01 (RFC 8737): the certificate that answers a handshake offering `acme-tls/1` for
 * this server name while its challenge is pending; undefined when none is.
 */
export type AcmeTlsChallenge = (serverName: string) => TlsFiles | undefined;

export interface ServeHttpOptions {
  hostname: string;
  /** 0 lets the OS choose; the listening server reports the real port. */
  port: number;
  fetch: FetchHandler;
  tls?: TlsFiles;
}

export interface ListeningServer {
  port: number;
  hostname: string;
  /** Stop accepting connections. Open WebSocket sessions are left to their owner to close. */
  close(): Promise<void>;
}

/** The gateway's listener: a ListeningServer whose certificate can be replaced while it runs. */
export interface GatewayServer extends ListeningServer {
  /**
   * Serve this certificate (PEM, the chain after the leaf) to every new connection from now on.
   * Where the adapter's `tlsSwapKeepsSessions`, open connections and sessions keep going
   * untouched; elsewhere they are closed and clients reconnect. Rejects with a RuntimeError
   * (`bad_tls`) when the certificate or key cannot be used, and the old one stays.
   */
  setTls(tls: TlsFiles): Promise<void>;
}

/** One WebSocket as the session layer sees it, server or client side. */
export interface SessionSocket {
  /** Text goes as a text message, bytes as a binary one. A no-op once closed. */
  send(msg: string | Uint8Array): void;
  /**
   * One binary message made of `head` then `body`, as send(head + body) would send it, where the
   * adapter can write it without joining the two first (Node's server WebSocket writes its own
   * frame in one buffer straight to the TLS socket: one copy of a bulk payload instead of two).
   * Absent elsewhere: the caller joins them and calls send().
   */
  sendParts?(head: Uint8Array, body: Uint8Array): void;
  /** Bytes accepted by send() and not yet handed to the kernel. */
  readonly bufferedAmount: number;
  close(code?: number, reason?: string): void;
  readonly remoteAddress: string;
  /**
   * The Sec-WebSocket-Protocol of the 101 ("" when it named none), where the socket knows it:
   * client sockets on every runtime (what `WsConnectOptions.protocols` got back).
   */
  readonly protocol?: string;
  /** A WebSocket-level ping (the peer's stack answers it); absent where the runtime has no API for it. */
  ping?(): void;
  /**
   * Stop delivering messages until resume(), so a slow consumer pushes back on the peer. Node
   * and Bun stop reading the socket (TCP then pushes back; a message or two already read may
   * still arrive); Deno cannot, so its adapter holds what arrives, at most WS_PAUSED_MAX_HELD
   * bytes, and closes past that. Server sockets have it; the session protocol does not need it
   * (its credit bounds what a peer may send).
   */
  pause?(): void;
  resume?(): void;
  /**
   * The session proved its credentials: its connection stops counting against the
   * pre-authentication cap (ServeGatewayOptions.preauth). Idempotent; absent on client sockets.
   */
  authenticated?(): void;
}

export interface SessionHandler {
  /** Binary messages arrive as Uint8Array views the handler may keep; text as string. */
  message(msg: string | Uint8Array): void;
  /** bufferedAmount went above WS_HIGH_WATER and is now at or below WS_LOW_WATER. */
  drain(): void;
  /** Called exactly once, whoever closed. */
  close(code: number, reason: string): void;
}

/** The HTTP/2 transport's session request: `POST <wsPath>` with exactly this content type (docs/03 §1). */
export const H2_CONTENT_TYPE = "application/x-httvps";

/** HTTP/2 flow-control windows (stream and connection) on both ends: the 64 KiB default caps a stream at 64 KiB per round trip. */
export const H2_WINDOW = 4 * 1024 * 1024;

/** Whether an HTTP/2 request (path already matched) opens a session; all adapters decide with this. */
export function isH2SessionRequest(method: string, headers: Headers): boolean {
  return method === "POST" && headers.get("content-type")?.trim().toLowerCase() === H2_CONTENT_TYPE;
}

/** The session transports a gateway adapter serves: `ws` everywhere, `h2` where the runtime's server speaks HTTP/2. */
export type SessionTransport = "ws" | "h2";

export interface UpgradeInfo {
  remoteAddress: string;
  headers: Headers;
  /** Which transport carries this session. */
  transport: SessionTransport;
}

export type AcceptSession = (socket: SessionSocket, info: UpgradeInfo) => SessionHandler;

/** The gateway's answer to a WebSocket upgrade off `wsPath` that it wants to take. */
export interface UpgradeAnswer {
  accept: (socket: SessionSocket) => SessionHandler;
  /** The Sec-WebSocket-Protocol value of the 101 (WebSocket early data is echoed); none when absent. */
  protocol?: string;
}

/**
 * Decides, before the 101 is sent, on a valid WebSocket upgrade to a path other than `wsPath`:
 * undefined sends the request to fetch (the decoy), as if there were no such hook. `path` is the
 * normalised path, without the query.
 */
export type DecideUpgrade = (path: string, headers: Headers, remoteAddress: string) => Promise<UpgradeAnswer | undefined>;

/** Counts connections that have not authenticated, per address (gateway/preauth-limit.ts). */
export interface PreauthGate {
  /** A connection from this address was accepted: its release (call once it authenticates, is answered, or closes), or undefined to close it at once. */
  admit(remoteAddress: string): (() => void) | undefined;
}

/**
 * What bounds a gateway connection before it authenticates (docs/07 "Before authentication").
 * Each adapter applies what its runtime lets it (docs/07 says what each cannot).
 */
export interface PreauthLimits {
  /** A TLS handshake not finished this long after accept: the connection is closed. */
  tlsHandshakeTimeoutMs: number;
  /** A connection whose (first) request head is not complete this long after its handshake: closed. */
  requestHeadTimeoutMs: number;
  /** The per-address cap; absent, none. */
  gate?: PreauthGate;
}

/**
 * Where an adapter has no accept hook (Bun, Deno), the cap counts a session request from its
 * head until it authenticates or closes: its release, or undefined when the address is at the
 * cap (the adapter then closes the connection as soon as it can: docs/07).
 */
export function admitSessionRequest(preauth: PreauthLimits | undefined, remoteAddress: string): (() => void) | undefined {
  return preauth?.gate ? preauth.gate.admit(remoteAddress) : () => {};
}

/**
 * The site's answer to a session request over the per-address cap (Bun), with
 * `Connection: close`: the connection goes after it, as from a server limiting connections per
 * client (nginx's limit_conn), instead of staying open as a kept-alive one the cap no longer counts.
 */
export async function closingAnswer(answer: Response | Promise<Response>): Promise<Response> {
  const r = await answer;
  const headers = new Headers(r.headers);
  headers.set("connection", "close");
  return new Response(r.body, { status: r.status, statusText: r.statusText, headers });
}

export interface ServeGatewayOptions {
  hostname: string;
  port: number;
  /**
   * Absent: plain HTTP for a reverse proxy that terminates TLS (GATEWAY_TLS=off); the HTTP/2
   * transport is then h2c by prior knowledge where the adapter serves it (`gatewayTransports`),
   * and setTls rejects with `bad_tls`.
   */
  tls?: TlsFiles;
  /**
   * Valid WebSocket upgrades to exactly this path become sessions, and so do HTTP/2 session
   * requests (isH2SessionRequest) where the adapter serves h2; everything else goes to fetch.
   */
  wsPath: string;
  /** Serve the HTTP/2 transport (default true); ignored where the adapter cannot (gatewayTransports). */
  h2?: boolean;
  fetch: FetchHandler;
  accept: AcceptSession;
  /** WebSocket upgrades to other paths, decided asynchronously (the apps' secret paths). */
  upgrade?: DecideUpgrade;
  maxMessageBytes?: number;
  /** A session handler (or accept) threw: the socket was closed with 1011; this is for the log. */
  onError?: (err: unknown) => void;
  /** Answer TLS-ALPN-01 validations on this port; ignored where the adapter cannot (acmeTlsAlpn). */
  acmeTlsChallenge?: AcmeTlsChallenge;
  /**
   * Where the workers of one gateway share its port by SO_REUSEPORT (workerPortSharing
   * "reusePort"): "claim" binds it as the first worker (a port another program holds is still
   * an error), "join" binds it beside the workers already there. Unset, and on Node (whose
   * workers share the primary's listener through node:cluster): the port is this listener's.
   */
  portSharing?: "claim" | "join";
  /** Timeouts and the cap before authentication; absent, the runtime's own defaults and no cap. */
  preauth?: PreauthLimits;
}

/** A gateway worker process as its primary sees it (gateway/workers.ts). */
export interface WorkerProcess {
  readonly pid: number;
  /** A structured-clone/JSON message over the IPC channel; dropped once the worker is gone. */
  send(msg: unknown): void;
  onMessage(handler: (msg: unknown) => void): void;
  kill(signal: "SIGTERM" | "SIGKILL"): void;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
}

export interface WsConnectOptions {
  /** Extra CA certificate (PEM) to trust, e.g. a gateway's self-signed dev certificate. */
  ca?: string;
  /** Skip certificate verification entirely (development only). */
  insecure?: boolean;
  headers?: Record<string, string>;
  /**
   * Sec-WebSocket-Protocol values to offer, in order. The open fails (ws_connect_failed) unless
   * the 101 chooses one of them (RFC 6455 4.1); `SessionSocket.protocol` says which.
   * mihomo and Xray send WebSocket early data this way (protocol/ws-early-data.ts).
   */
  protocols?: string[];
  maxMessageBytes?: number;
  /** Give up if the WebSocket is not open after this long. */
  timeoutMs?: number;
  /** The session handler threw: the socket was closed with 1011; this is for the log. */
  onError?: (err: unknown) => void;
}

export type ShutdownSignal = "SIGINT" | "SIGTERM";

/** What each of runtime/node.ts, bun.ts and deno.ts exports. */
export interface RuntimeAdapter {
  readonly runtime: "node" | "bun" | "deno";
  /** What serveGateway accepts sessions on (and offers by ALPN: h2 only where listed). */
  readonly gatewayTransports: readonly SessionTransport[];
  /** Whether serveGateway answers TLS-ALPN-01 validations (acmeTlsChallenge) on its own port. */
  readonly acmeTlsAlpn: boolean;
  /** Whether GatewayServer.setTls leaves open sessions alone (else they are closed and reconnect). */
  readonly tlsSwapKeepsSessions: boolean;
  serveHttp(opts: ServeHttpOptions): Promise<ListeningServer>;
  serveGateway(opts: ServeGatewayOptions): Promise<GatewayServer>;
  /** Resolves once open; the handler from `accept` then gets every event. Rejects with a RuntimeError. */
  wsConnect(url: string, opts: WsConnectOptions, accept: (socket: SessionSocket) => SessionHandler): Promise<SessionSocket>;
  /**
   * How a gateway's workers share its port: "cluster" (Node: the primary holds the listener and
   * hands connections to workers, port 0 included) or "reusePort" (Bun, Deno: each worker binds
   * the same port with SO_REUSEPORT, so port 0 is resolved by the first worker).
   */
  readonly workerPortSharing: "cluster" | "reusePort";
  /**
   * Start this same program again (same runtime, entry and arguments) as a worker with `env`,
   * stdout and stderr shared, an IPC channel to it (`process.send`/`"message"` in the worker).
   */
  forkWorker(env: Record<string, string>): WorkerProcess;
  /** Returns a function that removes the listener. */
  onSignal(signals: ShutdownSignal[], handler: (signal: ShutdownSignal) => void): () => void;
}

export class RuntimeError extends Error {
  constructor(readonly code: "listen_failed" | "bad_tls" | "ws_connect_failed" | "ws_connect_timeout", message: string) {
    super(message);
    this.name = "RuntimeError";
  }
}

const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Whether a request is a WebSocket upgrade every adapter will complete (RFC 6455 4.2.1).
 * All three decide with this one function, so a malformed upgrade gets the decoy on every
 * runtime instead of each runtime's own error page, which would identify it.
 */
export function isWebSocketUpgrade(method: string, headers: Headers): boolean {
  if (method !== "GET") return false;
  if (headers.get("upgrade")?.trim().toLowerCase() !== "websocket") return false;
  const connection = headers.get("connection") ?? "";
  if (!connection.split(",").some((t) => t.trim().toLowerCase() === "upgrade")) return false;
  if (headers.get("sec-websocket-version")?.trim() !== "13") return false;
  if (!/^[+/0-9A-Za-z]{22}==$/.test(headers.get("sec-websocket-key")?.trim() ?? "")) return false;
  const protocols = headers.get("sec-websocket-protocol");
  if (protocols !== null && !protocols.split(",").every((p) => token.test(p.trim()))) return false;
  return true;
}

/**
 * The normalised path of a request target (Node's origin-form "/ws?x" or Bun's and Deno's
 * absolute URL), so all three compare the same thing with the WebSocket path. "//host/ws" is a
 * path here, not a protocol-relative URL.
 */
export function pathOf(url: string): string | undefined {
  try {
    return new URL(url.startsWith("/") ? "http://localhost" + url : url).pathname;
  } catch {
    return undefined;
  }
}
