import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { REPLAY_DEFAULT_CAPACITY, REPLAY_MAX_CAPACITY, ReplayCache, ReplayCacheError } from "./replay-cache.ts";

const salt = (n: number, len = 32) => {
  const s = new Uint8Array(len);
  new DataView(s.buffer).setUint32(len - 4, n);
  return s;
};

describe("ReplayCache", () => {
  test("a salt is new once per key; the same salt under another key is new", () => {
    const c = new ReplayCache();
    assert.equal(c.capacity, REPLAY_DEFAULT_CAPACITY);
    const s = crypto.getRandomValues(new Uint8Array(32));
    assert.equal(c.add("dev-1", s), true);
    assert.equal(c.add("dev-1", s), false);
    assert.equal(c.add("dev-1", Uint8Array.from(s)), false, "compares contents, not identity");
    assert.equal(c.add("dev-2", s), true);
    assert.equal(c.add("dev-1", salt(1)), true);
    assert.equal(c.size, 3);
  });

  test("salts that differ in one byte, or share prefix and suffix, are told apart (a counter salt)", () => {
    const c = new ReplayCache(5000);
    for (let i = 0; i < 4000; i++) assert.equal(c.add("k", salt(i)), true, `salt ${i}`);
    for (let i = 0; i < 4000; i++) assert.equal(c.add("k", salt(i)), false, `salt ${i} again`);
  });

  test("the key id and the salt cannot trade bytes", () => {
    const c = new ReplayCache();
    assert.equal(c.add("ab", Uint8Array.of(1, 2)), true);
    assert.equal(c.add("a", Uint8Array.of(0x62, 1, 2)), true);
    assert.equal(c.add("abc", Uint8Array.of(2)), true);
  });

  test("generations: the full active set becomes the archive, the archive before it is forgotten", () => {
    const c = new ReplayCache(3);
    for (const i of [1, 2, 3]) assert.equal(c.add("k", salt(i)), true);
    assert.equal(c.add("k", salt(4)), true, "swap: archive {1,2,3}, active {4}");
    assert.equal(c.size, 4);
    assert.equal(c.add("k", salt(1)), false, "found in the archive, and recorded again");
    assert.equal(c.add("k", salt(5)), true);
    assert.equal(c.add("k", salt(6)), true, "swap: archive {4,1,5}, active {6}");
    assert.equal(c.add("k", salt(2)), true, "2 was only in the dropped archive");
    assert.equal(c.add("k", salt(1)), false, "1 was recorded again, so it survived a generation");
    assert.equal(c.add("k", salt(4)), false);
  });

  test("memory bound: never more than 2·capacity entries, and always at least the last capacity", () => {
    const capacity = 1000;
    const c = new ReplayCache(capacity);
    for (let i = 0; i < 20 * capacity; i++) {
      c.add("k", salt(i));
      assert.ok(c.size <= 2 * capacity, `size ${c.size} after ${i + 1}`);
    }
    assert.ok(c.size >= capacity);
    for (let i = 20 * capacity - capacity; i < 20 * capacity; i++) assert.equal(c.add("k", salt(i)), false, `recent salt ${i}`);
    assert.equal(c.add("k", salt(0)), true, "the oldest is forgotten");
  });

  test("capacity 0 turns the defence off", () => {
    const c = new ReplayCache(0);
    assert.equal(c.add("k", salt(1)), true);
    assert.equal(c.add("k", salt(1)), true);
    assert.equal(c.size, 0);
  });

  test("a capacity that is not an integer 0..max is a typed error", () => {
    for (const bad of [-1, 1.5, Number.NaN, REPLAY_MAX_CAPACITY + 1, Infinity]) {
      assert.throws(() => new ReplayCache(bad), (e) => e instanceof ReplayCacheError && e.code === "bad_replay_capacity");
    }
    assert.equal(new ReplayCache(REPLAY_MAX_CAPACITY).capacity, REPLAY_MAX_CAPACITY);
  });

  test("two caches are independent", () => {
    const a = new ReplayCache(10);
    const b = new ReplayCache(10);
    assert.equal(a.add("k", salt(7)), true);
    assert.equal(b.add("k", salt(7)), true);
    assert.equal(a.add("k", salt(7)), false);
    assert.equal(b.add("k", salt(7)), false);
  });
});
