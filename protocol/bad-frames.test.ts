import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BadFrameRun, MAX_BAD_FRAMES } from "./bad-frames.ts";

describe("BadFrameRun", () => {
  test("reaches the limit on the limit-th bad frame in a row; a good frame starts over", () => {
    const run = new BadFrameRun(3);
    assert.equal(run.bad(), false);
    assert.equal(run.bad(), false);
    run.good();
    assert.equal(run.count, 0);
    assert.equal(run.bad(), false);
    assert.equal(run.bad(), false);
    assert.equal(run.bad(), true);
    assert.equal(run.count, 3);
  });

  test("the default limit is the protocol's 100", () => {
    const run = new BadFrameRun();
    assert.equal(run.limit, MAX_BAD_FRAMES);
    assert.equal(MAX_BAD_FRAMES, 100);
    for (let i = 1; i < 100; i++) assert.equal(run.bad(), false);
    assert.equal(run.bad(), true);
  });
});
