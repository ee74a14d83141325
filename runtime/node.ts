// Node: node:http(s) for HTTP, the `ws` package for WebSockets (Node 20 has no WebSocket server),
// node:http2 beside it on the same TLS port (node-h2.ts) for h2 and the HTTP/2 session transport.
// Plain HTTP (the backend's API, the gateway's metrics and port-80 listeners) goes through
// @hono/node-server's request listener: it hands the app a Request that is only built in full
// when the app asks for more than method, URL, headers and a small body, and writes a string
// or buffer body straight to the socket. It cut the backend's CPU per validate-device by 30–45 %
// against our own conversion (node-http.ts, still used for TLS and the upgrade path; docs/06).
// Drain: ws.bufferedAmount is the TLS socket's write queue (+ ws's own), and that socket emits
// 'drain' when its queue empties after a write was refused, so no polling is needed.
import cluster from "node:cluster";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import { getRequestListener } from "@hono/node-server";
import { answerOnUpgradePath, headersOf, listen } from "./node-http.ts";
import { type H2Stream, plainServer, secureServer } from "./node-h2.ts";
import { releaseOf } from "./node-preauth.ts";
import { joinParts, serverFrameWriter } from "./node-ws-frame.ts";
import { attachNodeStream } from "./record-socket.ts";
import {
  CLOSE_GRACE_MS,
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
  type WorkerProcess,
  WS_CLOSE_TOO_BIG,
  WS_MAX_MESSAGE,
  type WsConnectOptions,
} from "./types.ts";
import { guard, Watermark } from "./web-socket.ts";
import { ipcWorker } from "./worker-process.ts";

export { onSignal } from "./process-signals.ts";

export const runtime = "node";
export const gatewayTransports = ["ws", "h2"] as const;
export const acmeTlsAlpn = true;
// server.setSecureContext: new handshakes get the new certificate, open connections keep theirs.
export const tlsSwapKeepsSessions = true;
// Node 20's net.Server has no reusePort (22.12 added it): node:cluster's primary holds the
// listener and hands each connection to a worker in turn (round-robin).
export const workerPortSharing = "cluster";

/** cluster.fork runs this program again (process.argv[1], same arguments and execArgv, so tsx too). */
export function forkWorker(env: Record<string, string>): WorkerProcess {
  const worker = cluster.fork(env);
  return ipcWorker(worker, worker.process);
}

export function serveHttp(opts: ServeHttpOptions): Promise<ListeningServer> {
  // With TLS, h2 is offered by ALPN as on the gateway (and as Deno.serve does), so a site and a
  // gateway in front of it answer an h2-capable visitor alike.
  if (opts.tls) return listen(secureServer(opts.tls, opts.fetch), opts.hostname, opts.port);
  const listener = getRequestListener(
    (req, env) => opts.fetch(req, { remoteAddress: env.incoming.socket.remoteAddress ?? "" }),
    {
      // Request and Response stay the runtime's own for everything else in the process.
      overrideGlobalObjects: false,
      // The app's own error handling failed: answer like a plain server would, with nothing inside.
      errorHandler: () => new Response(null, { status: 500, headers: { "content-length": "0" } }),
    },
  );
  return listen(http.createServer((req, res) => void listener(req, res)), opts.hostname, opts.port);
}

/** Wrap a `ws` WebSocket; `raw` is the TLS socket under it, whose 'drain' tells us the queue emptied. */
function adopt(
  ws: WebSocket,
  raw: Duplex,
  remoteAddress: string,
  accept: (s: SessionSocket) => SessionHandler,
  onError?: (e: unknown) => void,
): SessionSocket {
  let handler: SessionHandler | undefined;
  let closing = false;
  const mark = new Watermark(() => ws.bufferedAmount, () => guard(socket, onError, () => handler?.drain()));
  const writeFrame = serverFrameWriter(ws, raw);
  const socket: SessionSocket = {
    send(msg) {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(msg);
      mark.sent();
    },
    sendParts(head, body) {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (!writeFrame?.(head, body)) ws.send(joinParts(head, body));
      mark.sent();
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    close(code, reason) {
      closing = true;
      try {
        ws.close(code, reason);
      } catch {
        ws.close(); // ws throws on codes that may not be sent (1005, 1006) and reasons over 123 bytes
      }
      // ws waits 30 s for the peer's close frame; a peer that never answers (a flood's silent
      // WebSocket after hello_timeout) would hold the descriptor that long. As the HTTP/2
      // transport does (CLOSE_GRACE_MS), the connection goes after a shorter grace.
      const grace = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
      ws.once("close", () => clearTimeout(grace));
    },
    ping() {
      if (ws.readyState === WebSocket.OPEN) ws.ping();
    },
    // Methods, not arrows: tsx gives an arrow here a property store of its own, per session.
    pause() {
      ws.pause();
    },
    resume() {
      ws.resume();
    },
    remoteAddress,
    get protocol() {
      return ws.protocol;
    },
  };
  raw.on("drain", () => mark.check());
  // ws sends the right close code for a bad frame but then reports 1006 locally: keep the real one.
  let failure: [number, string] | undefined;
  ws.on("error", (e: Error & { code?: string }) => {
    if (e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") failure = [WS_CLOSE_TOO_BIG, "message too big"];
    else if (e.code === "WS_ERR_INVALID_UTF8") failure = [1007, "invalid UTF-8"];
    else if (e.code?.startsWith("WS_ERR_")) failure = [1002, "protocol error"];
  });
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (closing || !handler) return;
    const msg = isBinary ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data.toString("utf8");
    guard(socket, onError, () => handler!.message(msg));
  });
  ws.once("close", (code: number, reason: Buffer) => {
    const [c, r] = failure ?? [code, reason.toString("utf8")];
    guard(socket, onError, () => handler?.close(c, r));
  });
  guard(socket, onError, () => (handler = accept(socket)));
  return socket;
}

