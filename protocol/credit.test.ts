import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_CREDIT, MAX_WINDOW, MIN_WINDOW } from "./codec.ts";
import { grantBatch, StreamCredit } from "./credit.ts";

describe("StreamCredit", () => {
  test("credit goes back in quarter-window batches, each announced once", () => {
    const c = new StreamCredit(1000, 500);
    assert.equal(grantBatch(1000), 250);
    assert.equal(c.received(600), true);
    assert.equal(c.recv, 400);
    assert.equal(c.consumed(100), 0);
    assert.equal(c.consumed(149), 0);
    assert.equal(c.recv, 400, "nothing back before the batch is full");
    assert.equal(c.consumed(1), 250);
    assert.equal(c.recv, 650);
    assert.equal(c.consumed(300), 300, "a batch may be larger than a quarter");
    assert.equal(c.consumed(50), 0);
    assert.equal(c.recv, 950);
  });

  test("the peer may send exactly its credit; one byte more is a violation", () => {
    const c = new StreamCredit(MIN_WINDOW, 0);
    assert.equal(c.received(MIN_WINDOW), true);
    assert.equal(c.received(1), false);
  });

  test("a window_update may take the credit to MAX_CREDIT, not past it; a refused one changes nothing", () => {
    assert.equal(MAX_CREDIT, MAX_WINDOW);
    const c = new StreamCredit(MIN_WINDOW, 10);
    assert.equal(c.granted(MAX_CREDIT - 10), true);
    assert.equal(c.send, MAX_CREDIT);
    c.send -= 5;
    assert.equal(c.granted(6), false);
    assert.equal(c.send, MAX_CREDIT - 5);
  });

  test("a tiny window still batches by at least one byte", () => {
    assert.equal(grantBatch(3), 1);
    const c = new StreamCredit(3, 3);
    assert.equal(c.consumed(1), 1);
  });
});
