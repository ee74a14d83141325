// Bun: Bun.serve (uWebSockets underneath) for HTTP and WebSockets, the global WebSocket as client.
// Drain: ServerWebSocket.getBufferedAmount() plus Bun's `drain` handler, which fires on each
// writable event while anything is queued, so the last one sees the queue at or near zero.
import {
  admitSessionRequest,
  closingAnswer,
  type GatewayServer,
  isWebSocketUpgrade,
  type ListeningServer,
  pathOf,
  RuntimeError,
  type ServeGatewayOptions,
  type ServeHttpOptions,
  type SessionHandler,
  type SessionSocket,
  type TlsFiles,
  type UpgradeAnswer,
  type UpgradeInfo,
  type WorkerProcess,
  WS_CLOSE_TOO_BIG,
  WS_MAX_MESSAGE,
  type WsConnectOptions,
} from "./types.ts";
import { adoptWebSocket, guard, offeredProtocolChosen, openedWithin, Watermark } from "./web-socket.ts";
import { spawnWorker } from "./worker-process.ts";
import { assertPortFree } from "./port-free.ts";

export { onSignal } from "./process-signals.ts";

export const runtime = "bun";
// Bun.serve speaks HTTP/1.1 only (its TLS offers no h2 by ALPN, and in cleartext it does not
// answer h2c's preface), and putting node:http2 in front would give up Bun.serve's WebSockets
// on that port: the HTTP/2 transport is not served on Bun, with or without TLS.
export const gatewayTransports = ["ws"] as const;
// Bun.serve negotiates no ALPN at all (not even http/1.1), so it cannot answer a TLS-ALPN-01
// validation: ACME on Bun uses HTTP-01 (GATEWAY_HTTP_ADDR).
export const acmeTlsAlpn = false;
// server.reload() keeps the first TLS options, so a new certificate goes to a second Bun.serve on
// the same port (SO_REUSEPORT) and the old one stops accepting with stop(false), which leaves its
// open connections and WebSockets running on the old certificate until they end.
export const tlsSwapKeepsSessions = true;
// Bun.serve's reusePort: every worker binds the gateway's port itself.
export const workerPortSharing = "reusePort";

/**
 * This program again on Bun: `bun <entry> …args`, or, inside the single-file binary (entry in
 * Bun's embedded /$bunfs), the binary with the arguments alone.
 */
export function forkWorker(env: Record<string, string>): WorkerProcess {
  const [, entry, ...args] = process.argv;
  const compiled = entry?.startsWith("/$bunfs/") ?? false;
  return spawnWorker(process.execPath, compiled ? args : [entry!, ...args], env);
}

// The slice of Bun's API used here, declared locally so the type check needs no bun-types.
interface BunWs<T> {
  data: T;
  readonly remoteAddress: string;
  readonly readyState: number;
  send(msg: string | Uint8Array): number;
  getBufferedAmount(): number;
  close(code?: number, reason?: string): void;
  ping(): number;
  pause?(): void;
  resume?(): void;
}
interface BunServer {
  readonly port: number;
  upgrade(req: Request, opts: { data: unknown; headers?: Record<string, string> }): boolean;
  requestIP(req: Request): { address: string } | null;
  stop(closeActive?: boolean): unknown;
}
interface Session {
  info: UpgradeInfo;
  /** An upgrade the gateway decided on (UpgradeAnswer.accept); else a session (opts.accept). */
  accept?: (socket: SessionSocket) => SessionHandler;
  socket?: SessionSocket;
  handler?: SessionHandler;
  mark?: Watermark;
  closing?: boolean;
  /** Leaves the per-address cap of unauthenticated sessions (on authentication or close). */
  release?: () => void;
}
declare const Bun: { serve(opts: Record<string, unknown>): BunServer };

type BunFetch = (req: Request, server: BunServer) => Response | Promise<Response | undefined> | undefined;

function bunServe(opts: ServeHttpOptions, extra: Record<string, unknown>, fetch: BunFetch): BunServer {
  const error = () => new Response(null, { status: 500 });
  try {
    return Bun.serve({ hostname: opts.hostname, port: opts.port, tls: opts.tls, fetch, error, ...extra });
  } catch (e) {
    throw new RuntimeError("listen_failed", `cannot listen on ${opts.hostname}:${opts.port}: ${(e as Error).message}`);
  }
}

function serve(opts: ServeHttpOptions, extra: Record<string, unknown>, fetch: BunFetch): ListeningServer {
  const server = bunServe(opts, extra, fetch);
  // stop(false) stops accepting and leaves open connections (sessions) alone.
  return { port: server.port, hostname: opts.hostname, close: async () => void server.stop(false) };
}

const info = (req: Request, server: BunServer) => ({ remoteAddress: server.requestIP(req)?.address ?? "" });

export async function serveHttp(opts: ServeHttpOptions): Promise<ListeningServer> {
  return serve(opts, {}, (req, server) => opts.fetch(req, info(req, server)));
}

