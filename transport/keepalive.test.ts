import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Keepalive } from "./keepalive.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Keepalive", () => {
  test("pings with rising ids; quiet once nothing was heard for quietMs, not while messages come", async () => {
    const log: string[] = [];
    const k = new Keepalive({ ping: (id) => log.push(`ping:${id}`), quiet: () => log.push("quiet") });
    k.start(30, 120);
    for (let i = 0; i < 6; i++) {
      await sleep(40);
      k.heard = Date.now();
    }
    assert.ok(!log.includes("quiet"), "heard every 40 ms: never quiet");
    assert.deepEqual(log.slice(0, 3), ["ping:1", "ping:2", "ping:3"]);
    const t0 = Date.now();
    while (!log.includes("quiet") && Date.now() - t0 < 2000) await sleep(10);
    k.stop();
    assert.ok(Date.now() - t0 >= 100, "quiet only after the quiet time");
    assert.equal(log.filter((e) => e === "quiet").length, 1);
  });

  test("stop() ends both timers", async () => {
    const log: string[] = [];
    const k = new Keepalive({ ping: (id) => log.push(`ping:${id}`), quiet: () => log.push("quiet") });
    k.start(10, 20);
    k.stop();
    await sleep(60);
    assert.deepEqual(log, []);
  });
});
