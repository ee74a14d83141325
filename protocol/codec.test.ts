import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mutateBytes, mutateText, prng, randomValue } from "./fuzz.testing.ts";
import { Buffer } from "node:buffer";
import {
  BinaryKind,
  decodeBinary,
  type DecodeResult,
  decodeText,
  DEFAULT_LIMITS,
  encodeBinary,
  encodeStreamDataBinary,
  encodeStreamDataText,
  encodeText,
  MAX_DATA_BYTES,
  MAX_FRAME_BYTES,
  MAX_WINDOW,
} from "./codec.ts";
import { base64DecodedLength, decodeBase64, encodeBase64 } from "./base64.ts";
import { isErrorCode } from "./errors.ts";
import { wrapPadded } from "./padding.ts";
import type { Frame } from "./frames.ts";
import { errorOf, frameOf } from "./decode.testing.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const u8 = (...xs: number[]) => new Uint8Array(xs);

const payload64k = new Uint8Array(MAX_DATA_BYTES).map((_, i) => (i * 7919) & 255);

const samples: Frame[] = [
  { type: "hello", device_id: "dev-1", token: "tok", client_version: "1.0" },
  {
    type: "hello",
    device_id: "dev-1",
    token: "tok",
    client_version: "1.0",
    features: ["flow", "binary", "half_close"],
    window: 262144,
    protocol: 1,
  },
  {
    type: "auth_result",
    ok: true,
    session_id: "sess-1",
    features: ["flow"],
    window: 65536,
    limits: { ...DEFAULT_LIMITS },
    protocol: 1,
  },
  { type: "auth_result", ok: true, session_id: "sess-2", features: [], limits: { ...DEFAULT_LIMITS } },
  { type: "auth_result", ok: false, code: "bad_token", message: "the token does not match the device" },
  { type: "stream_open", stream_id: "s1" },
  { type: "stream_open", stream_id: "7", target: { host: "example.com", port: 443 } },
  { type: "stream_open", stream_id: "a.b_c:d-e", target: { host: "::1", port: 1 }, data: bytes("GET / HTTP/1.1\r\n\r\n") },
  { type: "stream_data", stream_id: "s1", data: bytes("hello") },
  { type: "stream_data", stream_id: "s1", data: new Uint8Array(0) },
  { type: "stream_data", stream_id: "x".repeat(64), data: payload64k },
  { type: "stream_end", stream_id: "s1" },
  { type: "stream_close", stream_id: "s1" },
  { type: "stream_close", stream_id: "s1", code: "upstream_refused", message: "connection refused" },
  { type: "window_update", stream_id: "s1", increment: 1 },
  { type: "window_update", stream_id: "s1", increment: MAX_WINDOW },
  { type: "ping" },
  { type: "ping", id: "42" },
  { type: "pong", id: "42" },
  { type: "error", code: "unknown_stream", message: "no stream s9", stream_id: "s9" },
  { type: "error", code: "bad_frame", message: "not valid JSON" },
  { type: "goaway", code: "shutdown" },
  { type: "goaway", code: "shutdown", message: "restarting", drain_ms: 10000 },
];

