// The apps' paths on a real gateway in this process (fake upstream: every stream and datagram
// echoes), with a stub validate-app in place of the backend: each layering the apps use, the
// quiet answers to probes, app sessions, revocation. Clients are written from the protocols'
// documents (app-client.testing.ts); the real apps are in test/e2e/apps*.test.ts.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { encodeMuxFrame } from "../../protocol/mux-cool.ts";
import { encodeAddress } from "../../protocol/socks-address.ts";
import { runtime, RuntimeError } from "../../runtime/index.ts";
import { type Stack, startStack, stubBackend } from "../../test/e2e/stack.ts";
import type { RunningGateway } from "../gateway.ts";
import { until } from "../../client/testing.ts";
import { concatBytes as concat } from "../../shadowsocks/test-vectors.ts";
import { type HttpTarget, startHttpTarget } from "../../shadowsocks/ss-server.testing.ts";
import { type EarlyDataClient, MuxReader, openAppWs, openWithEarlyData, SsClient, udpCodec } from "./app-client.testing.ts";
import type { AppAuthOutcome } from "../auth.ts";
import type { AppConnectCheck } from "./app-auth.ts";
import type { AppSessionAuth } from "./app-session.ts";

const PATH = "/" + "Ab3_-".repeat(4) + "xy";
const METHOD = "chacha20-ietf-poly1305";
const SECRET = "app-secret-for-the-tests-0123456789";
const PROBE_MS = 600;
const TTL_MS = 300;
const ECHO = { host: "echo.invalid", port: 7 };

/** validate-app for one device: PATH, until revoked. */
class StubAppAuth implements AppSessionAuth {
  readonly ttlMs = TTL_MS;
  revoked = false;
  calls: AppConnectCheck[] = [];
  check(path: string, c: AppConnectCheck): Promise<AppAuthOutcome> {
    this.calls.push(c);
    if (path !== PATH) return Promise.resolve({ ok: false, code: "unknown_device", message: "" });
    if (this.revoked) return Promise.resolve({ ok: false, code: "unknown_device", message: "" });
    return Promise.resolve({
      ok: true,
      device: { id: "app-device", name: "d", max_sessions: null, data_quota_bytes: null, expires_at: null },
      assignment: null,
      app: { cipher: METHOD, secret: SECRET },
      usage: { bytes_up: 0, bytes_down: 0 },
    });
  }
}

