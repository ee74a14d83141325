// Deno: Deno.serve for HTTP, Deno.upgradeWebSocket for WebSockets, the global WebSocket as client.
// Deno.serve with TLS negotiates h2 by ALPN itself and streams request and response bodies both
// ways at once, so the HTTP/2 transport is a request body in and a response body out. Without
// TLS it answers h2c by prior knowledge on the same port as HTTP/1.1 (hyper's automatic
// protocol detection), so the transport works behind a proxy that speaks h2c too.
// Drain: Deno's WebSocket is the WHATWG one; bufferedAmount is real (it counts bytes whose write
// has not completed) but there is no drain event, so web-socket.ts polls it while above the mark.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { attachWebStreams } from "./record-socket.ts";
import {
  admitSessionRequest,
  type GatewayServer,
  H2_CONTENT_TYPE,
  isH2SessionRequest,
  isWebSocketUpgrade,
  type ListeningServer,
  pathOf,
  RuntimeError,
  type ServeGatewayOptions,
  type ServeHttpOptions,
  type SessionHandler,
  type SessionSocket,
  type ShutdownSignal,
  type TlsFiles,
  type UpgradeAnswer,
  type WorkerProcess,
  WS_MAX_MESSAGE,
  type WsConnectOptions,
} from "./types.ts";
import { adoptWebSocket, offeredProtocolChosen, openedWithin } from "./web-socket.ts";
import { assertPortFree } from "./port-free.ts";
import { spawnWorker } from "./worker-process.ts";
import { setListenerNoDelay } from "./socket-nodelay.ts";

export const runtime = "deno";
export const gatewayTransports = ["ws", "h2"] as const;
// Deno.serve has no ALPN or certificate callback (it offers h2 and http/1.1, nothing else), so it
// cannot answer a TLS-ALPN-01 validation: ACME on Deno uses HTTP-01 (GATEWAY_HTTP_ADDR).
export const acmeTlsAlpn = false;
// Deno.serve's certificate is fixed for the listener's life and shutdown() closes its upgraded
// WebSockets and streaming requests too: a new certificate means a new listener, and the
// sessions on the old one end (clients reconnect within a second). SO_REUSEPORT would let the
// two overlap (it needs --unstable-net for TLS), but the old one can still not stop accepting
// without closing its sessions, so it would only trade a few milliseconds of refused
// connections for new visitors landing on the old certificate.
export const tlsSwapKeepsSessions = false;

