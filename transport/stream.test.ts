// DuplexInbox: the receiving half every Duplex shares. What it promises: order, data held
// before start() and while paused, end and close exactly once and after the data before them,
// an aborting close that drops what is held, and no re-entrant delivery.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type DuplexHandlers, DuplexInbox, type InboxEvents, StreamError } from "./stream.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** An inbox and a log of what its consumer saw, as "data:x", "end", "drain", "close", "close:code". */
function inbox(events?: InboxEvents) {
  const box = new DuplexInbox(events);
  const log: string[] = [];
  const handlers: DuplexHandlers = {
    data: (c) => void log.push(`data:${dec(c)}`),
    end: () => void log.push("end"),
    drain: () => void log.push("drain"),
    close: (err) => void log.push(err ? `close:${err.code}` : "close"),
  };
  return { box, log, handlers, start: () => box.start(handlers) };
}

describe("DuplexInbox", () => {
  test("data before start() is held in order and delivered at start(); then straight through", () => {
    const { box, log, start } = inbox();
    box.deliver(enc("a"));
    box.deliver(enc("bc"));
    assert.equal(box.heldBytes, 3);
    assert.deepEqual(log, []);
    assert.equal(start(), true);
    assert.deepEqual(log, ["data:a", "data:bc"]);
    assert.equal(box.heldBytes, 0);
    box.deliver(enc("d"));
    assert.deepEqual(log, ["data:a", "data:bc", "data:d"]);
  });

  test("a second start() is refused and keeps the first handlers", () => {
    const { box, log, start } = inbox();
    start();
    const other: string[] = [];
    assert.equal(box.start({ data: () => other.push("x"), end() {}, drain() {}, close() {} }), false);
    box.deliver(enc("a"));
    assert.deepEqual(log, ["data:a"]);
    assert.deepEqual(other, []);
  });

  test("pause holds data (and the end and close behind it); resume delivers them in order", () => {
    const { box, log, start } = inbox();
    start();
    box.pause();
    assert.equal(box.isPaused, true);
    box.deliver(enc("a"));
    box.end();
    box.closeAfterData();
    assert.deepEqual(log, []);
    assert.equal(box.heldBytes, 1);
    box.resume();
    assert.deepEqual(log, ["data:a", "end", "close"]);
  });

  test("with nothing held, end and close are delivered even while paused", () => {
    const { box, log, start } = inbox();
    start();
    box.pause();
    box.end();
    assert.deepEqual(log, ["end"]);
    box.closeAfterData();
    assert.deepEqual(log, ["end", "close"]);
  });

  test("end and close are delivered once; nothing is taken after a close", () => {
    const { box, log, start } = inbox();
    start();
    box.end();
    box.end();
    box.closeAfterData();
    box.close(new StreamError("late"));
    box.deliver(enc("x"));
    box.end();
    assert.deepEqual(log, ["end", "close"]);
    assert.equal(box.isEnded, true);
    assert.equal(box.isClosed, true);
  });

  test("close(err) drops held data and an undelivered end, and is delivered at once", () => {
    const { box, log, start } = inbox();
    start();
    box.pause();
    box.deliver(enc("a"));
    box.end();
    box.close(new StreamError("upstream_reset"));
    assert.deepEqual(log, ["close:upstream_reset"]);
    assert.equal(box.heldBytes, 0);
    box.resume();
    assert.deepEqual(log, ["close:upstream_reset"]);
  });

  test("close() turns a graceful close still waiting behind held data into an immediate one", () => {
    const { box, log, start } = inbox();
    start();
    box.pause();
    box.deliver(enc("a"));
    box.closeAfterData();
    box.close();
    assert.deepEqual(log, ["close"]);
  });

  test("a close before start() is held, with its error, and delivered at start() without the data before it", () => {
    const { box, log, start } = inbox();
    box.deliver(enc("a"));
    box.close(new StreamError("cancelled"));
    box.close(new StreamError("second"));
    assert.deepEqual(log, []);
    start();
    assert.deepEqual(log, ["close:cancelled"]);
  });

  test("closeAfterData before start(): data, end and close all arrive at start()", () => {
    const { box, log, start } = inbox();
    box.deliver(enc("a"));
    box.end();
    box.closeAfterData();
    start();
    assert.deepEqual(log, ["data:a", "end", "close"]);
  });

  test("what a handler causes is delivered after it returns, in order", () => {
    const box = new DuplexInbox();
    const log: string[] = [];
    let depth = 0;
    box.start({
      data: (c) => {
        depth++;
        log.push(`data:${dec(c)}@${depth}`);
        if (dec(c) === "a") {
          box.deliver(enc("b"));
          box.deliver(enc("c"));
          box.end();
        }
        depth--;
      },
      end: () => void log.push(`end@${depth}`),
      drain() {},
      close: () => void log.push(`close@${depth}`),
    });
    box.deliver(enc("a"));
    assert.deepEqual(log, ["data:a@1", "data:b@1", "data:c@1", "end@0"]);
  });

  test("a close from inside data() stops delivery and is delivered once", () => {
    const box = new DuplexInbox();
    const log: string[] = [];
    box.deliver(enc("a"));
    box.deliver(enc("b"));
    box.start({
      data: (c) => {
        log.push(`data:${dec(c)}`);
        box.close(new StreamError("cancelled"));
      },
      end() {},
      drain() {},
      close: (err) => void log.push(`close:${err?.code}`),
    });
    assert.deepEqual(log, ["data:a", "close:cancelled"]);
  });

  test("pause from inside data() holds the rest", () => {
    const box = new DuplexInbox();
    const log: string[] = [];
    box.deliver(enc("a"));
    box.deliver(enc("b"));
    box.start({
      data: (c) => {
        log.push(`data:${dec(c)}`);
        box.pause();
      },
      end() {},
      drain() {},
      close() {},
    });
    assert.deepEqual(log, ["data:a"]);
    assert.equal(box.heldBytes, 1);
    box.resume();
    assert.deepEqual(log, ["data:a", "data:b"]);
  });

  test("consumed() follows each data() with its size; closing() comes just before close()", () => {
    const seen: string[] = [];
    const { box, log, start } = inbox({
      consumed: (n) => void seen.push(`consumed:${n}:after:${log.at(-1)}`),
      closing: () => void seen.push(`closing:before:${log.at(-1)}`),
    });
    box.deliver(enc("ab"));
    start();
    box.deliver(enc("cde"));
    box.end();
    box.closeAfterData();
    assert.deepEqual(seen, ["consumed:2:after:data:ab", "consumed:3:after:data:cde", "closing:before:end"]);
    assert.deepEqual(log, ["data:ab", "data:cde", "end", "close"]);
  });

  test("drain reaches a started consumer until its close", () => {
    const { box, log, start } = inbox();
    box.drain();
    assert.deepEqual(log, []);
    start();
    box.drain();
    box.pause();
    box.deliver(enc("a"));
    box.closeAfterData();
    box.drain(); // the close waits behind the held data: the consumer is still there
    box.resume();
    box.drain();
    assert.deepEqual(log, ["drain", "drain", "data:a", "close"]);
  });
});
