// The plain-HTTP listener (GATEWAY_HTTP_ADDR, usually :80), as a real HTTPS site runs one: ACME
// HTTP-01 answers under /.well-known/acme-challenge/, and a 301 to the same host and path on
// https for everything else, worded as nginx's `return 301 https://$host$request_uri;` (the decoy
// is an nginx site). The redirect names the gateway's public port unless it is 443.
import type { FetchHandler } from "../../runtime/types.ts";
import { nginxPage } from "../decoy.ts";
import type { PendingChallenges } from "./challenges.ts";

const CHALLENGE_PATH = "/.well-known/acme-challenge/";

export interface HttpListenerOptions {
  challenges: PendingChallenges;
  /** The https port visitors use (GATEWAY_PUBLIC_URL's, else the listen port). */
  httpsPort: number;
  /** For a request without a usable Host header (HTTP/1.0). */
  fallbackHost: string;
}

/** The host of a Host header without its port; undefined when it is not a plain host name or address. */
function hostOnly(header: string | null): string | undefined {
  if (!header) return undefined;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/.exec(header.trim());
  return m ? m[1]!.toLowerCase() : undefined;
}

export function httpListenerHandler(opts: HttpListenerOptions): FetchHandler {
  const port = opts.httpsPort === 443 ? "" : `:${opts.httpsPort}`;
  return (req) => {
    const url = new URL(req.url);
    if (url.pathname.startsWith(CHALLENGE_PATH) && (req.method === "GET" || req.method === "HEAD")) {
      const answer = opts.challenges.httpAnswer(url.pathname.slice(CHALLENGE_PATH.length));
      if (answer !== undefined) {
        return new Response(req.method === "HEAD" ? null : answer, { headers: { "content-type": "text/plain" } });
      }
    }
    // The Host header when it is a host; without one (HTTP/1.0) the request URL's; junk gets the configured name.
    const header = req.headers.get("host");
    const host = (header === null ? hostOnly(url.host) : hostOnly(header)) ?? opts.fallbackHost;
    const body = new TextEncoder().encode(nginxPage("301 Moved Permanently"));
    return new Response(req.method === "HEAD" ? null : body, {
      status: 301,
      headers: {
        server: "nginx",
        date: new Date().toUTCString(),
        "content-type": "text/html",
        "content-length": String(body.length),
        location: `https://${host}${port}${url.pathname}${url.search}`,
      },
    });
  };
}
