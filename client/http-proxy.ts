// An HTTP proxy in front of any Dialer: CONNECT host:port (then raw bytes both ways, what
// browsers use for https) and absolute-URI requests (`GET http://host/path`), rewritten to
// origin form and sent on a stream of their own. One request per client connection: the
// upstream is asked for `Connection: close`, and the client connection ends with it, which
// keeps the proxy free of response parsing (any HTTP/1.x body framing passes through as is).
import type * as net from "node:net";
import { Code } from "../protocol/errors.ts";
import { duplexFromSocket } from "../transport/tcp.ts";
import { type Duplex, StreamError, type Target } from "../transport/stream.ts";
import { pipeDuplex } from "../transport/pipe.ts";
import { listenProxy, type ProxyOptions, type ProxyServer, readHandshake } from "./proxy-server.ts";
import { urlHost } from "../protocol/ip-address.ts";

/** Longest request head (request line and headers) accepted; larger gets 431. */
export const MAX_HEAD_BYTES = 32 * 1024;

export interface RequestHead {
  method: string;
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  headers: Array<[name: string, value: string]>;
}

export type HeadResult = { ok: true; head: RequestHead; used: number } | { ok: false; need: "more" } | {
  ok: false;
  status: number;
  error: string;
};

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CRLFCRLF = [13, 10, 13, 10];

function indexOfHeadEnd(b: Uint8Array): number {
  outer: for (let i = 0; i + 4 <= b.length; i++) {
    for (let j = 0; j < 4; j++) if (b[i + j] !== CRLFCRLF[j]) continue outer;
    return i;
  }
  return -1;
}

export function parseRequestHead(b: Uint8Array): HeadResult {
  const end = indexOfHeadEnd(b.length > MAX_HEAD_BYTES + 4 ? b.subarray(0, MAX_HEAD_BYTES + 4) : b);
  if (end < 0) {
    return b.length > MAX_HEAD_BYTES ? { ok: false, status: 431, error: "request head too large" } : { ok: false, need: "more" };
  }
  // latin1: header bytes map 1:1 to chars, so nothing is lost or mis-decoded in transit.
  const text = String.fromCharCode(...b.subarray(0, end));
  const lines = text.split("\r\n");
  const m = /^([^ ]+) ([^ ]+) (HTTP\/\d\.\d)$/.exec(lines[0]!);
  if (!m || !TOKEN.test(m[1]!)) return { ok: false, status: 400, error: "malformed request line" };
  if (m[3] !== "HTTP/1.1" && m[3] !== "HTTP/1.0") return { ok: false, status: 505, error: `unsupported ${m[3]}` };
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    // Obsolete line folding and nameless lines are refused (RFC 9112 §5.2) rather than guessed at.
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) return { ok: false, status: 400, error: "malformed header line" };
    const value = line.slice(colon + 1).trim();
    if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) {
      return { ok: false, status: 400, error: "control character in a header" };
    }
    headers.push([line.slice(0, colon), value]);
  }
  return { ok: true, head: { method: m[1]!, target: m[2]!, version: m[3] as RequestHead["version"], headers }, used: end + 4 };
}

/** host:port of a CONNECT request (IPv6 in brackets); undefined if malformed. */
export function parseAuthority(s: string): Target | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._~!$&'()*+,;=%-]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  const host = m[1] ?? m[2]!;
  if (m[1] === undefined && host.includes("%")) return undefined;
  return { host, port };
}

const HOP_BY_HOP = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "upgrade",
]);

/**
 * The request to send upstream for an absolute-URI request: origin-form target, Host from
 * the URI (RFC 9112 §3.2.2: a proxy replaces it), hop-by-hop headers dropped, `Connection: close`.
 */
export function rewriteForOrigin(head: RequestHead): { target: Target; bytes: Uint8Array } | { status: number; error: string } {
  let url: URL;
  try {
    url = new URL(head.target);
  } catch {
    return { status: 400, error: "malformed absolute URI" };
  }
  if (url.protocol !== "http:") {
    return { status: 400, error: `${url.protocol} URIs are not proxied this way (use CONNECT for https)` };
  }
  if (url.username || url.password) return { status: 400, error: "credentials in the URI are not forwarded" };
  const host = urlHost(url);
  if (!host) return { status: 400, error: "no host in the URI" };
  const port = url.port ? Number(url.port) : 80;
  const listed = new Set<string>();
  for (const [n, v] of head.headers) {
    if (n.toLowerCase() === "connection") { for (const t of v.split(",")) listed.add(t.trim().toLowerCase()); }
  }
  let out = `${head.method} ${url.pathname}${url.search} ${head.version}\r\nHost: ${url.host}\r\n`;
  for (const [n, v] of head.headers) {
    const l = n.toLowerCase();
    if (l === "host" || HOP_BY_HOP.has(l) || listed.has(l)) continue;
    out += `${n}: ${v}\r\n`;
  }
  out += "Connection: close\r\n\r\n";
  const bytes = new Uint8Array(out.length);
  for (let i = 0; i < out.length; i++) bytes[i] = out.charCodeAt(i) & 0xff;
  return { target: { host, port }, bytes };
}

