// Node's HTTPS listener with HTTP/2 beside HTTP/1.1 on one port: the https.Server (WebSocket
// upgrades, every HTTP/1.1 detail the probes compare) stays as it is, TLS offers h2 and
// http/1.1 by ALPN, and a connection that chose h2 is handed to a node:http2 server instead of
// the HTTP/1.1 parser. Only runtime/node.ts uses it.
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type ServerHttp2Stream } from "node:http2";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { handleRequest } from "./node-http.ts";
import { type FetchHandler, H2_WINDOW, type TlsFiles } from "./types.ts";

export type H2Stream = (req: Http2ServerRequest, stream: ServerHttp2Stream) => boolean;

/**
 * An https.Server that also serves HTTP/2 (unless `h2Enabled` is false: then ALPN offers only http/1.1). `fetch` answers every h2 request `take` declines
 * (with the same handler, so the site looks the same over either protocol).
 */
export function secureServer(tls: TlsFiles, fetch: FetchHandler, take?: H2Stream, h2Enabled = true): https.Server {
  const ALPNProtocols = h2Enabled ? ["h2", "http/1.1"] : ["http/1.1"];
  const server = https.createServer(
    { cert: tls.cert, key: tls.key, ALPNProtocols },
    (req, res) => void handleRequest(req, res, fetch, "https"),
  );
  // 128 concurrent streams per connection, nginx's default: a browser never needs more, and a
  // connection cannot open sessions (each with its hello timer) by the thousand.
  const h2 = http2.createServer({ settings: { initialWindowSize: H2_WINDOW, maxConcurrentStreams: 128 } });
  h2.on("request", (req: Http2ServerRequest, res: Http2ServerResponse) => {
    if (take?.(req, req.stream)) return;
    // The compatibility API mirrors IncomingMessage/ServerResponse in everything handleRequest uses.
    void handleRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse, fetch, "https");
  });
  h2.on("session", (session: Http2Session) => {
    session.setLocalWindowSize(H2_WINDOW);
    let open = 0;
    session.on("stream", (stream: ServerHttp2Stream) => {
      open++;
      stream.once("close", () => open--);
    });
    // Idle h2 connections go like idle HTTP/1.1 ones (keepAliveTimeout); one with a stream open stays.
    session.setTimeout(server.keepAliveTimeout, () => {
      if (open === 0) session.close();
    });
    session.on("error", () => {}); // a broken connection: its streams report it
  });
  const [h1] = server.listeners("secureConnection") as Array<(s: TLSSocket) => void>;
  server.removeAllListeners("secureConnection");
  server.on("secureConnection", (socket: TLSSocket) => {
    if (socket.alpnProtocol === "h2") h2.emit("connection", socket);
    else h1!.call(server, socket);
  });
  return server;
}
