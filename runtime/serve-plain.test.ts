// serveGateway without TLS (GATEWAY_TLS=off, a reverse proxy in front terminates it), on the
// adapter of the runtime under test: the site over plain HTTP/1.1, WebSocket sessions, and the
// HTTP/2 transport as h2c by prior knowledge where the adapter serves h2 (Node, Deno; not Bun).
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { testDecoy } from "../gateway/decoy-site.testing.ts";
import { encodeMessage, RECORD_BINARY, RECORD_HEADER_BYTES } from "./record-socket.ts";
import {
  gatewayTransports,
  H2_CONTENT_TYPE,
  type ListeningServer,
  runtime,
  RuntimeError,
  serveGateway,
  type UpgradeInfo,
  wsConnect,
} from "./index.ts";
import { recorder, sleep, until } from "./serve.testing.ts";

/** One plain HTTP/1.1 GET on its own connection. */
function get(port: number, path: string): Promise<{ status: number; body: string; server: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, server: String(res.headers.server) }));
    }).on("error", reject);
  });
}

describe(`serveGateway without TLS on ${runtime}`, () => {
  let gw: ListeningServer & { setTls(t: { cert: string; key: string }): Promise<void> };
  const accepted: UpgradeInfo[] = [];

  before(async () => {
    gw = await serveGateway({
      hostname: "127.0.0.1",
      port: 0,
      wsPath: "/ws",
      fetch: testDecoy(),
      accept: (socket, info) => {
        accepted.push(info);
        return { message: (m) => socket.send(m), drain() {}, close() {} };
      },
    });
  });
  after(async () => {
    await gw.close();
  });

  test("the site answers plain HTTP/1.1", async () => {
    const r = await get(gw.port, "/");
    assert.equal(r.status, 200);
    assert.equal(r.server, "nginx");
    assert.match(r.body, /<html/i);
    assert.equal((await get(gw.port, "/no-such-page")).status, 404);
  });

  /**
   * On one raw TCP connection: write `first` (pieces 50 ms apart), wait for a whole answer, then
   * send `then` (which closes); the status codes of every answer, in order.
   */
  async function statusesOn(first: string[], then: string): Promise<string[]> {
    const sock = net.connect(gw.port, "127.0.0.1");
    let text = "";
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => (text += d));
    await new Promise((r) => sock.once("connect", r));
    try {
      for (const [i, piece] of first.entries()) {
        if (i > 0) await sleep(50);
        sock.write(piece);
      }
      await until("the first answer", () => /<\/html>/i.test(text));
      sock.write(then);
      await new Promise((r) => sock.once("close", r));
      return [...text.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => m[1]!);
    } finally {
      sock.destroy();
    }
  }

  test("a request head split across packets, then a second request on the same connection: both answered", async () => {
    // The first bytes are read to tell HTTP/1.1 from h2c: the rest must still reach the parser after them, in order.
    const statuses = await statusesOn(
      ["GET / HTTP/1.1\r\nHo", "st: a\r\n\r\n"],
      "GET /no-such-page HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert.deepEqual(statuses, ["200", "404"]);
  });

  test("a WebSocket upgrade to another path gets the site's 404, and the connection serves the next request", async () => {
    // Node answers such upgrades off its request path and hands the socket back to the server (node-http.ts).
    const upgrade = "GET /elsewhere HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    const statuses = await statusesOn([upgrade], "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert.deepEqual(statuses, ["404", "200"]);
  });

  test("a WebSocket session over ws:// echoes, and accept() sees the TCP peer", async () => {
    const n = accepted.length;
    const rec = recorder();
    const client = await wsConnect(`ws://127.0.0.1:${gw.port}/ws`, {}, () => rec.handler);
    try {
      client.send(new Uint8Array([1, 2, 3]));
      await until("echo", () => rec.messages.length === 1);
      assert.deepEqual([...(rec.messages[0] as Uint8Array)], [1, 2, 3]);
      assert.equal(accepted[n]!.transport, "ws");
      assert.equal(accepted[n]!.remoteAddress, "127.0.0.1");
    } finally {
      client.close(1000, "done");
    }
  });

  test("setTls is refused with bad_tls: there is no certificate to replace", async () => {
    await assert.rejects(gw.setTls({ cert: "x", key: "y" }), (e) => e instanceof RuntimeError && e.code === "bad_tls");
  });

  test(`h2c by prior knowledge: ${gatewayTransports.includes("h2") ? "the site and an HTTP/2 session" : "not served on this runtime"}`, async (t) => {
    if (!gatewayTransports.includes("h2")) {
      t.diagnostic(`${runtime} serves no HTTP/2 (docs/09): ws only behind a proxy`);
      return;
    }
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    session.on("error", () => {});
    try {
      const page = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ":path": "/", ":method": "GET" });
        let body = "";
        let status = 0;
        req.on("response", (h) => (status = Number(h[":status"])));
        req.setEncoding("utf8");
        req.on("data", (d: string) => (body += d));
        req.on("end", () => resolve({ status, body }));
        req.on("error", reject);
        req.end();
      });
      assert.equal(page.status, 200);
      assert.match(page.body, /<html/i);

      // A session: one binary record out, the same record echoed back on the response body.
      const n = accepted.length;
      const req = session.request({ ":path": "/ws", ":method": "POST", "content-type": H2_CONTENT_TYPE });
      const payload = new Uint8Array([9, 8, 7, 6]);
      const chunks: Buffer[] = [];
      req.on("data", (d: Buffer) => chunks.push(d));
      req.write(encodeMessage(payload));
      await until("the echoed record", () => Buffer.concat(chunks).length >= RECORD_HEADER_BYTES + payload.length);
      const got = Buffer.concat(chunks);
      assert.equal(got[0], RECORD_BINARY);
      assert.deepEqual([...got.subarray(RECORD_HEADER_BYTES)], [...payload]);
      assert.equal(accepted[n]!.transport, "h2");
      req.close();
    } finally {
      session.destroy();
    }
  });
});
