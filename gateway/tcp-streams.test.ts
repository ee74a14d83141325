// A session's TCP streams (tcp-streams.ts): open, data, half-close, errors, flow control and the
// memory bounds, over the in-memory harness (session.testing.ts).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as codec from "../protocol/codec.ts";
import { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import {
  bytes,
  endSessionsAfterEach,
  firehose,
  gatedDialer,
  harness,
  isClose,
  isErr,
  sha,
  sleep,
  waitUntil,
} from "./session.testing.ts";
import { type Dialer, type Duplex, type DuplexHandlers, StreamError } from "../transport/stream.ts";

endSessionsAfterEach();

describe("session: streams", () => {
  test("the spec's wscat check: open without target, data aGVsbG8= echoes back", async () => {
    const h = harness();
    await h.hello();
    h.send('{"type":"stream_open","stream_id":"s1"}');
    h.send('{"type":"stream_data","stream_id":"s1","data":"aGVsbG8="}');
    await waitUntil(() => h.received("s1").length === 5, "echo");
    assert.equal(Buffer.from(h.received("s1")).toString(), "hello");
    assert.equal(
      codec.encodeText(h.find((f) => f.type === "stream_data")!),
      '{"type":"stream_data","stream_id":"s1","data":"aGVsbG8="}',
    );
    assert.equal(h.session.bytesUp, 5);
    assert.equal(h.session.bytesDown, 5);
  });

  test("pipelined: hello, open (with initial data) and data in one burst, dial still pending", async () => {
    const gate = gatedDialer();
    const h = harness({ upstream: { dialer: gate.dialer, defaultTarget: { host: "echo", port: 0 } } });
    h.send({ type: "hello", device_id: "dev1", token: "secret-token-1", client_version: "test" });
    h.send({ type: "stream_open", stream_id: "s1", data: bytes("one ") });
    h.send({ type: "stream_data", stream_id: "s1", data: bytes("two ") });
    h.send({ type: "stream_data", stream_id: "s1", data: bytes("three") });
    await h.waitFrame((f) => f.type === "auth_result", "auth_result");
    await sleep(20);
    assert.equal(h.received("s1").length, 0, "nothing can echo before the dial completes");
    assert.ok(h.session.bufferedBytes > 0, "the early bytes wait in the stream");
    gate.release();
    await waitUntil(() => h.received("s1").length === 13, "echo");
    assert.equal(Buffer.from(h.received("s1")).toString(), "one two three");
    assert.equal(h.session.bufferedBytes, 0);
  });

  test("malformed frames get the codec's code; the session and another stream carry on", async () => {
    const h = harness();
    await h.hello();
    h.send({ type: "stream_open", stream_id: "s1" });
    h.send({ type: "stream_open", stream_id: "s2" });
    h.send("not json at all");
    h.send('{"type":"stream_data","stream_id":"s1","data":"@@@="}');
    h.send('{"type":"teleport","stream_id":"s1"}');
    h.send({ type: "stream_data", stream_id: "s9", data: bytes("x") });
    h.send({ type: "stream_open", stream_id: "s2" });
    h.send('{"type":"window_update","stream_id":"s1","increment":-5}');
    h.send(codec.encodeStreamDataText("s1", new Uint8Array(codec.MAX_DATA_BYTES + 1)));
    h.send({ type: "hello", device_id: "dev1", token: "secret-token-1", client_version: "test" });
    assert.ok(h.find(isErr("bad_frame")));
    assert.ok(h.find(isErr("bad_data", "s1")), "bad base64 names its stream");
    assert.ok(h.find(isErr("unknown_type")));
    assert.ok(h.find(isErr("unknown_stream", "s9")));
    assert.ok(h.find(isErr("duplicate_stream", "s2")));
    assert.ok(h.find(isErr("bad_frame", "s1")), "a bad window_update names its stream");
    assert.ok(h.find(isErr("frame_too_large", "s1")));
    assert.ok(h.find(isErr("unexpected_frame")), "a second hello");
    h.send({ type: "stream_data", stream_id: "s1", data: bytes("still ") });
    h.send({ type: "stream_data", stream_id: "s2", data: bytes("alive") });
    await waitUntil(() => h.received("s1").length === 6 && h.received("s2").length === 5, "echo on both streams");
    assert.equal(h.find(isClose("s2")), undefined, "the duplicate open left the first s2 alone");
    assert.ok(h.session.isOpen);
    const m = await h.metrics.render();
    assert.match(m.body, /httvps_gateway_frames_rejected_total\{code="unknown_stream"\} 1/);
  });

  test("too many errors in a row closes the session; a valid frame in between resets the count", async () => {
    const h = harness({ config: { maxConsecutiveErrors: 10 } });
    await h.hello();
    for (let i = 0; i < 9; i++) h.send("garbage");
    h.send({ type: "ping", id: "1" });
    for (let i = 0; i < 9; i++) h.send("garbage");
    assert.ok(h.session.isOpen, "18 errors, but never 10 in a row");
    h.send("garbage");
    assert.ok(h.find(isErr("too_many_errors")));
    await waitUntil(() => h.sock.closed !== null, "close");
    assert.deepEqual(h.sock.closed, { code: 1008, reason: "too_many_errors" });
    assert.equal(h.usage.closes[0]!.reason, "too_many_errors");
  });

  test("over max streams: stream_close too_many_streams, the others unaffected", async () => {
    const h = harness({ config: { maxStreams: 2 } });
    await h.hello();
    for (const id of ["a", "b", "c"]) h.send({ type: "stream_open", stream_id: id });
    const c = h.find(isClose("c"));
    assert.ok(c && c.type === "stream_close" && c.code === "too_many_streams");
    h.send({ type: "stream_close", stream_id: "a" });
    h.send({ type: "stream_open", stream_id: "c" });
    h.send({ type: "stream_data", stream_id: "c", data: bytes("ok") });
    await waitUntil(() => h.received("c").length === 2, "c echoes once a slot is free");
  });

  test("half_close: stream_end → echo, stream_end, stream_close without a code", async () => {
    const h = harness();
    await h.hello({ features: ["half_close"] });
    h.send({ type: "stream_open", stream_id: "s1", data: bytes("abc") });
    h.send({ type: "stream_end", stream_id: "s1" });
    await h.waitFrame(isClose("s1"), "stream_close");
    const seq = h.sock.frames.filter((f) => "stream_id" in f && f.stream_id === "s1").map((f) => f.type);
    assert.deepEqual(seq, ["stream_data", "stream_end", "stream_close"]);
    const close = h.find(isClose("s1"));
    assert.ok(close?.type === "stream_close" && close.code === undefined);
    h.send({ type: "stream_data", stream_id: "s1", data: bytes("late") });
    assert.ok(h.find(isErr("unknown_stream", "s1")));
    assert.equal(h.session.streamCount, 0);
  });

  test("data after the client's stream_end is an unexpected_frame, the stream carries on", async () => {
    const gate = gatedDialer();
    const h = harness({ upstream: { dialer: gate.dialer, defaultTarget: { host: "e", port: 0 } } });
    await h.hello({ features: ["half_close"] });
    h.send({ type: "stream_open", stream_id: "s1", data: bytes("abc") });
    h.send({ type: "stream_end", stream_id: "s1" });
    h.send({ type: "stream_data", stream_id: "s1", data: bytes("x") });
    assert.ok(h.find(isErr("unexpected_frame", "s1")));
    gate.release();
    await h.waitFrame(isClose("s1"), "stream_close");
    assert.equal(Buffer.from(h.received("s1")).toString(), "abc");
  });

  test("upstream close with an error → stream_close with its code; dial failure likewise", async () => {
    const failing: Dialer = {
      async dial(t) {
        if (t.host === "refuse") throw new StreamError("upstream_refused", "refused");
        let h: DuplexHandlers;
        return {
          start(handlers) {
            h = handlers;
            setImmediate(() => h.close(new StreamError("upstream_reset", "reset by peer")));
          },
          write: () => true,
          closeWrite() {},
          close() {},
          pause() {},
          resume() {},
        };
      },
    };
    const h = harness({ upstream: { dialer: failing } });
    await h.hello();
    h.send({ type: "stream_open", stream_id: "r", target: { host: "refuse", port: 1 } });
    h.send({ type: "stream_open", stream_id: "x", target: { host: "reset", port: 1 } });
    h.send({ type: "stream_open", stream_id: "n" });
    const r = await h.waitFrame(isClose("r"), "refused");
    const x = await h.waitFrame(isClose("x"), "reset");
    const n = await h.waitFrame(isClose("n"), "no target");
    assert.ok(r.type === "stream_close" && r.code === "upstream_refused");
    assert.ok(x.type === "stream_close" && x.code === "upstream_reset");
    assert.ok(n.type === "stream_close" && n.code === "target_required", "no default target outside fake mode");
  });

  test("a dial that never answers ends in upstream_timeout", async () => {
    const never: Dialer = { dial: () => new Promise<Duplex>(() => {}) };
    const h = harness({ upstream: { dialer: never, defaultTarget: { host: "e", port: 0 } }, config: { dialTimeoutMs: 30 } });
    await h.hello();
    h.send({ type: "stream_open", stream_id: "s1" });
    const c = await h.waitFrame(isClose("s1"), "timeout");
    assert.ok(c.type === "stream_close" && c.code === "upstream_timeout");
  });

  test("upstream chunks larger than max_data_bytes are split; binary frames when negotiated", async () => {
    const big = new Uint8Array(150 * 1024).map((_, i) => i % 251);
    const once: Dialer = {
      async dial() {
        return {
          start(h) {
            setImmediate(() => h.data(big));
          },
          write: () => true,
          closeWrite() {},
          close() {},
          pause() {},
          resume() {},
        };
      },
    };
    const h = harness({ upstream: { dialer: once, defaultTarget: { host: "e", port: 0 } } });
    await h.hello({ features: ["binary"] });
    h.send({ type: "stream_open", stream_id: "s1" });
    await waitUntil(() => h.received("s1").length === big.length, "all data");
    const sizes = h.sock.frames.filter((f) => f.type === "stream_data").map((f) => (f as { data: Uint8Array }).data.length);
    assert.deepEqual(sizes, [65536, 65536, 150 * 1024 - 131072]);
    assert.equal(sha(h.received("s1")), sha(big));
    assert.equal(h.sock.binaryFrames, 3, "stream data went as binary frames");
  });

  test("a binary stream_data from the client is accepted", async () => {
    const h = harness();
    await h.hello({ features: ["binary"] });
    h.send({ type: "stream_open", stream_id: "s1" });
    h.session.message(codec.encodeStreamDataBinary("s1", bytes("bin")));
    await waitUntil(() => h.received("s1").length === 3, "echo");
  });

  test("ping → pong with the same id", async () => {
    const h = harness();
    await h.hello();
    h.send({ type: "ping", id: "p7" });
    assert.ok(h.find((f) => f.type === "pong" && f.id === "p7"));
  });
});

describe("session: flow control and memory", () => {
  test("flow: a stalled stream (no window_update) does not stall another", async () => {
    const h = harness();
    const r = await h.hello({ features: ["flow"], window: codec.MIN_WINDOW });
    assert.ok(r.type === "auth_result" && r.ok && r.features.includes("flow"));
    const stalled = new Uint8Array(codec.MIN_WINDOW * 3).fill(1);
    h.send({ type: "stream_open", stream_id: "slow" });
    h.send({ type: "stream_data", stream_id: "slow", data: stalled });
    await waitUntil(() => h.received("slow").length === codec.MIN_WINDOW, "the window's worth on the stalled stream");
    // Another stream keeps flowing while `slow` waits for credit.
    h.send({ type: "stream_open", stream_id: "fast" });
    let fastGot = 0;
    for (let i = 0; i < 20; i++) {
      h.send({ type: "stream_data", stream_id: "fast", data: new Uint8Array(1000).fill(i) });
      await waitUntil(() => h.received("fast").length === (i + 1) * 1000, "fast echo");
      fastGot = h.received("fast").length;
      h.send({ type: "window_update", stream_id: "fast", increment: 1000 });
    }
    assert.equal(fastGot, 20_000);
    assert.equal(h.received("slow").length, codec.MIN_WINDOW, "not a byte past the client's credit");
    h.send({ type: "window_update", stream_id: "slow", increment: stalled.length });
    await waitUntil(() => h.received("slow").length === stalled.length, "the rest after window_update");
    assert.ok(h.session.bufferedBytes === 0);
  });

  test("flow: a stream out of credit stops its upstream (the session holds at most one chunk for it)", async () => {
    const chunk = 16 * 1024;
    const { dialer, stats } = firehose(50 * 1024 * 1024, chunk);
    const h = harness({ upstream: { dialer, defaultTarget: { host: "e", port: 0 } } });
    await h.hello({ features: ["flow"], window: 40_000 });
    h.send({ type: "stream_open", stream_id: "s1" });
    await waitUntil(() => h.received("s1").length === 40_000, "the window's worth");
    await sleep(100);
    assert.equal(h.received("s1").length, 40_000, "not a byte past the credit");
    assert.ok(stats.pushed <= 40_000 + chunk, `the upstream pushed ${stats.pushed}`);
    assert.ok(h.session.bufferedBytes < chunk, `held ${h.session.bufferedBytes}`);
    h.send({ type: "window_update", stream_id: "s1", increment: 100_000 });
    await waitUntil(() => h.received("s1").length === 140_000, "more after window_update");
    await sleep(50);
    assert.equal(h.received("s1").length, 140_000);
    assert.ok(stats.pushed <= 140_000 + chunk);
  });

  test("flow: the gateway grants credit back as the upstream accepts data", async () => {
    const h = harness();
    await h.hello({ features: ["flow"] });
    h.send({ type: "stream_open", stream_id: "s1" });
    let sent = 0;
    // Send 4 windows' worth, only as credit allows: this only finishes if window_updates come.
    const total = codec.DEFAULT_WINDOW * 4;
    let credit = codec.DEFAULT_WINDOW;
    let granted = 0;
    while (sent < total) {
      const updates = h.sock.frames.filter((f) => f.type === "window_update" && f.stream_id === "s1");
      const g = updates.reduce((n, f) => n + (f as { increment: number }).increment, 0);
      credit += g - granted;
      granted = g;
      if (credit <= 0) {
        await sleep(2);
        continue;
      }
      const n = Math.min(credit, codec.MAX_DATA_BYTES, total - sent);
      h.send({ type: "stream_data", stream_id: "s1", data: new Uint8Array(n) });
      sent += n;
      credit -= n;
      // Read the echo so our own credit towards the client never blocks the gateway.
      h.send({ type: "window_update", stream_id: "s1", increment: n });
      await sleep(0);
    }
    await waitUntil(() => h.received("s1").length === total, "all echoed");
    assert.ok(granted >= total - codec.DEFAULT_WINDOW);
    assert.equal(h.find((f) => f.type === "stream_close"), undefined);
  });

  test("flow: data beyond the window → stream_close flow_violation", async () => {
    const gate = gatedDialer();
    const h = harness({ upstream: { dialer: gate.dialer, defaultTarget: { host: "e", port: 0 } } });
    await h.hello({ features: ["flow"] });
    h.send({ type: "stream_open", stream_id: "s1" });
    h.send({ type: "stream_open", stream_id: "s2" });
    for (let i = 0; i < codec.DEFAULT_WINDOW / codec.MAX_DATA_BYTES; i++) {
      h.send({ type: "stream_data", stream_id: "s1", data: new Uint8Array(codec.MAX_DATA_BYTES) });
    }
    assert.equal(h.find(isClose("s1")), undefined, "exactly the window is fine");
    h.send({ type: "stream_data", stream_id: "s1", data: new Uint8Array(1) });
    const c = h.find(isClose("s1"));
    assert.ok(c?.type === "stream_close" && c.code === "flow_violation");
    assert.equal(h.session.bufferedBytes, 0, "the violator's buffer is released");
    gate.release();
    h.send({ type: "stream_data", stream_id: "s2", data: bytes("fine") });
    await waitUntil(() => h.received("s2").length === 4, "s2 unaffected");
  });

  test("no flow: a client overrunning a slow upstream is cut off at the window (memory stays bounded)", async () => {
    const gate = gatedDialer();
    const h = harness({ upstream: { dialer: gate.dialer, defaultTarget: { host: "e", port: 0 } }, config: { window: 100_000 } });
    await h.hello();
    h.send({ type: "stream_open", stream_id: "s1" });
    for (let i = 0; i < 10 && !h.find(isClose("s1")); i++) {
      h.send({ type: "stream_data", stream_id: "s1", data: new Uint8Array(30_000) });
    }
    const c = h.find(isClose("s1"));
    assert.ok(c?.type === "stream_close" && c.code === "flow_violation");
    assert.match((c as { message?: string }).message ?? "", /without flow control/);
    assert.ok(h.session.bufferedBytes <= 100_000);
    gate.release();
  });

  test("a client that stops reading: a 200 MB upstream cannot grow gateway memory", async () => {
    const highWater = 256 * 1024;
    const { dialer, stats } = firehose(200 * 1024 * 1024);
    const h = harness({ upstream: { dialer, defaultTarget: { host: "e", port: 0 } }, config: { socketHighWater: highWater } });
    await h.hello();
    h.sock.stopReading();
    const rss0 = process.memoryUsage().rss;
    h.send({ type: "stream_open", stream_id: "s1" });
    h.send({ type: "stream_open", stream_id: "s2" });
    await sleep(300);
    const pushedWhileStalled = stats.pushed;
    const rss1 = process.memoryUsage().rss;
    // One 64 KiB chunk per stream may already be on its way when the pause lands.
    const frame = codec.encodeStreamDataText("s1", new Uint8Array(64 * 1024)).length;
    const bound = highWater + 2 * frame;
    console.log(
      `[stalled reader] pushed ${(pushedWhileStalled / 1024).toFixed(0)} KiB of 200 MiB; peak session-held + socket-buffered ` +
        `${(h.sock.peakHeld / 1024).toFixed(0)} KiB (bound ${(bound / 1024).toFixed(0)} KiB); rss delta ${
          ((rss1 - rss0) / 1048576).toFixed(1)
        } MiB`,
    );
    assert.ok(h.sock.peakHeld <= bound, `held ${h.sock.peakHeld} > ${bound}`);
    assert.ok(pushedWhileStalled < 1024 * 1024, `the upstream pushed ${pushedWhileStalled} bytes into a stalled session`);
    assert.ok(stats.pauses >= 2, "both upstreams were paused");
    await sleep(100);
    assert.equal(stats.pushed, pushedWhileStalled, "nothing more while stalled");
    // The client reads again: traffic resumes.
    h.sock.startReading();
    await waitUntil(() => stats.pushed > pushedWhileStalled + 4 * 1024 * 1024, "resume after drain");
    h.sock.stopReading();
    await sleep(50);
    assert.ok(h.sock.bufferedAmount <= bound);
  });

  test("a client that stops reading without the adapter ever calling drain() still resumes (poll fallback)", async () => {
    const { dialer, stats } = firehose(10 * 1024 * 1024);
    const h = harness({ upstream: { dialer, defaultTarget: { host: "e", port: 0 } }, config: { socketHighWater: 128 * 1024 } });
    await h.hello();
    h.sock.stopReading();
    h.send({ type: "stream_open", stream_id: "s1" });
    await sleep(50);
    const stalled = stats.pushed;
    // Empty the socket behind the session's back, as a runtime with a higher high-water mark would.
    h.sock.bufferedAmount = 0;
    await waitUntil(() => stats.pushed > stalled, "resumed by the poll", 2000);
  });
});
