// The adapter contract, run unchanged on Node, Bun and Deno against whichever adapter
// runtime/index.ts picks. Everything listens on 127.0.0.1 with OS-chosen ports.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { randomBytes } from "node:crypto";
import { createDevCertificate, type DevCertificate } from "../gateway/certs.ts";
import { testDecoy, testDecoyName } from "../gateway/decoy-site.testing.ts";
import {
  type ListeningServer,
  onSignal,
  runtime,
  RuntimeError,
  serveHttp,
  type SessionSocket,
  type UpgradeInfo,
  WS_HIGH_WATER,
  WS_LOW_WATER,
  WS_MAX_MESSAGE,
  wsConnect,
} from "./index.ts";
import { recorder, relay, request, sleep, testGateway, until } from "./serve.testing.ts";

const expected = process.env.HTTVPS_TEST_RUNTIME;

let cert: DevCertificate;
before(async () => {
  cert = await createDevCertificate();
});

test("runtime/index.ts picked the adapter of the runtime we are on", () => {
  if (expected) assert.equal(runtime, expected);
  assert.equal(
    runtime,
    (globalThis as { Bun?: unknown }).Bun ? "bun" : (globalThis as { Deno?: unknown }).Deno ? "deno" : "node",
  );
});

describe("serveHttp", () => {
  test("answers a plain HTTP fetch, with the request body streamed in and the client's address", async () => {
    let seen: { method: string; path: string; body: string; remote: string; header: string | null } | undefined;
    const srv = await serveHttp({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (req, info) => {
        seen = {
          method: req.method,
          path: new URL(req.url).pathname + new URL(req.url).search,
          body: await req.text(),
          remote: info.remoteAddress,
          header: req.headers.get("x-test"),
        };
        return new Response(JSON.stringify({ ok: true }), {
          status: 201,
          headers: { "content-type": "application/json", "x-reply": "1" },
        });
      },
    });
    try {
      assert.ok(srv.port > 0);
      const r = await fetch(`http://127.0.0.1:${srv.port}/api/v1/thing?x=1`, {
        method: "POST",
        body: "hello body",
        headers: { "x-test": "yes" },
      });
      assert.equal(r.status, 201);
      assert.equal(r.headers.get("x-reply"), "1");
      assert.deepEqual(await r.json(), { ok: true });
      assert.deepEqual(seen, {
        method: "POST",
        path: "/api/v1/thing?x=1",
        body: "hello body",
        remote: "127.0.0.1",
        header: "yes",
      });
    } finally {
      await srv.close();
    }
  });

  test("streams a large response body, and serves HTTPS when given a certificate", async () => {
    const big = randomBytes(3 * 1024 * 1024);
    const srv = await serveHttp({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: cert.certPem, key: cert.keyPem },
      fetch: () =>
        new Response(
          new ReadableStream({
            start(c) {
              for (let i = 0; i < big.length; i += 65536) c.enqueue(new Uint8Array(big.subarray(i, i + 65536)));
              c.close();
            },
          }),
        ),
    });
    try {
      const got = await new Promise<Buffer>((resolve, reject) => {
        https
          .get(
            { host: "127.0.0.1", port: srv.port, path: "/", ca: cert.certPem, servername: "localhost", agent: false },
            (res) => {
              const parts: Buffer[] = [];
              res.on("data", (d: Buffer) => parts.push(d));
              res.on("end", () => resolve(Buffer.concat(parts)));
            },
          )
          .on("error", reject);
      });
      assert.equal(got.length, big.length);
      assert.ok(got.equals(big));
    } finally {
      await srv.close();
    }
  });

  test("a port in use is a typed listen_failed error", async () => {
    const a = await serveHttp({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("a") });
    try {
      await assert.rejects(
        serveHttp({ hostname: "127.0.0.1", port: a.port, fetch: () => new Response("b") }),
        (e: unknown) => e instanceof RuntimeError && e.code === "listen_failed",
      );
    } finally {
      await a.close();
    }
  });
});

