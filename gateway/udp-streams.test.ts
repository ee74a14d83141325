// UDP streams in a gateway session (docs/03 §11) over an in-memory socket: the fake echo, the
// direct guard with real node:dgram sockets, oversize datagrams, the idle timeout, and floods
// that must end in drop counters rather than memory.
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { afterEach, describe, test } from "node:test";
import { memoryLogger } from "../logging/logger.ts";
import * as codec from "../protocol/codec.ts";
import type { Frame, StreamOpen } from "../protocol/frames.ts";
import type { PacketDialer } from "../transport/packet.ts";
import { udpDialer } from "../transport/udp.ts";
import { DeviceAuth } from "./auth.ts";
import { createGatewayMetrics } from "./metrics.ts";
import { Session, type SessionConfig, type SessionSocket } from "./session.ts";
import type { Upstream } from "./upstream/upstream.ts";
import { parseCidrList } from "./upstream/address-guard.ts";
import { directPacketDialer } from "./upstream/direct.ts";
import { fakeDialer } from "./upstream/fake.ts";
import { fakePacketDialer } from "./upstream/fake-udp.ts";
import { PENDING_BYTES, PENDING_DATAGRAMS } from "./udp-streams.ts";

/** Decodes what the gateway sends; while "not reading", counts it as buffered instead. */
class Wire implements SessionSocket {
  readonly remoteAddress = "127.0.0.1";
  handler!: Session;
  frames: Frame[] = [];
  bufferedAmount = 0;
  reading = true;
  closed = false;
  send(msg: string | Uint8Array): void {
    if (!this.reading) {
      this.bufferedAmount += typeof msg === "string" ? msg.length : msg.byteLength;
      return;
    }
    const r = typeof msg === "string" ? codec.decodeText(msg) : codec.decodeBinary(msg);
    assert.ok(r.ok, "the gateway sent an undecodable frame");
    this.frames.push(r.frame);
  }
  close(code?: number, reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    setTimeout(() => this.handler.close(code ?? 1005, reason ?? ""), 0);
  }
}

const config: SessionConfig = {
  helloTimeoutMs: 2000,
  pingIntervalMs: 60_000,
  idleTimeoutMs: 60_000,
  dialTimeoutMs: 2000,
  maxStreams: 8,
  window: codec.DEFAULT_WINDOW,
  socketHighWater: 64 * 1024,
  maxConsecutiveErrors: 100,
};

const sessions = new Set<Session>();
afterEach(() => {
  for (const s of sessions) s.terminate();
  sessions.clear();
});

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function open(upstream: Upstream, opts: { features?: string[]; config?: Partial<SessionConfig> } = {}) {
  const wire = new Wire();
  const auth = new DeviceAuth({
    ttlMs: 60_000,
    validate: async (req) => ({
      ok: true,
      device: { id: req.device_id, name: "d", max_sessions: null, data_quota_bytes: null, expires_at: null },
      assignment: null,
    }),
  });
  const metrics = createGatewayMetrics();
  const session = new Session({
    socket: wire,
    auth,
    upstreamFor: () => upstream,
    config: { ...config, ...opts.config },
    logger: memoryLogger("error"),
    metrics,
  });
  wire.handler = session;
  sessions.add(session);
  const send = (f: Frame) => session.message(codec.encodeText(f));
  send({
    type: "hello",
    device_id: "dev",
    token: "tok",
    client_version: "test",
    features: (opts.features ?? ["binary", "udp"]) as never,
  });
  await until(() => wire.frames.some((f) => f.type === "auth_result"), "auth_result");
  const auth_result = wire.frames.find((f) => f.type === "auth_result")!;
  const datagrams = (id: string) =>
    wire.frames.filter((f) => f.type === "stream_data" && f.stream_id === id).map((f) =>
      Buffer.from((f as { data: Uint8Array }).data).toString()
    );
  const find = (pred: (f: Frame) => boolean) => wire.frames.find(pred);
  const sendDatagram = (id: string, d: string | Uint8Array) =>
    session.message(codec.encodeStreamDataBinary(id, typeof d === "string" ? new TextEncoder().encode(d) : d));
  const droppedMetric = async () =>
    Number(/^httvps_gateway_udp_datagrams_dropped_total (\d+)$/m.exec((await metrics.render()).body)?.[1] ?? "0");
  return { wire, session, send, auth_result, datagrams, find, sendDatagram, droppedMetric };
}

