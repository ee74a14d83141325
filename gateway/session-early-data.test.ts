// The gateway's side of early data (docs/03 §13), over the in-memory harness: a stream opened
// right behind the hello runs once the device is validated; a refused hello drops it with no
// dial; the caps on what an unauthenticated client can make us hold end the handshake; and
// "early_data" is granted only to a client that asks, by a gateway that has it on.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as codec from "../protocol/codec.ts";
import type { Feature, Frame, Hello } from "../protocol/frames.ts";
import { padJson } from "../protocol/padding.ts";
import type { Dialer } from "../transport/stream.ts";
import { MAX_PREAUTH_BYTES, MAX_PREAUTH_STREAMS } from "./session.ts";
import { fakeDialer } from "./upstream/fake.ts";
import { bytes, endSessionsAfterEach, harness, isErr, memoryBackend, sleep, waitUntil } from "./session.testing.ts";

endSessionsAfterEach();

/** A fake echo that counts its dials. */
function countingUpstream() {
  const inner = fakeDialer();
  const counter = { dials: 0 };
  const dialer: Dialer = {
    dial(target, signal) {
      counter.dials++;
      return inner.dial(target, signal);
    },
  };
  return { counter, upstream: { dialer, defaultTarget: { host: "echo", port: 0 } } };
}

const hello = (extra: Partial<Hello> = {}): Hello => ({
  type: "hello",
  device_id: "dev1",
  token: "secret-token-1",
  client_version: "test",
  features: ["flow", "binary", "half_close", "early_data"],
  ...extra,
});

/** What a new client sends on a fresh socket when early data is on: hello, stream_open, the first bytes — all JSON, padded. */
function early(h: ReturnType<typeof harness>, helloFrame: Hello, id = "1", data = bytes("GET / HTTP/1.1\r\n\r\n")): void {
  for (const f of [helloFrame, { type: "stream_open", stream_id: id }, { type: "stream_data", stream_id: id, data }] as Frame[]) {
    h.session.message(padJson(codec.encodeText(f)));
  }
}

describe("session: early data", () => {
  test("a stream opened behind the hello runs after auth_result; early_data granted to a client that asks", async () => {
    const { counter, upstream } = countingUpstream();
    const h = harness({ upstream });
    early(h, hello());
    assert.equal(counter.dials, 0, "nothing is dialled before the device is validated");
    const r = await h.waitFrame((f) => f.type === "auth_result", "auth_result");
    assert.ok(r.type === "auth_result" && r.ok);
    assert.ok(r.features.includes("early_data"));
    await waitUntil(() => h.received("1").length > 0, "the early bytes echoed");
    assert.equal(new TextDecoder().decode(h.received("1")), "GET / HTTP/1.1\r\n\r\n");
    assert.equal(counter.dials, 1);
    // auth_result came first: no stream frame precedes it.
    assert.equal(h.sock.frames.findIndex((f) => f.type === "auth_result"), 0);
  });

  test("a gateway with early data off (as an old one) does not grant it, yet still runs what was pipelined (v1)", async () => {
    const h = harness({ config: { earlyData: false } });
    early(h, hello());
    const r = await h.waitFrame((f) => f.type === "auth_result", "auth_result");
    assert.ok(r.type === "auth_result" && r.ok);
    assert.ok(!r.features.includes("early_data"));
    await waitUntil(() => h.received("1").length > 0, "the pipelined bytes echoed");
  });

  test("not granted to a client that does not ask", async () => {
    const h = harness();
    const r = await h.hello({ features: ["flow", "binary"] });
    assert.ok(r.type === "auth_result" && r.ok);
    assert.deepEqual(r.features, ["flow", "binary"]);
  });

  for (
    const [why, token, reason] of [["a wrong token", "wrong", "auth_failed"], ["a revoked device", "secret-token-1", "revoked"]]
  ) {
    test(`${why}: the held stream is dropped and nothing is dialled`, async () => {
      const { counter, upstream } = countingUpstream();
      const backend = memoryBackend({ dev1: { token: "secret-token-1", reason: reason === "revoked" ? "revoked" : undefined } });
      const h = harness({ upstream, backend });
      early(h, hello({ token }));
      const r = await h.waitFrame((f) => f.type === "auth_result", "auth_result");
      assert.ok(r.type === "auth_result" && !r.ok);
      assert.equal(r.code, "auth_failed");
      await waitUntil(() => h.sock.closed !== null, "close");
      assert.equal(h.sock.closed!.code, 1008);
      await sleep(20);
      assert.equal(counter.dials, 0, "no upstream dial for an unauthenticated client");
      assert.deepEqual(h.sock.frames.map((f) => f.type), ["auth_result"], "nothing but the refusal");
      assert.equal(h.session.bufferedBytes, 0);
    });
  }

  test(`the caps: more than ${MAX_PREAUTH_STREAMS} streams, or ${MAX_PREAUTH_BYTES} bytes, before auth_result end the handshake, with no dial`, async () => {
    for (const flood of ["streams", "bytes"] as const) {
      const { counter, upstream } = countingUpstream();
      // A validator that takes its time, so everything below arrives before auth_result.
      const backend = memoryBackend({ dev1: { token: "secret-token-1" } });
      const slow = {
        ...backend,
        validate: async (req: Parameters<typeof backend.validate>[0]) => (await sleep(50), backend.validate(req)),
      };
      const h = harness({ upstream, backend: slow as typeof backend });
      h.send(hello());
      if (flood === "streams") {
        for (let i = 1; i <= MAX_PREAUTH_STREAMS; i++) h.send({ type: "stream_open", stream_id: String(i) });
        assert.equal(h.sock.closed, null, `${MAX_PREAUTH_STREAMS} streams are within the cap`);
        h.send({ type: "stream_open", stream_id: "99" });
      } else {
        const open = codec.encodeText({ type: "stream_open", stream_id: "1" });
        const data = codec.encodeText({ type: "stream_data", stream_id: "1", data: new Uint8Array(16 * 1024) });
        h.send(open);
        // The cap counts the messages as they came (JSON here, so base64-sized).
        for (let held = open.length + data.length; held <= MAX_PREAUTH_BYTES; held += data.length) h.send(data);
        assert.equal(h.sock.closed, null, "up to the byte cap");
        h.send(data);
      }
      assert.ok(h.find(isErr("unexpected_frame")), `${flood}: an error names the flood`);
      await waitUntil(() => h.sock.closed !== null, "close");
      assert.equal(h.sock.closed!.code, 1008);
      await sleep(80);
      assert.equal(counter.dials, 0, `${flood}: nothing dialled`);
      assert.equal(h.find((f) => f.type === "auth_result"), undefined, `${flood}: no auth_result after the flood`);
    }
  });

  test("the hello decoder keeps both feature names (they are known, not dropped as unknown)", () => {
    const names: Feature[] = ["padding", "early_data"];
    const r = codec.decodeText(JSON.stringify({ ...hello(), features: names }));
    assert.deepEqual(r.ok && r.frame.type === "hello" && r.frame.features, names);
  });
});
