// The dialer against an in-process Shadowsocks server made of our own codec (the wire format
// itself is checked against libev captures in aead-stream.test.ts and against the real
// ss-server in interop.test.ts). The target port picks the server's behaviour.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { randomBytes } from "node:crypto";
import { type Dialer, type Duplex, StreamError } from "../transport/stream.ts";
import { tcpDialer } from "../transport/tcp.ts";
import { decodeAddress } from "../protocol/socks-address.ts";
import { AeadDecryptor, AeadEncryptor } from "./aead-stream.ts";
import { cipherSpec } from "./ciphers.ts";
import { shadowsocksDialer } from "./dialer.ts";
import { evpBytesToKey } from "./kdf.ts";
import { concatBytes, toHex } from "./test-vectors.ts";

const METHOD = "chacha20-ietf-poly1305";
const PASSWORD = "dialer-test-password";
const spec = cipherSpec(METHOD);
const key = evpBytesToKey(PASSWORD, spec.keyLen);
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ECHO = 1; // echoes; FIN after the client's FIN
const SILENT = 2; // reads, never answers (what a server does with a wrong key)
const GARBAGE = 3; // answers with random bytes
const TRUNCATE = 4; // answers with half a chunk, then FIN
const SERVER_FIN = 5; // says "hi", then FIN; keeps reading
const BURST = 6; // five chunks in one TCP write, then FIN
const TRICKLE = 7; // one chunk, 50 ms later four more in one write, then FIN

interface Conn {
  firstRead?: Uint8Array;
  salt?: Uint8Array;
  pieces: Uint8Array[];
  data: Uint8Array[];
  target?: { host: string; port: number };
  ended: boolean;
  closed: Promise<void>;
}

