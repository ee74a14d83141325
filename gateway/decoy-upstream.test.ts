// GATEWAY_DECOY_UPSTREAM: a real site behind the decoy. Against local test sites (HTTP and
// HTTPS, node:http servers that record what they receive): the site's own statuses and headers
// come back, hop-by-hop headers go neither way, Host is the site's, nothing is added, redirects
// are passed through, bodies stream both ways (a large download arrives while the site is still
// sending; an upload is passed whole), compressed bodies are passed untouched, and a site that
// is down or silent is answered as nginx in front of it would answer.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { createDevCertificate } from "./certs.ts";
import { upstreamDecoy } from "./decoy-upstream.ts";

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  bodySha: string;
  bodyBytes: number;
}

const BIG = 24 * 1024 * 1024;
const CHUNK = 64 * 1024;
const gz = gzipSync("hello, compressed world ".repeat(200));

/** A small site: each path shows one thing an upstream may do. `release` lets /stream finish. */
function site(seen: Seen[]) {
  let release = () => {};
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const hash = createHash("sha256");
    let bytes = 0;
    req.on("data", (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, bodySha: hash.digest("hex"), bodyBytes: bytes });
      const path = req.url!.split("?")[0];
      switch (path) {
        case "/page":
        case "/prefix/page":
          res.writeHead(200, [
            ["Content-Type", "text/html; charset=utf-8"],
            ["Server", "Apache/2.4.62"],
            ["X-Site", "real"],
            ["Set-Cookie", "a=1; Path=/"],
            ["Set-Cookie", "b=2; Path=/"],
            ["Cache-Control", "max-age=60"],
            ["ETag", '"site-etag"'],
            ["Connection", "keep-alive, X-Drop-Me"],
            ["X-Drop-Me", "hop"],
            ["Keep-Alive", "timeout=5"],
          ]);
          return res.end("<p>the real site</p>");
        case "/moved":
          res.writeHead(301, { Location: "https://elsewhere.example/new", "Content-Type": "text/html" });
          return res.end("moved");
        case "/gzip":
          res.writeHead(200, { "Content-Encoding": "gzip", "Content-Length": gz.length, "Content-Type": "text/plain" });
          return res.end(gz);
        case "/stream": {
          // Sends a first chunk, then waits for the test to have received it before sending the rest.
          res.writeHead(200, { "Content-Type": "application/octet-stream" });
          res.write(Buffer.alloc(CHUNK, 1));
          release = () => {
            let sent = CHUNK;
            const more = () => {
              while (sent < BIG) {
                sent += CHUNK;
                if (!res.write(Buffer.alloc(CHUNK, 2))) return void res.once("drain", more);
              }
              res.end();
            };
            more();
          };
          return;
        }
        case "/upload":
          res.writeHead(201, { "Content-Type": "text/plain" });
          return res.end(`${bytes} ${seen.at(-1)!.bodySha}`);
        case "/silent":
          return; // never answers
        default:
          res.writeHead(404, { "Content-Type": "text/html" });
          return res.end("<p>not on the real site</p>");
      }
    });
  };
  return { handler, release: () => release() };
}

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

