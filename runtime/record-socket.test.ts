// The HTTP/2 transport's record layer, without any network: the codec across every chunking,
// fuzzed and truncated input (a typed RecordError or records, never anything else), and two
// RecordSockets joined by in-memory sinks for the WebSocket-like close and backpressure rules.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mutateBytes, prng } from "../protocol/fuzz.testing.ts";
import {
  type ByteSink,
  CLOSE_ABNORMAL,
  CLOSE_BAD_UTF8,
  CLOSE_PROTOCOL_ERROR,
  encodeClose,
  encodeMessage,
  type ParsedRecord,
  RECORD_BINARY,
  RECORD_CLOSE,
  RECORD_TEXT,
  RecordDecoder,
  RecordError,
  RecordSocket,
} from "./record-socket.ts";
import { type SessionHandler, WS_CLOSE_TOO_BIG, WS_HIGH_WATER, WS_LOW_WATER } from "./types.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function decodeAll(chunks: Uint8Array[], max?: number): ParsedRecord[] {
  const d = new RecordDecoder(max);
  const out: ParsedRecord[] = [];
  for (const c of chunks) {
    d.push(c, (r) => out.push(r.kind === RECORD_BINARY ? { kind: RECORD_BINARY, bytes: r.bytes.slice() } : r));
  }
  d.end();
  return out;
}

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};

describe("record codec", () => {
  const stream = concat([
    encodeMessage("hello"),
    encodeMessage(new Uint8Array([0, 1, 255])),
    encodeMessage(""),
    encodeMessage(new Uint8Array(0)),
    encodeMessage("é😀"),
    encodeClose(1000, "bye"),
  ]);
  const expected: ParsedRecord[] = [
    { kind: RECORD_TEXT, text: "hello" },
    { kind: RECORD_BINARY, bytes: new Uint8Array([0, 1, 255]) },
    { kind: RECORD_TEXT, text: "" },
    { kind: RECORD_BINARY, bytes: new Uint8Array(0) },
    { kind: RECORD_TEXT, text: "é😀" },
    { kind: RECORD_CLOSE, code: 1000, reason: "bye" },
  ];

  test("the same records whatever the chunking: one chunk, every split point, byte by byte", () => {
    assert.deepEqual(decodeAll([stream]), expected);
    for (let i = 0; i <= stream.length; i++) {
      assert.deepEqual(decodeAll([stream.subarray(0, i), stream.subarray(i)]), expected, `split at ${i}`);
    }
    assert.deepEqual(decodeAll(Array.from(stream, (b) => new Uint8Array([b]))), expected);
  });

  test("the wire layout: kind, big-endian length, payload; a close reason is cut to 123 bytes of whole characters", () => {
    assert.deepEqual(encodeMessage("ab"), new Uint8Array([0, 0, 0, 0, 2, 97, 98]));
    assert.deepEqual(encodeMessage(new Uint8Array([7])), new Uint8Array([1, 0, 0, 0, 1, 7]));
    assert.deepEqual(encodeClose(1002, "x"), new Uint8Array([2, 0, 0, 0, 3, 0x03, 0xea, 120]));
    const long = encodeClose(1000, "é".repeat(200));
    assert.ok(long.length - 5 - 2 <= 123);
    assert.deepEqual(decodeAll([long]), [{ kind: RECORD_CLOSE, code: 1000, reason: "é".repeat(41) }]);
  });

  test("bad input is a RecordError with a stable code and the close code to send", () => {
    const cases: Array<[Uint8Array[], string, number, number?]> = [
      [[new Uint8Array([3, 0, 0, 0, 0])], "bad_record", CLOSE_PROTOCOL_ERROR],
      [[new Uint8Array([1, 0, 0, 0, 11])], "record_too_large", WS_CLOSE_TOO_BIG, 10],
      [[new Uint8Array([1, 0xff, 0xff, 0xff, 0xff])], "record_too_large", WS_CLOSE_TOO_BIG],
      [[new Uint8Array([0, 0, 0, 0, 2, 0xc3, 0x28])], "bad_utf8", CLOSE_BAD_UTF8],
      [[new Uint8Array([2, 0, 0, 0, 1, 3])], "bad_record", CLOSE_PROTOCOL_ERROR],
      [[new Uint8Array([2, 0, 0, 0, 200])], "bad_record", CLOSE_PROTOCOL_ERROR],
      [[new Uint8Array([2, 0, 0, 0, 3, 3, 0xe8, 0xff])], "bad_utf8", CLOSE_BAD_UTF8],
      [[new Uint8Array([1, 0, 0])], "truncated_record", CLOSE_PROTOCOL_ERROR],
      [[new Uint8Array([1, 0, 0, 0, 4, 1, 2])], "truncated_record", CLOSE_PROTOCOL_ERROR],
    ];
    for (const [chunks, code, closeCode, max] of cases) {
      assert.throws(
        () => decodeAll(chunks, max),
        (e: unknown) => e instanceof RecordError && e.code === code && e.closeCode === closeCode,
        `${code}: ${chunks.map((c) => [...c]).join("|")}`,
      );
    }
    // After a failure the decoder stays failed rather than resynchronising on garbage.
    const d = new RecordDecoder();
    assert.throws(() => d.push(new Uint8Array([9, 0, 0, 0, 0]), () => {}), RecordError);
    assert.throws(() => d.push(encodeMessage("ok"), () => {}), RecordError);
  });

  test("fuzz: 20,000 mutated record streams in random chunks give records or a RecordError, nothing else", () => {
    const rnd = prng(0x5eed);
    let errors = 0;
    for (let i = 0; i < 20_000; i++) {
      const bytes = mutateBytes(stream, rnd);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < bytes.length;) {
        const n = 1 + (rnd() % 16);
        chunks.push(bytes.subarray(at, at + n));
        at += n;
      }
      try {
        for (const r of decodeAll(chunks, 1024)) {
          assert.ok(r.kind === RECORD_TEXT || r.kind === RECORD_BINARY || r.kind === RECORD_CLOSE);
        }
      } catch (e) {
        assert.ok(e instanceof RecordError, `input ${i}: ${String(e)}`);
        errors++;
      }
    }
    assert.ok(errors > 1000 && errors < 20_000, `both outcomes seen (${errors} errors)`);
  });
});