describe("app paths on the gateway (fake upstream, stub validate-app)", () => {
  let stack: Stack<ReturnType<typeof stubBackend>>;
  let gw: RunningGateway;
  const auth = new StubAppAuth();
  const url = (route: string, path = PATH) => `wss://localhost:${gw.port}${path}${route}`;
  const ca = () => stack.cert.certPem;

  before(async () => {
    stack = await startStack({ backend: stubBackend(), upstream: "fake", logLevel: "error" });
    gw = await stack.gateway(
      { GATEWAY_APP_PROBE_TIMEOUT: `${PROBE_MS}ms`, GATEWAY_APP_SESSION_LINGER: "200ms", GATEWAY_UDP_IDLE_TIMEOUT: "1s" },
      { appAuth: auth },
    );
  });
  after(async () => {
    await stack?.close();
  });

  test("raw Shadowsocks (Outline websocket-stream, v2ray-plugin mux=0): echoed through the upstream under a marked server salt", async () => {
    const ws = await openAppWs(url("/tcp"), ca(), { "user-agent": "Outline (linux; amd64; go1.22)" });
    const ss = new SsClient(METHOD, SECRET, ECHO);
    ws.socket.send(ss.seal(new TextEncoder().encode("hello ")));
    const big = new Uint8Array(randomBytes(200_000));
    ws.socket.send(ss.seal(big));
    let fed = 0;
    await until(() => {
      for (; fed < ws.messages.length; fed++) ss.open(ws.messages[fed]!);
      return ss.bytes.length === 6 + big.length;
    }, "echo");
    assert.equal(ss.error, undefined);
    assert.equal(new TextDecoder().decode(ss.bytes.subarray(0, 6)), "hello ");
    assert.ok(Buffer.from(ss.bytes.subarray(6)).equals(big));
    assert.equal(gw.appSessions, 1);
    const m = await gw.metrics.render();
    // Deno's WebSocket client sends its own User-Agent, so the Outline Client's cannot be played there.
    const flavour = runtime === "deno" ? "v2ray-plugin" : "outline";
    assert.match(m.body, new RegExp(`httvps_gateway_app_connections_total\\{flavour="${flavour}"\\} \\d`));
    assert.match(m.body, new RegExp(`httvps_gateway_app_bytes_total\\{flavour="${flavour}",direction="up"\\} 200006`));
    ws.socket.close(1000, "");
    await until(() => ws.closes.length === 1, "closed");
  });

  test("Mux.Cool over the WebSocket (plugin layering): each sub-session a Shadowsocks stream, the New target ignored, Keep answers with MetaLen 4", async () => {
    const ws = await openAppWs(url("/tcp"), ca());
    const a = new SsClient(METHOD, SECRET, ECHO);
    const b = new SsClient(METHOD, SECRET, ECHO);
    const junkTarget = { host: "127.0.0.1", port: 0 };
    ws.socket.send(encodeMuxFrame({ sessionId: 0, status: "new", network: "tcp", target: junkTarget }));
    ws.socket.send(encodeMuxFrame({ sessionId: 0, status: "keep", data: a.seal(new TextEncoder().encode("first")) }));
    ws.socket.send(
      encodeMuxFrame({
        sessionId: 1,
        status: "new",
        network: "tcp",
        target: junkTarget,
        data: b.seal(new TextEncoder().encode("second")),
      }),
    );
    const r = new MuxReader();
    let fed = 0;
    const opened = [0, 0];
    await until(() => {
      for (; fed < ws.messages.length; fed++) r.push(ws.messages[fed]!);
      for (const [i, c] of [a, b].entries()) {
        const d = r.data(i);
        c.open(d.subarray(opened[i]));
        opened[i] = d.length;
      }
      return a.text === "first" && b.text === "second";
    }, "both echoes");
    for (const f of r.frames) assert.equal(f.status, "keep");
    // Every frame we sent back has MetaLen 4 (mihomo's reader assumes it).
    for (const m of ws.messages) assert.deepEqual([...m.subarray(0, 2)], [0, 4]);
    // A Keep for a session we do not have is answered with End.
    ws.socket.send(encodeMuxFrame({ sessionId: 9, status: "keep", data: new Uint8Array([1]) }));
    await until(() => {
      for (; fed < ws.messages.length; fed++) r.push(ws.messages[fed]!);
      return r.ended(9);
    }, "End for 9");
    ws.socket.close(1000, "");
    await until(() => ws.closes.length === 1, "closed");
    const m = await gw.metrics.render();
    assert.match(m.body, /httvps_gateway_app_connections_total\{flavour="mux"\} \d/);
  });

  test("core layering: a Shadowsocks stream to v1.mux.cool carries Mux.Cool with the real TCP and UDP targets", async () => {
    const ws = await openAppWs(url("/tcp"), ca());
    const ss = new SsClient(METHOD, SECRET, { host: "v1.mux.cool", port: 9527 });
    ws.socket.send(ss.seal(concat([
      encodeMuxFrame({ sessionId: 1, status: "new", network: "tcp", target: ECHO, data: new TextEncoder().encode("tcp!") }),
      encodeMuxFrame({
        sessionId: 2,
        status: "new",
        network: "udp",
        target: { host: "192.0.2.1", port: 53 },
        data: Uint8Array.of(7, 7),
      }),
      encodeMuxFrame({ sessionId: 2, status: "keep", data: Uint8Array.of(8) }),
    ])));
    const r = new MuxReader();
    let fed = 0;
    let plainFed = 0;
    await until(() => {
      for (; fed < ws.messages.length; fed++) ss.open(ws.messages[fed]!);
      for (; plainFed < ss.received.length; plainFed++) r.push(ss.received[plainFed]!);
      return new TextDecoder().decode(r.data(1)) === "tcp!" && r.frames.filter((f) => f.sessionId === 2).length === 2;
    }, "tcp and udp echoes");
    // One datagram per frame, each its own Keep.
    assert.deepEqual(r.frames.filter((f) => f.sessionId === 2).map((f) => [...f.data!]), [[7, 7], [8]]);
    // End from the app: the echo finishes and the server ends the session too.
    ws.socket.send(ss.seal(encodeMuxFrame({ sessionId: 1, status: "end" })));
    await until(() => {
      for (; fed < ws.messages.length; fed++) ss.open(ws.messages[fed]!);
      for (; plainFed < ss.received.length; plainFed++) r.push(ss.received[plainFed]!);
      return r.ended(1);
    }, "our End");
    ws.socket.close(1000, "");
    const m = await gw.metrics.render();
    assert.match(m.body, /httvps_gateway_app_connections_total\{flavour="v2ray-core-mux"\} \d/);
  });

  test("a wrong key on a valid path: nothing comes back, the close comes after the probe timeout", async () => {
    const t0 = performance.now();
    const ws = await openAppWs(url("/tcp"), ca());
    const wrong = new SsClient(METHOD, "not-the-secret", ECHO);
    ws.socket.send(wrong.seal(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")));
    for (let i = 0; i < 5; i++) ws.socket.send(new Uint8Array(randomBytes(1000)));
    await until(() => ws.closes.length === 1, "close", PROBE_MS * 5);
    const ms = ws.closedAt! - t0;
    assert.equal(ws.messages.length, 0, "not a byte back");
    assert.ok(ms >= PROBE_MS - 50, `closed after ${ms.toFixed(0)} ms, probe timeout ${PROBE_MS} ms`);
    assert.equal(ws.closes[0]![0], 1000);
  });

  test("a replayed first message, and our own server stream sent back, are absorbed the same way", async () => {
    const good = await openAppWs(url("/tcp"), ca());
    const ss = new SsClient(METHOD, SECRET, ECHO);
    const first = ss.seal(new TextEncoder().encode("once"));
    good.socket.send(first);
    await until(() => good.messages.length > 0, "echo");
    const serverBytes = concat(good.messages);
    for (const replay of [first, serverBytes]) {
      const t0 = performance.now();
      const ws = await openAppWs(url("/tcp"), ca());
      ws.socket.send(replay);
      await until(() => ws.closes.length === 1, "close", PROBE_MS * 5);
      assert.equal(ws.messages.length, 0);
      assert.ok(ws.closedAt! - t0 >= PROBE_MS - 50);
    }
    good.socket.close(1000, "");
    const m = await gw.metrics.render();
    assert.match(m.body, /httvps_gateway_app_probes_total\{code="ss_replay"\} [1-9]/);
    assert.match(m.body, /httvps_gateway_app_probes_total\{code="ss_replay_server"\} [1-9]/);
  });

  test("an unknown path, and the config routes, are the decoy: no 101", async () => {
    for (
      const u of [url("/tcp", "/" + "z".repeat(22)), url("/udp", "/" + "z".repeat(22)), url("/outline"), url("/tcp", "/short")]
    ) {
      await assert.rejects(openAppWs(u, ca()), (e: unknown) => e instanceof RuntimeError && e.code === "ws_connect_failed", u);
    }
  });

  test("UDP (Outline websocket-packet): one packet per message both ways, the reply names the target; a first bad packet is absorbed", async () => {
    const codec = udpCodec(METHOD, SECRET);
    const ws = await openAppWs(url("/udp"), ca());
    const target = { host: "192.0.2.9", port: 5353 };
    ws.socket.send(codec.encode(target, Uint8Array.of(1, 2, 3)));
    ws.socket.send(new Uint8Array(randomBytes(60))); // later garbage: dropped, the association goes on
    ws.socket.send(codec.encode(target, Uint8Array.of(4)));
    await until(() => ws.messages.length === 2, "two replies");
    const replies = ws.messages.map((m) => codec.decode(m));
    for (const r of replies) {
      assert.ok(!(r instanceof Error));
      assert.deepEqual(r.target, target);
    }
    assert.deepEqual(replies.map((r) => [...(r as { payload: Uint8Array }).payload]), [[1, 2, 3], [4]]);
    // Idle for GATEWAY_UDP_IDLE_TIMEOUT: Close 1000.
    await until(() => ws.closes.length === 1, "idle close", 5000);
    assert.equal(ws.closes[0]![0], 1000);

    const t0 = performance.now();
    const bad = await openAppWs(url("/udp"), ca());
    bad.socket.send(udpCodec(METHOD, "wrong").encode(target, Uint8Array.of(1)));
    await until(() => bad.closes.length === 1, "probe close", PROBE_MS * 5);
    assert.equal(bad.messages.length, 0);
    assert.ok(bad.closedAt! - t0 >= PROBE_MS - 50);
  });

  test("one app session per address: connections join it, it lingers after the last, and revocation closes live connections within the TTL", async () => {
    await until(() => gw.appSessions === 0, "earlier sessions lingered out", 5000);
    const before = auth.calls.filter((c) => c.new_session_id).length;
    const a = await openAppWs(url("/tcp"), ca());
    const b = await openAppWs(url("/tcp"), ca());
    assert.equal(gw.appSessions, 1);
    assert.equal(auth.calls.filter((c) => c.new_session_id).length, before + 1, "one connect for the session");
    const ss = new SsClient(METHOD, SECRET, ECHO);
    a.socket.send(ss.seal(encodeAddress(ECHO)));
    await until(() => a.messages.length > 0, "echo");
    auth.revoked = true;
    const t0 = performance.now();
    await until(() => a.closes.length === 1 && b.closes.length === 1, "closed", TTL_MS * 4);
    console.log(`revoked: live app connections closed after ${(performance.now() - t0).toFixed(0)} ms (TTL ${TTL_MS} ms)`);
    assert.equal(a.closes[0]![0], 1008);
    assert.equal(gw.appSessions, 0);
    await assert.rejects(openAppWs(url("/tcp"), ca()), (e: unknown) => e instanceof RuntimeError);
    auth.revoked = false;
  });
});

describe(`early data in Sec-WebSocket-Protocol, as Xray and mihomo send it, fake and direct upstreams on ${runtime}`, () => {
  let stack: Stack<ReturnType<typeof stubBackend>>;
  let target: HttpTarget;
  const gateways: Record<"fake" | "direct", RunningGateway> = {} as never;
  const POOL = new Uint8Array(randomBytes(100_000));
  const BODY = 5000;

  before(async () => {
    [stack, target] = await Promise.all([
      startStack({ backend: stubBackend(), logLevel: "error", env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" } }),
      startHttpTarget(POOL),
    ]);
    for (const mode of ["fake", "direct"] as const) {
      gateways[mode] = await stack.gateway({ GATEWAY_UPSTREAM_MODE: mode }, { appAuth: new StubAppAuth() });
    }
  });
  after(async () => {
    await target?.close();
    await stack?.close();
  });

  /** An HTTP request for BODY bytes of the target, its first write `pad` bytes longer than the bare request. */
  const request = (pad: number) =>
    new TextEncoder().encode(
      `GET /bytes/${BODY} HTTP/1.1\r\nHost: target\r\nX-Pad: ${"p".repeat(pad)}\r\nConnection: close\r\n\r\n`,
    );
  /** The fake upstream echoes the request; the direct one reaches the target, whose answer carries its bytes. */
  const answered = (mode: "fake" | "direct", req: Uint8Array, got: Uint8Array): boolean => {
    if (mode === "fake") return Buffer.from(got).equals(req);
    const text = Buffer.from(got).toString("latin1");
    const end = text.indexOf("\r\n\r\n");
    return end > 0 && text.startsWith("HTTP/1.1 200") && Buffer.from(got.subarray(end + 4)).equals(POOL.subarray(0, BODY));
  };

  const cases: { client: EarlyDataClient; ed: number; pad: number; mux?: boolean; what: string }[] = [
    { client: "xray", ed: 2048, pad: 100, what: "the whole first write in the header, no message" },
    { client: "xray", ed: 2048, pad: 3000, what: "a first write over ed: no header, all of it as the first message" },
    { client: "mihomo", ed: 2048, pad: 3000, what: "the first 2048 bytes in the header, the rest as a message" },
    { client: "mihomo", ed: 20, pad: 100, what: "ed=20: part of the salt in the header, the rest as a message" },
    {
      client: "mihomo",
      ed: 2048,
      pad: 100,
      mux: true,
      what: "Mux.Cool (mihomo's default plugin mux): the New frame in the header",
    },
  ];
  for (const mode of ["fake", "direct"] as const) {
    for (const c of cases) {
      test(`${mode}: ${c.client} ?ed=${c.ed}, ${c.what}; the 101 echoes the header`, async () => {
        const gw = gateways[mode];
        const ss = new SsClient(METHOD, SECRET, mode === "fake" ? ECHO : { host: "127.0.0.1", port: target.port });
        const req = request(c.pad);
        const sealed = ss.seal(req);
        const first = c.mux
          ? encodeMuxFrame({ sessionId: 0, status: "new", network: "tcp", target: ECHO, data: sealed })
          : sealed;
        const ws = await openWithEarlyData(
          `wss://localhost:${gw.port}${PATH}/tcp?ed=${c.ed}`,
          stack.cert.certPem,
          c.client,
          c.ed,
          first,
        );
        const expectEarly = c.client === "xray" ? (first.length <= c.ed ? first.length : 0) : Math.min(c.ed, first.length);
        assert.equal(ws.early.length, expectEarly);
        assert.equal(ws.rest.length, first.length - expectEarly);
        assert.equal(ws.socket.protocol, ws.header ?? "", "the 101 names the header value sent (none when none was sent)");
        const r = new MuxReader();
        let fed = 0;
        let opened = 0;
        await until(() => {
          for (; fed < ws.messages.length; fed++) {
            if (!c.mux) ss.open(ws.messages[fed]!);
            else r.push(ws.messages[fed]!);
          }
          if (c.mux) {
            const d = r.data(0);
            ss.open(d.subarray(opened));
            opened = d.length;
          }
          return answered(mode, req, ss.bytes);
        }, "the reply");
        assert.equal(ss.error, undefined);
        ws.socket.close(1000, "");
        await until(() => ws.closes.length === 1, "closed");
      });
    }
  }
});