async function fakeServer() {
  const conns: Conn[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    sockets.add(sock);
    sock.on("error", () => {});
    const conn: Conn = { pieces: [], data: [], ended: false, closed: new Promise((r) => sock.on("close", () => r())) };
    sock.on("close", () => sockets.delete(sock));
    conns.push(conn);
    const d = new AeadDecryptor(spec, key);
    const e = new AeadEncryptor(spec, key);
    let mode = 0;
    const onMode = () => {
      if (mode === GARBAGE) sock.write(crypto.getRandomValues(new Uint8Array(100)));
      if (mode === TRUNCATE) {
        const w = e.seal(enc("abc"));
        sock.end(w.subarray(0, w.length - 5));
      }
      if (mode === SERVER_FIN) sock.end(e.seal(enc("hi")));
      if (mode === BURST) sock.end(concatBytes(["1", "2", "3", "4", "5"].map((s) => e.seal(enc(s)))));
      if (mode === TRICKLE) {
        sock.write(e.seal(enc("1")));
        setTimeout(() => sock.end(concatBytes(["2", "3", "4", "5"].map((s) => e.seal(enc(s))))), 50);
      }
    };
    sock.on("data", (raw: Uint8Array) => {
      conn.firstRead ??= Uint8Array.from(raw);
      const r = d.push(raw);
      if (r instanceof StreamError) return void sock.destroy();
      conn.salt ??= d.salt ?? undefined;
      for (const p of r) {
        conn.pieces.push(p);
        let payload = p;
        if (!mode) {
          const a = decodeAddress(p);
          if (a instanceof StreamError) return void sock.destroy();
          conn.target = { host: a.host, port: a.port };
          mode = a.port;
          payload = p.subarray(a.length);
          onMode();
        }
        if (payload.length) conn.data.push(payload);
        if (payload.length && mode === ECHO) sock.write(e.seal(payload));
      }
    });
    sock.on("end", () => {
      conn.ended = true;
      if (mode === ECHO) sock.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    conns,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function collect(d: Duplex, onData?: (c: Uint8Array) => void) {
  const got = { chunks: [] as Uint8Array[], events: [] as string[], closeCount: 0 };
  let resolveEnd!: () => void;
  const ended = new Promise<void>((r) => (resolveEnd = r));
  let resolveClose!: (e: StreamError | undefined) => void;
  const closed = new Promise<StreamError | undefined>((r) => (resolveClose = r));
  d.start({
    data: (c) => {
      got.chunks.push(c);
      got.events.push("data");
      onData?.(c);
    },
    end: () => {
      got.events.push("end");
      resolveEnd();
    },
    drain: () => {},
    close: (e) => {
      got.closeCount++;
      got.events.push("close");
      resolveClose(e);
    },
  });
  return { got, ended, closed, text: () => dec(concatBytes(got.chunks)) };
}

describe("shadowsocksDialer against an in-process server", () => {
  let srv: Awaited<ReturnType<typeof fakeServer>>;
  let ss: Dialer;
  before(async () => {
    srv = await fakeServer();
    ss = shadowsocksDialer(
      { host: "127.0.0.1", port: srv.port, method: METHOD, password: PASSWORD, timeoutMs: 300 },
      tcpDialer(),
    );
  });
  after(async () => {
    await srv.close();
  });

  test("the address and the first data share one chunk and one TCP write", async () => {
    const d = await ss.dial({ host: "example.com", port: ECHO });
    const c = collect(d);
    d.write(enc("hello"));
    d.closeWrite();
    await c.ended;
    assert.equal(c.text(), "hello");
    assert.equal(await c.closed, undefined);
    const conn = srv.conns.at(-1)!;
    assert.deepEqual(conn.target, { host: "example.com", port: ECHO });
    assert.equal(dec(conn.pieces[0]!.subarray(1 + 1 + 11 + 2)), "hello", "first chunk = address ‖ data");
    assert.equal(conn.pieces.length, 1);
    const firstChunkLen = 32 + 18 + (15 + 5) + 16;
    assert.ok(conn.firstRead!.length >= firstChunkLen, `first TCP read had ${conn.firstRead!.length} bytes`);
  });

  test("with nothing to send, the address goes out alone after the hold time", async () => {
    const before = srv.conns.length;
    const d = await ss.dial({ host: "10.1.2.3", port: ECHO });
    const c = collect(d);
    // The hold is 10 ms; wait for the piece to arrive (a loaded machine may take longer than any fixed sleep).
    const deadline = Date.now() + 5000;
    while ((srv.conns[before]?.pieces.length ?? 0) === 0 && Date.now() < deadline) await sleep(10);
    const conn = srv.conns[before]!;
    assert.equal(conn.pieces.length, 1);
    assert.equal(toHex(conn.pieces[0]!), "010a010203" + "0001");
    d.write(enc("later"));
    d.closeWrite();
    await c.ended;
    assert.equal(c.text(), "later");
    await c.closed;
  });

  test("closeWrite before any data still sends the address, then FIN", async () => {
    const d = await ss.dial({ host: "::1", port: ECHO });
    const c = collect(d);
    d.closeWrite();
    await c.ended;
    assert.equal(c.got.chunks.length, 0);
    assert.equal(await c.closed, undefined);
    const conn = srv.conns.at(-1)!;
    assert.deepEqual(conn.target, { host: "::1", port: ECHO });
    assert.ok(conn.ended);
  });

  test("large writes are split into 0x3FFF chunks and echoed intact", async () => {
    const d = await ss.dial({ host: "example.com", port: ECHO });
    const c = collect(d);
    const big = new Uint8Array(randomBytes(200_000));
    d.write(big);
    d.closeWrite();
    await c.ended;
    assert.equal(toHex(concatBytes(c.got.chunks)), toHex(big));
    assert.ok(srv.conns.at(-1)!.pieces.every((p) => p.length <= 0x3fff));
    await c.closed;
  });

  test("server half-close: we read its data and FIN, then still write until our closeWrite", async () => {
    const d = await ss.dial({ host: "example.com", port: SERVER_FIN });
    const c = collect(d);
    await c.ended;
    assert.equal(c.text(), "hi");
    assert.equal(c.got.closeCount, 0);
    d.write(enc("after your FIN"));
    d.closeWrite();
    assert.equal(await c.closed, undefined);
    const conn = srv.conns.at(-1)!;
    await conn.closed;
    assert.equal(dec(concatBytes(conn.data)), "after your FIN");
  });

  test("the chunks of one read go on as one piece", async () => {
    const d = await ss.dial({ host: "example.com", port: BURST });
    const c = collect(d);
    d.write(enc("go"));
    await c.ended;
    d.closeWrite();
    await c.closed;
    assert.equal(c.text(), "12345");
    // Five chunks in one small loopback write arrive in one read: one piece, not five.
    assert.deepEqual(c.got.events, ["data", "end", "close"]);
  });

  test("pause holds later reads and the end back; resume delivers them in order", async () => {
    const d = await ss.dial({ host: "example.com", port: TRICKLE });
    let paused = false;
    const c = collect(d, () => {
      if (!paused) {
        paused = true;
        d.pause();
      }
    });
    d.write(enc("go"));
    await sleep(200);
    assert.deepEqual(c.got.events, ["data"]);
    assert.equal(c.text(), "1");
    d.resume();
    await c.ended;
    assert.equal(c.text(), "12345");
    d.closeWrite();
    await c.closed;
    assert.deepEqual(c.got.events, ["data", "data", "end", "close"]);
  });

  test("a silent server (wrong key) → upstream_timeout", async () => {
    const fresh = shadowsocksDialer(
      { host: "127.0.0.1", port: srv.port, method: METHOD, password: PASSWORD, timeoutMs: 200 },
      tcpDialer(),
    );
    const d = await fresh.dial({ host: "example.com", port: SILENT });
    const c = collect(d);
    const t0 = performance.now();
    d.write(enc("anyone there?"));
    const e = await c.closed;
    assert.equal(e?.code, "upstream_timeout");
    assert.ok(performance.now() - t0 >= 150);
    assert.equal(c.got.closeCount, 1);
  });

  test("a key that has just worked is trusted: a silent target is not cut off", async () => {
    const dialer = shadowsocksDialer(
      { host: "127.0.0.1", port: srv.port, method: METHOD, password: PASSWORD, timeoutMs: 100 },
      tcpDialer(),
    );
    const first = await dialer.dial({ host: "example.com", port: ECHO });
    const c1 = collect(first);
    first.write(enc("x"));
    first.closeWrite();
    await c1.closed;
    const d = await dialer.dial({ host: "example.com", port: SILENT });
    const c = collect(d);
    d.write(enc("long poll"));
    await sleep(400);
    assert.equal(c.got.closeCount, 0, "stream was closed");
    d.close();
    assert.equal(await c.closed, undefined);
  });

  test("garbage from the server → upstream_protocol_error", async () => {
    const d = await ss.dial({ host: "example.com", port: GARBAGE });
    const c = collect(d);
    d.write(enc("x"));
    const e = await c.closed;
    assert.equal(e?.code, "upstream_protocol_error");
    assert.match(e!.message, /ss_auth_failed/);
  });

  test("a FIN in the middle of a chunk → upstream_protocol_error", async () => {
    const d = await ss.dial({ host: "example.com", port: TRUNCATE });
    const c = collect(d);
    d.write(enc("x"));
    const e = await c.closed;
    assert.equal(e?.code, "upstream_protocol_error");
  });

  test("the prefix starts every salt", async () => {
    const prefix = new Uint8Array([0x16, 0x03, 0x01]);
    const dialer = shadowsocksDialer(
      { host: "127.0.0.1", port: srv.port, method: METHOD, password: PASSWORD, prefix },
      tcpDialer(),
    );
    for (let i = 0; i < 2; i++) {
      const d = await dialer.dial({ host: "example.com", port: ECHO });
      const c = collect(d);
      d.write(enc("p"));
      d.closeWrite();
      await c.closed;
      assert.equal(toHex(srv.conns.at(-1)!.salt!.subarray(0, 3)), "160301");
    }
    assert.notEqual(toHex(srv.conns.at(-1)!.salt!), toHex(srv.conns.at(-2)!.salt!));
  });
});

describe("shadowsocksDialer errors", () => {
  const opts = { host: "127.0.0.1", port: 1, method: METHOD, password: PASSWORD };

  test("bad configuration is a typed error at construction", () => {
    assert.throws(
      () => shadowsocksDialer({ ...opts, method: "rc4-md5" }, tcpDialer()),
      (e: unknown) => e instanceof StreamError && e.code === "ss_unsupported_method",
    );
    assert.throws(
      () => shadowsocksDialer({ ...opts, prefix: new Uint8Array(32) }, tcpDialer()),
      (e: unknown) => e instanceof StreamError && e.code === "ss_bad_prefix",
    );
  });

  test("a bad target is bad_address; the server refusing is upstream_refused", async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const ss = shadowsocksDialer({ ...opts, port }, tcpDialer());
    await assert.rejects(ss.dial({ host: "", port: 80 }), (e: unknown) => e instanceof StreamError && e.code === "bad_address");
    await assert.rejects(
      ss.dial({ host: "example.com", port: 80 }),
      (e: unknown) => e instanceof StreamError && e.code === "upstream_refused",
    );
  });

  test("a base dial that never finishes → upstream_timeout; an abort passes through", async () => {
    let sawAbort = false;
    const never: Dialer = {
      dial: (_t, signal) =>
        new Promise((_, reject) => {
          signal?.addEventListener("abort", () => {
            sawAbort = true;
            reject(new StreamError("aborted"));
          });
        }),
    };
    const ss = shadowsocksDialer({ ...opts, timeoutMs: 100 }, never);
    await assert.rejects(
      ss.dial({ host: "example.com", port: 80 }),
      (e: unknown) => e instanceof StreamError && e.code === "upstream_timeout",
    );
    assert.ok(sawAbort, "the base dial was aborted");
    const ac = new AbortController();
    const p = ss.dial({ host: "example.com", port: 80 }, ac.signal);
    ac.abort();
    await assert.rejects(p, (e: unknown) => e instanceof StreamError && e.code === "aborted");
  });
});