/** An in-memory sink whose bytes reach `peer` when flushed (or at once with autoFlush). */
class MemorySink implements ByteSink {
  queue: Uint8Array[] = [];
  ended = false;
  aborted = false;
  autoFlush = true;
  peer: RecordSocket | undefined;
  self!: RecordSocket;
  get buffered(): number {
    return this.queue.reduce((n, b) => n + b.length, 0);
  }
  write(bytes: Uint8Array): void {
    this.queue.push(bytes);
    if (this.autoFlush) queueMicrotask(() => this.flush());
  }
  end(): void {
    this.ended = true;
    if (this.autoFlush) queueMicrotask(() => this.flush());
  }
  abort(): void {
    this.aborted = true;
    this.queue = [];
    queueMicrotask(() => this.peer?.failed("reset by the peer"));
  }
  flush(): void {
    if (this.aborted) return;
    const q = this.queue;
    this.queue = [];
    for (const b of q) this.peer?.receive(b);
    if (q.length) this.self.writable();
    if (this.ended && !this.endSent) {
      this.endSent = true;
      this.peer?.ended();
    }
  }
  private endSent = false;
}

interface Seen {
  messages: Array<string | Uint8Array>;
  closed: Array<[number, string]>;
  drains: number;
}
function pair(graceMs = 200): { a: RecordSocket; b: RecordSocket; sa: MemorySink; sb: MemorySink; seenA: Seen; seenB: Seen } {
  const sa = new MemorySink();
  const sb = new MemorySink();
  const a = new RecordSocket(sa, { remoteAddress: "b", sinkSignalsDrain: true, closeGraceMs: graceMs });
  const b = new RecordSocket(sb, { remoteAddress: "a", sinkSignalsDrain: true, closeGraceMs: graceMs });
  sa.peer = b;
  sa.self = a;
  sb.peer = a;
  sb.self = b;
  const handler = (seen: Seen): SessionHandler => ({
    message: (m) => seen.messages.push(m),
    drain: () => seen.drains++,
    close: (c, r) => seen.closed.push([c, r]),
  });
  const seenA: Seen = { messages: [], closed: [], drains: 0 };
  const seenB: Seen = { messages: [], closed: [], drains: 0 };
  a.start(() => handler(seenA));
  b.start(() => handler(seenB));
  return { a, b, sa, sb, seenA, seenB };
}

