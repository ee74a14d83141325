// The frames and limits of UDP streams (docs/03 §11): stream_open.network, the udp feature,
// and the datagram limits in auth_result, through the JSON and binary codecs.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeBinary, decodeText, encodeBinary, encodeText, MAX_DATA_BYTES, MAX_DATAGRAM_BYTES } from "./codec.ts";
import type { Frame } from "./frames.ts";

const roundTrip = (f: Frame) => {
  const text = decodeText(encodeText(f));
  const bin = decodeBinary(encodeBinary(f));
  assert.ok(text.ok && bin.ok);
  assert.deepEqual(text.frame, f);
  assert.deepEqual(bin.frame, f);
};

describe("UDP frames", () => {
  test("stream_open with network udp (and tcp) round-trips, with and without a first datagram", () => {
    roundTrip({ type: "stream_open", stream_id: "9", target: { host: "1.1.1.1", port: 53 }, network: "udp" });
    roundTrip({
      type: "stream_open",
      stream_id: "10",
      target: { host: "::1", port: 443 },
      network: "udp",
      data: Uint8Array.of(0xab, 0xcd, 0),
    });
    roundTrip({ type: "stream_open", stream_id: "11", target: { host: "example.com", port: 80 }, network: "tcp" });
  });

  test("an unknown network is bad_frame naming the field and the stream", () => {
    for (const network of ['"sctp"', '""', "1", "null", '"UDP"']) {
      const r = decodeText(`{"type":"stream_open","stream_id":"s1","network":${network}}`);
      assert.ok(!r.ok, network);
      assert.equal(r.error.code, "bad_frame");
      assert.equal(r.error.stream_id, "s1");
      assert.match(r.error.message, /^stream_open\.network: expected "tcp" or "udp"/);
    }
  });

  test("hello: udp is a known feature, granted in the canonical order; unknown names still drop", () => {
    const r = decodeText('{"type":"hello","device_id":"d","token":"t","client_version":"1","features":["udp","quic","flow"]}');
    assert.ok(r.ok && r.frame.type === "hello");
    assert.deepEqual(r.frame.features, ["flow", "udp"]);
  });

  test("auth_result carries the datagram limits when present; absent is fine; bad values are bad_frame", () => {
    const limits = {
      max_frame_bytes: 131072,
      max_data_bytes: 65536,
      max_streams: 1024,
      idle_timeout_ms: 120000,
      ping_interval_ms: 30000,
    };
    roundTrip({
      type: "auth_result",
      ok: true,
      session_id: "s",
      features: ["udp"],
      limits: { ...limits, max_datagram_bytes: MAX_DATAGRAM_BYTES, udp_idle_timeout_ms: 60000 },
    });
    roundTrip({ type: "auth_result", ok: true, session_id: "s", features: [], limits });
    const bad = decodeText(
      JSON.stringify({
        type: "auth_result",
        ok: true,
        session_id: "s",
        features: [],
        limits: { ...limits, max_datagram_bytes: 0 },
      }),
    );
    assert.ok(!bad.ok && bad.error.code === "bad_frame" && bad.error.message.startsWith("auth_result.limits.max_datagram_bytes"));
  });

  test("every datagram fits one stream_data and one Shadowsocks UDP packet", () => {
    assert.ok(MAX_DATAGRAM_BYTES <= MAX_DATA_BYTES);
    assert.equal(MAX_DATAGRAM_BYTES + 32 + 259 + 16, 65507);
  });
});
