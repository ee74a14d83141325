// The Node gateway's own binary frames (node-ws-frame.ts): their bytes by RFC 6455, when the writer
// steps aside for ws, and end to end through serveGateway: messages sent through sendParts,
// send() and WebSocket pings, interleaved, arrive whole and in order. The end-to-end part runs
// on every runtime against its own adapter (only Node's has sendParts; elsewhere the parts are
// joined and sent, the path the session takes on those runtimes).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { createDevCertificate, type DevCertificate } from "../gateway/certs.ts";
import { testDecoy } from "../gateway/decoy-site.testing.ts";
import { type ListeningServer, runtime, type SessionSocket, WS_MAX_MESSAGE, wsConnect } from "./index.ts";
import { encodeServerFrame, joinParts, serverFrameWriter } from "./node-ws-frame.ts";
import { recorder, testGateway, until } from "./serve.testing.ts";

/** Parse one unmasked frame by RFC 6455 §5.2: fin, opcode, payload. */
function parseFrame(b: Uint8Array): { fin: boolean; opcode: number; masked: boolean; payload: Uint8Array } {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let len = b[1]! & 0x7f;
  let at = 2;
  if (len === 126) [len, at] = [view.getUint16(2), 4];
  else if (len === 127) [len, at] = [view.getUint32(2) * 2 ** 32 + view.getUint32(6), 10];
  assert.equal(b.length, at + len, "the frame is exactly header + payload");
  return { fin: (b[0]! & 0x80) !== 0, opcode: b[0]! & 0x0f, masked: (b[1]! & 0x80) !== 0, payload: b.subarray(at) };
}

const pattern = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff);

describe("encodeServerFrame", () => {
  // each length class of the header (7-bit, 16-bit, 64-bit) at and around its edges
  for (const len of [0, 1, 125, 126, 127, 65535, 65536, 65537, 300_000]) {
    test(`a ${len}-byte payload: final, binary, unmasked, the shortest length form, head then body`, () => {
      const head = pattern(Math.min(len, 5), 1);
      const body = pattern(len - head.length, 2);
      const frame = encodeServerFrame(head, body);
      const f = parseFrame(frame);
      assert.equal(f.fin, true);
      assert.equal(f.opcode, 2);
      assert.equal(f.masked, false);
      assert.equal(frame.length - len, len < 126 ? 2 : len < 65536 ? 4 : 10);
      assert.ok(Buffer.from(f.payload).equals(joinParts(head, body)));
    });
  }
});

describe("serverFrameWriter", () => {
  const fakeWs = (socket: unknown, state: number, queue: unknown[]) => ({
    _socket: socket,
    _sender: { _state: state, _queue: queue },
  });
  const collect = (raw: PassThrough) => {
    const got: Buffer[] = [];
    raw.on("data", (b: Buffer) => got.push(b));
    return got;
  };

  test("writes the frame to the socket while the sender is idle", async () => {
    const raw = new PassThrough();
    const got = collect(raw);
    const write = serverFrameWriter(fakeWs(raw, 0, []) as never, raw)!;
    assert.ok(write);
    assert.equal(write(Uint8Array.of(1, 2), Uint8Array.of(3)), true);
    await until("written", () => got.length === 1);
    assert.deepEqual([...got[0]!], [0x82, 3, 1, 2, 3]);
  });

  test("steps aside (false, nothing written) while ws queues or is busy, or the socket is done", async () => {
    const raw = new PassThrough();
    const got = collect(raw);
    const queue: unknown[] = ["queued"];
    const ws = fakeWs(raw, 0, queue);
    const write = serverFrameWriter(ws as never, raw)!;
    assert.equal(write(Uint8Array.of(1), Uint8Array.of(2)), false, "queue not empty");
    queue.length = 0;
    ws._sender._state = 1;
    assert.equal(write(Uint8Array.of(1), Uint8Array.of(2)), false, "sender busy");
    ws._sender._state = 0;
    raw.end();
    assert.equal(write(Uint8Array.of(1), Uint8Array.of(2)), false, "socket ended");
    await new Promise((r) => setImmediate(r));
    assert.equal(got.length, 0);
  });

  test("no writer for a ws whose internals are not the known ones, or over another socket", () => {
    const raw = new PassThrough();
    assert.equal(serverFrameWriter({} as never, raw), undefined);
    assert.equal(serverFrameWriter({ _socket: raw, _sender: {} } as never, raw), undefined);
    assert.equal(serverFrameWriter(fakeWs(new PassThrough(), 0, []) as never, raw), undefined);
  });
});

describe(`sendParts end to end (${runtime})`, () => {
  let cert: DevCertificate;
  let gw: ListeningServer;
  let server: SessionSocket | undefined;
  before(async () => {
    cert = await createDevCertificate();
    gw = await testGateway(cert, {
      fetch: testDecoy(),
      accept: (socket) => {
        server = socket;
        return recorder().handler;
      },
    });
  });
  after(async () => {
    await gw.close();
  });

  test("parts, whole messages, text and pings interleave and arrive whole and in order", async () => {
    const rec = recorder();
    const client = await wsConnect(`wss://localhost:${gw.port}/ws`, { ca: cert.certPem }, () => rec.handler);
    try {
      await until("accept", () => server !== undefined);
      const s = server!;
      const sizes = [0, 1, 124, 125, 126, 65533, 65534, 65535, 65536, 200_000, WS_MAX_MESSAGE - 3];
      const expected: (string | Uint8Array)[] = [];
      sizes.forEach((n, i) => {
        const head = Uint8Array.of(1, 1, 0x61 + (i % 26));
        const body = pattern(n, i);
        if (s.sendParts) s.sendParts(head, body);
        else s.send(joinParts(head, body));
        expected.push(joinParts(head, body));
        if (i % 3 === 0) {
          s.send(`text ${i}`);
          expected.push(`text ${i}`);
        }
        if (i % 4 === 1) s.ping?.();
        if (i % 5 === 2) {
          const whole = pattern(1000 + i, 99);
          s.send(whole);
          expected.push(whole);
        }
      });
      await until("every message", () => rec.messages.length === expected.length, 30_000);
      rec.messages.forEach((m, i) => {
        if (typeof expected[i] === "string") assert.equal(m, expected[i], `message ${i}`);
        else assert.ok(m instanceof Uint8Array && Buffer.from(m).equals(expected[i] as Uint8Array), `message ${i}`);
      });
    } finally {
      client.close(1000, "done");
    }
    await until("closed", () => rec.closes.length === 1);
  });
});
