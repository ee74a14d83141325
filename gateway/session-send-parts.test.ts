// Stream data through SessionSocket.sendParts (the Node adapter's frame writer): the session hands
// the compact head and the payload separately to a socket that has it, and the client must see
// exactly the messages it saw before: same bytes, same order, across streams and sizes.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as codec from "../protocol/codec.ts";
import { joinParts } from "../runtime/node-ws-frame.ts";
import { bytes, endSessionsAfterEach, harness, MemorySocket, sha, waitUntil } from "./session.testing.ts";

endSessionsAfterEach();

/** A MemorySocket that also takes sendParts, joining as the Node adapter's fallback does, and counts the calls. */
class PartsSocket extends MemorySocket {
  parts: { head: Uint8Array; body: number }[] = [];
  sendParts(head: Uint8Array, body: Uint8Array): void {
    this.parts.push({ head: head.slice(), body: body.length });
    this.send(joinParts(head, body));
  }
}

describe("session: stream data through sendParts", () => {
  test("binary stream_data goes as head + payload, each message what encodeStreamDataBinary would send", async () => {
    const sock = new PartsSocket();
    const h = harness({ socket: sock });
    await h.hello({ features: ["binary", "flow"] });
    // the fake upstream echoes: big and small payloads on two streams, interleaved
    const a = new Uint8Array(200_000).map((_, i) => i * 7);
    const b = bytes("x");
    h.send({ type: "stream_open", stream_id: "a" });
    h.send({ type: "stream_open", stream_id: "bb" });
    // (a client's stream_data carries at most max_data_bytes, 64 KiB)
    for (let at = 0; at < a.length; at += 50_000) {
      h.session.message(codec.encodeStreamDataBinary("a", a.subarray(at, at + 50_000)));
      if (at % 100_000 === 0) h.session.message(codec.encodeStreamDataBinary("bb", b));
    }
    await waitUntil(() => h.received("a").length === a.length && h.received("bb").length === 2, "both echoes");
    assert.equal(sha(h.received("a")), sha(a));
    assert.deepEqual([...h.received("bb")], [...b, ...b]);
    assert.ok(sock.parts.length >= 3, `stream data went through sendParts (${sock.parts.length} calls)`);
    for (const p of sock.parts) {
      const id = new TextDecoder().decode(p.head.subarray(2));
      assert.ok(id === "a" || id === "bb");
      assert.deepEqual([...p.head], [...codec.encodeStreamDataBinary(id, new Uint8Array(0))]);
    }
    // every stream_data message is byte for byte the compact encoding of its frame
    for (const m of sock.messages) {
      if (typeof m === "string") continue;
      const r = codec.decodeBinary(m);
      assert.ok(r.ok);
      if (r.frame.type !== "stream_data") continue; // window_update and stream_end go compact too
      assert.deepEqual(m, codec.encodeStreamDataBinary(r.frame.stream_id, r.frame.data));
    }
  });

  test("without the binary feature, stream data stays JSON text and sendParts is not used", async () => {
    const sock = new PartsSocket();
    const h = harness({ socket: sock });
    await h.hello({ features: ["flow"] });
    h.send({ type: "stream_open", stream_id: "s1", data: bytes("hello") });
    await waitUntil(() => h.received("s1").length === 5, "echo");
    assert.equal(sock.parts.length, 0);
    assert.equal(sock.binaryFrames, 0);
  });
});
