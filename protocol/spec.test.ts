// docs/03-httvps-protocol.md stays true to the code: every error code, the default limits and
// the examples in the spec are what the codec defines, decodes and writes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import {
  decodeText,
  DEFAULT_LIMITS,
  DEFAULT_WINDOW,
  encodeBinary,
  MAX_DATA_BYTES,
  MAX_FRAME_BYTES,
  MIN_WINDOW,
} from "./codec.ts";
import { ERROR_CODES } from "./errors.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("docs/03-httvps-protocol.md stays true to the code", () => {
  const spec = readFileSync(new URL("../docs/03-httvps-protocol.md", import.meta.url), "utf8");
  test("every error code is documented", () => {
    for (const code of Object.keys(ERROR_CODES)) assert.ok(spec.includes("`" + code + "`"), `docs/03 does not mention ${code}`);
  });
  test("the default limits are the ones in the spec", () => {
    const l = DEFAULT_LIMITS;
    assert.ok(
      spec.includes(`"max_frame_bytes":${l.max_frame_bytes},"max_data_bytes":${l.max_data_bytes},"max_streams":${l.max_streams}`),
    );
    assert.ok(spec.includes(`"idle_timeout_ms":${l.idle_timeout_ms},"ping_interval_ms":${l.ping_interval_ms}`));
    assert.ok(
      spec.includes(`| ${MAX_FRAME_BYTES} B`) && spec.includes(`| ${MAX_DATA_BYTES} B`) && spec.includes(`| ${DEFAULT_WINDOW} B`),
    );
    assert.ok(spec.includes(`${MIN_WINDOW} – 2³¹−1`));
  });
  test("the binary examples in the spec are what the encoder writes", () => {
    const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
    assert.ok(spec.includes(hex(encodeBinary({ type: "stream_data", stream_id: "s1", data: bytes("hi") }))));
    assert.ok(spec.includes(hex(encodeBinary({ type: "window_update", stream_id: "s1", increment: 65536 }))));
    assert.ok(spec.includes(hex(encodeBinary({ type: "stream_end", stream_id: "s1" }))));
    assert.ok(spec.includes(hex(encodeBinary({ type: "ping" }))));
  });
  test("every JSON example line in the spec decodes", () => {
    const lines = spec.split("\n").filter((l) => l.startsWith('{"type":') && !l.includes("<") && !l.endsWith(","));
    assert.ok(lines.length >= 10);
    for (const line of lines) assert.ok(decodeText(line).ok, line);
  });
});
