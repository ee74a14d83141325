import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { AuthOutcome, CheckOptions, Credentials } from "./auth.ts";
import { addressKey, FailureBuckets, HelloLimiter } from "./rate-limit.ts";

const creds = (device_id: string, token = "t"): Credentials => ({ device_id, token, client_version: "test" });

/** A backend stand-in: "good" devices pass, everything else is bad_token; counts its calls. */
function backend(
  answer: (c: Credentials) => AuthOutcome = (c) =>
    c.device_id === "good"
      ? {
        ok: true,
        device: { id: "good", name: "g", max_sessions: null, data_quota_bytes: null, expires_at: null },
        assignment: null,
      }
      : { ok: false, code: "bad_token", message: "no" },
) {
  const calls: Array<{ creds: Credentials; opts?: CheckOptions }> = [];
  return {
    ttlMs: 1000,
    calls,
    check: async (c: Credentials, opts?: CheckOptions) => (calls.push({ creds: c, opts }), answer(c)),
  };
}

describe("FailureBuckets", () => {
  test("blocks after `limit` failures and refills over the window", () => {
    let now = 0;
    const b = new FailureBuckets({ limit: 3, windowMs: 3000, maxKeys: 10, now: () => now });
    for (let i = 0; i < 3; i++) {
      assert.equal(b.blocked("a"), false);
      b.fail("a");
    }
    assert.equal(b.blocked("a"), true);
    assert.equal(b.blocked("other"), false);
    now += 999;
    assert.equal(b.blocked("a"), true, "not a whole token back yet");
    now += 1;
    assert.equal(b.blocked("a"), false, "one token per windowMs/limit");
    now += 10_000;
    assert.equal(b.blocked("a"), false);
    assert.equal(b.size, 0, "a full bucket is forgotten");
  });

  test("memory is bounded: the least recently used key goes first", () => {
    const b = new FailureBuckets({ limit: 1, windowMs: 60_000, maxKeys: 100, now: () => 0 });
    for (let i = 0; i < 10_000; i++) b.fail(`k${i}`);
    assert.equal(b.size, 100);
    assert.equal(b.blocked("k9999"), true);
    assert.equal(b.blocked("k0"), false, "evicted");
  });

  test("limit 0 turns it off", () => {
    const b = new FailureBuckets({ limit: 0, windowMs: 1000, maxKeys: 10 });
    for (let i = 0; i < 100; i++) b.fail("a");
    assert.equal(b.blocked("a"), false);
    assert.equal(b.size, 0);
  });
});

describe("addressKey", () => {
  test("IPv4 as is, IPv4-mapped as IPv4, IPv6 by /64", () => {
    assert.equal(addressKey("203.0.113.7"), "203.0.113.7");
    assert.equal(addressKey("::ffff:203.0.113.7"), "203.0.113.7");
    assert.equal(addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:0DB8::1"), "2001:db8:0:0::/64");
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
    assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
    assert.notEqual(addressKey("2001:db8:1:3::1"), addressKey("2001:db8:1:2::1"));
  });
});

describe("HelloLimiter", () => {
  test("per address: after N failures the backend is no longer asked; other addresses are unaffected", async () => {
    const be = backend();
    const lim = new HelloLimiter({ perAddress: 5, perDevice: 0, windowMs: 60_000, maxKeys: 100 });
    const auth = lim.wrap(be, "198.51.100.1");
    for (let i = 0; i < 5; i++) assert.equal(((await auth.check(creds(`d${i}`))) as { code: string }).code, "bad_token");
    const r = await auth.check(creds("good"));
    assert.deepEqual(r, { ok: false, code: "rate_limited", message: "too many failed attempts; retry later" });
    assert.equal(be.calls.length, 5, "the sixth hello never reached the backend");
    assert.equal(lim.refused, 1);
    const other = lim.wrap(be, "198.51.100.2");
    assert.equal((await other.check(creds("good"))).ok, true);
  });

  test("per device: failures from many addresses against one device id block that id only", async () => {
    const be = backend();
    const lim = new HelloLimiter({ perAddress: 0, perDevice: 3, windowMs: 60_000, maxKeys: 100 });
    for (let i = 0; i < 3; i++) await lim.wrap(be, `192.0.2.${i}`).check(creds("victim"));
    assert.equal(((await lim.wrap(be, "192.0.2.200").check(creds("victim"))) as { code: string }).code, "rate_limited");
    assert.equal((await lim.wrap(be, "192.0.2.200").check(creds("good"))).ok, true);
  });

  test("only credential failures count; re-validations of live sessions are never limited", async () => {
    const be = backend(() => ({ ok: false, code: "unavailable", message: "down" }));
    const lim = new HelloLimiter({ perAddress: 2, perDevice: 2, windowMs: 60_000, maxKeys: 100 });
    const auth = lim.wrap(be, "10.0.0.1");
    for (let i = 0; i < 10; i++) assert.equal(((await auth.check(creds("x"))) as { code: string }).code, "unavailable");
    const bad = backend();
    const auth2 = lim.wrap(bad, "10.0.0.2");
    for (let i = 0; i < 4; i++) await auth2.check(creds("y"));
    assert.equal(bad.calls.length, 2);
    await auth2.check(creds("y"), { session_id: "live" });
    assert.equal(bad.calls.length, 3, "a live session's re-check goes through");
    assert.deepEqual(bad.calls[2]!.opts, { session_id: "live" });
    assert.equal(auth2.ttlMs, 1000);
  });
});