describe("decoy upstream (GATEWAY_DECOY_UPSTREAM)", () => {
  const seen: Seen[] = [];
  const s = site(seen);
  const plain = http.createServer(s.handler);
  let secure: https.Server;
  let ca: string;
  let httpBase: string;
  let httpsBase: string;
  before(async () => {
    const cert = await createDevCertificate();
    ca = cert.certPem;
    secure = https.createServer({ cert: cert.certPem, key: cert.keyPem }, s.handler);
    httpBase = `http://127.0.0.1:${await listen(plain)}`;
    httpsBase = `https://localhost:${await listen(secure)}`;
  });
  after(async () => {
    for (const srv of [plain, secure]) {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });

  test("the site's status, headers and body, minus hop-by-hop headers; its Host; nothing added", async () => {
    for (const base of [httpBase, httpsBase]) {
      const decoy = upstreamDecoy(base, { timeoutMs: 5000, ca });
      const r = await decoy(
        new Request("https://gateway.example/page?q=1", {
          headers: {
            "User-Agent": "probe/1",
            Cookie: "c=3",
            "Accept-Encoding": "gzip",
            Connection: "keep-alive, X-Visitor-Hop",
            "X-Visitor-Hop": "1",
            TE: "trailers",
            "Proxy-Authorization": "Basic eDp5",
          },
        }),
      );
      assert.equal(r.status, 200, base);
      assert.equal(await r.text(), "<p>the real site</p>");
      assert.equal(r.headers.get("server"), "Apache/2.4.62");
      assert.equal(r.headers.get("x-site"), "real");
      assert.equal(r.headers.get("etag"), '"site-etag"');
      assert.deepEqual(r.headers.getSetCookie(), ["a=1; Path=/", "b=2; Path=/"]);
      for (const hop of ["connection", "keep-alive", "x-drop-me", "transfer-encoding"]) {
        assert.equal(r.headers.get(hop), null, hop);
      }
      const got = seen.at(-1)!;
      assert.equal(got.url, "/page?q=1");
      assert.equal(got.headers.host, new URL(base).host, "Host is the site's own");
      assert.equal(got.headers["user-agent"], "probe/1");
      assert.equal(got.headers.cookie, "c=3");
      assert.equal(got.headers["accept-encoding"], "gzip");
      for (
        const h of ["x-visitor-hop", "te", "proxy-authorization", "x-forwarded-for", "x-forwarded-proto", "forwarded", "via"]
      ) {
        assert.equal(got.headers[h], undefined, `${h} reached the site`);
      }
    }
  });

  test("a base path is a prefix; redirects and errors are the site's own, not followed", async () => {
    const decoy = upstreamDecoy(`${httpBase}/prefix/`, { timeoutMs: 5000 });
    assert.equal(await (await decoy(new Request("https://g.example/page"))).text(), "<p>the real site</p>");
    const direct = upstreamDecoy(httpBase, { timeoutMs: 5000 });
    const moved = await direct(new Request("https://g.example/moved"));
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.get("location"), "https://elsewhere.example/new");
    const missing = await direct(new Request("https://g.example/nope"));
    assert.deepEqual([missing.status, await missing.text()], [404, "<p>not on the real site</p>"]);
    const head = await direct(new Request("https://g.example/page", { method: "HEAD" }));
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
    assert.equal(seen.at(-1)!.method, "HEAD");
  });

  test("a compressed body is passed as the site sent it", async () => {
    const r = await upstreamDecoy(httpBase, { timeoutMs: 5000 })(new Request("https://g.example/gzip"));
    assert.equal(r.headers.get("content-encoding"), "gzip");
    assert.equal(r.headers.get("content-length"), String(gz.length));
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), gz);
  });

  test("a large download streams: its first bytes arrive while the site still holds the rest", async () => {
    const r = await upstreamDecoy(httpsBase, { timeoutMs: 5000, ca })(new Request("https://g.example/stream"));
    const reader = r.body!.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length > 0, "bytes before the site sent them all");
    s.release();
    let total = first.value.length;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
    }
    assert.equal(total, BIG);
  });

  test("a POST body reaches the site whole, streamed from the visitor's request", async () => {
    const parts = Array.from({ length: 64 }, (_, i) => new Uint8Array(128 * 1024).fill(i));
    const want = createHash("sha256");
    for (const p of parts) want.update(p);
    const body = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        const next = parts.shift();
        if (next) ctrl.enqueue(next);
        else ctrl.close();
      },
    });
    const r = await upstreamDecoy(httpBase, { timeoutMs: 5000 })(
      new Request("https://g.example/upload", { method: "POST", body, duplex: "half" } as RequestInit),
    );
    assert.equal(r.status, 201);
    assert.equal(await r.text(), `${64 * 128 * 1024} ${want.digest("hex")}`);
  });

  test("a site that is down: 502, one that says nothing: 504 after the timeout; nginx's pages, nothing of ours", async () => {
    const closed = http.createServer();
    const port = await listen(closed);
    await new Promise((r) => closed.close(r));
    const down = await upstreamDecoy(`http://127.0.0.1:${port}`, { timeoutMs: 5000 })(new Request("https://g.example/"));
    assert.equal(down.status, 502);
    assert.equal(down.headers.get("server"), "nginx");
    assert.match(await down.text(), /<center><h1>502 Bad Gateway<\/h1><\/center>/);
    const t0 = performance.now();
    const silent = await upstreamDecoy(httpBase, { timeoutMs: 300 })(new Request("https://g.example/silent"));
    assert.ok(performance.now() - t0 >= 290);
    assert.equal(silent.status, 504);
    const body = await silent.text();
    assert.match(body, /504 Gateway Time-out/);
    assert.doesNotMatch(body.toLowerCase(), /httvps|tunnel|gateway\.ts|error:/);
  });
});
