// Test helpers for codec results: the frame of a success, the error of a failure, or a test failure.
import assert from "node:assert/strict";
import type { DecodeResult } from "./codec.ts";
import type { Frame } from "./frames.ts";

export function frameOf(r: DecodeResult): Frame {
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.frame;
}

export function errorOf(r: DecodeResult) {
  if (r.ok) assert.fail(`expected an error, got ${JSON.stringify(r.frame)}`);
  return r.error;
}
