// node:http speaks IncomingMessage/ServerResponse; the rest of HTTVPS speaks Request/Response.
// This converts both ways with streaming bodies and backpressure for the TLS listeners
// (https and the http2 compatibility API, node-h2.ts), and answers the requests Node routes to
// its upgrade path that are not ours. Plain HTTP uses @hono/node-server instead (node.ts).
// Only runtime/node.ts and node-h2.ts use it.
import { Readable } from "node:stream";
import { type IncomingMessage, type Server, ServerResponse } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type FetchHandler, type ListeningServer, RuntimeError } from "./types.ts";

export function headersOf(raw: string[]): Headers {
  const h = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      h.append(raw[i]!, raw[i + 1]!);
    } catch {
      // A header value Node's lenient parser let through but Headers rejects: drop it, like a proxy would.
    }
  }
  return h;
}

/** Bodies this small (by Content-Length) are read whole: a buffer is far cheaper than a web stream on Node 20. */
const SMALL_BODY = 64 * 1024;

function readSmallBody(req: IncomingMessage): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

/** A Request, with a small declared body already read (the common API case) and a streamed one otherwise. */
export async function toRequestBuffered(
  req: IncomingMessage,
  scheme: "http" | "https",
  signal: AbortSignal,
  withBody = true,
): Promise<Request> {
  const len = Number(req.headers["content-length"]);
  const method = req.method ?? "GET";
  if (
    !withBody || method === "GET" || method === "HEAD" || !(len >= 0 && len <= SMALL_BODY) || req.headers["transfer-encoding"]
  ) {
    return toRequest(req, scheme, signal, withBody);
  }
  const body = await readSmallBody(req);
  return new Request(requestUrl(req, scheme), {
    method,
    headers: headersOf(req.rawHeaders),
    body: body as Uint8Array<ArrayBuffer>,
    signal,
  });
}

function requestUrl(req: IncomingMessage, scheme: "http" | "https"): URL {
  // HTTP/2 names the host in :authority (RFC 9113 8.3.1), HTTP/1.1 in Host.
  const authority = req.headers.host ?? (req.headers[":authority"] as string | undefined) ?? "localhost";
  const base = `${scheme}://${authority}`;
  try {
    return new URL(req.url ?? "/", base);
  } catch {
    return new URL(req.url ?? "/", `${scheme}://localhost`);
  }
}

export function toRequest(req: IncomingMessage, scheme: "http" | "https", signal: AbortSignal, withBody = true): Request {
  const url = requestUrl(req, scheme);
  const method = req.method ?? "GET";
  const body = withBody && method !== "GET" && method !== "HEAD"
    ? (Readable.toWeb(req) as ReadableStream<Uint8Array>)
    : undefined;
  // `duplex` is required by undici for a streamed request body and not yet in lib.dom's RequestInit.
  return new Request(url, { method, headers: headersOf(req.rawHeaders), body, signal, duplex: "half" } as RequestInit);
}

/** Write a Response to a ServerResponse, pausing the body while the socket is full. */
export async function sendResponse(res: ServerResponse, r: Response, head: boolean): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  r.headers.forEach((v, k) => {
    if (k !== "set-cookie") headers[k] = v;
  });
  const cookies = r.headers.getSetCookie();
  if (cookies.length) headers["set-cookie"] = cookies;
  const len = Number(r.headers.get("content-length") ?? NaN);
  if (r.body && !head && !(len > SMALL_BODY)) {
    // Small or unsized bodies (JSON answers): read whole and send in one write. An unsized
    // body that turns out large is still bounded by what the app chose to build in memory.
    const first = await readUpTo(r.body, SMALL_BODY);
    if (first.complete) {
      if (!headers["content-length"]) headers["content-length"] = String(first.bytes.length);
      res.writeHead(r.status, headers);
      res.end(first.bytes);
      return;
    }
    res.writeHead(r.status, headers);
    if (!res.write(first.bytes)) await writable(res);
    return pump(res, first.reader);
  }
  res.writeHead(r.status, headers);
  if (!r.body || head) {
    res.end();
    if (r.body) await r.body.cancel().catch(() => {});
    return;
  }
  return pump(res, r.body.getReader());
}

/** Read a body until it ends or passes `limit` bytes. */
async function readUpTo(
  body: ReadableStream<Uint8Array>,
  limit: number,
): Promise<
  { complete: true; bytes: Uint8Array } | { complete: false; bytes: Uint8Array; reader: ReadableStreamDefaultReader<Uint8Array> }
> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { complete: true, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
    chunks.push(value);
    size += value.length;
    if (size > limit) return { complete: false, bytes: Buffer.concat(chunks), reader };
  }
}

