// Session behaviour: the handshake, liveness, re-validation and drain, over the in-memory
// harness (session.testing.ts). Its streams: tcp-streams.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as codec from "../protocol/codec.ts";
import {
  bytes,
  endSessionsAfterEach,
  firehose,
  harness,
  isClose,
  isErr,
  memoryBackend,
  sleep,
  waitUntil,
} from "./session.testing.ts";
import type { Feature } from "../protocol/frames.ts";
import type { AuthOutcome } from "./auth.ts";

endSessionsAfterEach();

describe("session: handshake", () => {
  test("hello ok: 128-bit hex session id, granted features, window and limits", async () => {
    const h = harness({ config: { maxStreams: 7 } });
    const r = await h.hello({ features: ["flow", "half_close", "bogus" as Feature], window: 65536 });
    assert.equal(r.type, "auth_result");
    assert.ok(r.type === "auth_result" && r.ok);
    assert.match(r.session_id, /^[0-9a-f]{32}$/);
    assert.deepEqual(r.features, ["flow", "half_close"]);
    assert.equal(r.window, codec.DEFAULT_WINDOW);
    assert.equal(r.limits.max_streams, 7);
    assert.equal(r.limits.max_data_bytes, codec.MAX_DATA_BYTES);
    assert.equal(h.session.session_id, r.session_id);
    assert.deepEqual(h.usage.events, [`open ${r.session_id} null`]);
    assert.equal(h.backend.calls.length, 1);
    assert.equal(
      h.backend.calls[0]!.session_id,
      r.session_id,
      "a new session is validated under the id it gets, so a counted device's slot is reserved for it",
    );
    const m = await h.metrics.render();
    assert.match(m.body, /httvps_gateway_sessions_total\{outcome="ok"\} 1/);
    assert.match(m.body, /httvps_gateway_sessions_active 1/);
    assert.ok(!h.logs.join("\n").includes("secret-token-1"), "the token never reaches a log line");
  });

  test("a second session's id differs", async () => {
    const a = harness();
    const b = harness({ backend: a.backend });
    const ra = await a.hello();
    const rb = await b.hello();
    assert.ok(ra.type === "auth_result" && ra.ok && rb.type === "auth_result" && rb.ok);
    assert.notEqual(ra.session_id, rb.session_id);
  });

  describe("no oracle: the five credential refusals look the same to the client", () => {
    const backend = () =>
      memoryBackend({
        dev1: { token: "secret-token-1" },
        rev: { token: "secret-token-1", reason: "revoked" },
        dis: { token: "secret-token-1", reason: "disabled" },
        exp: { token: "secret-token-1", reason: "expired" },
        full: { token: "secret-token-1", reason: "quota_exceeded" },
        new: { token: "secret-token-1", reason: "a_reason_from_a_newer_backend" },
      });
    const refusals = [
      ["unknown device", { device_id: "nobody" }, "unknown_device"],
      ["wrong token", { token: "wrong-token" }, "bad_token"],
      ["disabled", { device_id: "dis" }, "disabled"],
      ["revoked", { device_id: "rev" }, "revoked"],
      ["expired", { device_id: "exp" }, "expired"],
      ["a reason this gateway does not know", { device_id: "new" }, "other"],
    ] as const;

    test("the same auth_result and the same close for each; the metric label and the log keep the real reason", async () => {
      const seen: string[] = [];
      for (const [name, hello, reason] of refusals) {
        const h = harness({ backend: backend() });
        const r = await h.hello(hello);
        await waitUntil(() => h.sock.closed !== null, "close");
        seen.push(JSON.stringify({ frames: h.sock.frames, closed: h.sock.closed }));
        assert.deepEqual(r, { type: "auth_result", ok: false, code: "auth_failed", message: "authentication failed" }, name);
        assert.deepEqual(h.sock.closed, { code: 1008, reason: "auth_failed" }, name);
        assert.ok(h.session.isClosed);
        assert.deepEqual(h.usage.events, [], "no usage for a session that never opened");
        const m = await h.metrics.render();
        assert.match(m.body, new RegExp(`httvps_gateway_sessions_total\\{outcome="${reason}"\\} 1`), name);
        assert.match(m.body, /httvps_gateway_sessions_active 0/);
        if (reason !== "other") assert.ok(h.logs.some((l) => l.includes(`"reason":"${reason}"`)), `${name}: logged`);
      }
      assert.equal(new Set(seen).size, 1, seen.join("\n"));
    });

    test("each is answered after the same delay from the hello, however fast the backend answered", async () => {
      for (const [name, hello] of refusals) {
        const h = harness({ backend: backend(), config: { authFailureDelayMs: 120 } });
        const t0 = performance.now();
        await h.hello(hello);
        const took = performance.now() - t0;
        // A lower bound only (timers never fire early by more than a rounding); no upper bound is asserted.
        assert.ok(took >= 115, `${name}: answered after ${took.toFixed(1)} ms`);
      }
      // A socket gone during the wait cancels the answer; nothing is sent to it.
      const h = harness({ backend: backend(), config: { authFailureDelayMs: 100 } });
      h.send({ type: "hello", device_id: "nobody", token: "x", client_version: "test" });
      await sleep(20);
      h.session.close(1001, "gone");
      await sleep(120);
      assert.deepEqual(h.sock.frames, []);
    });

    test("refusals only a device with the right token reaches keep their code, and are not delayed", async () => {
      const h = harness({ backend: backend(), config: { authFailureDelayMs: 5_000 } });
      const r = await h.hello({ device_id: "full" });
      assert.ok(r.type === "auth_result" && !r.ok && r.code === "quota_exceeded");
      await waitUntil(() => h.sock.closed !== null, "close");
      assert.deepEqual(h.sock.closed, { code: 1008, reason: "quota_exceeded" });
    });
  });

  test("backend unavailable (or throwing): auth_result unavailable, same close code", async () => {
    const backend = memoryBackend({ dev1: { token: "secret-token-1" } });
    backend.setDown(true);
    const h = harness({ backend });
    const r = await h.hello();
    assert.ok(r.type === "auth_result" && !r.ok && r.code === "unavailable");
    await waitUntil(() => h.sock.closed !== null, "close");
    assert.equal(h.sock.closed!.code, 1008);

    const throwing = { ...backend, validate: async (): Promise<AuthOutcome> => Promise.reject(new Error("boom")) };
    const h2 = harness({ backend: throwing });
    const r2 = await h2.hello();
    assert.ok(r2.type === "auth_result" && !r2.ok && r2.code === "unavailable");
  });

  test("no hello in time: closed with hello_timeout", async () => {
    const h = harness({ config: { helloTimeoutMs: 40 } });
    await waitUntil(() => h.sock.closed !== null, "close");
    assert.deepEqual(h.sock.closed, { code: 1008, reason: "hello_timeout" });
    assert.equal(h.sock.frames.length, 0);
  });

  test("anything before hello: error hello_required, then close", async () => {
    const h = harness();
    h.send({ type: "stream_open", stream_id: "s1" });
    assert.ok(h.find(isErr("hello_required")));
    await waitUntil(() => h.sock.closed !== null, "close");
    assert.equal(h.sock.closed!.code, 1008);
    assert.equal(h.backend.calls.length, 0);
  });

  test("a malformed hello: error with the codec's code, then close", async () => {
    const h = harness();
    h.send('{"type":"hello","device_id":"dev1"}');
    assert.ok(h.find(isErr("bad_frame")));
    await waitUntil(() => h.sock.closed !== null, "close");
    assert.equal(h.sock.closed!.code, 1008);
  });
});

