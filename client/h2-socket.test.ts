// The HTTP/2 transport against the runtime's real gateway adapter (serveGateway) on loopback:
// messages both ways, close codes, backpressure, the pin, refusals the client can fall back
// on, and the decoy for every h2 request that is not a session. On Bun, whose gateway serves
// no HTTP/2, the client must be refused by ALPN.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { randomBytes } from "node:crypto";
import { testDecoy, testDecoyName } from "../gateway/decoy-site.testing.ts";
import type { AccessKey } from "../protocol/access-key.ts";
import {
  gatewayTransports,
  H2_CONTENT_TYPE,
  type ListeningServer,
  runtime,
  serveGateway,
  type SessionHandler,
  type SessionSocket,
  WS_HIGH_WATER,
} from "../runtime/index.ts";
import { attachNodeStream } from "../runtime/record-socket.ts";
import { GatewaySocketError, openGatewaySocket } from "./gateway-socket.ts";
import { openH2Socket } from "./h2-socket.ts";
import { testCertificate, until } from "./testing.ts";

const servesH2 = gatewayTransports.includes("h2");

interface Events {
  messages: Array<string | Uint8Array>;
  drains: number;
  closed: { code: number; reason: string } | null;
}
function recorder(onMessage?: (m: string | Uint8Array) => void): { events: Events; handler: SessionHandler } {
  const events: Events = { messages: [], drains: 0, closed: null };
  return {
    events,
    handler: {
      message: (m) => (events.messages.push(typeof m === "string" ? m : m.slice()), onMessage?.(m)),
      drain: () => events.drains++,
      close: (code, reason) => (events.closed = { code, reason }),
    },
  };
}

/** A plain h2 request (no session), for the decoy comparisons. */
function h2Request(
  port: number,
  ca: string,
  headers: http2.OutgoingHttpHeaders,
  body?: string,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://localhost:${port}`, { ca });
    session.on("error", reject);
    const req = session.request(headers, { endStream: body === undefined });
    let text = "";
    let head: http2.IncomingHttpHeaders = {};
    req.on("response", (h) => (head = h));
    req.setEncoding("utf8");
    req.on("data", (d: string) => (text += d));
    req.on("end", () => {
      session.close();
      resolve({ status: Number(head[":status"]), headers: head, body: text });
    });
    req.on("error", reject);
    if (body !== undefined) req.end(body);
  });
}

