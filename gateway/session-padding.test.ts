// The gateway's side of "padding" (docs/03 §12), over the in-memory harness: granted only to a
// client that asks for it with "binary" and only when the gateway has it on; a padded
// auth_result; the first PADDED_FRAMES stream_data of each stream padded, the rest not; padded
// frames from the client accepted; and a client or gateway without it never sees padding.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BinaryKind } from "../protocol/codec.ts";
import { type Feature, type Frame } from "../protocol/frames.ts";
import { encodePadded, encodePaddedStreamData, PADDED_FRAMES } from "../protocol/padding.ts";
import { bytes, endSessionsAfterEach, type Harness, harness, sleep, waitUntil } from "./session.testing.ts";

endSessionsAfterEach();

const WITH_PADDING: Feature[] = ["flow", "binary", "half_close", "padding"];

/** The kind byte (or "text") of each stream_data message the gateway sent for stream `id`. */
function dataKinds(h: Harness, id: string): Array<number | "text"> {
  const out: Array<number | "text"> = [];
  h.sock.frames.forEach((f, i) => {
    if (f.type !== "stream_data" || f.stream_id !== id) return;
    const m = h.sock.messages[i]!;
    out.push(typeof m === "string" ? "text" : m[0]!);
  });
  return out;
}

function authMessage(h: Harness): string | Uint8Array {
  return h.sock.messages[h.sock.frames.findIndex((f) => f.type === "auth_result")]!;
}

/** Opens stream `id` and sends `n` small chunks, one at a time, each echoed back. */
async function echoChunks(h: Harness, id: string, n: number, send = (f: Frame) => h.send(f)): Promise<void> {
  send({ type: "stream_open", stream_id: id });
  for (let i = 0; i < n; i++) {
    send({ type: "stream_data", stream_id: id, data: bytes(`chunk ${i};`) });
    await waitUntil(() => new TextDecoder().decode(h.received(id)).includes(`chunk ${i};`), `echo of chunk ${i}`);
  }
}

describe("session: padding", () => {
  test("granted with binary: auth_result padded to 900-1399 bytes, the first 8 stream_data padded, then plain", async () => {
    const h = harness();
    const r = await h.hello({ features: WITH_PADDING });
    assert.ok(r.type === "auth_result" && r.ok);
    assert.deepEqual(r.features, WITH_PADDING);
    const auth = authMessage(h);
    assert.equal(typeof auth, "string");
    assert.match(auth as string, /"pad":"0+"\}$/);
    assert.ok(auth.length >= 900 && auth.length < 1400, `auth_result of ${auth.length}`);

    await echoChunks(h, "1", PADDED_FRAMES + 4);
    const kinds = dataKinds(h, "1");
    assert.ok(kinds.length >= PADDED_FRAMES + 1, `${kinds.length} data messages`);
    assert.deepEqual(kinds.slice(0, PADDED_FRAMES), Array(PADDED_FRAMES).fill(BinaryKind.padded));
    assert.deepEqual(kinds.slice(PADDED_FRAMES), Array(kinds.length - PADDED_FRAMES).fill(BinaryKind.stream_data));
    const padded = h.sock.messages.filter((m) => typeof m !== "string" && m[0] === BinaryKind.padded);
    assert.ok(padded.every((m) => m.length >= 900 && m.length < 1400), "every short frame padded to 900-1399");
    assert.equal(
      new TextDecoder().decode(h.received("1")),
      Array.from({ length: PADDED_FRAMES + 4 }, (_, i) => `chunk ${i};`).join(""),
    );
    // A second stream starts its own count.
    await echoChunks(h, "2", 1);
    assert.deepEqual(dataKinds(h, "2"), [BinaryKind.padded]);
  });

  test("padded frames from the client (stream_open and stream_data) are accepted and stripped", async () => {
    const h = harness();
    await h.hello({ features: WITH_PADDING });
    await echoChunks(
      h,
      "1",
      3,
      (f) => h.session.message(f.type === "stream_data" ? encodePaddedStreamData(f.stream_id, f.data) : encodePadded(f)),
    );
    assert.equal(new TextDecoder().decode(h.received("1")), "chunk 0;chunk 1;chunk 2;");
    assert.equal(h.find((f) => f.type === "error"), undefined);
  });

  const notGranted: Array<[string, Feature[], boolean | undefined]> = [
    ["an old client that does not ask", ["flow", "binary", "half_close"], undefined],
    ["a client that asks without binary (JSON only)", ["flow", "half_close", "padding"], undefined],
    ["a gateway with padding off (GATEWAY_PADDING=0), as an old gateway", WITH_PADDING, false],
  ];
  for (const [who, features, padding] of notGranted) {
    test(`not granted to ${who}: no pad field and no padded frame, ever`, async () => {
      const h = harness({ config: padding === undefined ? {} : { padding } });
      const r = await h.hello({ features });
      assert.ok(r.type === "auth_result" && r.ok);
      assert.ok(!r.features.includes("padding"));
      assert.doesNotMatch(String(authMessage(h)), /"pad"/);
      await echoChunks(h, "1", 3);
      await sleep(10);
      assert.ok(
        h.sock.messages.every((m) => typeof m === "string" ? !m.includes('"pad"') : m[0] !== BinaryKind.padded),
        "nothing padded",
      );
      assert.equal(new TextDecoder().decode(h.received("1")), "chunk 0;chunk 1;chunk 2;");
    });
  }
});
