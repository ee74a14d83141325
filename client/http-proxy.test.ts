// The HTTP proxy with a fake Dialer: request-head parsing and rewriting on their own, then
// real loopback sockets for CONNECT, absolute-URI forwarding, error statuses and bad input.
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";
import { runtime } from "../runtime/index.ts";
import { type Dialer, type Duplex, StreamError, type Target } from "../transport/stream.ts";
import { MAX_HEAD_BYTES, parseAuthority, parseRequestHead, rewriteForOrigin, startHttpProxy, statusFor } from "./http-proxy.ts";
import type { ProxyServer } from "./proxy-server.ts";
import { memoryPair, until } from "./testing.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | number[]) => new TextDecoder().decode(b instanceof Uint8Array ? b : Uint8Array.from(b));

/**
 * Upstreams by host: "echo" echoes; "web" answers one HTTP response once the request head is in;
 * "fail-<code>" fails the dial; "late-<code>" accepts, then closes with the code before a byte.
 */
function fakeDialer() {
  const targets: Target[] = [];
  const requests: string[] = [];
  const dialer: Dialer = {
    async dial(target: Target): Promise<Duplex> {
      targets.push(target);
      const fail = /^fail-(.+)$/.exec(target.host);
      if (fail) throw new StreamError(fail[1]!, `fake ${fail[1]}`);
      const [mine, theirs] = memoryPair();
      const late = /^late-(.+)$/.exec(target.host);
      let seen = "";
      theirs.start({
        data(c) {
          if (late) return theirs.close(new StreamError(late[1]!, `fake ${late[1]}`));
          if (target.host === "echo") return void theirs.write(c);
          seen += dec(c);
          if (seen.includes("\r\n\r\n") && !requests.includes(seen)) {
            requests.push(seen);
            theirs.write(enc("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"));
            theirs.closeWrite();
          }
        },
        end() {
          theirs.closeWrite();
        },
        drain() {},
        close() {},
      });
      return mine;
    },
  };
  return { dialer, targets, requests };
}

async function client(port: number) {
  const sock = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => sock.once("connect", resolve).once("error", reject));
  const state = { got: [] as number[], ended: false, closed: false };
  sock.on("data", (d: Uint8Array) => state.got.push(...d));
  sock.on("end", () => {
    state.ended = true;
    sock.end();
  });
  sock.on("close", () => (state.closed = true));
  sock.on("error", () => {});
  return { sock, state, text: () => dec(state.got) };
}

/** Send a raw request, wait for the connection to close, return the whole answer. */
async function exchange(port: number, raw: string | Uint8Array): Promise<string> {
  const c = await client(port);
  c.sock.write(raw);
  await until(() => c.state.closed, "connection closed", 5000);
  return c.text();
}

describe("http proxy parsing", () => {
  test("request heads", () => {
    const r = parseRequestHead(enc("GET http://a.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\nX-A:  b \r\n\r\nBODY"));
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.deepEqual(r.head, {
      method: "GET",
      target: "http://a.example/x?y=1",
      version: "HTTP/1.1",
      headers: [["Host", "a.example"], ["X-A", "b"]],
    });
    assert.equal(
      r.used,
      r.used > 0 ? enc("GET http://a.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\nX-A:  b \r\n\r\n").length : -1,
    );
    assert.deepEqual(parseRequestHead(enc("GET / HTTP/1.1\r\nHost: x\r\n")), { ok: false, need: "more" });
    const status = (s: string | Uint8Array) =>
      (parseRequestHead(typeof s === "string" ? enc(s) : s) as { status?: number }).status;
    assert.equal(status("GET /\r\n\r\n"), 400);
    assert.equal(status("GET  / HTTP/1.1\r\n\r\n"), 400);
    assert.equal(status("G(T / HTTP/1.1\r\n\r\n"), 400);
    assert.equal(status("GET / HTTP/2.0\r\n\r\n"), 505);
    assert.equal(status("GET / HTTP/1.1\r\n folded\r\n\r\n"), 400);
    assert.equal(status("GET / HTTP/1.1\r\nNo Colon\r\n\r\n"), 400);
    assert.equal(status("GET / HTTP/1.1\r\nX: a\u0000b\r\n\r\n"), 400);
    assert.equal(status(enc("GET / HTTP/1.1\r\nX: " + "a".repeat(MAX_HEAD_BYTES))), 431);
  });

  test("CONNECT authorities", () => {
    assert.deepEqual(parseAuthority("example.com:443"), { host: "example.com", port: 443 });
    assert.deepEqual(parseAuthority("[2001:db8::1]:8443"), { host: "2001:db8::1", port: 8443 });
    assert.deepEqual(parseAuthority("10.0.0.1:22"), { host: "10.0.0.1", port: 22 });
    for (const bad of ["example.com", "example.com:0", "example.com:70000", ":443", "2001:db8::1:443", "a b:80", "[::1]"]) {
      assert.equal(parseAuthority(bad), undefined, bad);
    }
  });

  test("absolute URI → origin form: Host from the URI, hop-by-hop headers dropped, Connection: close", () => {
    const r = parseRequestHead(
      enc(
        "POST http://api.example:8080/v1/x?q=2 HTTP/1.1\r\nHost: evil.example\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 5\r\nProxy-Authorization: Basic Zm9v\r\nContent-Length: 3\r\nX-Keep: yes\r\n\r\n",
      ),
    );
    assert.ok(r.ok);
    if (!r.ok) return;
    const fwd = rewriteForOrigin(r.head);
    assert.ok("bytes" in fwd);
    if (!("bytes" in fwd)) return;
    assert.deepEqual(fwd.target, { host: "api.example", port: 8080 });
    assert.equal(
      dec(fwd.bytes),
      "POST /v1/x?q=2 HTTP/1.1\r\nHost: api.example:8080\r\nContent-Length: 3\r\nX-Keep: yes\r\nConnection: close\r\n\r\n",
    );
    const v6 = rewriteForOrigin({ method: "GET", target: "http://[::1]/", version: "HTTP/1.0", headers: [] });
    assert.ok("target" in v6 && v6.target.host === "::1" && v6.target.port === 80);
    const https = rewriteForOrigin({ method: "GET", target: "https://x.example/", version: "HTTP/1.1", headers: [] });
    assert.ok("status" in https && https.status === 400);
    const creds = rewriteForOrigin({ method: "GET", target: "http://u:p@x.example/", version: "HTTP/1.1", headers: [] });
    assert.ok("status" in creds && creds.status === 400);
    assert.deepEqual(["upstream_timeout", "target_forbidden", "bad_target", "upstream_refused", "unavailable"].map(statusFor), [
      504,
      403,
      400,
      502,
      502,
    ]);
  });
});