describe("RecordSocket", () => {
  test("messages arrive in order and typed; close(code, reason) reaches both handlers once and ends both directions", async () => {
    const { a, sa, sb, seenA, seenB } = pair();
    a.send("one");
    a.send(new Uint8Array([2]));
    a.close(4000, "done");
    a.send("after close is dropped");
    await sleep(10);
    assert.deepEqual(seenB.messages, ["one", new Uint8Array([2])]);
    assert.deepEqual(seenB.closed, [[4000, "done"]]);
    assert.deepEqual(seenA.closed, [[4000, "done"]]);
    assert.ok(sa.ended && sb.ended && !sa.aborted && !sb.aborted, "an orderly end both ways, no reset");
    assert.equal(a.bufferedAmount, 0);
  });

  test("a peer that ends without a close record: 1006; one that never answers our close: reset after the grace", async () => {
    const p1 = pair();
    p1.sb.end();
    await sleep(10);
    assert.deepEqual(p1.seenA.closed.map(([c]) => c), [CLOSE_ABNORMAL]);

    const p2 = pair(50);
    p2.sb.autoFlush = false; // b's answers never reach a
    p2.a.close(1000, "bye");
    await sleep(10);
    assert.deepEqual(p2.seenB.closed, [[1000, "bye"]]);
    assert.deepEqual(p2.seenA.closed, [], "a still waits for the answer");
    await sleep(150);
    assert.deepEqual(p2.seenA.closed, [[1000, "bye"]]);
    assert.ok(p2.sa.aborted, "the stream was reset");
  });

  test("a bad record: the receiver closes with its code, tells the peer, and ignores the rest", async () => {
    const { b, sa, seenA, seenB } = pair();
    b.receive(new Uint8Array([7, 0, 0, 0, 0]));
    b.receive(encodeMessage("ignored"));
    await sleep(10);
    assert.deepEqual(seenB.messages, []);
    assert.equal(seenB.closed.length, 1);
    assert.equal(seenB.closed[0]![0], CLOSE_PROTOCOL_ERROR);
    assert.deepEqual(seenA.closed.map(([c]) => c), [CLOSE_PROTOCOL_ERROR], "the peer heard the close record");
    assert.ok(!sa.aborted);
  });

  test("a handler that throws closes that socket with 1011, and the error is reported", async () => {
    const sink = new MemorySink();
    sink.autoFlush = false;
    const errors: unknown[] = [];
    const s = new RecordSocket(sink, { remoteAddress: "x", onError: (e) => errors.push(e), closeGraceMs: 10 });
    const closed: number[] = [];
    s.start(() => ({
      message() {
        throw new Error("bug");
      },
      drain() {},
      close: (c) => closed.push(c),
    }));
    s.receive(encodeMessage("boom"));
    assert.equal(errors.length, 1);
    const d = new RecordDecoder();
    const out: ParsedRecord[] = [];
    for (const b of sink.queue) d.push(b, (r) => out.push(r));
    assert.deepEqual(out, [{ kind: RECORD_CLOSE, code: 1011, reason: "internal error" }]);
    await sleep(50);
    assert.deepEqual(closed, [1011]);
  });

  test("bufferedAmount and drain(): above WS_HIGH_WATER, drain() once the queue is at or under WS_LOW_WATER", async () => {
    const { a, sa, seenA, seenB } = pair();
    sa.autoFlush = false;
    const chunk = new Uint8Array(256 * 1024);
    for (let i = 0; i < 6; i++) a.send(chunk);
    assert.ok(a.bufferedAmount > WS_HIGH_WATER);
    assert.equal(seenA.drains, 0);
    // Hand over all but what stays under the low-water mark: no drain yet while above it.
    sa.queue.splice(0, 1);
    a.writable();
    assert.ok(a.bufferedAmount > WS_LOW_WATER);
    assert.equal(seenA.drains, 0);
    sa.flush();
    assert.equal(seenA.drains, 1);
    await sleep(5);
    assert.equal(seenB.messages.length, 5);
  });
});
