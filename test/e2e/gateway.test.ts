// The gateway end to end on the runtime under test: the real backend app (PGlite) served over
// HTTP on loopback, the real gateway (TLS, WebSocket, decoy, metrics) from startGateway(),
// and a client speaking the protocol over the runtime's own wsConnect.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type net from "node:net";
import { setImmediate } from "node:timers";
import { after, before, describe, test } from "node:test";
import type { DevCertificate } from "../../gateway/certs.ts";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { runtime, WS_HIGH_WATER } from "../../runtime/index.ts";
import { type Stack, startStack } from "./stack.ts";
import { TunnelClient } from "./tunnel-client.ts";
import { relay } from "../../runtime/serve.testing.ts";
import type { Dialer, Duplex, DuplexHandlers } from "../../transport/stream.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** One request with a body to the gateway's public port; its status. */
function fetchVia(port: number, path: string, method: string, body: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port, path, method, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** An upstream that pushes `total` bytes as fast as the gateway lets it. */
function firehose(total: number) {
  const stats = { pushed: 0 };
  const dialer: Dialer = {
    async dial() {
      let h: DuplexHandlers | null = null;
      let paused = false;
      let closed = false;
      let scheduled = false;
      const chunk = new Uint8Array(64 * 1024).fill(0x62);
      const pump = () => {
        scheduled = false;
        for (let i = 0; i < 8 && h && !paused && !closed && stats.pushed < total; i++) {
          stats.pushed += chunk.length;
          h.data(chunk.slice());
        }
        if (!paused && !closed && stats.pushed < total) schedule();
      };
      const schedule = () => {
        if (scheduled || closed) return;
        scheduled = true;
        setImmediate(pump);
      };
      const d: Duplex = {
        start(handlers) {
          h = handlers;
          schedule();
        },
        write: () => true,
        closeWrite() {},
        close(err) {
          if (!closed) {
            closed = true;
            h?.close(err);
          }
        },
        pause() {
          paused = true;
        },
        resume() {
          paused = false;
          schedule();
        },
      };
      return d;
    },
  };
  return { dialer, stats };
}

// ---------------------------------------------------------------------------------------------

describe(`gateway end to end on ${runtime}`, () => {
  let stack: Stack<"app">;
  let cert: DevCertificate;
  before(async () => {
    stack = await startStack({ env: { GATEWAY_USAGE_FLUSH_INTERVAL: "200ms" } });
    cert = stack.cert;
  });
  after(() => stack?.close());

  const admin = (method: string, path: string, body?: unknown) => stack.backend.admin(method, path, body);
  const newDevice = (fields: object = {}) => stack.backend.device(fields);
  const withGateway = (extra: Record<string, string>, fn: (gw: RunningGateway) => Promise<void>, deps = {}) =>
    stack.withGateway(extra, fn, deps);

  test("plain HTTPS gets the decoy site; metrics and health only on the operator address", async () => {
    // GATEWAY_METRICS alone would listen on 127.0.0.1:9100 (config.test.ts checks that default);
    // a free port here, so parallel runs do not collide.
    await withGateway({ GATEWAY_METRICS: "1", GATEWAY_METRICS_ADDR: "127.0.0.1:0" }, async (gw) => {
      const home = await stack.get(gw.port, "/");
      assert.equal(home.status, 200);
      assert.match(String(home.headers["content-type"]), /text\/html/);
      const missing = await stack.get(gw.port, "/no-such-page");
      assert.equal(missing.status, 404);
      const ws = await stack.get(gw.port, "/ws");
      assert.equal(ws.status, 404, "the WebSocket path without an upgrade is just a missing page");
      for (const path of ["/metrics", "/healthz", "/readyz"]) {
        const r = await stack.get(gw.port, path);
        assert.deepEqual([r.status, r.text], [404, missing.text], `${path} on the public port is the decoy's missing page`);
      }
      assert.ok(gw.metricsPort && gw.metricsPort !== gw.port);
      const operator = (path: string) => fetch(`http://127.0.0.1:${gw.metricsPort}${path}`);
      assert.equal(await (await operator("/healthz")).text(), "ok\n");
      assert.equal((await operator("/readyz")).status, 200);
      assert.equal((await operator("/nothing")).status, 404);
      const metricsBody = async () => {
        const r = await operator("/metrics");
        assert.equal(r.status, 200);
        return await r.text();
      };
      const m = await metricsBody();
      for (
        const name of [
          "sessions_active",
          "sessions_total",
          "streams_active",
          "bytes_total",
          "handshake_seconds",
          "upstream_dial_seconds",
          "frames_rejected_total",
        ]
      ) {
        assert.match(m, new RegExp(`httvps_gateway_${name}`));
      }
      // The counters move with traffic: one session echoing 100 KB, then one bad frame.
      const counter = (body: string, re: RegExp) => Number(re.exec(body)?.[1] ?? 0);
      const upBefore = counter(m, /httvps_gateway_bytes_total\{direction="up"\} (\d+)/);
      const dev = await newDevice();
      const c = await TunnelClient.connect(gw.port, cert.certPem);
      const r = await c.hello(dev.device_id, dev.token, ["flow", "binary", "half_close"]);
      assert.ok(r.type === "auth_result" && r.ok);
      const payload = new Uint8Array(randomBytes(100_000));
      assert.equal((await c.echo("m1", payload)).sha, sha(payload));
      const during = await metricsBody();
      assert.equal(counter(during, /httvps_gateway_sessions_active (\d+)/), 1);
      assert.ok(counter(during, /httvps_gateway_bytes_total\{direction="up"\} (\d+)/) >= upBefore + 100_000, "bytes up counted");
      assert.ok(counter(during, /httvps_gateway_bytes_total\{direction="down"\} (\d+)/) >= 100_000, "bytes down counted");
      await c.shut();
    });
    await withGateway({}, async (gw) => {
      assert.equal(gw.metricsPort, undefined, "no operator listener by default");
      assert.equal((await stack.get(gw.port, "/metrics")).status, 404);
    });
  });

  test("GATEWAY_DECOY_UPSTREAM: the public port is that site (the tunnel's path included), the tunnel still works", async () => {
    const seen: Array<{ method: string; url: string; host?: string; bytes: number; forwarded: boolean }> = [];
    const site = http.createServer((req, res) => {
      let bytes = 0;
      req.on("data", (c: Buffer) => (bytes += c.length));
      req.on("end", () => {
        seen.push({
          method: req.method!,
          url: req.url!,
          host: req.headers.host,
          bytes,
          forwarded: "x-forwarded-for" in req.headers,
        });
        res.writeHead(req.url === "/" ? 200 : 404, { "Content-Type": "text/html", Server: "the-real-site" });
        res.end(req.url === "/" ? "<h1>welcome to the real site</h1>" : "<h1>nothing here</h1>");
      });
    });
    await new Promise<void>((r) => site.listen(0, "127.0.0.1", r));
    const sitePort = (site.address() as net.AddressInfo).port;
    try {
      await withGateway({ GATEWAY_DECOY_UPSTREAM: `http://127.0.0.1:${sitePort}` }, async (gw) => {
        const home = await stack.get(gw.port, "/");
        assert.deepEqual([home.status, home.text], [200, "<h1>welcome to the real site</h1>"]);
        const ws = await stack.get(gw.port, "/ws");
        assert.deepEqual(
          [ws.status, ws.text],
          [404, "<h1>nothing here</h1>"],
          "a plain GET to the tunnel's path is the site's too",
        );
        const posted = await fetchVia(gw.port, "/form", "POST", new Uint8Array(300_000).fill(7));
        assert.equal(posted, 404);
        assert.deepEqual(seen.map((x) => [x.method, x.url, x.host, x.bytes, x.forwarded]), [
          ["GET", "/", `127.0.0.1:${sitePort}`, 0, false],
          ["GET", "/ws", `127.0.0.1:${sitePort}`, 0, false],
          ["POST", "/form", `127.0.0.1:${sitePort}`, 300_000, false],
        ]);
        const dev = await newDevice();
        const c = await TunnelClient.session(gw.port, cert.certPem, dev);
        const payload = new Uint8Array(randomBytes(50_000));
        assert.equal((await c.echo("u1", payload)).sha, sha(payload));
        await c.shut();
      });
    } finally {
      site.closeAllConnections();
      await new Promise((r) => site.close(r));
    }
  });

  test("a draining gateway's /readyz says so", async () => {
    const gw = await stack.gateway({ GATEWAY_METRICS_ADDR: "127.0.0.1:0", GATEWAY_DRAIN_TIMEOUT: "1s" });
    const dev = await newDevice();
    const c = await TunnelClient.connect(gw.port, cert.certPem);
    const r = await c.hello(dev.device_id, dev.token, []);
    assert.ok(r.type === "auth_result" && r.ok);
    c.open(c.newId()); // an open stream keeps the drain waiting (up to its timeout) while /readyz is asked
    const draining = gw.drain();
    const readyz = await fetch(`http://127.0.0.1:${gw.metricsPort}/readyz`);
    assert.deepEqual([readyz.status, await readyz.text()], [503, "draining\n"]);
    await c.shut();
    await draining;
  });

  test("100 streams on one session, each echoing 1 MiB (binary, flow, half_close), sha256-equal; usage reaches the backend", async () => {
    const dev = await newDevice();
    await withGateway({}, async (gw) => {
      const c = await TunnelClient.connect(gw.port, cert.certPem);
      const r = await c.hello(dev.device_id, dev.token, ["binary", "flow", "half_close"]);
      assert.ok(r.type === "auth_result" && r.ok, JSON.stringify(r));
      const payloads = Array.from({ length: 100 }, () => new Uint8Array(randomBytes(1024 * 1024)));
      const t0 = performance.now();
      const results = await Promise.all(payloads.map((p, i) => c.echo(`s${i}`, p)));
      const ms = performance.now() - t0;
      console.log(
        `[${runtime}] 100 streams x 1 MiB echo over TLS WebSocket (binary+flow): ${ms.toFixed(0)} ms (${
          ((200 * 8) / (ms / 1000)).toFixed(0)
        } Mbit/s both ways)`,
      );
      results.forEach((res, i) => {
        assert.equal(res.received, payloads[i]!.length, `s${i} length`);
        assert.equal(res.sha, sha(payloads[i]!), `s${i} sha256`);
        assert.ok(res.ended, `s${i} got stream_end`);
        assert.equal(res.code, undefined, `s${i} closed cleanly`);
      });
      assert.equal(c.frames.filter((f) => f.type === "error").length, 0);
      await c.shut();
      await c.until(() => gw.sessions === 0, "session gone on the gateway");
    });
    // The close (and its byte counts) is reported promptly and the backend adds it up.
    const total = 100 * 1024 * 1024;
    // deno-lint-ignore no-explicit-any -- an API answer read field by field
    let usage: any;
    for (let i = 0; i < 100; i++) {
      usage = await admin("GET", `/api/v1/devices/${dev.device_id}/usage`);
      if (usage.bytes_up >= total) break;
      await sleep(50);
    }
    assert.equal(usage.bytes_up, total);
    assert.equal(usage.bytes_down, total);
    assert.equal(usage.sessions_total, 1);
  });

  test("text frames without flow (a wscat-like client): 10 streams x 256 KiB in order", async () => {
    const dev = await newDevice();
    await withGateway({}, async (gw) => {
      const c = await TunnelClient.connect(gw.port, cert.certPem);
      const r = await c.hello(dev.device_id, dev.token, ["half_close"]);
      assert.ok(r.type === "auth_result" && r.ok);
      const payloads = Array.from({ length: 10 }, () => new Uint8Array(randomBytes(256 * 1024)));
      const t0 = performance.now();
      const results = await Promise.all(payloads.map((p, i) => c.echo(`t${i}`, p)));
      console.log(`[${runtime}] 10 streams x 256 KiB echo, JSON text frames, no flow: ${(performance.now() - t0).toFixed(0)} ms`);
      results.forEach((res, i) => assert.equal(res.sha, sha(payloads[i]!)));
      await c.shut();
    });
  });

  test("a bad token over the real stack: auth_result auth_failed, then close 1008 auth_failed; the metric keeps bad_token", async () => {
    const dev = await newDevice();
    await withGateway({}, async (gw) => {
      const c = await TunnelClient.connect(gw.port, cert.certPem);
      const r = await c.hello(dev.device_id, dev.token + "x");
      assert.ok(r.type === "auth_result" && !r.ok && r.code === "auth_failed", JSON.stringify(r));
      await c.until(() => c.closed !== null, "close");
      assert.deepEqual(c.closed, { code: 1008, reason: "auth_failed" });
      assert.match(await gw.metrics.registry.metrics(), /httvps_gateway_sessions_total\{outcome="bad_token"\} 1/);
    });
  });

  test("max_sessions holds even when hellos race: one of three simultaneous sessions is admitted", async () => {
    const dev = await newDevice({ max_sessions: 1 });
    await withGateway({}, async (gw) => {
      const clients = await Promise.all([0, 1, 2].map(() => TunnelClient.connect(gw.port, cert.certPem)));
      const results = await Promise.all(clients.map((c) => c.hello(dev.device_id, dev.token)));
      const admitted = results.filter((r) => r.type === "auth_result" && r.ok);
      assert.equal(admitted.length, 1, JSON.stringify(results));
      for (const r of results) if (r.type === "auth_result" && !r.ok) assert.equal(r.code, "session_limit");
      for (const c of clients) await c.shut().catch(() => {});
    });
  });

  test("a revoked device's live session is closed once its validation expires", async () => {
    const dev = await newDevice();
    await withGateway({ GATEWAY_AUTH_CACHE_TTL: "300ms" }, async (gw) => {
      const c = await TunnelClient.connect(gw.port, cert.certPem);
      const r = await c.hello(dev.device_id, dev.token);
      assert.ok(r.type === "auth_result" && r.ok);
      await admin("DELETE", `/api/v1/devices/${dev.device_id}`);
      await c.until(() => c.closed !== null, "close after revocation", 5000);
      assert.equal(c.closed!.code, 1008);
      assert.ok(c.frames.some((f) => f.type === "error" && f.code === "revoked"));
    });
  });

  test("graceful drain: goaway, open streams finish, then the socket closes and drain() resolves", async () => {
    const dev = await newDevice();
    await withGateway({ GATEWAY_DRAIN_TIMEOUT: "10s" }, async (gw) => {
      const c = await TunnelClient.connect(gw.port, cert.certPem);
      await c.hello(dev.device_id, dev.token, ["half_close"]);
      const rx = c.open("s1");
      await sleep(50);
      const drained = gw.drain();
      await c.until(() => c.frames.some((f) => f.type === "goaway"), "goaway");
      const g = c.frames.find((f) => f.type === "goaway")!;
      assert.ok(g.type === "goaway" && g.code === "shutdown" && g.drain_ms === 10_000);
      c.send({ type: "stream_data", stream_id: "s1", data: new TextEncoder().encode("last words") });
      await c.until(() => rx.received === 10, "echo during drain");
      assert.equal(c.closed, null);
      c.send({ type: "stream_end", stream_id: "s1" });
      await c.until(() => c.closed !== null, "close after the last stream");
      assert.equal(c.closed!.code, 1001);
      await drained;
      assert.equal(gw.sessions, 0);
    });
  });

  test("a client that stops reading: the upstream is held back, gateway memory stays flat", async () => {
    const dev = await newDevice();
    const hose = firehose(200 * 1024 * 1024);
    await withGateway(
      {},
      async (gw) => {
        const rel = await relay(gw.port);
        try {
          const c = await TunnelClient.connect(rel.port, cert.certPem);
          const r = await c.hello(dev.device_id, dev.token);
          assert.ok(r.type === "auth_result" && r.ok);
          rel.stop();
          const rss0 = process.memoryUsage().rss;
          c.open("s1");
          // Let the upstream push until everything between it and the stalled reader is full.
          let last = -1;
          for (let i = 0; i < 60 && hose.stats.pushed !== last; i++) {
            last = hose.stats.pushed;
            await sleep(100);
          }
          const pushed = hose.stats.pushed;
          const rss1 = process.memoryUsage().rss;
          console.log(
            `[${runtime}] stalled reader: upstream could push ${(pushed / 1048576).toFixed(1)} MiB of 200 MiB ` +
              `(kernel socket buffers + relay + WS high-water ${WS_HIGH_WATER / 1048576} MiB); rss delta ${
                ((rss1 - rss0) / 1048576).toFixed(1)
              } MiB`,
          );
          assert.equal(hose.stats.pushed, last, "the upstream stopped");
          assert.ok(pushed < 64 * 1024 * 1024, `the upstream pushed ${pushed} bytes into a stalled session`);
          rel.go();
          await c.until(() => hose.stats.pushed > pushed + 8 * 1024 * 1024, "traffic resumes when the client reads again");
          await c.shut();
        } finally {
          await rel.close();
        }
      },
      { dialer: hose.dialer },
    );
  });
});