export async function serveGateway(opts: ServeGatewayOptions): Promise<GatewayServer> {
  const websocket = {
    maxPayloadLength: opts.maxMessageBytes ?? WS_MAX_MESSAGE, // larger messages: Bun closes with 1009
    // Our sessions stop at WS_HIGH_WATER; this only catches a sender that ignores drain. Past it
    // Bun would silently drop messages, which would corrupt a stream, so close instead.
    backpressureLimit: 64 * 1024 * 1024,
    closeOnBackpressureLimit: true,
    idleTimeout: 0, // the session layer owns keepalive and idle timeouts, the same on every runtime
    sendPings: false,
    perMessageDeflate: false,
    open(ws: BunWs<Session>) {
      const s = ws.data;
      const socket: SessionSocket = {
        send(msg) {
          if (ws.readyState !== 1) return;
          ws.send(msg);
          s.mark!.sent();
        },
        get bufferedAmount() {
          return ws.getBufferedAmount();
        },
        close(code, reason) {
          s.closing = true;
          ws.close(code, reason);
        },
        ping() {
          if (ws.readyState === 1) ws.ping();
        },
        // Bun stops reading the socket (uWebSockets' pause), so TCP pushes back on the peer.
        pause: () => ws.pause?.(),
        resume: () => ws.resume?.(),
        remoteAddress: s.info.remoteAddress,
        authenticated: s.release,
      };
      s.socket = socket;
      s.mark = new Watermark(() => ws.getBufferedAmount(), () => guard(socket, opts.onError, () => s.handler?.drain()));
      guard(socket, opts.onError, () => (s.handler = s.accept ? s.accept(socket) : opts.accept(socket, s.info)));
    },
    message(ws: BunWs<Session>, msg: string | Uint8Array) {
      const s = ws.data;
      if (s.closing || !s.handler) return;
      const m = typeof msg === "string" ? msg : new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      guard(s.socket!, opts.onError, () => s.handler!.message(m));
    },
    drain(ws: BunWs<Session>) {
      ws.data.mark?.check();
    },
    close(ws: BunWs<Session>, code: number, reason: string) {
      const s = ws.data;
      s.release?.();
      const h = s.handler;
      s.handler = undefined; // exactly once, and let the session be collected with the socket
      // Bun sends 1009 for an oversized message but reports 1006 here; say what happened.
      const big = code === 1006 && reason === "Received too big message";
      if (h) guard(s.socket!, opts.onError, () => h.close(big ? WS_CLOSE_TOO_BIG : code, big ? "message too big" : reason));
    },
  };
  let closing = false; // after close(), a kept-alive connection must not start a session either
  const fetch: BunFetch = (req, server) => {
    const remote = info(req, server);
    if (!closing && pathOf(req.url) === opts.wsPath && isWebSocketUpgrade(req.method, req.headers)) {
      // Bun.serve has no accept hook: the per-address cap counts from here (docs/07).
      const release = admitSessionRequest(opts.preauth, remote.remoteAddress);
      const data: Session = { info: { remoteAddress: remote.remoteAddress, headers: req.headers, transport: "ws" }, release };
      if (!release) return closingAnswer(opts.fetch(req, remote));
      if (server.upgrade(req, { data })) return undefined;
      release();
    }
    const path = pathOf(req.url);
    if (!closing && opts.upgrade && path !== undefined && path !== opts.wsPath && isWebSocketUpgrade(req.method, req.headers)) {
      return decided(req, server, remote.remoteAddress, path);
    }
    return opts.fetch(req, remote);
  };
  async function decided(req: Request, server: BunServer, remoteAddress: string, path: string): Promise<Response | undefined> {
    let answer: UpgradeAnswer | undefined;
    try {
      answer = await opts.upgrade!(path, req.headers, remoteAddress);
    } catch (e) {
      opts.onError?.(e);
    }
    if (answer && !closing) {
      const data: Session = { info: { remoteAddress, headers: req.headers, transport: "ws" }, accept: answer.accept };
      // Bun echoes the first offered subprotocol unless told otherwise; an empty value sends none,
      // as the other adapters do when the answer names none.
      const headers = { "Sec-WebSocket-Protocol": answer.protocol ?? "" };
      if (server.upgrade(req, { data, headers })) return undefined;
    }
    return opts.fetch(req, { remoteAddress });
  }
  // A joining worker binds beside the claim (portSharing); anything else must find the port free.
  if (opts.portSharing !== "join") await assertPortFree(opts.hostname, opts.port);
  const start = (tls: TlsFiles | undefined, port: number) =>
    bunServe({ ...opts, tls, port }, { websocket, reusePort: true }, fetch);
  let server = start(opts.tls, opts.port);
  const port = server.port;
  return {
    port,
    hostname: opts.hostname,
    close: async () => {
      closing = true;
      server.stop(false);
    },
    async setTls(tls) {
      if (!opts.tls) throw new RuntimeError("bad_tls", "this listener serves plain HTTP: no certificate");
      if (closing) return;
      let next: BunServer;
      try {
        next = start(tls, port);
      } catch (e) {
        throw new RuntimeError("bad_tls", `cannot use the certificate: ${(e as Error).message}`);
      }
      const old = server;
      server = next;
      old.stop(false);
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
  const host = new URL(url).host;
  // Bun's WebSocket takes Node-style TLS options and headers as a second-argument object.
  const Ws = WebSocket as unknown as new (url: string, opts: unknown) => WebSocket;
  const ws = new Ws(url, {
    headers: opts.headers,
    protocols: opts.protocols,
    tls: { ca: opts.ca, rejectUnauthorized: !opts.insecure },
  });
  const { socket, opened } = adoptWebSocket(
    ws,
    new URL(url).hostname,
    opts.maxMessageBytes ?? WS_MAX_MESSAGE,
    accept,
    opts.onError,
  );
  return openedWithin(opened, opts.timeoutMs ?? 10_000, ws, host).then(() => offeredProtocolChosen(socket, opts.protocols, host));
}
