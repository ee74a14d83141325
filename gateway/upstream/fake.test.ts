import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, test } from "node:test";
import { type Duplex, StreamError } from "../../transport/stream.ts";
import { fakeDialer } from "./fake.ts";

interface Recorder {
  chunks: Uint8Array[];
  events: string[];
  drains: number;
  closed: Promise<StreamError | undefined>;
}

function record(d: Duplex): Recorder {
  const r: Recorder = { chunks: [], events: [], drains: 0, closed: undefined as never };
  r.closed = new Promise((resolve) => {
    d.start({
      data: (c) => {
        r.chunks.push(c);
        r.events.push("data");
      },
      end: () => r.events.push("end"),
      drain: () => r.drains++,
      close: (err) => {
        r.events.push("close");
        resolve(err);
      },
    });
  });
  return r;
}

const joined = (chunks: Uint8Array[]) => Buffer.concat(chunks).toString();
const tick = () => new Promise((r) => setTimeout(r, 10));

describe("fakeDialer", () => {
  test("echoes bytes in order and answers closeWrite with end then close, after everything", async () => {
    const d = await fakeDialer().dial({ host: "x", port: 1 });
    const r = record(d);
    d.write(new TextEncoder().encode("hello "));
    d.write(new TextEncoder().encode("world"));
    d.closeWrite();
    assert.equal(await r.closed, undefined);
    assert.equal(joined(r.chunks), "hello world");
    assert.deepEqual(r.events.slice(-2), ["end", "close"]);
  });

  test("the echo does not alias the writer's buffer", async () => {
    const d = await fakeDialer().dial({ host: "x", port: 1 });
    const r = record(d);
    const buf = new TextEncoder().encode("abc");
    d.write(buf);
    buf.fill(0x7a);
    d.closeWrite();
    await r.closed;
    assert.equal(joined(r.chunks), "abc");
  });

  test("pause holds the echo, write reports a full buffer, resume delivers and drains", async () => {
    const d = await fakeDialer({ highWaterMark: 1000 }).dial({ host: "x", port: 1 });
    const r = record(d);
    d.pause();
    assert.equal(d.write(new Uint8Array(600)), true);
    assert.equal(d.write(new Uint8Array(600)), false, "over the high-water mark");
    await tick();
    assert.equal(r.chunks.length, 0, "nothing while paused");
    assert.equal(r.drains, 0);
    d.resume();
    await tick();
    assert.equal(r.chunks.reduce((n, c) => n + c.length, 0), 1200);
    assert.equal(r.drains, 1);
    d.close();
    await r.closed;
  });

  test("close(err) reports the error once and stops delivery", async () => {
    const d = await fakeDialer().dial({ host: "x", port: 1 });
    const r = record(d);
    d.write(new Uint8Array(10));
    // close() in the same turn as the write: the queued echo must never be delivered.
    d.close(new StreamError("cancelled"));
    assert.equal((await r.closed)?.code, "cancelled");
    await tick();
    assert.deepEqual(r.events, ["close"]);
    assert.equal(d.write(new Uint8Array(1)), false);
  });

  test("an aborted signal rejects the dial", async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(fakeDialer().dial({ host: "x", port: 1 }, ac.signal), { code: "dial_aborted" });
  });
});