// The slice of Deno's API used here, declared locally so the type check needs no Deno types.
interface DenoServer {
  addr: { port: number };
  shutdown(): Promise<void>;
}
interface HttpClient {
  close(): void;
}
type Handler = (req: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>;
declare const Deno: {
  serve(opts: Record<string, unknown>, handler: Handler): DenoServer;
  upgradeWebSocket(req: Request, opts: { idleTimeout: number; protocol?: string }): { socket: WebSocket; response: Response };
  createHttpClient(opts: { caCerts?: string[] }): HttpClient;
  addSignalListener(signal: ShutdownSignal, handler: () => void): void;
  removeSignalListener(signal: ShutdownSignal, handler: () => void): void;
  internal?: symbol;
};

// Deno.serve's reusePort: every worker binds the gateway's port itself.
export const workerPortSharing = "reusePort";

/**
 * This program again on Deno. reusePort on a TLS listener is behind --unstable-net (Deno 2.9);
 * the worker gets every permission, as `deno task gateway` gives the gateway.
 */
export function forkWorker(env: Record<string, string>): WorkerProcess {
  const [, entry, ...args] = process.argv;
  return spawnWorker(process.execPath, ["run", "-A", "--unstable-net", entry!, ...args], env);
}

/**
 * A WebSocket session request over the per-address cap: its connection is closed at once.
 * Deno.serve cannot close a connection from a handler, and ignores `Connection: close` in a
 * response, so an answer from the site would leave a kept-alive connection open for good (it
 * has no idle timeout); the upgrade is completed and the connection closed as it opens.
 * Undefined where Deno cannot (then the site answers).
 */
function overCap(req: Request): Response | undefined {
  let up: { socket: WebSocket; response: Response };
  try {
    up = Deno.upgradeWebSocket(req, { idleTimeout: 0 });
  } catch {
    return undefined;
  }
  const terminate = terminator(up.socket);
  up.socket.addEventListener("open", () => (terminate ? terminate() : up.socket.close(1013, "")));
  return up.response;
}

/**
 * Deno's WebSocket has no terminate(): close() sends the close frame and then waits for the
 * peer's for as long as the peer keeps the connection open, so a peer that never answers (a
 * flood's silent WebSocket after hello_timeout) would hold its descriptor for good. This closes
 * the socket's resource directly, through Deno's internal core.tryClose and the socket's
 * [[rid]]; undefined where this Deno does not expose them (then close() is all there is).
 */
function terminator(ws: WebSocket): (() => void) | undefined {
  const internal = Deno.internal &&
    (Deno as unknown as Record<symbol, { core?: { tryClose?(rid: number): void } }>)[Deno.internal];
  const core = internal?.core;
  if (typeof core?.tryClose !== "function") return undefined;
  return () => {
    // Looked up now: the socket has its rid only once open.
    const ridKey = Object.getOwnPropertySymbols(ws).find((s) => s.description === "[[rid]]");
    const rid = ridKey && (ws as unknown as Record<symbol, unknown>)[ridKey];
    if (typeof rid === "number") core.tryClose!(rid);
  };
}

function serve(opts: ServeHttpOptions & { portSharing?: "claim" | "join" }, handler: Handler): DenoServer {
  let server: DenoServer;
  try {
    server = Deno.serve(
      {
        hostname: opts.hostname,
        port: opts.port,
        ...(opts.portSharing ? { reusePort: true } : {}),
        ...(opts.tls ? { cert: opts.tls.cert, key: opts.tls.key } : {}),
        onListen() {}, // Deno would print "Listening on ..." otherwise
        onError: () => new Response(null, { status: 500 }),
      },
      handler,
    );
  } catch (e) {
    throw new RuntimeError("listen_failed", `cannot listen on ${opts.hostname}:${opts.port}: ${(e as Error).message}`);
  }
  // A TLS Deno.serve leaves TCP_NODELAY off on what it accepts (its plain-TCP one does not), so a
  // frame of more than a segment waited ~40 ms for the peer's delayed ACK (docs/06). Accepted
  // sockets inherit it from the listener on Linux: set once here, before the first connection.
  // Without FFI or /proc this sets nothing and the listener serves as before.
  if (opts.tls) setListenerNoDelay(server.addr.port);
  return server;
}

export async function serveHttp(opts: ServeHttpOptions): Promise<ListeningServer> {
  const server = serve(opts, (req, info) => opts.fetch(req, { remoteAddress: info.remoteAddr.hostname }));
  return { port: server.addr.port, hostname: opts.hostname, close: () => server.shutdown() };
}

/** Refuse a certificate Deno.serve would refuse before the old listener goes (the best check short of listening). */
function checkTls(tls: TlsFiles): void {
  try {
    if (!new X509Certificate(tls.cert).checkPrivateKey(createPrivateKey(tls.key))) throw new Error("the key does not match");
  } catch (e) {
    throw new RuntimeError("bad_tls", `cannot use the certificate: ${(e as Error).message}`);
  }
}

export async function serveGateway(opts: ServeGatewayOptions): Promise<GatewayServer> {
  const max = opts.maxMessageBytes ?? WS_MAX_MESSAGE;
  // Deno's shutdown() also closes upgraded WebSockets, so close() only stops new sessions and
  // the listener goes once the last live one has closed (a count, nothing kept per session).
  let live = 0;
  let closing = false;
  let shutdown: Promise<void> | undefined;
  const settle = () => {
    if (closing && live === 0) shutdown ??= server.shutdown();
  };
  /** The WebSocket upgrade of `req`, adopted with `accept`; undefined when Deno cannot complete it. */
  const upgradeTo = (
    req: Request,
    remoteAddress: string,
    accept: (s: SessionSocket) => SessionHandler,
    protocol?: string,
    release = () => {},
  ): Response | undefined => {
    let up: { socket: WebSocket; response: Response } | undefined;
    try {
      // idleTimeout 0: the session layer owns keepalive and idle timeouts, the same on every runtime.
      up = Deno.upgradeWebSocket(req, protocol ? { idleTimeout: 0, protocol } : { idleTimeout: 0 });
    } catch {
      release();
      return undefined; // not an upgrade Deno can complete (e.g. over HTTP/2): the decoy answers
    }
    live++;
    up.socket.addEventListener("close", () => (live--, release(), settle()));
    // Deno has no receive limit below 64 MiB, so web-socket.ts checks each message's size.
    const adopted = (s: SessionSocket) => accept(Object.assign(s, { authenticated: release }));
    adoptWebSocket(up.socket, remoteAddress, max, adopted, opts.onError, terminator(up.socket));
    return up.response;
  };
  const decided = async (req: Request, remoteAddress: string, path: string): Promise<Response> => {
    const headers = new Headers(req.headers);
    let answer: UpgradeAnswer | undefined;
    try {
      answer = await opts.upgrade!(path, headers, remoteAddress);
    } catch (e) {
      opts.onError?.(e);
    }
    const response = answer && !closing ? upgradeTo(req, remoteAddress, answer.accept, answer.protocol) : undefined;
    return response ?? opts.fetch(req, { remoteAddress });
  };
  const handler: Handler = (req, info) => {
    const remoteAddress = info.remoteAddr.hostname;
    if (!closing && pathOf(req.url) === opts.wsPath && isWebSocketUpgrade(req.method, req.headers)) {
      // Deno detaches req.headers once the 101 is sent ("Request closed"): keep a copy.
      const headers = new Headers(req.headers);
      // Deno.serve has no accept hook: the per-address cap counts from here (docs/07).
      const release = admitSessionRequest(opts.preauth, remoteAddress);
      const accept = (s: SessionSocket) => opts.accept(s, { remoteAddress, headers, transport: "ws" });
      if (!release) return overCap(req) ?? opts.fetch(req, { remoteAddress });
      const response = upgradeTo(req, remoteAddress, accept, undefined, release);
      if (response) return response;
    }
    const path = pathOf(req.url);
    if (!closing && opts.upgrade && path !== undefined && path !== opts.wsPath && isWebSocketUpgrade(req.method, req.headers)) {
      return decided(req, remoteAddress, path);
    }
    // Deno.serve does not say which HTTP version a request came in: an HTTP/1.1 request always
    // has a Host header (Deno refuses it otherwise) and an h2 one carries :authority instead.
    // With h2 off the request gets the decoy (Deno.serve still speaks h2 to the site: it has no ALPN option).
    const release = !closing && opts.h2 !== false && req.body && !req.headers.has("host") && pathOf(req.url) === opts.wsPath &&
      isH2SessionRequest(req.method, req.headers) && admitSessionRequest(opts.preauth, remoteAddress);
    if (release) {
      const headers = new Headers(req.headers);
      live++;
      const body = attachWebStreams(req.body!, { remoteAddress, maxMessageBytes: max, onError: opts.onError }, (s) => {
        const h = opts.accept(Object.assign(s, { authenticated: release }), { remoteAddress, headers, transport: "h2" });
        return {
          message: (m) => h.message(m),
          drain: () => h.drain(),
          close: (code, reason) => (live--, release(), settle(), h.close(code, reason)),
        };
      });
      return new Response(body, { headers: { "content-type": H2_CONTENT_TYPE, "cache-control": "no-store" } });
    }
    return opts.fetch(req, { remoteAddress });
  };
  // A joining worker binds beside the claim (portSharing); a claim must find the port free.
  if (opts.portSharing === "claim") await assertPortFree(opts.hostname, opts.port);
  let server = serve(opts, handler);
  let current = opts.tls;
  const port = server.addr.port;
  return {
    port,
    hostname: opts.hostname,
    close: async () => {
      closing = true;
      settle();
    },
    async setTls(tls) {
      if (!current) throw new RuntimeError("bad_tls", "this listener serves plain HTTP: no certificate");
      if (closing) return;
      checkTls(tls);
      await server.shutdown();
      try {
        server = serve({ ...opts, port, tls }, handler);
        current = tls;
      } catch (e) {
        server = serve({ ...opts, port, tls: current }, handler); // rustls refused what node:crypto accepted: keep the old one
        throw new RuntimeError("bad_tls", `cannot use the certificate: ${(e as Error).message}`);
      }
    },
  };
}

export function wsConnect(
  url: string,
  opts: WsConnectOptions,
  accept: (s: SessionSocket) => SessionHandler,
): Promise<SessionSocket> {
  if (!/^wss?:\/\//i.test(url) || !URL.canParse(url)) {
    return Promise.reject(new RuntimeError("ws_connect_failed", "expected a ws:// or wss:// URL"));
  }
  const u = new URL(url);
  if (opts.insecure) {
    // Deno's WebSocket can trust an extra CA but never skip verification (only the process-wide
    // --unsafely-ignore-certificate-errors flag can), so development without a CA goes through
    // `ws` over Deno's node:tls, which honours rejectUnauthorized: false.
    return import("./node.ts").then((node) => node.wsConnect(url, opts, accept));
  }
  const client = opts.ca ? Deno.createHttpClient({ caCerts: [opts.ca] }) : undefined;
  const Ws = WebSocket as unknown as new (url: string, opts: unknown) => WebSocket;
  const ws = new Ws(url, { headers: opts.headers, protocols: opts.protocols, client });
  // The HttpClient holds a resource until closed: release it with the socket.
  if (client) ws.addEventListener("close", () => client.close());
  const { socket, opened } = adoptWebSocket(ws, u.hostname, opts.maxMessageBytes ?? WS_MAX_MESSAGE, accept, opts.onError);
  return openedWithin(opened, opts.timeoutMs ?? 10_000, ws, u.host).then(() =>
    offeredProtocolChosen(socket, opts.protocols, u.host)
  );
}

export function onSignal(signals: ShutdownSignal[], handler: (signal: ShutdownSignal) => void): () => void {
  const listeners = signals.map((s) => [s, () => handler(s)] as const);
  for (const [s, l] of listeners) Deno.addSignalListener(s, l);
  return () => {
    for (const [s, l] of listeners) Deno.removeSignalListener(s, l);
  };
}
