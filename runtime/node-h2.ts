// Node's HTTPS listener with HTTP/2 beside HTTP/1.1 on one port: the https.Server (WebSocket
// upgrades, every HTTP/1.1 detail the probes compare) stays as it is, TLS offers h2 and
// http/1.1 by ALPN, and a connection that chose h2 is handed to a node:http2 server instead of
// the HTTP/1.1 parser. ALPN is chosen by our own callback (server preference, as
// ALPNProtocols would) so that a TLS-ALPN-01 validation (acme-tls/1) can get its challenge
// certificate: Node asks ALPNCallback before SNICallback in a TLS 1.3 handshake (OpenSSL
// selects ALPN early there), so the first marks the socket and the second hands over that
// certificate's context. In TLS 1.2 OpenSSL picks the certificate first; ACME validators speak
// TLS 1.3 (Let's Encrypt's and pebble's are Go's crypto/tls). Without TLS (behind a reverse
// proxy), plainServer does the same for HTTP/1.1 and h2c on one port. Only runtime/node.ts uses it.
import http, { type Server } from "node:http";
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type ServerHttp2Stream } from "node:http2";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { createSecureContext, type SecureContext, type TLSSocket } from "node:tls";
import { handleRequest } from "./node-http.ts";
import { countConnections, preauthServerOptions, releaseOf } from "./node-preauth.ts";
import {
  ACME_TLS_ALPN,
  type AcmeTlsChallenge,
  type FetchHandler,
  H2_WINDOW,
  type PreauthLimits,
  type TlsFiles,
} from "./types.ts";

export type H2Stream = (req: Http2ServerRequest, stream: ServerHttp2Stream) => boolean;

/**
 * An https.Server that also serves HTTP/2 (unless `h2Enabled` is false: then ALPN offers only http/1.1). `fetch` answers every h2 request `take` declines
 * (with the same handler, so the site looks the same over either protocol). With `preauth`, its
 * timeouts apply and every connection is counted until a request on it is answered by `fetch`
 * (the caller releases the ones it takes as sessions once they authenticate).
 */
export function secureServer(
  tls: TlsFiles,
  fetch: FetchHandler,
  take?: H2Stream,
  h2Enabled = true,
  acmeTlsChallenge?: AcmeTlsChallenge,
  preauth?: PreauthLimits,
): https.Server {
  const protocols = h2Enabled ? ["h2", "http/1.1"] : ["http/1.1"];
  // A handshake's challenge context, from its ALPNCallback to its SNICallback (both get the socket as `this`).
  const challenges = new WeakMap<TLSSocket, SecureContext>();
  const options = {
    ...preauthServerOptions(preauth),
    cert: tls.cert,
    key: tls.key,
    ALPNCallback(this: TLSSocket, hello: { servername?: string; protocols: string[] }): string | undefined {
      if (acmeTlsChallenge && hello.servername && hello.protocols.includes(ACME_TLS_ALPN)) {
        const files = acmeTlsChallenge(hello.servername);
        if (files) {
          challenges.set(this, createSecureContext({ cert: files.cert, key: files.key }));
          return ACME_TLS_ALPN;
        }
      }
      // No protocol in common: undefined ends the handshake with no_application_protocol, as ALPNProtocols does.
      return protocols.find((p) => hello.protocols.includes(p));
    },
    ...(acmeTlsChallenge
      ? {
        SNICallback(this: TLSSocket, _name: string, done: (err: Error | null, ctx?: SecureContext) => void) {
          done(null, challenges.get(this)); // undefined: the server's own certificate
        },
      }
      : {}),
  };
  const server = https.createServer(options, (req, res) => {
    releaseOf(req.socket)();
    void handleRequest(req, res, fetch, "https");
  });
  countConnections(server, preauth);
  const h2 = h2Server(server, fetch, "https", take);
  const [h1] = server.listeners("secureConnection") as Array<(s: TLSSocket) => void>;
  server.removeAllListeners("secureConnection");
  server.on("secureConnection", (socket: TLSSocket) => {
    // RFC 8737 3: a validation ends with its handshake; nothing else is spoken on acme-tls/1.
    if (socket.alpnProtocol === ACME_TLS_ALPN) socket.destroy();
    else if (socket.alpnProtocol === "h2") h2.emit("connection", socket);
    else h1!.call(server, socket);
  });
  return server;
}