describe("session: liveness, revalidation, drain", () => {
  test("revalidation closes a revoked session within the TTL; the request carries the session id", async () => {
    const backend = memoryBackend({ dev1: { token: "secret-token-1" } });
    const h = harness({ backend, ttlMs: 80 });
    const r = await h.hello();
    assert.ok(r.type === "auth_result" && r.ok);
    h.send({ type: "stream_open", stream_id: "s1", data: bytes("x") });
    await sleep(150);
    assert.ok(h.session.isOpen, "still valid: revalidation passed");
    const t0 = Date.now();
    backend.devices.dev1!.reason = "revoked";
    await h.waitFrame(isErr("revoked"), "revoked error", 1000);
    await waitUntil(() => h.sock.closed !== null, "close");
    assert.ok(Date.now() - t0 <= 2 * 80 + 100, "within the TTL (cache + timer)");
    assert.deepEqual(h.sock.closed, { code: 1008, reason: "revoked" });
    assert.ok(backend.calls.some((c) => c.session_id === r.session_id));
    assert.equal(h.usage.closes[0]!.reason, "revoked");
    assert.equal(h.usage.closes[0]!.up, 1);
  });

  test("an unavailable backend during revalidation keeps the session flowing", async () => {
    const backend = memoryBackend({ dev1: { token: "secret-token-1" } });
    const h = harness({ backend, ttlMs: 30 });
    await h.hello();
    backend.setDown(true);
    const calls = backend.calls.length;
    await sleep(150);
    assert.ok(backend.calls.length > calls, "it did try again");
    assert.ok(h.session.isOpen);
    h.send({ type: "stream_open", stream_id: "s1", data: bytes("still") });
    await waitUntil(() => h.received("s1").length === 5, "echo");
  });

  test("idle timeout: no traffic from the client closes the session", async () => {
    const h = harness({ config: { idleTimeoutMs: 60, pingIntervalMs: 20 } });
    await h.hello();
    await waitUntil(() => h.sock.closed !== null, "idle close", 1000);
    assert.deepEqual(h.sock.closed, { code: 1001, reason: "idle_timeout" });
    assert.ok(h.find((f) => f.type === "ping"), "pinged meanwhile");
    assert.ok(h.find((f) => f.type === "goaway" && f.code === "idle_timeout"));
    assert.equal(h.usage.closes[0]!.reason, "idle_timeout");
  });

  test("a client that answers keeps the session alive past the idle timeout", async () => {
    const h = harness({ config: { idleTimeoutMs: 80, pingIntervalMs: 20 } });
    await h.hello();
    for (let i = 0; i < 10; i++) {
      await sleep(20);
      h.send({ type: "pong", id: String(i) });
    }
    assert.ok(h.session.isOpen);
  });

  test("graceful drain: goaway, new streams refused, open ones finish, then the socket closes", async () => {
    const h = harness();
    await h.hello({ features: ["half_close"] });
    h.send({ type: "stream_open", stream_id: "s1" });
    h.session.goaway();
    assert.ok(h.find((f) => f.type === "goaway" && f.code === "shutdown"));
    h.send({ type: "stream_open", stream_id: "s2" });
    const refused = h.find(isClose("s2"));
    assert.ok(refused?.type === "stream_close" && refused.code === "shutdown");
    h.send({ type: "stream_data", stream_id: "s1", data: bytes("bye") });
    await waitUntil(() => h.received("s1").length === 3, "s1 still echoes");
    assert.equal(h.sock.closed, null);
    h.send({ type: "stream_end", stream_id: "s1" });
    await waitUntil(() => h.sock.closed !== null, "close after the last stream");
    assert.deepEqual(h.sock.closed, { code: 1001, reason: "shutdown" });
    assert.equal(h.usage.closes[0]!.reason, "shutdown");
  });

  test("the peer closing the socket tears everything down and reports usage once", async () => {
    const { dialer, stats } = firehose(1024 * 1024);
    const h = harness({ upstream: { dialer, defaultTarget: { host: "e", port: 0 } } });
    await h.hello();
    h.send({ type: "stream_open", stream_id: "s1" });
    await waitUntil(() => stats.pushed > 0, "data");
    h.session.close(1000, "bye");
    h.session.close(1000, "bye");
    assert.ok(h.session.isClosed);
    assert.equal(h.usage.closes.length, 1);
    assert.equal(h.usage.closes[0]!.reason, "client_closed");
    const m = await h.metrics.render();
    assert.match(m.body, /httvps_gateway_streams_active 0/);
    assert.match(m.body, /httvps_gateway_sessions_active 0/);
  });
});
