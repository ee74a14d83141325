// The client session against a scripted gateway (the runtime's real WebSocket server, TLS with
// a pinned self-signed certificate): handshake, credit both ways, binary frames, keepalive,
// goaway, errors, and what streams see when the session ends.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import * as codec from "../protocol/codec.ts";
import type { Frame } from "../protocol/frames.ts";
import { runtime } from "../runtime/index.ts";
import { StreamError } from "../transport/stream.ts";
import { ClientError, ClientSession, type ClientSessionOptions } from "./session.ts";
import { concat, echoScript, type GatewayConn, record, type ScriptedGateway, startScriptedGateway, until } from "./testing.ts";

const gateways: ScriptedGateway[] = [];
const sessions: ClientSession[] = [];
after(async () => {
  for (const s of sessions) s.close();
  for (const g of gateways) await g.close();
});

async function gateway(onFrame: (conn: GatewayConn, f: Frame) => void): Promise<ScriptedGateway> {
  const g = await startScriptedGateway(onFrame);
  gateways.push(g);
  return g;
}

async function open(g: ScriptedGateway, opts: Partial<ClientSessionOptions> = {}, events = {}): Promise<ClientSession> {
  const s = await ClientSession.open({ key: g.key(), connectTimeoutMs: 5000, ...opts }, events);
  sessions.push(s);
  return s;
}

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms));

