import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StreamError } from "./errors.ts";
import { UnitReader } from "./unit-reader.ts";

/** A toy length-prefixed format: one byte n, then n bytes (n = 0 is an empty record, 255 is an error). */
class Records extends UnitReader<Uint8Array> {
  private header = true;
  constructor() {
    super(1);
  }
  protected consume(unit: Uint8Array, out: Uint8Array[]): StreamError | null {
    if (this.header) {
      if (unit[0] === 255) return new StreamError("bad_record", "255 is not a length");
      this.header = false;
      this.need = unit[0]!;
      return null;
    }
    out.push(unit);
    this.header = true;
    this.need = 1;
    return null;
  }
}

const stream = Uint8Array.from([3, 1, 2, 3, 0, 2, 9, 9, 1, 7]);
const expected = [[1, 2, 3], [], [9, 9], [7]];

describe("UnitReader", () => {
  test("every split point yields the same units; whole units are views, split ones copies", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const r = new Records();
      const a = r.push(stream.subarray(0, cut)) as Uint8Array[];
      const b = r.push(stream.subarray(cut)) as Uint8Array[];
      assert.deepEqual([...a, ...b].map((u) => [...u]), expected, `cut at ${cut}`);
      for (const u of [...a, ...b]) {
        if (u.length > 0 && u.buffer === stream.buffer) assert.ok(stream.includes(u[0]!));
      }
      assert.equal(r.buffered, 0);
    }
    const whole = new Records().push(stream) as Uint8Array[];
    assert.ok(whole.filter((u) => u.length).every((u) => u.buffer === stream.buffer), "no copy when nothing straddles");
  });
  test("byte by byte; a unit in progress is held, at its exact size", () => {
    const r = new Records();
    const out: number[][] = [];
    for (const b of stream) {
      const got = r.push(Uint8Array.of(b));
      assert.ok(!(got instanceof StreamError));
      out.push(...got.map((u) => [...u]));
      if (out.length === 0 && b !== 3) assert.equal(r.buffered, 3);
    }
    assert.deepEqual(out, expected);
  });
  test("an error ends the stream, and every later push returns it", () => {
    const r = new Records();
    const e = r.push(Uint8Array.of(1, 5, 255, 1));
    assert.ok(e instanceof StreamError && e.code === "bad_record");
    assert.equal(r.push(Uint8Array.of(1, 5)), e);
    assert.equal(r.buffered, 0);
  });
});