async function pump(res: ServerResponse, reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  const gone = () => void reader.cancel().catch(() => {});
  res.once("close", gone);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) return;
      if (!res.write(value)) await writable(res);
    }
    res.end();
  } catch {
    res.destroy(); // the body stream failed mid-way: truncate rather than pretend it finished
  } finally {
    res.off("close", gone);
  }
}

function writable(res: ServerResponse): Promise<void> {
  return new Promise((ok) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      ok();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** The whole request/response cycle for one node:http request. Never throws. */
export async function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  fetch: FetchHandler,
  scheme: "http" | "https",
  withBody = true,
): Promise<void> {
  const abort = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  try {
    const r = await fetch(await toRequestBuffered(req, scheme, abort.signal, withBody), {
      remoteAddress: req.socket.remoteAddress ?? "",
    });
    await sendResponse(res, r, req.method === "HEAD");
  } catch {
    // The app's own error handling failed; answer like a plain server would, with nothing inside.
    if (!res.headersSent) {
      res.writeHead(500, { "content-length": "0" });
      res.end();
    } else res.destroy();
  }
}

export function listen(server: Server, hostname: string, port: number): Promise<ListeningServer> {
  return new Promise((resolve, reject) => {
    const failed = (e: Error) => reject(new RuntimeError("listen_failed", `cannot listen on ${hostname}:${port}: ${e.message}`));
    server.once("error", failed);
    server.listen(port, hostname, () => {
      // Later server errors are failed accepts (EMFILE and the like): the listener carries on,
      // and without a listener Node would turn them into a crash.
      server.off("error", failed);
      server.on("error", () => {});
      const addr = server.address();
      resolve({
        port: typeof addr === "object" && addr ? addr.port : port,
        hostname,
        close: async () => {
          server.close(); // stops accepting; upgraded sockets are no longer the server's to wait for
          server.closeIdleConnections();
        },
      });
    });
  });
}

/**
 * Answer a request Node handed to 'upgrade' that is not ours with `fetch` through a
 * ServerResponse on the raw socket, then give the connection back to the HTTP server, so it
 * stays alive exactly as for the same request without Upgrade (a server that closed only
 * after a failed upgrade would tell a prober where to look).
 */
export function answerOnUpgradePath(
  server: Server,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  fetch: FetchHandler,
  keepAliveAllowed: boolean,
): void {
  socket.pause(); // the bytes after this request wait for the HTTP parser that takes over below
  const tls = server instanceof https.Server;
  const keepAlive = keepAliveAllowed && req.headers["transfer-encoding"] === undefined && wantsKeepAlive(req);
  const res = new ServerResponse(req) as ServerResponse & { _keepAliveTimeout: number };
  res.shouldKeepAlive = keepAlive;
  res._keepAliveTimeout = server.keepAliveTimeout; // what Node's own request path sets: the Keep-Alive header
  res.assignSocket(socket as Socket);
  res.once("finish", async () => {
    res.detachSocket(socket as Socket);
    // The upgrade path reads no body: drop a declared one, as Node does for an unread request body.
    const rest = keepAlive ? await dropBody(socket, head, Number(req.headers["content-length"] ?? 0) || 0) : undefined;
    if (!rest || !server.listening) return void socket.end(); // the server closed meanwhile: no more requests
    if (rest.length) socket.unshift(rest);
    // The server's own hook that attaches a fresh HTTP parser (https.Server's after TLS; a plain one's on accept).
    server.emit(tls ? "secureConnection" : "connection", socket);
    socket.resume();
  });
  void handleRequest(req, res, fetch, tls ? "https" : "http", false);
}

/** HTTP keep-alive as llhttp decides it: 1.1 unless `close`, 1.0 only with `keep-alive`. */
function wantsKeepAlive(req: IncomingMessage): boolean {
  const tokens = (req.headers.connection ?? "").toLowerCase().split(",").map((t) => t.trim());
  return req.httpVersion === "1.1" ? !tokens.includes("close") : tokens.includes("keep-alive");
}

/**
 * Skip `n` body bytes (the first of them in `head`); resolves with the bytes after the body,
 * or undefined if the connection ended first. A chunked body is not handled: such a
 * connection is closed after the answer instead.
 */
function dropBody(socket: Duplex, head: Buffer, n: number): Promise<Buffer | undefined> {
  if (socket.destroyed) return Promise.resolve(undefined);
  if (head.length >= n) return Promise.resolve(head.subarray(n));
  let left = n - head.length;
  return new Promise((resolve) => {
    const done = (rest: Buffer | undefined) => {
      socket.pause();
      socket.off("data", data);
      socket.off("close", gone);
      resolve(rest);
    };
    const data = (b: Buffer) => {
      if (b.length <= left) left -= b.length;
      else return done(b.subarray(left));
      if (left === 0) done(Buffer.alloc(0));
    };
    const gone = () => done(undefined);
    socket.on("data", data);
    socket.once("close", gone);
    socket.resume();
  });
}
