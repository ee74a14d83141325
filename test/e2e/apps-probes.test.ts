// The apps' paths against the real backend, on the runtime under test: the Outline flavour's UDP
// (a DNS query through `/<P>/udp` to a local responder, with a client written from outline-sdk's
// documented websocket-packet framing, since no Outline Client runs here), a revoked device
// (new connections fail, a live download through ss-local + ss-v2ray-plugin closes within the
// TTL), and what a prober sees on a valid path: silence until the probe timeout, then the close,
// timed, for a wrong key and for a replayed first message.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { until } from "../../client/testing.ts";
import { concatBytes as concat } from "../../shadowsocks/test-vectors.ts";
import { openAppWs, SsClient, udpCodec } from "../../gateway/apps/app-client.testing.ts";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { runtime, RuntimeError } from "../../runtime/index.ts";
import { type HttpTarget, startHttpTarget } from "../../shadowsocks/ss-server.testing.ts";
import { curl } from "../curl.ts";
import { dnsQuery, type DnsResponder, parseDnsAnswer, startDnsResponder } from "../dns.testing.ts";
import { fetchThrough, POOL } from "./app-fetch.ts";
import { type Stack, startStack } from "./stack.ts";

const PROBE_MS = 1000;
const TTL_MS = 1000;

describe(`apps: UDP, revocation and probes against the real backend on ${runtime}`, () => {
  let stack: Stack<"app">;
  let gw: RunningGateway;
  let dns: DnsResponder;
  let target: HttpTarget;
  const url = (path: string, route: string) => `wss://localhost:${gw.port}${path}${route}`;

  before(async () => {
    [stack, dns, target] = await Promise.all([
      startStack({
        upstream: "direct",
        logLevel: "error",
        env: {
          GATEWAY_DIRECT_ALLOW: "127.0.0.0/8",
          GATEWAY_APP_PROBE_TIMEOUT: `${PROBE_MS}ms`,
          GATEWAY_AUTH_CACHE_TTL: `${TTL_MS}ms`,
        },
      }),
      startDnsResponder("192.0.2.53"),
      startHttpTarget(POOL),
    ]);
    gw = await stack.gateway();
  });
  after(async () => {
    await dns?.close();
    await target?.close();
    await stack?.close();
  });

  test("Outline websocket-packet: a DNS query through /<P>/udp reaches the responder and the answer comes back", async () => {
    const d = await stack.backend.device({ name: "udp-e2e" });
    const app = d.app;
    const codec = udpCodec(app.cipher, app.secret);
    const ws = await openAppWs(url(app.path, "/udp"), stack.cert.certPem, { "user-agent": "Outline (linux; amd64; go1.22)" });
    const responder = { host: "127.0.0.1", port: dns.port };
    ws.socket.send(codec.encode(responder, dnsQuery(0x1234, "example.org")));
    await until(() => ws.messages.length === 1, "the answer");
    const reply = codec.decode(ws.messages[0]!);
    assert.ok(!(reply instanceof Error), "the reply decrypts under the device key");
    assert.deepEqual(reply.target, responder, "the reply names its source");
    const answer = parseDnsAnswer(reply.payload);
    assert.equal(answer?.id, 0x1234);
    assert.deepEqual(answer?.addresses, ["192.0.2.53"]);
    assert.deepEqual(dns.answered.at(-1), "example.org");
    ws.socket.close(1000, "");
  });

  test("a wrong key on a valid path: not a byte back, the close after the probe timeout; a replayed first message the same", async () => {
    const d = await stack.backend.device({ name: "probe-e2e" });
    const app = d.app;
    const hello = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const good = new SsClient(app.cipher, app.secret, { host: "127.0.0.1", port: target.port });
    const first = good.seal(hello);
    const real = await openAppWs(url(app.path, "/tcp"), stack.cert.certPem);
    real.socket.send(first);
    await until(() => real.messages.length > 0, "a reply to the real client");
    const attempts: Array<[string, Uint8Array[]]> = [
      ["wrong key", [new SsClient(app.cipher, "not-the-key", { host: "127.0.0.1", port: target.port }).seal(hello)]],
      ["garbage", [new Uint8Array(randomBytes(50)), new Uint8Array(randomBytes(500))]],
      ["replayed first message", [first]],
    ];
    for (const [what, msgs] of attempts) {
      const t0 = performance.now();
      const ws = await openAppWs(url(app.path, "/tcp"), stack.cert.certPem);
      for (const m of msgs) ws.socket.send(m);
      await until(() => ws.closes.length === 1, `${what}: close`, PROBE_MS * 5);
      const ms = ws.closedAt! - t0;
      console.log(
        `[${runtime}] ${what}: closed after ${ms.toFixed(0)} ms (probe timeout ${PROBE_MS} ms), ${ws.messages.length} messages`,
      );
      assert.equal(ws.messages.length, 0, `${what}: silence`);
      assert.ok(ms >= PROBE_MS - 50 && ms < PROBE_MS + 1500, `${what}: closed after ${ms.toFixed(0)} ms`);
    }
    real.socket.close(1000, "");
    // An unknown path is the decoy, not a silent WebSocket.
    await assert.rejects(
      openAppWs(url("/" + "q".repeat(22), "/tcp"), stack.cert.certPem),
      (e: unknown) => e instanceof RuntimeError,
    );
    assert.equal(concat(real.messages).length > 0, true);
  });

  test("revoked: a live download through ss-local + ss-v2ray-plugin closes within the TTL, and new connections fail", async () => {
    const d = await stack.backend.device({ name: "revoke-e2e" });
    const peer = await stack.ssLocal(gw.port, d.app, 0);
    await fetchThrough(peer, target, 1000, "before the revocation");
    // 64 MiB at 2 MB/s: live for half a minute unless something ends it.
    const live = curl([
      "--limit-rate",
      "2M",
      "--socks5-hostname",
      `127.0.0.1:${peer.socks}`,
      `http://127.0.0.1:${target.port}/bytes/${64 * 1024 * 1024}`,
    ], 60);
    await new Promise((r) => setTimeout(r, 500));
    const open = gw.appSessions; // earlier tests' sessions may still linger
    assert.ok(gw.appConnections >= 1);
    const t0 = performance.now();
    await stack.backend.admin("DELETE", `/api/v1/devices/${d.device_id}`);
    // The gateway closes the connection; what the chain of socket buffers behind it still holds
    // reaches curl at its 2 MB/s afterwards, so the close is timed at the gateway.
    await until(() => gw.appSessions === open - 1 && gw.appConnections === 0, "the app session closed", 4 * TTL_MS);
    const ms = performance.now() - t0;
    const r = await live;
    console.log(`[${runtime}] revoked: the gateway closed the live download after ${ms.toFixed(0)} ms (TTL ${TTL_MS} ms)`);
    assert.notEqual(r.code, 0, "the download did not complete");
    assert.ok(r.size < 64 * 1024 * 1024);
    assert.ok(ms < 2 * TTL_MS + 500, `closed after ${ms.toFixed(0)} ms`);
    const after = await curl(["--socks5-hostname", `127.0.0.1:${peer.socks}`, `http://127.0.0.1:${target.port}/bytes/10`], 10);
    assert.notEqual(after.code, 0, "a new connection fails");
    assert.equal(after.size, 0);
    await peer.stop();
  });
});