describe("serveGateway", () => {
  let gw: ListeningServer;
  const accepted: { info: UpgradeInfo; socket: SessionSocket; rec: ReturnType<typeof recorder> }[] = [];
  /** What the gateway's accept() does with each message; echo unless a test says otherwise. */
  let onMessage: (s: SessionSocket, m: string | Uint8Array, rec: ReturnType<typeof recorder>) => void = (s, m) => s.send(m);
  const url = () => `wss://localhost:${gw.port}/ws`;

  before(async () => {
    gw = await testGateway(cert, {
      fetch: testDecoy(),
      accept: (socket, info) => {
        const rec = recorder();
        accepted.push({ info, socket, rec });
        // delegate at call time, so a test can swap the recorder's methods mid-session
        return {
          message: (m) => (rec.handler.message(m), onMessage(socket, m, rec)),
          drain: () => rec.handler.drain(),
          close: (code, reason) => rec.handler.close(code, reason),
        };
      },
    });
  });
  after(async () => {
    await gw.close();
  });

  test("GET / is the decoy site", async () => {
    const r = await request(gw.port, cert.certPem, "/");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "text/html");
    assert.equal(r.headers.server, "nginx");
    assert.ok(r.body.includes(testDecoyName()), "the test site's home page");
  });

  test("a plain GET to the WebSocket path is indistinguishable from any unknown path", async () => {
    const ws = await request(gw.port, cert.certPem, "/ws");
    const other = await request(gw.port, cert.certPem, "/no-such-page");
    assert.equal(ws.status, 404);
    assert.equal(ws.status, other.status);
    assert.deepEqual(Object.keys(ws.headers).sort(), Object.keys(other.headers).sort());
    for (const k of Object.keys(ws.headers)) if (k !== "date") assert.deepEqual(ws.headers[k], other.headers[k], k);
    assert.equal(ws.body, other.body);
    const q = await request(gw.port, cert.certPem, "/ws?x=1", { method: "POST" });
    const q2 = await request(gw.port, cert.certPem, "/other", { method: "POST" });
    assert.equal(q.status, 405);
    assert.equal(q.body, q2.body);
  });

  test("failed or misplaced upgrades get the decoy's 404, not an error from a WebSocket stack", async () => {
    const notFound = await request(gw.port, cert.certPem, "/no-such-page");
    const good = {
      Connection: "Upgrade",
      Upgrade: "websocket",
      "Sec-WebSocket-Version": "13",
      "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
    };
    for (
      const [path, headers] of [
        ["/ws", { ...good, "Sec-WebSocket-Version": "8" }],
        ["/ws", { ...good, "Sec-WebSocket-Key": "short" }],
        ["/ws", { ...good, Upgrade: "h2c" }],
        ["/ws", { ...good, "Sec-WebSocket-Protocol": "a b" }],
        ["/ws/", good],
        ["/wsx", good],
        ["/", { ...good, Upgrade: "h2c" }],
      ] as const
    ) {
      const r = await request(gw.port, cert.certPem, path, { headers: headers as Record<string, string> });
      if (path === "/") {
        assert.equal(r.status, 200, `${path} ${JSON.stringify(headers)}`);
        continue;
      }
      assert.equal(r.status, 404, `${path} ${JSON.stringify(headers)}`);
      assert.equal(r.body, notFound.body);
      assert.equal(r.headers.server, "nginx");
      assert.equal(r.headers["content-type"], notFound.headers["content-type"]);
    }
    assert.equal(accepted.length, 0);
  });

  test("text and binary messages round-trip over TLS; accept() sees the client's address and headers", async () => {
    const before = accepted.length;
    const rec = recorder();
    const client = await wsConnect(url(), { ca: cert.certPem, headers: { "x-client": "test" } }, () => rec.handler);
    try {
      await until("accept", () => accepted.length === before + 1);
      const srv = accepted[before]!;
      assert.equal(srv.info.remoteAddress, "127.0.0.1");
      assert.equal(srv.socket.remoteAddress, "127.0.0.1");
      assert.equal(srv.info.headers.get("x-client"), "test");
      const bin = randomBytes(100_000);
      client.send("héllo ☃");
      client.send(new Uint8Array(bin));
      client.send(new Uint8Array(0));
      client.send("");
      await until("echoes", () => rec.messages.length === 4);
      assert.equal(rec.messages[0], "héllo ☃");
      assert.ok(rec.messages[1] instanceof Uint8Array);
      assert.ok(Buffer.from(rec.messages[1] as Uint8Array).equals(bin));
      assert.ok(rec.messages[2] instanceof Uint8Array);
      assert.equal((rec.messages[2] as Uint8Array).length, 0);
      assert.equal(rec.messages[3], "");
      // what the server received, as the server's handler saw it
      assert.equal(srv.rec.messages[0], "héllo ☃");
      assert.ok(srv.rec.messages[1] instanceof Uint8Array);
      assert.ok(Buffer.from(srv.rec.messages[1] as Uint8Array).equals(bin));
      // a message of exactly the limit is fine
      client.send(new Uint8Array(WS_MAX_MESSAGE));
      await until("max echo", () => rec.messages.length === 5);
      assert.equal((rec.messages[4] as Uint8Array).length, WS_MAX_MESSAGE);
      srv.socket.ping?.();
    } finally {
      client.close(1000, "done");
    }
    await until("closes", () => rec.closes.length === 1 && accepted[before]!.rec.closes.length === 1);
  });

  test("close from the client: both handlers' close() run exactly once", async () => {
    const before = accepted.length;
    const rec = recorder();
    const client = await wsConnect(url(), { ca: cert.certPem }, () => rec.handler);
    await until("accept", () => accepted.length === before + 1);
    client.close(4001, "client bye");
    client.close(4002, "again"); // a second close is harmless
    const srv = accepted[before]!;
    await until("closes", () => rec.closes.length >= 1 && srv.rec.closes.length >= 1);
    await sleep(50);
    assert.equal(srv.rec.closes.length, 1);
    assert.deepEqual(srv.rec.closes[0], [4001, "client bye"]);
    assert.equal(rec.closes.length, 1);
    client.send("after close is a no-op");
  });

  test("close from the server: both handlers' close() run exactly once", async () => {
    const before = accepted.length;
    const rec = recorder();
    await wsConnect(url(), { ca: cert.certPem }, () => rec.handler);
    await until("accept", () => accepted.length === before + 1);
    const srv = accepted[before]!;
    srv.socket.close(4003, "server bye");
    await until("closes", () => rec.closes.length >= 1 && srv.rec.closes.length >= 1);
    await sleep(50);
    assert.deepEqual(rec.closes, [[4003, "server bye"]]);
    assert.equal(srv.rec.closes.length, 1);
    srv.socket.send("after close is a no-op");
  });

  test("an oversized message closes the connection with 1009", async () => {
    const before = accepted.length;
    const rec = recorder();
    const client = await wsConnect(url(), { ca: cert.certPem }, () => rec.handler);
    await until("accept", () => accepted.length === before + 1);
    client.send(new Uint8Array(WS_MAX_MESSAGE + 1));
    const srv = accepted[before]!;
    await until("closes", () => rec.closes.length >= 1 && srv.rec.closes.length >= 1);
    await sleep(50);
    assert.equal(rec.closes.length, 1);
    assert.equal(rec.closes[0]![0], 1009);
    assert.equal(srv.rec.closes.length, 1);
    assert.equal(srv.rec.closes[0]![0], 1009, "the gateway's own handler is told why");
    assert.equal(srv.rec.messages.length, 0); // never delivered
  });

  test("the client enforces the limit too", async () => {
    const before = accepted.length;
    const rec = recorder();
    onMessage = (s) => s.send(new Uint8Array(2000));
    try {
      const client = await wsConnect(url(), { ca: cert.certPem, maxMessageBytes: 1000 }, () => rec.handler);
      await until("accept", () => accepted.length === before + 1);
      client.send("send me something big");
      await until("closes", () => rec.closes.length >= 1 && accepted[before]!.rec.closes.length >= 1);
      assert.equal(rec.messages.length, 0);
      assert.equal(rec.closes[0]![0], 1009);
    } finally {
      onMessage = (s, m) => s.send(m);
    }
  });

  // Both ways bulk data leaves a server socket: send(), and sendParts() where the adapter has it
  // (Node's, which writes its own frames beside ws): the queue it fills must count the same.
  for (const via of ["send", "sendParts"] as const) {
    test(`bufferedAmount rises above the high-water mark when the client stops reading, and drain() follows when it reads again (${via})`, async () => {
      const r = await relay(gw.port);
      const CHUNK = 64 * 1024;
      const TOTAL = 48 * 1024 * 1024; // far more than loopback's kernel buffers and the high-water mark together
      const state = { sent: 0, drains: 0, stalls: [] as { sent: number; buffered: number }[], maxBuffered: 0, maxAtDrain: 0 };
      let n = 0;
      const pump = (s: SessionSocket) => {
        while (state.sent < TOTAL) {
          if (s.bufferedAmount > WS_HIGH_WATER) {
            state.stalls.push({ sent: state.sent, buffered: s.bufferedAmount });
            return; // what the session layer does: stop and wait for drain()
          }
          const c = new Uint8Array(CHUNK).fill(n++ & 0xff);
          if (via === "sendParts" && s.sendParts) s.sendParts(c.subarray(0, 7), c.subarray(7));
          else s.send(c);
          state.sent += CHUNK;
          state.maxBuffered = Math.max(state.maxBuffered, s.bufferedAmount);
        }
      };
      const before = accepted.length;
      let serverSocket: SessionSocket | undefined;
      onMessage = (s, m, rec) => {
        if (m !== "go") return;
        serverSocket = s;
        const recordDrain = rec.handler.drain;
        // from now on the server's drain() resumes the pump
        rec.handler.drain = () => {
          recordDrain();
          state.drains++;
          state.maxAtDrain = Math.max(state.maxAtDrain, s.bufferedAmount);
          pump(s);
        };
        pump(s);
      };
      let received = 0;
      let lastByte = -1;
      const rec = recorder();
      rec.handler.message = (m) => {
        const b = m as Uint8Array;
        received += b.length;
        lastByte = b[b.length - 1]!;
      };
      try {
        const client = await wsConnect(`wss://localhost:${r.port}/ws`, { ca: cert.certPem }, () => rec.handler);
        await until("accept", () => accepted.length === before + 1);
        r.stop();
        client.send("go");
        // Stalled: nothing more sent for a while, because the queue is above the mark and stays there.
        let last = -1;
        let since = Date.now();
        await until(
          "a stall",
          () => {
            if (state.sent !== last) [last, since] = [state.sent, Date.now()];
            return state.stalls.length > 0 && Date.now() - since > 250;
          },
          20_000,
        );
        const stalledAt = state.sent;
        const drainsWhileStalled = state.drains;
        await sleep(300);
        assert.equal(state.sent, stalledAt, "the sender stays stopped while the client does not read");
        assert.equal(state.drains, drainsWhileStalled, "no drain() while the client does not read");
        assert.ok(state.sent < TOTAL, "the sender stopped before the end");
        const queued = serverSocket!.bufferedAmount;
        assert.ok(queued > WS_LOW_WATER, `still queued: ${queued}`);
        // bounded: the queue never grew past the high-water mark by more than one message
        assert.ok(state.maxBuffered <= WS_HIGH_WATER + CHUNK + 1024, `max queued ${state.maxBuffered}`);
        r.go();
        await until("everything received", () => received === TOTAL, 60_000);
        assert.ok(state.drains > drainsWhileStalled, "drain() resumed the sender");
        assert.ok(state.maxAtDrain <= WS_LOW_WATER, `drain() came with ${state.maxAtDrain} bytes still queued`);
        assert.equal(lastByte, (n - 1) & 0xff);
        assert.equal(state.sent, TOTAL);
        client.close(1000, "done");
        await until("close", () => rec.closes.length === 1);
      } finally {
        onMessage = (s, m) => s.send(m);
        await r.close();
      }
    });
  }

  test("close() stops accepting but leaves open sessions working", async () => {
    const g2 = await testGateway(cert, {
      fetch: testDecoy(),
      accept: (socket) => ({ message: (m) => socket.send(m), drain() {}, close() {} }),
    });
    const rec = recorder();
    const client = await wsConnect(`wss://localhost:${g2.port}/ws`, { ca: cert.certPem }, () => rec.handler);
    await g2.close();
    await assert.rejects(
      wsConnect(`wss://localhost:${g2.port}/ws`, { ca: cert.certPem, timeoutMs: 5000 }, () => recorder().handler),
      (e: unknown) => e instanceof RuntimeError && e.code === "ws_connect_failed",
    );
    client.send("still here");
    await until("echo after close()", () => rec.messages.length === 1);
    assert.equal(rec.messages[0], "still here");
    client.close(1000, "done");
    await until("close", () => rec.closes.length === 1);
  });
});

