import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { StreamError } from "../transport/stream.ts";
import { decodeEarlyData, EARLY_DATA_MAX_BYTES, encodeEarlyData } from "./ws-early-data.ts";

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff);

describe("WebSocket early data in Sec-WebSocket-Protocol", () => {
  test("base64url without padding, as Go's RawURLEncoding writes it", () => {
    assert.equal(encodeEarlyData(Uint8Array.of(0xfb, 0xff)), "-_8");
    assert.deepEqual(decodeEarlyData("-_8"), Uint8Array.of(0xfb, 0xff));
    for (const n of [1, 2, 3, 4, 31, 32, 33, 1000]) {
      const b = bytes(n);
      const text = encodeEarlyData(b);
      assert.match(text, /^[A-Za-z0-9_-]+$/);
      assert.deepEqual(decodeEarlyData(text), b, `${n} bytes`);
    }
  });

  test("also the standard alphabet and padding, which Xray's server translates", () => {
    assert.deepEqual(decodeEarlyData("+/8="), Uint8Array.of(0xfb, 0xff));
    assert.deepEqual(decodeEarlyData("AQ=="), Uint8Array.of(1));
    assert.deepEqual(decodeEarlyData(" AQID "), Uint8Array.of(1, 2, 3), "header whitespace around the value");
  });

  test("values that are no early data: absent, empty, subprotocol lists, other characters, impossible lengths", () => {
    for (
      const v of [
        null,
        undefined,
        "",
        "   ",
        "chat, superchat",
        "chat,superchat",
        "v2.httvps",
        "a b",
        "AQ==AQ",
        "ABCDE",
        "é",
        "A",
      ]
    ) {
      assert.equal(decodeEarlyData(v), undefined, JSON.stringify(v));
    }
  });

  test("a single base64url token is early data even when it looks like a word (as Xray reads it)", () => {
    assert.deepEqual(decodeEarlyData("chat"), Uint8Array.of(0x72, 0x16, 0xad));
  });

  test(`bounded: ${EARLY_DATA_MAX_BYTES} bytes pass, one more is ws_early_data_too_large, checked before decoding`, () => {
    assert.equal((decodeEarlyData(encodeEarlyData(bytes(EARLY_DATA_MAX_BYTES))) as Uint8Array).length, EARLY_DATA_MAX_BYTES);
    const over = decodeEarlyData(encodeEarlyData(bytes(EARLY_DATA_MAX_BYTES + 1)));
    assert.ok(over instanceof StreamError && over.code === "ws_early_data_too_large");
    const huge = decodeEarlyData("A".repeat(10_000_000));
    assert.ok(huge instanceof StreamError && huge.code === "ws_early_data_too_large");
    const custom = decodeEarlyData(encodeEarlyData(bytes(100)), 99);
    assert.ok(custom instanceof StreamError);
    assert.equal((decodeEarlyData(encodeEarlyData(bytes(99)), 99) as Uint8Array).length, 99);
  });
});
