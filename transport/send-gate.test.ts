import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BLOCKED_POLL_MS, SendGate } from "./send-gate.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function gate(highWater = 100) {
  const socket = { bufferedAmount: 0 };
  const log: string[] = [];
  const g = new SendGate(socket, highWater, { blocked: () => log.push("blocked"), unblocked: () => log.push("unblocked") });
  return { g, socket, log };
}

describe("SendGate", () => {
  test("open up to the high-water mark; over it, blocked once until drain()", () => {
    const { g, socket, log } = gate();
    socket.bufferedAmount = 100;
    assert.equal(g.full(), false);
    socket.bufferedAmount = 101;
    assert.equal(g.full(), true);
    socket.bufferedAmount = 0;
    assert.equal(g.full(), true, "blocked until unblocked, whatever the socket says meanwhile");
    assert.deepEqual(log, ["blocked"]);
    g.drain();
    assert.equal(g.blocked, false);
    assert.equal(g.full(), false);
    g.drain();
    assert.deepEqual(log, ["blocked", "unblocked"], "a drain() while open is nothing");
    g.stop();
  });

  test("without a drain(), the poll unblocks once the socket is at half the mark", async () => {
    const { g, socket, log } = gate();
    socket.bufferedAmount = 200;
    g.full();
    await sleep(BLOCKED_POLL_MS * 1.5);
    assert.deepEqual(log, ["blocked"], "still over half: still blocked");
    socket.bufferedAmount = 50;
    await sleep(BLOCKED_POLL_MS * 1.5);
    assert.deepEqual(log, ["blocked", "unblocked"]);
    assert.equal(g.blocked, false);
  });

  test("stop() ends the polling: no unblocked() after it", async () => {
    const { g, socket, log } = gate();
    socket.bufferedAmount = 200;
    g.full();
    g.stop();
    socket.bufferedAmount = 0;
    await sleep(BLOCKED_POLL_MS * 1.5);
    assert.deepEqual(log, ["blocked"]);
  });
});