describe("a session handler that throws", () => {
  test("closes only its own socket with 1011 and reports the error", async () => {
    const errors: unknown[] = [];
    const g = await testGateway(cert, {
      fetch: () => new Response("x"),
      onError: (e) => void errors.push(e),
      accept: (s) => ({
        message: (m) => {
          if (m === "boom") throw new Error("handler bug");
          s.send(m);
        },
        drain() {},
        close() {},
      }),
    });
    try {
      const bad = recorder();
      const good = recorder();
      const b = await wsConnect(`wss://localhost:${g.port}/ws`, { ca: cert.certPem }, () => bad.handler);
      const ok = await wsConnect(`wss://localhost:${g.port}/ws`, { ca: cert.certPem }, () => good.handler);
      b.send("boom");
      await until("1011", () => bad.closes.length === 1);
      assert.equal(bad.closes[0]![0], 1011);
      assert.equal(errors.length, 1);
      assert.match((errors[0] as Error).message, /handler bug/);
      ok.send("still fine");
      await until("echo", () => good.messages.length === 1);
      ok.close(1000, "done");
      await until("close", () => good.closes.length === 1);
    } finally {
      await g.close();
    }
  });
});

describe("onSignal", () => {
  test("delivers SIGTERM to the handler instead of exiting, until removed", async () => {
    const got: string[] = [];
    const off = onSignal(["SIGINT", "SIGTERM"], (s) => void got.push(s));
    try {
      process.kill(process.pid, "SIGTERM");
      await until("signal", () => got.length === 1, 5000);
      assert.deepEqual(got, ["SIGTERM"]);
    } finally {
      off();
    }
  });
});