describe(`client session on ${runtime}`, () => {
  test("hello asks for flow, binary, half_close, udp, padding and early_data with our window; auth_result ok opens the session", async () => {
    const g = await gateway(echoScript());
    const s = await open(g, { window: 65536 });
    const hello = g.conns[0]!.frames[0]!;
    assert.equal(hello.type, "hello");
    if (hello.type !== "hello") return;
    assert.deepEqual(hello.features, ["flow", "binary", "half_close", "udp", "padding", "early_data"]);
    assert.equal(hello.window, 65536);
    assert.equal(hello.device_id, "dev-1");
    assert.equal(hello.token, "secret-token-123");
    assert.match(hello.client_version, /^httvps\//);
    assert.equal(s.isOpen, true);
    assert.equal(s.sessionId, "0123456789abcdef0123456789abcdef");
    assert.deepEqual([...s.features], ["flow", "binary", "half_close"]);
  });

  test("a refused hello rejects with the auth code and message", async () => {
    const g = await gateway((conn, f) => {
      if (f.type === "hello") {
        conn.send({ type: "auth_result", ok: false, code: "revoked", message: "the device's token was revoked" });
        conn.close(1008, "revoked");
      }
    });
    await assert.rejects(open(g), (e: unknown) => e instanceof ClientError && e.code === "revoked" && /revoked/.test(e.message));
  });

  test("a wrong pin fails with pin_mismatch before anything is sent", async () => {
    const g = await gateway(echoScript());
    const key = g.key({ pin: "ab".repeat(32) });
    await assert.rejects(
      ClientSession.open({ key, connectTimeoutMs: 5000 }),
      (e: unknown) => e instanceof ClientError && e.code === "pin_mismatch",
    );
    await tick(100);
    assert.equal(g.conns.length, 0, "no WebSocket (so no hello, no token) reached the gateway");
  });

  test("TLS without a pin: --ca verifies chain and name (sni included), --insecure skips it, neither fails", async () => {
    const g = await gateway(echoScript());
    const ca = g.cert.certPem;
    const noPin = g.key({ pin: undefined });
    await open(g, { key: noPin, tls: { ca } });
    await open(g, { key: g.key({ pin: undefined, sni: "localhost" }), tls: { ca } });
    await open(g, { key: noPin, tls: { insecure: true } });
    await assert.rejects(
      ClientSession.open({ key: noPin, connectTimeoutMs: 5000 }),
      (e: unknown) => e instanceof ClientError && e.code === "unavailable",
    );
    await assert.rejects(
      ClientSession.open({ key: g.key({ pin: undefined, sni: "wrong.example" }), tls: { ca }, connectTimeoutMs: 5000 }),
      (e: unknown) => e instanceof ClientError && e.code === "unavailable" && /wrong\.example/.test(e.message),
    );
    assert.equal(g.conns.filter((c) => c.frames.some((f) => f.type === "hello")).length, 3, "hello only over verified sockets");
  });

  test("a gateway that closes before auth_result: unavailable, not a hang", async () => {
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.close(1011, "");
    });
    await assert.rejects(open(g), (e: unknown) => e instanceof ClientError && e.code === "unavailable");
  });

  test("bytes round-trip on a stream; stream_end is half-close; stream_close ends it", async () => {
    const g = await gateway(echoScript());
    const s = await open(g);
    const st = s.openStream({ host: "example.com", port: 80 });
    const rx = record(st);
    const data = bytes(300_000);
    for (let at = 0; at < data.length; at += 50_000) st.write(data.subarray(at, at + 50_000));
    st.closeWrite();
    await until(() => rx.closed !== null, "stream close");
    assert.deepEqual(concat(rx.data), data);
    assert.equal(rx.ended, true);
    assert.equal(rx.closed!.err, undefined);
    const conn = g.conns[0]!;
    const open_ = conn.of("stream_open")[0]!;
    assert.deepEqual(open_.target, { host: "example.com", port: 80 });
    assert.equal(conn.of("stream_end", st.id).length, 1);
    // binary was granted: data went as binary messages, never over max_data_bytes
    assert.ok(conn.of("stream_data").every((f) => f.data.length <= codec.MAX_DATA_BYTES));
    assert.equal(conn.kinds[conn.frames.indexOf(conn.of("stream_data")[0]!)], "binary");
    assert.equal(s.streamCount, 0);
  });

  test("never sends beyond the gateway's credit; resumes on window_update", async () => {
    let credit = 0;
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.authOk({ window: 4096 });
    });
    const s = await open(g);
    const st = s.openStream({ host: "h", port: 1 });
    const rx = record(st);
    let drained = 0;
    st.start({ data() {}, end() {}, drain: () => drained++, close() {} }); // second start is ignored
    const full = st.write(bytes(200_000));
    assert.equal(full, false, "write reports backpressure while bytes wait for credit");
    const conn = g.conns[0]!;
    await until(() => conn.bytes(st.id).length === 4096, "the first window");
    await tick(100);
    assert.equal(conn.bytes(st.id).length, 4096, "nothing beyond the window");
    credit = 10_000;
    conn.send({ type: "window_update", stream_id: st.id, increment: credit });
    await until(() => conn.bytes(st.id).length === 14_096, "the second window");
    await tick(50);
    assert.equal(conn.bytes(st.id).length, 14_096);
    conn.send({ type: "window_update", stream_id: st.id, increment: 1_000_000 });
    await until(() => conn.bytes(st.id).length === 200_000, "everything");
    assert.deepEqual(conn.bytes(st.id), bytes(200_000));
    assert.equal(rx.closed, null);
  });

  test("credit goes back as the app consumes, not before; overrunning our window is flow_violation", async () => {
    const window = 16_384;
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.authOk();
    });
    const s = await open(g, { window });
    const st = s.openStream({ host: "h", port: 1 });
    const got: Uint8Array[] = [];
    let closed: { err?: StreamError } | null = null;
    st.start({ data: (c) => void got.push(c), end() {}, drain() {}, close: (e) => void (closed = { err: e }) });
    st.pause();
    const conn = g.conns[0]!;
    conn.send({ type: "stream_data", stream_id: st.id, data: bytes(window) });
    await tick(100);
    assert.equal(got.length, 0, "paused: nothing delivered");
    assert.equal(conn.of("window_update").length, 0, "no credit for bytes the app has not taken");
    st.resume();
    await until(() => conn.of("window_update").length > 0, "window_update");
    const granted = conn.of("window_update").reduce((n, f) => n + f.increment, 0);
    assert.equal(granted, window);
    assert.equal(concat(got).length, window);
    // The window is full again after this; one byte more is a violation.
    conn.send({ type: "stream_data", stream_id: st.id, data: bytes(window) });
    conn.send({ type: "stream_data", stream_id: st.id, data: bytes(window + 1) });
    await until(() => closed !== null, "stream closed");
    assert.equal((closed as { err?: StreamError } | null)?.err?.code, "flow_violation");
    await until(() => conn.of("stream_close", st.id).length === 1, "stream_close to the gateway");
    assert.equal(conn.of("stream_close", st.id)[0]!.code, "flow_violation");
  });

  test("text frames when binary is not granted; binary from the gateway is accepted anyway", async () => {
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.authOk({ features: ["flow", "half_close"] });
    });
    const s = await open(g);
    const st = s.openStream({ host: "h", port: 1 });
    const rx = record(st);
    st.write(new TextEncoder().encode("hi"));
    const conn = g.conns[0]!;
    await until(() => conn.of("stream_data").length === 1, "data");
    assert.equal(conn.kinds[conn.frames.indexOf(conn.of("stream_data")[0]!)], "text");
    conn.sendRaw(codec.encodeBinary({ type: "stream_data", stream_id: st.id, data: new TextEncoder().encode("yo") }));
    conn.sendRaw(codec.encodeText({ type: "stream_data", stream_id: st.id, data: new TextEncoder().encode("!") }));
    await until(() => rx.text() === "yo!", "both kinds");
  });

  test("answers ping with pong (same id); undecodable frames get an error and the session carries on", async () => {
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.authOk();
    });
    const s = await open(g);
    const conn = g.conns[0]!;
    conn.send({ type: "ping", id: "42" });
    conn.sendRaw("{not json");
    conn.sendRaw(JSON.stringify({ type: "teleport" }));
    await until(() => conn.of("pong").length === 1 && conn.of("error").length === 2, "pong and errors");
    assert.equal(conn.of("pong")[0]!.id, "42");
    assert.deepEqual(conn.of("error").map((e) => e.code), ["bad_frame", "unknown_type"]);
    assert.equal(s.isOpen, true);
  });

  test("sends its own pings; a silent gateway is declared dead (idle_timeout)", async () => {
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.authOk();
    });
    let closedWith = "";
    const s = await open(g, { pingIntervalMs: 1000, deadAfterMs: 1500 }, {
      closed: (_s: ClientSession, code: string) => (closedWith = code),
    });
    const st = s.openStream({ host: "h", port: 1 });
    const rx = record(st);
    await until(() => g.conns[0]!.of("ping").length >= 1, "a ping from the client", 3000);
    await until(() => s.isClosed, "dead gateway detected", 5000);
    assert.equal(closedWith, "idle_timeout");
    await until(() => rx.closed !== null, "stream closed");
    assert.equal(rx.closed!.err?.code, "session_closed");
  });

  test("goaway: no new streams; open ones finish; then the session closes", async () => {
    const g = await gateway(echoScript());
    let goaway = "";
    let closedWith = "";
    const s = await open(g, {}, {
      goaway: (_s: ClientSession, code: string) => (goaway = code),
      closed: (_s: ClientSession, code: string) => (closedWith = code),
    });
    const st = s.openStream({ host: "h", port: 1 });
    const rx = record(st);
    const conn = g.conns[0]!;
    conn.send({ type: "goaway", code: "shutdown", message: "bye", drain_ms: 5000 });
    await until(() => goaway === "shutdown", "goaway event");
    assert.equal(s.isDraining, true);
    assert.throws(() => s.openStream({ host: "h", port: 2 }), (e: unknown) => e instanceof StreamError && e.code === "shutdown");
    st.write(new TextEncoder().encode("still here"));
    st.closeWrite();
    await until(() => rx.closed !== null, "the open stream finishes");
    assert.equal(rx.text(), "still here");
    await until(() => s.isClosed, "session closes once drained");
    assert.equal(closedWith, "shutdown");
  });

  test("an error frame naming a stream ends that stream with its code; others carry on", async () => {
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.authOk();
    });
    const s = await open(g);
    const a = s.openStream({ host: "h", port: 1 });
    const b = s.openStream({ host: "h", port: 2 });
    const ra = record(a);
    const rb = record(b);
    const conn = g.conns[0]!;
    conn.send({ type: "error", code: "bad_data", message: "stream_data.data: expected padded standard base64", stream_id: a.id });
    await until(() => ra.closed !== null, "a closed");
    assert.equal(ra.closed!.err?.code, "bad_data");
    await until(() => conn.of("stream_close", a.id).length === 1, "stream_close for a");
    assert.equal(rb.closed, null);
    conn.send({ type: "stream_close", stream_id: b.id, code: "upstream_refused", message: "connection refused" });
    await until(() => rb.closed !== null, "b closed");
    assert.equal(rb.closed!.err?.code, "upstream_refused");
    await assert.rejects(b.confirmed, (e: unknown) => e instanceof StreamError && e.code === "upstream_refused");
  });

  test("the session ending under open streams closes them with session_closed", async () => {
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.authOk();
    });
    let closedWith = "";
    const s = await open(g, {}, { closed: (_s: ClientSession, code: string) => (closedWith = code) });
    const rx = [s.openStream({ host: "h", port: 1 }), s.openStream({ host: "h", port: 2 })].map(record);
    const conn = g.conns[0]!;
    conn.send({ type: "error", code: "revoked", message: "the device's token was revoked" });
    conn.close(1008, "revoked");
    await until(() => rx.every((r) => r.closed !== null), "streams closed");
    for (const r of rx) assert.equal(r.closed!.err?.code, "session_closed");
    assert.equal(closedWith, "revoked");
    assert.throws(
      () => s.openStream({ host: "h", port: 3 }),
      (e: unknown) => e instanceof StreamError && e.code === "session_closed",
    );
  });

  test("max_streams is respected locally with too_many_streams", async () => {
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.authOk({ maxStreams: 2 });
    });
    const s = await open(g);
    s.openStream({ host: "h", port: 1 });
    s.openStream({ host: "h", port: 2 });
    assert.throws(
      () => s.openStream({ host: "h", port: 3 }),
      (e: unknown) => e instanceof StreamError && e.code === "too_many_streams",
    );
  });

  test("late frames for a stream we closed are dropped quietly; unknown ids get unknown_stream", async () => {
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.authOk();
    });
    const s = await open(g);
    const st = s.openStream({ host: "h", port: 1 });
    record(st);
    st.close(new StreamError("cancelled", "app went away"));
    const conn = g.conns[0]!;
    await until(() => conn.of("stream_close").length === 1, "stream_close");
    assert.equal(conn.of("stream_close")[0]!.code, "cancelled");
    conn.send({ type: "stream_data", stream_id: st.id, data: bytes(10) });
    conn.send({ type: "stream_data", stream_id: "999", data: bytes(10) });
    await until(() => conn.of("error").length === 1, "one error");
    await tick(50);
    assert.equal(conn.of("error").length, 1);
    assert.equal(conn.of("error")[0]!.stream_id, "999");
    assert.equal(s.isOpen, true);
  });
});