export function statusFor(code: string): number {
  if (code === Code.upstream_timeout) return 504;
  if (code === Code.target_forbidden) return 403;
  if (code === Code.bad_target) return 400;
  return 502;
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

export function errorResponse(status: number, code: string, message: string): Uint8Array {
  const body = `httvps: ${code}: ${message}\n`;
  const bytes = new TextEncoder().encode(body);
  const head = `HTTP/1.1 ${status} ${
    REASONS[status] ?? "Error"
  }\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\nX-Httvps-Error: ${code}\r\n\r\n`;
  const out = new Uint8Array(head.length + bytes.length);
  for (let i = 0; i < head.length; i++) out[i] = head.charCodeAt(i);
  out.set(bytes, head.length);
  return out;
}

export function startHttpProxy(opts: ProxyOptions): Promise<ProxyServer> {
  const timeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  const log = opts.logger;

  return listenProxy(opts, "http-proxy", (socket: net.Socket) => {
    let head: RequestHead | undefined;
    const reject = (status: number, code: string, message: string): "fail" => {
      socket.write(errorResponse(status, code, message));
      return "fail";
    };
    readHandshake(
      socket,
      timeoutMs,
      MAX_HEAD_BYTES + 4,
      (buf) => {
        const r = parseRequestHead(buf);
        if (!r.ok) return "need" in r ? 0 : reject(r.status, "bad_request", r.error);
        head = r.head;
        return { used: r.used, done: true };
      },
      (rest) => {
        const h = head!;
        if (h.method === "CONNECT") {
          const target = parseAuthority(h.target);
          if (!target) {
            socket.end(errorResponse(400, Code.bad_target, "CONNECT needs host:port"));
            return;
          }
          void tunnel(socket, target, rest);
          return;
        }
        if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(h.target)) {
          socket.end(errorResponse(400, "bad_request", "this is a proxy: send an absolute URI (http://host/path) or CONNECT"));
          return;
        }
        const fwd = rewriteForOrigin(h);
        if ("status" in fwd) {
          socket.end(errorResponse(fwd.status, "bad_request", fwd.error));
          return;
        }
        void forward(socket, fwd.target, fwd.bytes, rest);
      },
    );
  });

  async function dial(socket: net.Socket, target: Target): Promise<Duplex | undefined> {
    const abort = new AbortController();
    const onClose = () => abort.abort();
    socket.once("close", onClose);
    try {
      const stream = await opts.dialer.dial(target, abort.signal);
      if (socket.destroyed) {
        stream.close(new StreamError(Code.cancelled, "the HTTP client went away while dialling"));
        return undefined;
      }
      return stream;
    } catch (e) {
      const code = e instanceof StreamError ? e.code : Code.internal;
      log?.debug("http-proxy: dial failed", { target: `${target.host}:${target.port}`, code });
      if (!socket.destroyed) socket.end(errorResponse(statusFor(code), code, e instanceof Error ? e.message : "dial failed"));
      return undefined;
    } finally {
      socket.off("close", onClose);
    }
  }

  async function tunnel(socket: net.Socket, target: Target, rest: Uint8Array): Promise<void> {
    const stream = await dial(socket, target);
    if (!stream) return;
    socket.write("HTTP/1.1 200 Connection established\r\n\r\n");
    if (rest.length > 0) stream.write(rest.slice());
    await pipeDuplex(duplexFromSocket(socket), stream);
  }

  async function forward(socket: net.Socket, target: Target, request: Uint8Array, rest: Uint8Array): Promise<void> {
    const stream = await dial(socket, target);
    if (!stream) return;
    stream.write(request);
    if (rest.length > 0) stream.write(rest.slice());
    const local = duplexFromSocket(socket);
    // Until the first response byte, a failed stream is still ours to explain with a status.
    await pipeDuplex(
      local,
      answerEarlyFailure(stream, (err) => local.write(errorResponse(statusFor(err.code), err.code, err.message))),
    );
  }
}

/**
 * `stream`, except that if it fails before sending a byte, `explain(err)` runs and the failure
 * is passed on as a normal end, so the explanation is flushed to the client before its FIN.
 */
function answerEarlyFailure(stream: Duplex, explain: (err: StreamError) => void): Duplex {
  let seen = false;
  return {
    start(h) {
      stream.start({
        data(chunk) {
          seen = true;
          h.data(chunk);
        },
        end: () => h.end(),
        drain: () => h.drain(),
        close(err) {
          if (err && !seen) {
            explain(err);
            h.close();
          } else h.close(err);
        },
      });
    },
    write: (c) => stream.write(c),
    closeWrite: () => stream.closeWrite(),
    close: (e) => stream.close(e),
    pause: () => stream.pause(),
    resume: () => stream.resume(),
  };
}