describe(`http proxy server on ${runtime}`, () => {
  let proxy: ProxyServer;
  let fake: ReturnType<typeof fakeDialer>;
  before(async () => {
    fake = fakeDialer();
    proxy = await startHttpProxy({ host: "127.0.0.1", port: 0, dialer: fake.dialer, handshakeTimeoutMs: 500 });
  });
  after(async () => {
    await proxy.close();
  });

  test("CONNECT: 200, then raw bytes both ways (pipelined bytes included), half-close passed on", async () => {
    const c = await client(proxy.port);
    c.sock.write("CONNECT echo:443 HTTP/1.1\r\nHost: echo:443\r\n\r\nfirst ");
    await until(() => c.text().includes("first "), "established and echo");
    assert.ok(c.text().startsWith("HTTP/1.1 200 Connection established\r\n\r\n"));
    assert.deepEqual(fake.targets.at(-1), { host: "echo", port: 443 });
    c.sock.write("second");
    await until(() => c.text().endsWith("first second"), "echo");
    c.sock.end();
    await until(() => c.state.closed, "closed after both FINs");
    assert.equal(c.state.ended, true);
  });

  test("absolute-URI GET is forwarded in origin form and the response comes back", async () => {
    const answer = await exchange(
      proxy.port,
      "GET http://web:8080/path?q=1 HTTP/1.1\r\nHost: web:8080\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n",
    );
    assert.equal(answer, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    assert.deepEqual(fake.targets.at(-1), { host: "web", port: 8080 });
    assert.equal(fake.requests.at(-1), "GET /path?q=1 HTTP/1.1\r\nHost: web:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n");
  });

  for (
    const [code, status] of [["upstream_refused", 502], ["upstream_timeout", 504], ["target_forbidden", 403], [
      "unavailable",
      502,
    ]] as const
  ) {
    test(`a dial failing with ${code} answers ${status} (CONNECT and GET)`, async () => {
      for (const req of [`CONNECT fail-${code}:443 HTTP/1.1\r\n\r\n`, `GET http://fail-${code}/ HTTP/1.1\r\n\r\n`]) {
        const answer = await exchange(proxy.port, req);
        assert.match(answer, new RegExp(`^HTTP/1.1 ${status} `));
        assert.match(answer, new RegExp(`X-Httvps-Error: ${code}`));
      }
    });
  }

  test("a stream that fails before its first byte is still a 502/504", async () => {
    const answer = await exchange(proxy.port, "GET http://late-upstream_timeout/ HTTP/1.1\r\n\r\n");
    assert.match(answer, /^HTTP\/1.1 504 /);
    const refused = await exchange(proxy.port, "GET http://late-upstream_refused/ HTTP/1.1\r\n\r\n");
    assert.match(refused, /^HTTP\/1.1 502 /);
  });

  test("bad requests get 400/431/505 and nothing is dialled; the proxy keeps serving", async () => {
    const before = fake.targets.length;
    assert.match(await exchange(proxy.port, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"), /^HTTP\/1.1 400 /);
    assert.match(await exchange(proxy.port, "CONNECT nohost HTTP/1.1\r\n\r\n"), /^HTTP\/1.1 400 /);
    assert.match(await exchange(proxy.port, "GET https://x.example/ HTTP/1.1\r\n\r\n"), /^HTTP\/1.1 400 /);
    assert.match(await exchange(proxy.port, "\u0016\u0003\u0001 binary junk\r\n\r\n"), /^HTTP\/1.1 400 /);
    assert.match(await exchange(proxy.port, "GET http://x/ HTTP/3.0\r\n\r\n"), /^HTTP\/1.1 505 /);
    assert.match(
      await exchange(proxy.port, "GET http://x/ HTTP/1.1\r\nX: " + "a".repeat(MAX_HEAD_BYTES + 10)),
      /^HTTP\/1.1 431 /,
    );
    // A client that never finishes its head is dropped after the handshake timeout.
    const slow = await client(proxy.port);
    slow.sock.write("GET http://x/ HTTP/1.1\r\n");
    await until(() => slow.state.closed, "timeout", 3000);
    assert.equal(fake.targets.length, before);
    assert.match(await exchange(proxy.port, "GET http://web/ HTTP/1.0\r\n\r\n"), /hello$/);
  });
});