export async function serveGateway(opts: ServeGatewayOptions): Promise<GatewayServer> {
  // The subprotocol an upgrade decision chose (early data echoed, or none); a session upgrade
  // keeps ws's default, the first one offered.
  const chosen = new WeakMap<IncomingMessage, string | false>();
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false, // sessions are their owner's to track; nothing here grows with connections
    perMessageDeflate: false,
    maxPayload: opts.maxMessageBytes ?? WS_MAX_MESSAGE,
    handleProtocols: (offered: Set<string>, req: IncomingMessage) =>
      chosen.has(req) ? chosen.get(req)! : (offered.values().next().value ?? false),
  });
  let closing = false; // after close(), a kept-alive connection must not start a session either
  const maxMessageBytes = opts.maxMessageBytes ?? WS_MAX_MESSAGE;
  const takeH2: H2Stream = (req, stream) => {
    const headers = headersOf(req.rawHeaders);
    if (closing || pathOf(req.url) !== opts.wsPath || !isH2SessionRequest(req.method, headers)) return false;
    const remoteAddress = req.socket.remoteAddress ?? "";
    stream.respond({ ":status": 200, "content-type": H2_CONTENT_TYPE, "cache-control": "no-store" });
    const authenticated = releaseOf(stream.session?.socket);
    attachNodeStream(
      stream,
      { remoteAddress, maxMessageBytes, onError: opts.onError },
      (s) => opts.accept(Object.assign(s, { authenticated }), { remoteAddress, headers, transport: "h2" }),
    );
    return true;
  };
  // Without TLS (a reverse proxy in front terminates it): HTTP/1.1 and h2c by prior knowledge.
  const server = opts.tls
    ? secureServer(opts.tls, opts.fetch, takeH2, opts.h2 !== false, opts.acmeTlsChallenge, opts.preauth)
    : plainServer(opts.fetch, takeH2, opts.h2 !== false, opts.preauth);
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const headers = headersOf(req.rawHeaders);
    const release = releaseOf(socket);
    if (!closing && pathOf(req.url ?? "") === opts.wsPath && isWebSocketUpgrade(req.method ?? "", headers)) {
      const remoteAddress = req.socket.remoteAddress ?? "";
      // The connection stays counted as unauthenticated until the session's hello is accepted.
      const accept = (s: SessionSocket) =>
        opts.accept(Object.assign(s, { authenticated: release }), { remoteAddress, headers, transport: "ws" });
      wss.handleUpgrade(req, socket, head, (ws) => adopt(ws, socket, remoteAddress, accept, opts.onError));
      return;
    }
    const path = pathOf(req.url ?? "");
    if (!closing && opts.upgrade && path !== undefined && isWebSocketUpgrade(req.method ?? "", headers)) {
      const remoteAddress = req.socket.remoteAddress ?? "";
      // The socket has no reader while the gateway decides: what the client sends waits in it.
      void opts.upgrade(path, headers, remoteAddress).then(
        (answer) => {
          release(); // answered by the site, or an app path, whose secret is its credential
          if (!answer || closing) return answerOnUpgradePath(server, req, socket, head, opts.fetch, !closing);
          chosen.set(req, answer.protocol ?? false);
          wss.handleUpgrade(req, socket, head, (ws) => adopt(ws, socket, remoteAddress, answer.accept, opts.onError));
        },
        (e: unknown) => {
          opts.onError?.(e);
          release();
          answerOnUpgradePath(server, req, socket, head, opts.fetch, !closing);
        },
      );
      return;
    }
    // Node routes every request carrying Upgrade here, away from the request handler.
    release();
    answerOnUpgradePath(server, req, socket, head, opts.fetch, !closing);
  });
  const listening = await listen(server, opts.hostname, opts.port);
  return {
    ...listening,
    close: () => ((closing = true), listening.close()),
    async setTls(tls) {
      if (!(server instanceof https.Server)) throw new RuntimeError("bad_tls", "this listener serves plain HTTP: no certificate");
      try {
        server.setSecureContext({ cert: tls.cert, key: tls.key });
      } catch (e) {
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
  return new Promise((resolve, reject) => {
    if (!/^wss?:\/\//i.test(url) || !URL.canParse(url)) {
      return reject(new RuntimeError("ws_connect_failed", "expected a ws:// or wss:// URL"));
    }
    const ws = new WebSocket(url, opts.protocols ?? [], {
      ca: opts.ca,
      rejectUnauthorized: !opts.insecure,
      headers: opts.headers,
      perMessageDeflate: false,
      maxPayload: opts.maxMessageBytes ?? WS_MAX_MESSAGE,
      handshakeTimeout: opts.timeoutMs ?? 10_000,
    });
    let raw: Duplex | undefined;
    ws.once("upgrade", (res: IncomingMessage) => (raw = res.socket));
    const fail = (e: Error) => {
      ws.off("open", open);
      ws.terminate();
      const timeout = /timed out/i.test(e.message);
      reject(
        new RuntimeError(timeout ? "ws_connect_timeout" : "ws_connect_failed", `cannot open ${new URL(url).host}: ${e.message}`),
      );
    };
    const open = () => {
      ws.off("error", fail);
      resolve(adopt(ws, raw!, (raw as Socket).remoteAddress ?? new URL(url).hostname, accept, opts.onError));
    };
    ws.once("error", fail);
    ws.once("open", open);
  });
}