describe("codec: round trips", () => {
  test("every frame type round-trips through text", () => {
    for (const f of samples) {
      const text = encodeText(f);
      assert.deepStrictEqual(frameOf(decodeText(text)), f, text.slice(0, 200));
      assert.equal(encodeText(frameOf(decodeText(text))), text);
    }
  });

  test("every frame type round-trips through binary", () => {
    for (const f of samples) {
      const bin = encodeBinary(f);
      assert.deepStrictEqual(frameOf(decodeBinary(bin)), f, f.type);
    }
  });

  test("the traffic frames use the compact layouts, the rest JSON", () => {
    assert.deepStrictEqual(
      encodeBinary({ type: "stream_data", stream_id: "s1", data: bytes("hi") }),
      u8(1, 2, 115, 49, 104, 105),
    );
    assert.deepStrictEqual(
      encodeBinary({ type: "window_update", stream_id: "s1", increment: 0x01020304 }),
      u8(2, 2, 115, 49, 1, 2, 3, 4),
    );
    assert.deepStrictEqual(encodeBinary({ type: "stream_end", stream_id: "s1" }), u8(3, 2, 115, 49));
    const ping = encodeBinary({ type: "ping", id: "1" });
    assert.equal(ping[0], BinaryKind.json);
    assert.equal(new TextDecoder().decode(ping.subarray(1)), '{"type":"ping","id":"1"}');
    assert.deepStrictEqual(encodeStreamDataBinary("s1", bytes("hi")), u8(1, 2, 115, 49, 104, 105));
  });

  test("binary stream_data payload is a view into the message, not a copy", () => {
    const msg = Buffer.concat([Buffer.alloc(7), Buffer.from(encodeStreamDataBinary("s1", bytes("hello")))]).subarray(7);
    const f = frameOf(decodeBinary(msg));
    assert.equal(f.type, "stream_data");
    if (f.type !== "stream_data") return;
    assert.equal(f.data.buffer, msg.buffer);
    assert.equal(f.data.byteOffset, msg.byteOffset + 4);
    assert.equal(Object.getPrototypeOf(f.data), Uint8Array.prototype);
    assert.deepStrictEqual(f.data, bytes("hello"));
  });

  test("a stream_data JSON frame inside a binary 0x00 message decodes", () => {
    const text = encodeStreamDataText("s1", bytes("hello"));
    const msg = new Uint8Array([0, ...bytes(text)]);
    assert.deepStrictEqual(frameOf(decodeBinary(msg)), { type: "stream_data", stream_id: "s1", data: bytes("hello") });
  });

  test("encoders never emit an unframeable message for an invalid stream id", () => {
    const bad = 'a"b';
    const r = decodeText(encodeStreamDataText(bad, bytes("x")));
    assert.equal(errorOf(r).code, "bad_frame");
    const b = encodeStreamDataBinary("ж".repeat(3), bytes("x"));
    assert.equal(b[0], BinaryKind.json);
    assert.equal(errorOf(decodeBinary(b)).code, "bad_frame");
    assert.equal(encodeBinary({ type: "window_update", stream_id: "s1", increment: 0 })[0], BinaryKind.json);
  });
});

describe("codec: the seed README's wscat lines", () => {
  test("hello", () => {
    const line = '{"type":"hello","device_id":"<device>","token":"<token>","client_version":"1.0"}';
    assert.deepStrictEqual(frameOf(decodeText(line)), {
      type: "hello",
      device_id: "<device>",
      token: "<token>",
      client_version: "1.0",
    });
  });
  test("stream_open", () => {
    assert.deepStrictEqual(frameOf(decodeText('{"type":"stream_open","stream_id":"s1"}')), {
      type: "stream_open",
      stream_id: "s1",
    });
  });
  test("stream_data decodes to 'hello' and echoes back byte-identical", () => {
    const line = '{"type":"stream_data","stream_id":"s1","data":"aGVsbG8="}';
    const f = frameOf(decodeText(line));
    assert.deepStrictEqual(f, { type: "stream_data", stream_id: "s1", data: bytes("hello") });
    assert.equal(encodeText(f), line);
    if (f.type === "stream_data") assert.equal(encodeStreamDataText(f.stream_id, f.data), line);
  });
  test("the same line with other spacing or key order decodes the same", () => {
    for (
      const line of [
        '{ "type": "stream_data", "stream_id": "s1", "data": "aGVsbG8=" }',
        '{"data":"aGVsbG8=","stream_id":"s1","type":"stream_data"}',
        '{"type":"stream_data","stream_id":"s1","data":"aGVsbG8=","extra":{"x":[1,2]}}',
      ]
    ) {
      assert.deepStrictEqual(frameOf(decodeText(line)), { type: "stream_data", stream_id: "s1", data: bytes("hello") }, line);
    }
  });
});

