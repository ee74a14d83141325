// The decoy as a real website (GATEWAY_DECOY_UPSTREAM; Trojan's and Xray's "fallback"): every
// request that is not the tunnel goes to the operator's site and its answer comes back as it
// is — its status, its headers, its bytes. A prober then sees a real, living site instead of a
// small static one that could be told apart.
//
// - Streaming both ways with backpressure, so memory stays bounded whatever the size of either
//   body; nothing is buffered whole.
// - node:http(s), not fetch: fetch decodes a gzip or brotli body but keeps Content-Encoding and
//   Content-Length, which would hand the visitor bytes that disagree with the headers.
// - Host is the upstream's; hop-by-hop headers (and those Connection names) are dropped both
//   ways; nothing is added — no X-Forwarded-*, Forwarded or Via: to the visitor we are the
//   site, not a proxy in front of it. Redirects are passed through, never followed.
// - An upstream that cannot be reached, fails or says nothing for `timeoutMs` is answered as
//   nginx in front of a broken site answers: 502 Bad Gateway (504 on a timeout) with nginx's
//   own page; the gateway is never named.
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { Readable } from "node:stream";

export interface UpstreamDecoyOptions {
  /** How long the upstream may take to answer (its response head), and the longest silence within a body. */
  timeoutMs: number;
  /** Trust this CA (PEM) for an https upstream instead of the system roots (tests, private sites). */
  ca?: string;
}

/** RFC 9110 §7.6.1's connection-specific fields, plus the ones proxies and old clients still send. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

/** Header names that must not be forwarded: the hop-by-hop ones and those the Connection header lists. */
function dropped(connection: string | null | undefined): Set<string> {
  const out = new Set(HOP_BY_HOP);
  for (const t of (connection ?? "").split(",")) if (t.trim()) out.add(t.trim().toLowerCase());
  return out;
}

/** nginx's own error page, byte for byte, as nginx in front of a failing site sends it. */
function gatewayError(status: 502 | 504): Response {
  const title = status === 502 ? "502 Bad Gateway" : "504 Gateway Time-out";
  const body =
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
  return new Response(body, {
    status,
    headers: {
      Server: "nginx",
      Date: new Date().toUTCString(),
      "Content-Type": "text/html",
      "Content-Length": String(body.length),
    },
  });
}

/** Statuses whose responses carry no body (Response refuses one). */
const NO_BODY = new Set([101, 103, 204, 205, 304]);

export function upstreamDecoy(base: string, opts: UpstreamDecoyOptions): (req: Request) => Promise<Response> {
  const origin = new URL(base);
  const secure = origin.protocol === "https:";
  const prefix = origin.pathname.replace(/\/+$/, "");
  // Kept-alive connections to the site: a page's dozen requests need not each pay a handshake.
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxFreeSockets: 16, ca: opts.ca })
    : new http.Agent({ keepAlive: true, maxFreeSockets: 16 });

  return (req) =>
    new Promise<Response>((resolve) => {
      const url = new URL(req.url);
      const skip = dropped(req.headers.get("connection"));
      skip.add("host");
      if (!req.body) {
        // A request whose body the runtime did not hand us (a refused upgrade) goes without one.
        skip.add("content-length");
      }
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => {
        if (!skip.has(k)) headers[k] = v;
      });
      headers.host = origin.host;
      let answered = false;
      const answer = (r: Response) => {
        if (answered) return;
        answered = true;
        clearTimeout(headTimer);
        resolve(r);
      };
      const upstream = (secure ? https : http).request({
        protocol: origin.protocol,
        hostname: origin.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: origin.port || (secure ? 443 : 80),
        method: req.method,
        path: prefix + url.pathname + url.search,
        headers,
        agent,
      });
      const headTimer = setTimeout(() => {
        answer(gatewayError(504));
        upstream.destroy();
      }, opts.timeoutMs);
      upstream.setTimeout(opts.timeoutMs, () => upstream.destroy(new Error("upstream idle")));
      upstream.on("error", () => answer(gatewayError(502)));
      req.signal.addEventListener("abort", () => upstream.destroy(), { once: true });
      upstream.on("response", (res: IncomingMessage) => {
        const out = new Headers();
        const skipBack = dropped(res.headers.connection);
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i]!;
          if (skipBack.has(name.toLowerCase())) continue;
          try {
            out.append(name, res.rawHeaders[i + 1]!);
          } catch {
            // a value Headers refuses: dropped, as any proxy would
          }
        }
        const status = res.statusCode ?? 502;
        if (status < 200 || status > 599) {
          res.resume();
          return answer(gatewayError(502));
        }
        const bodyless = req.method === "HEAD" || NO_BODY.has(status);
        if (bodyless) res.resume();
        const body = bodyless ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        answer(new Response(body, { status, statusText: res.statusMessage, headers: out }));
      });
      void sendBody(req, upstream);
    });
}

/** The visitor's body to the upstream, chunk by chunk, waiting whenever the upstream socket is full. */
async function sendBody(req: Request, upstream: http.ClientRequest): Promise<void> {
  if (!req.body) return void upstream.end();
  const reader = req.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (upstream.destroyed) return void reader.cancel().catch(() => {});
      if (!upstream.write(value)) {
        await new Promise<void>((ok) => {
          const go = () => {
            upstream.off("drain", go);
            upstream.off("close", go);
            ok();
          };
          upstream.on("drain", go);
          upstream.on("close", go);
        });
      }
    }
    upstream.end();
  } catch {
    upstream.destroy(); // the visitor went away mid-body
  }
}