/**
 * The node:http2 server that takes the h2 connections of `server` (h2 by ALPN over TLS, or by
 * prior knowledge in cleartext): `take` gets each request first, `fetch` answers the rest.
 */
function h2Server(server: Server, fetch: FetchHandler, scheme: "http" | "https", take?: H2Stream): http2.Http2Server {
  // 128 concurrent streams per connection, nginx's default: a browser never needs more, and a
  // connection cannot open sessions (each with its hello timer) by the thousand.
  const h2 = http2.createServer({ settings: { initialWindowSize: H2_WINDOW, maxConcurrentStreams: 128 } });
  h2.on("request", (req: Http2ServerRequest, res: Http2ServerResponse) => {
    if (take?.(req, req.stream)) return;
    releaseOf(req.stream.session?.socket)();
    // The compatibility API mirrors IncomingMessage/ServerResponse in everything handleRequest uses.
    void handleRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse, fetch, scheme);
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
  return h2;
}

/** The client connection preface of HTTP/2 (RFC 9113 3.4): what an h2c client with prior knowledge sends first. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * Plain HTTP for a reverse proxy that terminates TLS (GATEWAY_TLS=off): an http.Server whose
 * connections that open with the HTTP/2 preface (h2c by prior knowledge, RFC 9113 3.3; what
 * Caddy's `versions h2c` and curl's --http2-prior-knowledge send) go to node:http2 instead, so
 * one port carries HTTP/1.1 with WebSocket upgrades and h2c. Node's http2.createServer alone
 * speaks only h2c, and http.Server only HTTP/1.1: the first bytes decide, then are put back.
 */
export function plainServer(fetch: FetchHandler, take?: H2Stream, h2Enabled = true, preauth?: PreauthLimits): Server {
  const server = http.createServer(preauthServerOptions(preauth), (req, res) => {
    releaseOf(req.socket)();
    void handleRequest(req, res, fetch, "http");
  });
  countConnections(server, preauth);
  if (!h2Enabled) return server;
  const h2 = h2Server(server, fetch, "http", take);
  const [h1] = server.listeners("connection") as Array<(s: Socket) => void>;
  server.removeAllListeners("connection");
  server.on("connection", (socket: Socket) => {
    let seen = Buffer.alloc(0);
    // Nothing is tracked by the HTTP server until it gets the socket: a silent one must still go.
    socket.setTimeout(server.headersTimeout, () => socket.destroy());
    const sniff = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const h2c = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (h2c && seen.length < H2_PREFACE.length) return; // a prefix of the preface so far: wait for the rest
      socket.off("data", sniff);
      socket.setTimeout(0);
      if (h2c) handOver(socket, seen, (s) => h2.emit("connection", s));
      else handOver(socket, seen, (s) => (h1!.call(server, s), s.resume())); // resumed, the stream hands `seen` to the parser
    };
    socket.on("data", sniff);
    socket.on("error", () => socket.destroy());
  });
  return server;
}

/** The part of a net.Socket's native handle used by handOver (not in Node's typings). */
interface ReadHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

/**
 * Give `socket`, whose first bytes `seen` were already read, to `take` (the HTTP/1.1 parser or
 * node:http2). Both read the native handle directly from then on, and deliver bytes that wait
 * in the JS stream only on a later tick (http2 on the next one, http on 'resume'): were the
 * handle still reading, what the client sent next could reach them before `seen`. So reading
 * stops, `seen` goes back into the stream, and reading starts again once they have had it.
 */
function handOver(socket: Socket, seen: Buffer, take: (s: Socket) => void): void {
  const handle = (socket as unknown as { _handle?: ReadHandle })._handle;
  if (!handle) return void socket.destroy(); // closed meanwhile
  socket.pause();
  handle.reading = false;
  handle.readStop();
  socket.unshift(seen);
  take(socket);
  setImmediate(() => {
    if (socket.destroyed || handle.reading) return;
    handle.reading = true;
    handle.readStart();
  });
}
