// node:http speaks IncomingMessage/ServerResponse; the rest of HTTVPS speaks Request/Response.
// This converts both ways with streaming bodies and backpressure, without a dependency
// (what @hono/node-server does, in the few lines we need). Only runtime/node.ts uses it.
import { Readable } from "node:stream";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { RuntimeError, type FetchHandler, type ListeningServer } from "./types.ts";

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

export function toRequest(req: IncomingMessage, scheme: "http" | "https", signal: AbortSignal, withBody = true): Request {
  const base = `${scheme}://${req.headers.host ?? "localhost"}`;
  let url: URL;
  try {
    url = new URL(req.url ?? "/", base);
  } catch {
    url = new URL(req.url ?? "/", `${scheme}://localhost`);
  }
  const method = req.method ?? "GET";
  const body = withBody && method !== "GET" && method !== "HEAD" ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined;
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
  res.writeHead(r.status, headers);
  if (!r.body || head) {
    res.end();
    if (r.body) await r.body.cancel().catch(() => {});
    return;
  }
  const reader = r.body.getReader();
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
    const r = await fetch(toRequest(req, scheme, abort.signal, withBody), { remoteAddress: req.socket.remoteAddress ?? "" });
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