const echo: Upstream = {
  dialer: fakeDialer(),
  packetDialer: fakePacketDialer(),
  defaultTarget: { host: "echo.invalid", port: 7 },
};
const udpOpen = (id: string, extra: Partial<StreamOpen> = {}): StreamOpen => ({
  type: "stream_open",
  stream_id: id,
  network: "udp",
  ...extra,
});
const closeOf = (id: string) => (f: Frame) => f.type === "stream_close" && f.stream_id === id;

describe("gateway UDP streams", () => {
  test("udp is granted with its limits; the fake echo keeps every datagram's boundaries", async () => {
    const c = await open(echo);
    assert.ok(c.auth_result.type === "auth_result" && c.auth_result.ok);
    assert.deepEqual(c.auth_result.features, ["binary", "udp"]);
    assert.equal(c.auth_result.limits.max_datagram_bytes, codec.MAX_DATAGRAM_BYTES);
    assert.equal(c.auth_result.limits.udp_idle_timeout_ms, codec.UDP_IDLE_TIMEOUT_MS);
    c.send(udpOpen("u1", { data: new TextEncoder().encode("first") }));
    for (const d of ["a", "", "bb", "ccc"]) c.sendDatagram("u1", d);
    await until(() => c.datagrams("u1").length === 5, "five echoed datagrams");
    assert.deepEqual(c.datagrams("u1"), ["first", "a", "", "bb", "ccc"]);
    assert.equal(c.session.streamCount, 1);
    c.send({ type: "stream_close", stream_id: "u1" });
    assert.equal(c.session.streamCount, 0);
  });

  test("without the feature, or without a UDP upstream, a UDP open is refused with udp_unsupported", async () => {
    const a = await open(echo, { features: ["binary"] });
    a.send(udpOpen("u1"));
    const f = a.find(closeOf("u1"));
    assert.ok(f?.type === "stream_close" && f.code === "udp_unsupported");
    const b = await open({ dialer: fakeDialer(), defaultTarget: { host: "e", port: 7 } });
    assert.ok(b.auth_result.type === "auth_result" && b.auth_result.ok && !b.auth_result.features.includes("udp"));
    assert.equal(b.auth_result.limits.max_datagram_bytes, undefined);
    b.send(udpOpen("u1"));
    const g = b.find(closeOf("u1"));
    assert.ok(g?.type === "stream_close" && g.code === "udp_unsupported");
  });

  test("an oversize datagram is a typed error and dropped; the stream goes on", async () => {
    const c = await open(echo);
    c.send(udpOpen("u1"));
    c.sendDatagram("u1", new Uint8Array(codec.MAX_DATAGRAM_BYTES + 1));
    const e = c.find((f) => f.type === "error" && f.stream_id === "u1");
    assert.ok(e?.type === "error" && e.code === "datagram_too_large");
    c.sendDatagram("u1", new Uint8Array(codec.MAX_DATAGRAM_BYTES));
    c.sendDatagram("u1", "after");
    await until(() => c.datagrams("u1").length === 2, "the stream still echoes");
    assert.equal(c.datagrams("u1")[1], "after");
    assert.equal(c.find(closeOf("u1")), undefined);
  });

  test("stream_end on a UDP stream is unexpected_frame; ids are shared with TCP streams; max_streams counts both", async () => {
    const c = await open(echo, { config: { maxStreams: 2 } });
    c.send(udpOpen("u1"));
    c.send({ type: "stream_end", stream_id: "u1" });
    assert.ok(c.find((f) => f.type === "error" && f.code === "unexpected_frame" && f.stream_id === "u1"));
    c.send({ type: "stream_open", stream_id: "u1" });
    assert.ok(c.find((f) => f.type === "error" && f.code === "duplicate_stream"));
    c.send({ type: "stream_open", stream_id: "t1" });
    c.send(udpOpen("u2"));
    const f = c.find(closeOf("u2"));
    assert.ok(f?.type === "stream_close" && f.code === "too_many_streams");
    c.sendDatagram("u1", "still");
    await until(() => c.datagrams("u1").length === 1, "u1 still works");
  });

  test("a quiet UDP stream closes with idle_timeout", async () => {
    const c = await open(echo, { config: { udpIdleTimeoutMs: 150 } });
    c.send(udpOpen("u1"));
    c.sendDatagram("u1", "x");
    const f = await (async () => {
      await until(() => !!c.find(closeOf("u1")), "the idle close");
      return c.find(closeOf("u1"))!;
    })();
    assert.ok(f.type === "stream_close" && f.code === "idle_timeout");
    assert.equal(c.session.streamCount, 0);
    assert.deepEqual(c.datagrams("u1"), ["x"]);
  });

  test("goaway ends UDP streams at once with shutdown", async () => {
    const c = await open(echo);
    c.send(udpOpen("u1"));
    c.session.goaway();
    const f = c.find(closeOf("u1"));
    assert.ok(f?.type === "stream_close" && f.code === "shutdown");
    await until(() => c.wire.closed, "the socket closes once no stream is left");
  });

  test("a flood while the dial is pending stays within the pending bounds and is counted as dropped", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inner = fakePacketDialer({ queue: 16 });
    const gated: PacketDialer = { dial: async (t, s) => (await gate, inner.dial(t, s)) };
    const c = await open({ dialer: fakeDialer(), packetDialer: gated, defaultTarget: { host: "e", port: 7 } });
    c.send(udpOpen("u1"));
    const N = 2000;
    const datagram = new Uint8Array(1000);
    for (let i = 0; i < N; i++) c.sendDatagram("u1", datagram);
    assert.ok(c.session.udp.pendingBytes <= PENDING_BYTES);
    assert.equal(c.session.udp.dropped, N - PENDING_DATAGRAMS);
    release();
    // The echo's own queue (16) drops part of the 64 released at once: everything is echoed or counted.
    await until(() => c.datagrams("u1").length + c.session.udp.dropped === N, "every datagram echoed or counted");
    assert.ok(c.datagrams("u1").length >= 16);
    assert.equal(c.session.udp.datagramsUp, N);
    const dropped = c.session.udp.dropped;
    c.send({ type: "stream_close", stream_id: "u1" });
    assert.equal(await c.droppedMetric(), dropped, "the metric gets the stream's drops when it ends");
    assert.equal(c.session.udp.dropped, dropped, "the session's count keeps closed streams");
  });

  test("datagrams for a client that stops reading are dropped at the socket's high-water mark, not queued", async () => {
    const c = await open(echo, { config: { socketHighWater: 32 * 1024 } });
    c.send(udpOpen("u1"));
    c.wire.reading = false;
    const datagram = new Uint8Array(4000);
    let sent = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 10; i++, sent++) c.sendDatagram("u1", datagram);
      await new Promise((r) => setTimeout(r, 1));
    }
    await until(() => c.session.udp.datagramsDown + c.session.udp.dropped === sent, "every datagram delivered or counted");
    // At most one datagram lands past the mark; everything else was dropped.
    assert.ok(c.wire.bufferedAmount <= 32 * 1024 + 4100, `buffered ${c.wire.bufferedAmount}`);
    assert.ok(c.session.udp.dropped >= sent - 20, `dropped ${c.session.udp.dropped} of ${sent}`);
    assert.equal(c.session.bufferedBytes, 0);
  });

  describe("direct mode over real node:dgram", () => {
    let server: dgram.Socket;
    let port: number;
    const startEcho = async () => {
      server = dgram.createSocket("udp4");
      server.on("message", (m, r) => server.send(Buffer.concat([Buffer.from("re:"), m]), r.port, r.address));
      await new Promise<void>((r) => server.bind(0, "127.0.0.1", () => r()));
      port = server.address().port;
    };

    test("the guard refuses loopback, private and malformed targets; an allowed one echoes", async () => {
      await startEcho();
      try {
        const guarded = await open({ dialer: fakeDialer(), packetDialer: directPacketDialer(udpDialer()) });
        const cases: Array<[string, { host: string; port: number }, string]> = [
          ["a", { host: "127.0.0.1", port }, "target_forbidden"],
          ["b", { host: "10.1.2.3", port: 53 }, "target_forbidden"],
          ["c", { host: "::ffff:192.168.0.1", port: 53 }, "target_forbidden"],
          ["d", { host: "bad!name", port: 53 }, "bad_target"],
        ];
        for (const [id, target] of cases) guarded.send(udpOpen(id, { target }));
        await until(() => cases.every(([id]) => guarded.find(closeOf(id))), "every refusal");
        for (const [id, , code] of cases) {
          const f = guarded.find(closeOf(id));
          assert.ok(f?.type === "stream_close" && f.code === code, `${id}: ${JSON.stringify(f)}`);
        }
        const allowed = await open({
          dialer: fakeDialer(),
          packetDialer: directPacketDialer(udpDialer(), { allow: parseCidrList("127.0.0.0/8") }),
        });
        allowed.send(udpOpen("u1", { target: { host: "127.0.0.1", port }, data: new TextEncoder().encode("ping") }));
        await until(() => allowed.datagrams("u1").length === 1, "the echo through a real UDP socket");
        assert.deepEqual(allowed.datagrams("u1"), ["re:ping"]);
      } finally {
        server.close();
      }
    });
  });
});