describe("codec: forward compatibility", () => {
  test("unknown fields are ignored", () => {
    const f = frameOf(decodeText('{"type":"hello","device_id":"d","token":"t","client_version":"1.0","future":true}'));
    assert.deepStrictEqual(f, { type: "hello", device_id: "d", token: "t", client_version: "1.0" });
    assert.deepStrictEqual(frameOf(decodeText('{"type":"stream_end","stream_id":"s1","x":1}')), {
      type: "stream_end",
      stream_id: "s1",
    });
  });
  test("unknown features are dropped, known ones kept once in canonical order", () => {
    const f = frameOf(
      decodeText(
        '{"type":"hello","device_id":"d","token":"t","client_version":"1","features":["zstd","binary","flow","binary"]}',
      ),
    );
    assert.deepStrictEqual(f.type === "hello" && f.features, ["flow", "binary"]);
  });
  test("unknown error codes from a peer are accepted", () => {
    const f = frameOf(decodeText('{"type":"stream_close","stream_id":"s1","code":"some_future_code"}'));
    assert.equal(f.type === "stream_close" && f.code, "some_future_code");
  });
});

describe("codec: malformed input yields the right code", () => {
  const cases: [label: string, input: string, code: string, mentions?: string, streamId?: string][] = [
    ["not JSON", "hello", "bad_frame", "JSON"],
    ["truncated JSON", '{"type":"stream_open","stream_id":"s1"', "bad_frame", "JSON"],
    ["empty text", "", "bad_frame"],
    ["JSON array", "[1,2]", "bad_frame", "object"],
    ["JSON null", "null", "bad_frame", "object"],
    ["JSON number", "42", "bad_frame", "object"],
    ["JSON string", '"stream_open"', "bad_frame", "object"],
    ["missing type", '{"stream_id":"s1"}', "bad_frame", "type"],
    ["numeric type", '{"type":7}', "bad_frame", "type"],
    ["unknown type", '{"type":"stream_reset","stream_id":"s1"}', "unknown_type", "stream_reset"],
    ["base64 without padding", '{"type":"stream_data","stream_id":"s1","data":"aGVsbG8"}', "bad_data", "stream_data.data", "s1"],
    ["base64 with a space", '{"type":"stream_data","stream_id":"s1","data":"aGVs bG8="}', "bad_data", "stream_data.data", "s1"],
    [
      "base64 with an escaped newline",
      '{"type":"stream_data","stream_id":"s1","data":"aGVs\\nbG8="}',
      "bad_data",
      "stream_data.data",
      "s1",
    ],
    ["URL-safe base64", '{"type":"stream_data","stream_id":"s1","data":"-_-_"}', "bad_data", "stream_data.data", "s1"],
    [
      "non-canonical trailing bits",
      '{"type":"stream_data","stream_id":"s1","data":"aGVsbG9="}',
      "bad_data",
      "stream_data.data",
      "s1",
    ],
    ["padding only", '{"type":"stream_data","stream_id":"s1","data":"===="}', "bad_data", "stream_data.data", "s1"],
    ["padding in the middle", '{"type":"stream_data","stream_id":"s1","data":"QQ==QQ=="}', "bad_data", "stream_data.data", "s1"],
    ["non-ASCII in base64", '{"type":"stream_data","stream_id":"s1","data":"aGVsbGé="}', "bad_data", "stream_data.data", "s1"],
    ["data is a number", '{"type":"stream_data","stream_id":"s1","data":5}', "bad_frame", "stream_data.data", "s1"],
    ["data missing", '{"type":"stream_data","stream_id":"s1"}', "bad_frame", "stream_data.data", "s1"],
    ["stream_open bad base64", '{"type":"stream_open","stream_id":"s1","data":"!!!!"}', "bad_data", "stream_open.data", "s1"],
    ["empty stream id", '{"type":"stream_data","stream_id":"","data":""}', "bad_frame", "stream_id"],
    ["65-char stream id", `{"type":"stream_end","stream_id":"${"a".repeat(65)}"}`, "bad_frame", "stream_id"],
    ["stream id with a space", '{"type":"stream_open","stream_id":"s 1"}', "bad_frame", "stream_id"],
    ["stream id with a slash", '{"type":"stream_close","stream_id":"s/1"}', "bad_frame", "stream_id"],
    ["non-ASCII stream id", '{"type":"window_update","stream_id":"ж","increment":1}', "bad_frame", "stream_id"],
    ["numeric stream id", '{"type":"stream_open","stream_id":1}', "bad_frame", "stream_id"],
    [
      "port 0",
      '{"type":"stream_open","stream_id":"s1","target":{"host":"a","port":0}}',
      "bad_frame",
      "stream_open.target.port",
      "s1",
    ],
    [
      "port 65536",
      '{"type":"stream_open","stream_id":"s1","target":{"host":"a","port":65536}}',
      "bad_frame",
      "stream_open.target.port",
      "s1",
    ],
    [
      "fractional port",
      '{"type":"stream_open","stream_id":"s1","target":{"host":"a","port":80.5}}',
      "bad_frame",
      "stream_open.target.port",
      "s1",
    ],
    [
      "string port",
      '{"type":"stream_open","stream_id":"s1","target":{"host":"a","port":"80"}}',
      "bad_frame",
      "stream_open.target.port",
      "s1",
    ],
    [
      "missing port",
      '{"type":"stream_open","stream_id":"s1","target":{"host":"a"}}',
      "bad_frame",
      "stream_open.target.port",
      "s1",
    ],
    [
      "empty host",
      '{"type":"stream_open","stream_id":"s1","target":{"host":"","port":80}}',
      "bad_frame",
      "stream_open.target.host",
      "s1",
    ],
    [
      "host with space",
      '{"type":"stream_open","stream_id":"s1","target":{"host":"a b","port":80}}',
      "bad_frame",
      "stream_open.target.host",
      "s1",
    ],
    [
      "host with newline",
      '{"type":"stream_open","stream_id":"s1","target":{"host":"a\\nb","port":80}}',
      "bad_frame",
      "stream_open.target.host",
      "s1",
    ],
    [
      "host of 256 chars",
      `{"type":"stream_open","stream_id":"s1","target":{"host":"${"a".repeat(256)}","port":80}}`,
      "bad_frame",
      "stream_open.target.host",
      "s1",
    ],
    ["target not an object", '{"type":"stream_open","stream_id":"s1","target":"a:80"}', "bad_frame", "stream_open.target", "s1"],
    [
      "window increment 0",
      '{"type":"window_update","stream_id":"s1","increment":0}',
      "bad_frame",
      "window_update.increment",
      "s1",
    ],
    [
      "negative window increment",
      '{"type":"window_update","stream_id":"s1","increment":-5}',
      "bad_frame",
      "window_update.increment",
      "s1",
    ],
    [
      "fractional window increment",
      '{"type":"window_update","stream_id":"s1","increment":1.5}',
      "bad_frame",
      "window_update.increment",
      "s1",
    ],
    [
      "window increment 2^31",
      '{"type":"window_update","stream_id":"s1","increment":2147483648}',
      "bad_frame",
      "window_update.increment",
      "s1",
    ],
    [
      "string window increment",
      '{"type":"window_update","stream_id":"s1","increment":"5"}',
      "bad_frame",
      "window_update.increment",
      "s1",
    ],
    ["hello without token", '{"type":"hello","device_id":"d","client_version":"1.0"}', "bad_frame", "hello.token"],
    [
      "hello with a numeric device id",
      '{"type":"hello","device_id":5,"token":"t","client_version":"1.0"}',
      "bad_frame",
      "hello.device_id",
    ],
    [
      "hello window below the minimum",
      '{"type":"hello","device_id":"d","token":"t","client_version":"1","window":100}',
      "bad_frame",
      "hello.window",
    ],
    [
      "hello features not an array",
      '{"type":"hello","device_id":"d","token":"t","client_version":"1","features":"flow"}',
      "bad_frame",
      "hello.features",
    ],
    ["auth_result without ok", '{"type":"auth_result","session_id":"x"}', "bad_frame", "auth_result.ok"],
    [
      "auth_result ok without limits",
      '{"type":"auth_result","ok":true,"session_id":"x","features":[]}',
      "bad_frame",
      "auth_result.limits",
    ],
    ["auth_result failure without code", '{"type":"auth_result","ok":false,"message":"no"}', "bad_frame", "auth_result.code"],
    ["error without message", '{"type":"error","code":"bad_frame"}', "bad_frame", "error.message"],
    ["goaway with negative drain", '{"type":"goaway","code":"shutdown","drain_ms":-1}', "bad_frame", "goaway.drain_ms"],
    ["ping with numeric id", '{"type":"ping","id":1}', "bad_frame", "ping.id"],
  ];
  for (const [label, input, code, mentions, streamId] of cases) {
    test(label, () => {
      const e = errorOf(decodeText(input));
      assert.equal(e.code, code, e.message);
      if (mentions) assert.ok(e.message.includes(mentions), `"${e.message}" should mention ${mentions}`);
      assert.equal(e.stream_id, streamId);
    });
  }

  test("a message longer than max_frame_bytes is refused before parsing, naming the stream", () => {
    const big = encodeStreamDataText("s7", new Uint8Array(MAX_FRAME_BYTES));
    const e = errorOf(decodeText(big));
    assert.equal(e.code, "frame_too_large");
    assert.equal(e.stream_id, "s7");
    // Not JSON at all, but too large: the size is checked first.
    assert.equal(errorOf(decodeText("x".repeat(MAX_FRAME_BYTES + 1))).code, "frame_too_large");
    assert.equal(errorOf(decodeText('{"type":"ping"}', { maxFrameBytes: 10 })).code, "frame_too_large");
  });

  test("a payload above max_data_bytes is frame_too_large for that stream", () => {
    const e = errorOf(decodeText(encodeStreamDataText("s2", new Uint8Array(MAX_DATA_BYTES + 1))));
    assert.deepStrictEqual([e.code, e.stream_id], ["frame_too_large", "s2"]);
    const e2 = errorOf(
      decodeText(encodeText({ type: "stream_open", stream_id: "s3", data: new Uint8Array(100) }), { maxDataBytes: 99 }),
    );
    assert.deepStrictEqual([e2.code, e2.stream_id], ["frame_too_large", "s3"]);
    assert.ok(decodeText(encodeStreamDataText("s2", new Uint8Array(100)), { maxDataBytes: 100 }).ok);
  });

  test("error messages never repeat the token", () => {
    const token = "SECRET-" + "x".repeat(5000);
    const e = errorOf(decodeText(JSON.stringify({ type: "hello", device_id: "d", token, client_version: "1" })));
    assert.equal(e.code, "bad_frame");
    assert.ok(e.message.includes("hello.token"));
    assert.ok(!e.message.includes("SECRET"));
  });
});

