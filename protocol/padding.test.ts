// The padding feature's wire forms (docs/03 §12): the 0x04 binary wrapper, the JSON `pad`
// field, the sizes they aim for, and the padded session-request path.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { pathOf } from "../runtime/types.ts";
import {
  BinaryKind,
  decodeBinary,
  decodeText,
  encodeBinary,
  encodeStreamDataBinary,
  encodeText,
  MAX_DATA_BYTES,
} from "./codec.ts";
import type { Frame } from "./frames.ts";
import { errorOf, frameOf } from "./decode.testing.ts";
import {
  encodePadded,
  encodePaddedStreamData,
  LONG_PAD_MAX,
  PADDED_HEADER_BYTES,
  paddedSize,
  padJson,
  padPath,
  type RandomInt,
  SHORT_TARGET_MIN,
  SHORT_TARGET_SPAN,
  UPGRADE_PAD_MAX,
  UPGRADE_PAD_MIN,
  wrapPadded,
} from "./padding.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const lowest: RandomInt = () => 0;
const highest: RandomInt = (n) => n - 1;

const frames: Frame[] = [
  { type: "stream_data", stream_id: "7", data: bytes("a TLS ClientHello, say") },
  { type: "stream_data", stream_id: "s1", data: new Uint8Array(0) },
  { type: "window_update", stream_id: "7", increment: 65536 },
  { type: "stream_end", stream_id: "7" },
  { type: "stream_open", stream_id: "9", target: { host: "example.com", port: 443 } },
  { type: "ping", id: "1" },
];

describe("padding: sizes", () => {
  test("a short message lands in [900, 1400); a long one grows by 0-255", () => {
    assert.equal(paddedSize(10, lowest), SHORT_TARGET_MIN);
    assert.equal(paddedSize(899, highest), SHORT_TARGET_MIN + SHORT_TARGET_SPAN - 1);
    assert.equal(SHORT_TARGET_MIN + SHORT_TARGET_SPAN - 1, 1399);
    assert.equal(paddedSize(900, lowest), 900);
    assert.equal(paddedSize(5000, highest), 5000 + LONG_PAD_MAX);
    assert.equal(LONG_PAD_MAX, 255);
  });

  test("with real randomness, 2000 short messages spread over the whole range", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const n = paddedSize(517);
      assert.ok(n >= 900 && n < 1400, `${n}`);
      seen.add(Math.floor((n - 900) / 50));
    }
    assert.equal(seen.size, 10, "every 50-byte band of 900-1399 was hit");
  });
});