describe(`HTTP/2 transport on ${runtime}`, () => {
  let gw: ListeningServer;
  let gwOff: ListeningServer;
  const accepted: Array<{ socket: SessionSocket; events: Events; transport: string }> = [];
  let ca: string;
  let keyFor: (port: number, over?: Partial<AccessKey>) => AccessKey;

  const decoy = testDecoy();

  before(async () => {
    const cert = await testCertificate();
    ca = cert.certPem;
    const opts = (h2: boolean) => ({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: cert.certPem, key: cert.keyPem },
      wsPath: "/ws",
      h2,
      // /url echoes the URL the adapter built (its authority must survive HTTP/2); the rest is the decoy.
      fetch: (req: Request) => new URL(req.url).pathname === "/url" ? new Response(req.url) : decoy(req),
      accept: (socket: SessionSocket, info: { transport: string }) => {
        // Echo, so the client sees what arrived.
        const r = recorder((m) => socket.send(m));
        accepted.push({ socket, events: r.events, transport: info.transport });
        return r.handler;
      },
    });
    gw = await serveGateway(opts(true));
    gwOff = await serveGateway(opts(false));
    keyFor = (port, over = {}) => ({
      host: "127.0.0.1",
      port,
      path: "/ws",
      deviceId: "d",
      token: "t",
      transport: "h2",
      pin: cert.sha256,
      ...over,
    });
  });
  after(async () => {
    for (const a of accepted) a.socket.close(1001, "test over");
    await gw.close();
    await gwOff.close();
  });

  test("the client over a bare node:http2 server of this runtime (on Bun, the only h2 peer its suite has)", async () => {
    const cert = await testCertificate();
    const server = http2.createSecureServer({ cert: cert.certPem, key: cert.keyPem });
    const closed: Array<{ code: number; reason: string }> = [];
    server.on("stream", (stream: http2.ServerHttp2Stream) => {
      stream.respond({ ":status": 200, "content-type": H2_CONTENT_TYPE });
      attachNodeStream(
        stream,
        { remoteAddress: "peer" },
        (s) => ({ message: (m) => s.send(m), drain() {}, close: (code, reason) => closed.push({ code, reason }) }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    try {
      const port = (server.address() as { port: number }).port;
      const r = recorder();
      const socket = await openH2Socket(keyFor(port), {}, 10_000, () => r.handler);
      const big = randomBytes(3 * 1024 * 1024 + 7);
      for (let at = 0; at < big.length; at += 65_536) socket.send(big.subarray(at, at + 65_536));
      socket.send("done");
      await until(() => r.events.messages.at(-1) === "done", "the echo", 30_000);
      assert.deepEqual(Buffer.concat(r.events.messages.slice(0, -1) as Uint8Array[]), big);
      socket.close(1000, "bye");
      await until(() => closed.length === 1 && r.events.closed !== null, "both closed");
      assert.deepEqual(closed[0], { code: 1000, reason: "bye" });
    } finally {
      server.close();
    }
  });

  test("a gateway that never answers: the open gives up after its timeout, as a plain unavailable", async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => void sockets.push(s)); // accepts, never speaks TLS
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
    try {
      const r = recorder();
      const started = Date.now();
      await assert.rejects(
        openH2Socket(keyFor((silent.address() as net.AddressInfo).port), {}, 300, () => r.handler),
        (e: unknown) => e instanceof GatewaySocketError && e.code === "unavailable" && /after 300 ms/.test(e.message),
      );
      assert.ok(Date.now() - started < 10_000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test("nothing listens on the port: refused at TCP, on both transports, so not a reason to switch (nothingListens)", async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", () => resolve()));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = recorder();
    for (const opener of [openH2Socket, openGatewaySocket]) {
      await assert.rejects(
        opener(keyFor(port), {}, 5000, () => r.handler),
        (e: unknown) => e instanceof GatewaySocketError && e.code === "unavailable" && e.nothingListens,
      );
    }
  });

  if (!servesH2) {
    test("this runtime's gateway offers no h2: the client is told so by ALPN, as a fallback-able refusal", async () => {
      const r = recorder();
      await assert.rejects(
        openH2Socket(keyFor(gw.port), {}, 5000, () => r.handler),
        (e: unknown) =>
          e instanceof GatewaySocketError && e.code === "unavailable" && e.transportRefused &&
          /does not offer HTTP\/2 \(ALPN: (http\/1\.1|none)\)/.test(e.message),
      );
    });
    return;
  }

  test("text and binary messages both ways, a 1 MiB one included, in order", async () => {
    const r = recorder();
    const socket = await openH2Socket(keyFor(gw.port), {}, 10_000, () => r.handler);
    const big = randomBytes(1024 * 1024);
    socket.send('{"type":"hello"}');
    socket.send(new Uint8Array([1, 2, 3]));
    socket.send(new Uint8Array(0));
    socket.send(big);
    socket.send("é ✓ 😀");
    await until(() => r.events.messages.length === 5, "5 echoes");
    assert.equal(r.events.messages[0], '{"type":"hello"}');
    assert.deepEqual(r.events.messages[1], new Uint8Array([1, 2, 3]));
    assert.deepEqual(r.events.messages[2], new Uint8Array(0));
    assert.deepEqual(Buffer.from(r.events.messages[3] as Uint8Array), big);
    assert.equal(r.events.messages[4], "é ✓ 😀");
    assert.equal(accepted.at(-1)!.transport, "h2");
    socket.close(1000, "bye");
    const server = accepted.at(-1)!;
    await until(() => server.events.closed !== null && r.events.closed !== null, "both sides closed");
    assert.deepEqual(server.events.closed, { code: 1000, reason: "bye" });
    assert.deepEqual(r.events.closed, { code: 1000, reason: "bye" });
  });

  test("the gateway closes: the client hears its code and reason", async () => {
    const r = recorder();
    const before = accepted.length;
    await openH2Socket(keyFor(gw.port), {}, 10_000, () => r.handler);
    await until(() => accepted.length > before, "accepted");
    accepted.at(-1)!.socket.close(4001, "going away");
    await until(() => r.events.closed !== null, "client close");
    assert.deepEqual(r.events.closed, { code: 4001, reason: "going away" });
  });

  test("bufferedAmount passes the high-water mark under a burst, drain() follows, nothing is lost", async () => {
    const r = recorder();
    const socket = await openH2Socket(keyFor(gw.port), {}, 10_000, () => r.handler);
    const chunk = randomBytes(256 * 1024);
    const n = 24; // 6 MiB queued at once
    for (let i = 0; i < n; i++) socket.send(chunk);
    assert.ok(socket.bufferedAmount > WS_HIGH_WATER, `bufferedAmount ${socket.bufferedAmount}`);
    await until(() => r.events.drains >= 1, "drain", 30_000);
    await until(() => r.events.messages.length === n, "all echoes", 30_000);
    for (const m of r.events.messages) assert.deepEqual(Buffer.from(m as Uint8Array), chunk);
    socket.close(1000, "");
  });

  test("a certificate other than the pinned one: pin_mismatch, not a fallback-able refusal", async () => {
    const r = recorder();
    await assert.rejects(
      openH2Socket(keyFor(gw.port, { pin: "0".repeat(64) }), {}, 5000, () => r.handler),
      (e: unknown) => e instanceof GatewaySocketError && e.code === "pin_mismatch" && !e.transportRefused,
    );
  });

  test("refusals the client falls back on: h2 turned off on the gateway, a path that is not the tunnel's", async () => {
    const r = recorder();
    await assert.rejects(
      openH2Socket(keyFor(gwOff.port), {}, 5000, () => r.handler),
      (e: unknown) => e instanceof GatewaySocketError && e.transportRefused,
    );
    await assert.rejects(
      openH2Socket(keyFor(gw.port, { path: "/nope" }), {}, 5000, () => r.handler),
      (e: unknown) => e instanceof GatewaySocketError && e.transportRefused && /status 405/.test(e.message),
    );
    assert.equal(r.events.closed, null, "no session was started");
  });

  test("every other h2 request is the decoy: GET or a wrong content type on the path answer like any unknown path", async () => {
    const same = async (a: Awaited<ReturnType<typeof h2Request>>, b: Awaited<ReturnType<typeof h2Request>>) => {
      assert.equal(a.status, b.status);
      const names = (h: http2.IncomingHttpHeaders) => Object.keys(h).filter((k) => k !== "date").sort();
      assert.deepEqual(names(a.headers), names(b.headers));
      for (const k of names(a.headers)) assert.deepEqual(a.headers[k], b.headers[k], k);
      assert.equal(a.body, b.body);
    };
    await same(await h2Request(gw.port, ca, { ":path": "/ws" }), await h2Request(gw.port, ca, { ":path": "/qz" }));
    await same(
      await h2Request(gw.port, ca, { ":method": "POST", ":path": "/ws", "content-type": "application/octet-stream" }, "x"),
      await h2Request(gw.port, ca, { ":method": "POST", ":path": "/qz", "content-type": "application/octet-stream" }, "x"),
    );
    await same(
      await h2Request(gw.port, ca, { ":method": "PUT", ":path": "/ws", "content-type": H2_CONTENT_TYPE }, "x"),
      await h2Request(gw.port, ca, { ":method": "PUT", ":path": "/qz", "content-type": H2_CONTENT_TYPE }, "x"),
    );
    const home = await h2Request(gw.port, ca, { ":path": "/" });
    assert.equal(home.status, 200);
    assert.ok(home.body.includes(testDecoyName()), "the test site's home page");
  });

  test("a plain h2 request's URL keeps the authority's host and port (configs built from it name the right port)", async () => {
    const r = await h2Request(gw.port, ca, { ":path": "/url?x=1" });
    assert.equal(r.body, `https://localhost:${gw.port}/url?x=1`);
  });

  test("a peer that breaks the record format: the gateway closes with 1002 and the next session is fine", async () => {
    const before = accepted.length;
    const session = http2.connect(`https://localhost:${gw.port}`, { ca });
    const req = session.request({ ":method": "POST", ":path": "/ws", "content-type": H2_CONTENT_TYPE }, { endStream: false });
    req.write(new Uint8Array([9, 0, 0, 0, 1, 0])); // kind 9 does not exist
    const reply: Buffer[] = [];
    req.on("data", (d: Buffer) => reply.push(d));
    await new Promise<void>((resolve) => req.once("end", () => resolve()));
    req.end();
    session.close();
    await until(() => accepted.length > before && accepted.at(-1)!.events.closed !== null, "the gateway side closed");
    assert.equal(accepted.at(-1)!.events.closed!.code, 1002);
    const bytes = Buffer.concat(reply);
    assert.equal(bytes[0], 2, "a close record");
    assert.equal(bytes.readUInt16BE(5), 1002);
    const r = recorder();
    const socket = await openH2Socket(keyFor(gw.port), {}, 10_000, () => r.handler);
    socket.send("still fine");
    await until(() => r.events.messages.length === 1, "echo");
    socket.close(1000, "");
  });
});