describe("codec: malformed binary input", () => {
  const cases: [label: string, input: Uint8Array, code: string, streamId?: string][] = [
    ["empty message", u8(), "bad_frame"],
    ["unknown kind", u8(0x09, 1, 115), "unknown_type"],
    ["kind only", u8(1), "bad_frame"],
    ["zero-length id", u8(1, 0, 104), "bad_frame"],
    ["id length 65", u8(3, 65, ...new Uint8Array(65).fill(97)), "bad_frame"],
    ["truncated id", u8(1, 5, 115, 49), "bad_frame"],
    ["id with a space", u8(3, 2, 115, 32), "bad_frame"],
    ["id with a high byte", u8(3, 2, 115, 0xc3), "bad_frame"],
    ["truncated window_update", u8(2, 2, 115, 49, 0, 0, 1), "bad_frame", "s1"],
    ["window_update with trailing bytes", u8(2, 2, 115, 49, 0, 0, 0, 1, 0), "bad_frame", "s1"],
    ["window_update increment 0", u8(2, 2, 115, 49, 0, 0, 0, 0), "bad_frame", "s1"],
    ["window_update increment 2^31", u8(2, 2, 115, 49, 0x80, 0, 0, 0), "bad_frame", "s1"],
    ["stream_end with trailing bytes", u8(3, 2, 115, 49, 0), "bad_frame", "s1"],
    ["JSON kind with invalid UTF-8", u8(0, 0x7b, 0xff, 0x7d), "bad_frame"],
    ["JSON kind with no JSON", u8(0), "bad_frame"],
    ["JSON kind with an unknown type", new Uint8Array([0, ...bytes('{"type":"nope"}')]), "unknown_type"],
  ];
  for (const [label, input, code, streamId] of cases) {
    test(label, () => {
      const e = errorOf(decodeBinary(input));
      assert.equal(e.code, code, e.message);
      assert.equal(e.stream_id, streamId);
    });
  }

  test("oversized binary stream_data names its stream", () => {
    const e = errorOf(decodeBinary(encodeStreamDataBinary("s5", new Uint8Array(MAX_FRAME_BYTES))));
    assert.deepStrictEqual([e.code, e.stream_id], ["frame_too_large", "s5"]);
    const e2 = errorOf(decodeBinary(encodeStreamDataBinary("s6", new Uint8Array(MAX_DATA_BYTES + 1))));
    assert.deepStrictEqual([e2.code, e2.stream_id], ["frame_too_large", "s6"]);
    assert.ok(decodeBinary(encodeStreamDataBinary("s6", new Uint8Array(MAX_DATA_BYTES))).ok);
  });
});