describe("padding: the 0x04 binary wrapper", () => {
  test("every frame decodes the same padded as plain, for padding lengths 0 to 65535", () => {
    for (const f of frames) {
      for (const pad of [0, 1, 300, 65535]) {
        const msg = wrapPadded(encodeBinary(f), pad);
        assert.equal(msg[0], BinaryKind.padded);
        assert.equal(msg.length, PADDED_HEADER_BYTES + pad + encodeBinary(f).length);
        assert.deepEqual(frameOf(decodeBinary(msg, { maxFrameBytes: 1 << 20 })), frameOf(decodeBinary(encodeBinary(f))));
      }
    }
  });

  test("a padded 517-byte ClientHello is 900-1399 bytes on the wire and its payload a view, not a copy", () => {
    const hello = new Uint8Array(517).fill(0x16);
    for (let i = 0; i < 200; i++) {
      const msg = encodePaddedStreamData("1", hello);
      assert.ok(msg.length >= 900 && msg.length < 1400, `${msg.length}`);
      const f = frameOf(decodeBinary(msg));
      assert.equal(f.type, "stream_data");
      if (f.type !== "stream_data") return;
      assert.deepEqual(f.data, hello);
      assert.equal(f.data.buffer, msg.buffer);
    }
  });

  test("a full 64 KiB stream_data gets at most 255 bytes more and still fits max_frame_bytes", () => {
    const data = new Uint8Array(MAX_DATA_BYTES);
    const plain = encodeStreamDataBinary("1", data).length;
    const msg = encodePadded(encodeStreamDataBinary("1", data), highest);
    assert.equal(msg.length, plain + PADDED_HEADER_BYTES + LONG_PAD_MAX);
    assert.equal(frameOf(decodeBinary(msg)).type, "stream_data");
  });

  test("encodePadded takes a frame object too (JSON frames go as kind 0x00 inside)", () => {
    const open: Frame = { type: "stream_open", stream_id: "1", target: { host: "example.com", port: 443 } };
    const msg = encodePadded(open, lowest);
    assert.equal(msg.length, SHORT_TARGET_MIN);
    assert.equal(msg[PADDED_HEADER_BYTES + ((msg[1]! << 8) | msg[2]!)], BinaryKind.json);
    assert.deepEqual(frameOf(decodeBinary(msg)), open);
  });

  test("bad shapes are bad_frame; what is inside is judged as itself", () => {
    const cases: Array<[Uint8Array, string, RegExp]> = [
      [Uint8Array.of(4), "bad_frame", /truncated before the padding length/],
      [Uint8Array.of(4, 0), "bad_frame", /truncated before the padding length/],
      [Uint8Array.of(4, 0, 0), "bad_frame", /no frame after the padding/],
      [Uint8Array.of(4, 0, 2, 0, 0), "bad_frame", /no frame after the padding/],
      [Uint8Array.of(4, 0, 5, 0), "bad_frame", /no frame after the padding/],
      [wrapPadded(wrapPadded(encodeBinary(frames[0]!), 1), 1), "bad_frame", /padding inside padding/],
      [wrapPadded(Uint8Array.of(0x7f, 1, 0x31), 3), "unknown_type", /0x7f/],
      [wrapPadded(Uint8Array.of(3, 0), 3), "bad_frame", /stream_end.stream_id/],
    ];
    for (const [msg, code, message] of cases) {
      const e = errorOf(decodeBinary(msg));
      assert.equal(e.code, code, `${[...msg.subarray(0, 8)]}`);
      assert.match(e.message, message);
    }
  });

  test("the whole padded message counts against max_frame_bytes; the payload against max_data_bytes", () => {
    const msg = wrapPadded(encodeStreamDataBinary("1", new Uint8Array(100)), 1000);
    assert.equal(errorOf(decodeBinary(msg, { maxFrameBytes: 1000 })).code, "frame_too_large");
    assert.equal(errorOf(decodeBinary(msg, { maxFrameBytes: 4096, maxDataBytes: 50 })).code, "frame_too_large");
  });
});

describe("padding: the JSON pad field", () => {
  const hello: Frame = {
    type: "hello",
    device_id: "dev-1",
    token: "secret",
    client_version: "1.0",
    features: ["flow", "binary", "padding"],
  };

  test("decoders drop it: a padded frame decodes to the frame without it", () => {
    const json: Frame[] = [
      hello,
      {
        type: "auth_result",
        ok: true,
        session_id: "abc",
        features: ["binary", "padding"],
        limits: { max_frame_bytes: 1, max_data_bytes: 1, max_streams: 1, idle_timeout_ms: 1, ping_interval_ms: 1 },
      },
      ...frames,
    ];
    for (const f of json) {
      const padded = padJson(encodeText(f));
      assert.match(padded, /,"pad":"0*"\}$/);
      assert.deepEqual(frameOf(decodeText(padded)), frameOf(decodeText(encodeText(f))));
    }
  });

  test("a padded hello is 900-1399 characters", () => {
    for (let i = 0; i < 200; i++) {
      const n: number = padJson(encodeText(hello)).length;
      assert.ok(n >= 900 && n < 1400, `${n}`);
    }
    assert.equal(padJson(encodeText(hello), lowest).length, 900);
  });
});

describe("padding: the session request's path", () => {
  test("a random-length query the gateway's router ignores; an existing query is kept", () => {
    const lengths = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const p = padPath("/ws");
      assert.match(p, /^\/ws\?[a-z]{1,6}=[A-Za-z0-9]+$/);
      assert.equal(pathOf(p), "/ws");
      const value = p.split("=")[1]!;
      assert.ok(value.length >= UPGRADE_PAD_MIN && value.length < UPGRADE_PAD_MAX, `${value.length}`);
      lengths.add(p.length);
    }
    assert.ok(lengths.size > 50, `only ${lengths.size} distinct lengths in 300 paths`);
    assert.match(padPath("/a/b?x=1"), /^\/a\/b\?x=1&[a-z]+=/);
    assert.equal(padPath("/ws", lowest), "/ws?a=" + "A".repeat(UPGRADE_PAD_MIN));
  });
});
