import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { memoryLogger } from "../../logging/logger.ts";
import type { CertificateInfo } from "../tls/certificate.ts";
import { RenewalScheduler, renewalTime, retryDelay, type Timers } from "./renewal.ts";

const DAY = 86_400_000;
const t0 = Date.UTC(2030, 0, 1);
const at = (days: number) => new Date(t0 + days * DAY);
const none = () => 0;
const full = () => 0.999999;

describe("renewalTime", () => {
  test("a 90-day certificate: at 60 days (2/3 and 30 days before agree), up to 3 days earlier by jitter", () => {
    assert.equal(renewalTime(at(0), at(90), none), t0 + 60 * DAY);
    const earliest = renewalTime(at(0), at(90), full);
    assert.ok(earliest > t0 + 57 * DAY - 1000 && earliest < t0 + 57 * DAY + 1000, String((earliest - t0) / DAY));
  });

  test("a year-long certificate: at 2/3 of its life, which comes before 30 days ahead of expiry", () => {
    assert.equal(renewalTime(at(0), at(360), none), t0 + 240 * DAY);
  });

  test("a 45-day certificate: 30 days before expiry would be day 15, but never before half its life", () => {
    assert.equal(renewalTime(at(0), at(45), none), t0 + 22.5 * DAY);
  });

  test("a 6-day certificate is renewed after 3 days, not the moment it arrives", () => {
    assert.equal(renewalTime(at(0), at(6), none), t0 + 3 * DAY);
  });

  test("a 60-day certificate: 30 days before is day 30, earlier than 2/3 (day 40)", () => {
    assert.equal(renewalTime(at(0), at(60), none), t0 + 30 * DAY);
  });
});

describe("retryDelay", () => {
  test("doubles from a minute to a six-hour ceiling, with up to half taken off by jitter", () => {
    assert.equal(retryDelay(1, full) > 59_000, true);
    assert.equal(retryDelay(1, none), 30_000);
    assert.equal(retryDelay(2, none), 60_000);
    assert.equal(retryDelay(3, none), 120_000);
    assert.equal(retryDelay(20, none), 3 * 3_600_000);
    assert.ok(retryDelay(20, full) <= 6 * 3_600_000);
  });
});

/** Timers on a hand-moved clock: advance() runs what falls due, in order. */
function manualClock(start: number) {
  let now = start;
  let seq = 0;
  const pending = new Map<number, { due: number; fn: () => void }>();
  const timers: Timers = {
    set(fn, ms) {
      const id = ++seq;
      pending.set(id, { due: now + ms, fn });
      return id;
    },
    clear: (h) => void pending.delete(h as number),
  };
  return {
    timers,
    now: () => now,
    pending,
    /** Move the clock forward by ms, firing timers as they fall due, and let their promises settle. */
    async advance(ms: number) {
      const end = now + ms;
      for (;;) {
        const next = [...pending.entries()].sort((a, b) => a[1].due - b[1].due)[0];
        if (!next || next[1].due > end) break;
        pending.delete(next[0]);
        now = next[1].due;
        next[1].fn();
        for (let i = 0; i < 10; i++) await Promise.resolve();
      }
      now = end;
      for (let i = 0; i < 10; i++) await Promise.resolve();
    },
  };
}

const cert = (fromDays: number, toDays: number): CertificateInfo => ({
  notBefore: at(fromDays),
  notAfter: at(toDays),
  names: ["gw.example.test"],
  sha256: "00",
  selfSigned: false,
});

describe("RenewalScheduler", () => {
  test("renews at the planned time, then plans from the new certificate", async () => {
    const clock = manualClock(t0);
    let renewals = 0;
    const s = new RenewalScheduler({
      logger: memoryLogger("error"),
      now: clock.now,
      random: none,
      timers: clock.timers,
      renew: async () => cert(60 + 90 * renewals++, 150 + 90 * (renewals - 1)),
    });
    s.plan(cert(0, 90));
    assert.equal(s.nextAt, t0 + 60 * DAY);
    // 60 days is longer than one setTimeout can wait: the wait is chained, never one overflowing timer.
    for (const { due } of clock.pending.values()) assert.ok(due - t0 <= 2 ** 31 - 1);
    await clock.advance(60 * DAY - 1000);
    assert.equal(renewals, 0);
    await clock.advance(1000);
    assert.equal(renewals, 1);
    assert.equal(s.nextAt, t0 + 120 * DAY);
    s.stop();
    assert.equal(clock.pending.size, 0);
  });

  test("a failure is retried with backoff until it works", async () => {
    const clock = manualClock(t0);
    const outcomes = [false, false, true];
    const tries: number[] = [];
    const log = memoryLogger("warn");
    const s = new RenewalScheduler({
      logger: log,
      now: clock.now,
      random: none,
      timers: clock.timers,
      renew: async () => {
        tries.push(clock.now() - t0);
        if (!outcomes.shift()) throw new Error("CA says no");
        return cert(0, 90);
      },
    });
    s.plan(undefined); // nothing stored: at once
    await clock.advance(0);
    assert.deepEqual(tries, [0]);
    await clock.advance(30_000);
    assert.deepEqual(tries, [0, 30_000]);
    await clock.advance(60_000);
    assert.deepEqual(tries, [0, 30_000, 90_000]);
    assert.equal(s.nextAt, t0 + 60 * DAY);
    assert.equal(log.lines.filter((l) => l.includes("certificate renewal failed; retrying")).length, 2);
    s.stop();
  });

  test("renewNow joins a renewal already running, and an already-due certificate waits a minute, not a loop", async () => {
    const clock = manualClock(t0);
    let calls = 0;
    let release!: () => void;
    const s = new RenewalScheduler({
      logger: memoryLogger("error"),
      now: clock.now,
      random: none,
      timers: clock.timers,
      renew: () => (calls++, new Promise((r) => (release = () => r(cert(-10, -1))))),
    });
    const a = s.renewNow();
    const b = s.renewNow();
    release();
    assert.deepEqual(await a, await b);
    assert.equal(calls, 1);
    assert.equal(s.nextAt, t0 + 60_000);
    s.stop();
    assert.equal(s.nextAt, undefined);
  });
});