describe("base64", () => {
  test("matches Buffer's encoding and round-trips for every length 0-300", () => {
    const rnd = prng(1);
    for (let n = 0; n <= 300; n++) {
      const b = new Uint8Array(n).map(() => rnd() & 255);
      const s = encodeBase64(b);
      assert.equal(s, Buffer.from(b).toString("base64"));
      assert.equal(base64DecodedLength(s), n);
      assert.deepStrictEqual(decodeBase64(s), b);
    }
  });
  test("encodes a view of a larger buffer correctly", () => {
    const big = bytes("xxhelloxx");
    assert.equal(encodeBase64(big.subarray(2, 7)), "aGVsbG8=");
  });
  test("rejects everything but canonical padded standard base64", () => {
    for (
      const s of [
        "a",
        "ab",
        "abc",
        "aGVsbG8",
        "aGVsbG8==",
        "aGVs\tbG8=",
        "aGVsbG8=\n",
        "aG-sbG8=",
        "aG_sbG8=",
        "QR==",
        "QUJ=",
        "=AAA",
        "A=AA",
        "é===",
        "\u0000AAA",
      ]
    ) {
      assert.equal(decodeBase64(s), undefined, JSON.stringify(s));
    }
    assert.deepStrictEqual(decodeBase64(""), new Uint8Array(0));
    assert.deepStrictEqual(decodeBase64("QQ=="), bytes("A"));
    assert.deepStrictEqual(decodeBase64("QUI="), bytes("AB"));
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzz: mutated valid frames and random JSON-ish junk. decode must never throw, and must return
// either a frame that survives a re-encode or one of the decoder's codes.

const DECODE_CODES = new Set(["bad_frame", "unknown_type", "bad_data", "frame_too_large"]);
const FUZZ_LIMITS = { maxFrameBytes: 4096, maxDataBytes: 1024 };

function checkResult(r: DecodeResult, input: unknown): void {
  if (r.ok) {
    // A decoded frame must encode to something that decodes to the same frame.
    assert.deepStrictEqual(decodeText(encodeText(r.frame)), { ok: true, frame: r.frame });
    assert.deepStrictEqual(decodeBinary(encodeBinary(r.frame)), { ok: true, frame: r.frame });
    return;
  }
  assert.ok(
    isErrorCode(r.error.code) && DECODE_CODES.has(r.error.code),
    `unexpected code ${r.error.code} for ${String(input).slice(0, 80)}`,
  );
  assert.equal(typeof r.error.message, "string");
  if (r.error.stream_id !== undefined) assert.match(r.error.stream_id, /^[A-Za-z0-9._:-]{1,64}$/);
}

describe("codec: fuzz", () => {
  const small: Frame[] = samples.filter((f) => encodeText(f).length < 600);

  test("200 000 inputs: decode never throws and always returns a frame or a decoder code", () => {
    const rnd = prng(0x5eed);
    const texts = small.map((f) => encodeText(f));
    const bins = small.map((f) => encodeBinary(f));
    // The padded form (docs/03 §12) around each, with short paddings so mutations reach the frame too.
    bins.push(...bins.map((b, i) => wrapPadded(b, i % 7)));
    const b64pool = encodeBase64(new Uint8Array(3000).map(() => rnd() & 255)).replace(/=/g, "");
    const N = 200_000;
    for (let i = 0; i < N; i++) {
      const pick = rnd() % 10;
      let input: string | Uint8Array;
      if (pick < 3) input = mutateText(texts[rnd() % texts.length]!, rnd);
      else if (pick < 5) input = mutateBytes(bins[rnd() % bins.length]!, rnd);
      else if (pick === 5) {
        // A valid frame with one field swapped for something else.
        const o = JSON.parse(texts[rnd() % texts.length]!) as Record<string, unknown>;
        const keys = Object.keys(o);
        o[keys[rnd() % keys.length]!] = randomValue(rnd, 1);
        input = JSON.stringify(o);
      } else if (pick === 6) {
        // stream_data with base64-ish text of any length: valid, invalid and too large (1 KiB limit).
        const n = (rnd() % 400) * 4;
        const from = rnd() % (b64pool.length - n);
        let d = b64pool.slice(from, from + n);
        if (rnd() % 2) d = d.slice(0, d.length - (rnd() % 3)) + "==".slice(0, rnd() % 3);
        if (rnd() % 4 === 0) d = mutateText(d, rnd);
        input = `{"type":"stream_data","stream_id":"s${rnd() % 9}","data":"${d}"}`;
      } else if (pick < 9) {
        const v = randomValue(rnd, 0);
        const o = v !== null && typeof v === "object" && !Array.isArray(v) && rnd() % 3 !== 0
          ? { type: randomValue(rnd, 3), ...v }
          : v;
        input = JSON.stringify(o) ?? "";
      } else input = new Uint8Array(Array.from({ length: rnd() % 12 }, () => rnd() & 255));
      let r: DecodeResult;
      try {
        r = typeof input === "string" ? decodeText(input, FUZZ_LIMITS) : decodeBinary(input, FUZZ_LIMITS);
      } catch (err) {
        assert.fail(`decode threw on input #${i} ${JSON.stringify(String(input).slice(0, 120))}: ${err}`);
      }
      // Re-encoding every success is the slow part; a sample proves the property as well.
      if (!r.ok || i % 8 === 0) checkResult(r, input);
    }
  });

  test("the canonical stream_data fast path agrees with the general JSON path", () => {
    const rnd = prng(7);
    const base = encodeStreamDataText("s1", bytes("hello, world"));
    for (let i = 0; i < 20_000; i++) {
      const s = mutateText(base, rnd);
      // A leading space is still the same JSON but never takes the fast path.
      const fast = decodeText(s, FUZZ_LIMITS);
      const slow = decodeText(" " + s, FUZZ_LIMITS);
      if (fast.ok || slow.ok) assert.deepStrictEqual(fast, slow, s);
      else {
        assert.equal(fast.error.code, slow.error.code, s);
        assert.equal(fast.error.stream_id, slow.error.stream_id, s);
      }
    }
  });
});
