import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { type Duplex, StreamError } from "./stream.ts";
import { duplexFromSocket, streamErrorFromSocket, tcpDialer } from "./tcp.ts";

/** Collects everything a Duplex delivers; `closed` resolves with the close error. */
function collect(d: Duplex, opts: { start?: boolean } = {}) {
  const got = { chunks: [] as Uint8Array[], ended: false, events: [] as string[], closeCount: 0 };
  let resolveEnd!: () => void;
  const ended = new Promise<void>((r) => (resolveEnd = r));
  let resolveClose!: (e: StreamError | undefined) => void;
  const closed = new Promise<StreamError | undefined>((r) => (resolveClose = r));
  const start = () =>
    d.start({
      data: (c) => {
        got.chunks.push(c);
        if (got.events.at(-1) !== "data") got.events.push("data");
      },
      end: () => {
        got.ended = true;
        got.events.push("end");
        resolveEnd();
      },
      drain: () => got.events.push("drain"),
      close: (e) => {
        got.closeCount++;
        got.events.push("close");
        resolveClose(e);
      },
    });
  if (opts.start !== false) start();
  const text = () => Buffer.concat(got.chunks).toString();
  return { got, ended, closed, start, text };
}

const enc = (s: string) => new TextEncoder().encode(s);

interface ServerSide {
  socket: net.Socket;
  received: Buffer[];
  ended: Promise<void>;
}

/** A loopback server; each connection is handed to `onConn`. */
async function listen(
  onConn: (s: net.Socket) => void,
  pauseOnConnect = false,
): Promise<{ port: number; server: net.Server; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as net.AddressInfo).port, server, sockets };
}

async function closeServer(s: { server: net.Server; sockets: Set<net.Socket> }) {
  for (const sock of s.sockets) sock.destroy();
  await new Promise<void>((r) => s.server.close(() => r()));
}

describe("tcpDialer + duplexFromSocket on loopback", () => {
  let echo: Awaited<ReturnType<typeof listen>>;
  let serverFirst: Awaited<ReturnType<typeof listen>>;
  const serverSides: ServerSide[] = [];

  before(async () => {
    // Echo; FIN only after the client's FIN (tests client → server half-close).
    echo = await listen((s) => {
      s.on("data", (d) => s.write(d));
      s.on("end", () => s.end());
    });
    // Speaks first, then half-closes, then records what the client still sends.
    serverFirst = await listen((s) => {
      const side: ServerSide = { socket: s, received: [], ended: new Promise((r) => s.on("end", r)) };
      serverSides.push(side);
      s.on("data", (d: Buffer) => side.received.push(d));
      s.write("hello from server");
      s.end();
      side.ended.then(() => s.destroy());
    });
  });

  after(async () => {
    await closeServer(echo);
    await closeServer(serverFirst);
  });

  test("client half-close: write, closeWrite, the echo and the FIN still arrive", async () => {
    const d = await tcpDialer().dial({ host: "127.0.0.1", port: echo.port });
    const c = collect(d);
    d.write(enc("ping "));
    d.write(enc("pong"));
    d.closeWrite();
    assert.equal(d.write(enc("late")), false, "write after closeWrite is refused");
    await c.ended;
    assert.equal(c.text(), "ping pong");
    assert.equal(await c.closed, undefined);
    assert.deepEqual(c.got.events, ["data", "end", "close"]);
  });

  test("server half-close: we get data + end, and can still write until our own closeWrite", async () => {
    const d = await tcpDialer().dial({ host: "localhost", port: serverFirst.port });
    const c = collect(d);
    await c.ended;
    assert.equal(c.text(), "hello from server");
    assert.equal(c.got.closeCount, 0, "not closed while our side is open");
    assert.equal(d.write(enc("after your FIN")), true);
    d.closeWrite();
    assert.equal(await c.closed, undefined);
    const side = serverSides.at(-1)!;
    await side.ended;
    assert.equal(Buffer.concat(side.received).toString(), "after your FIN");
    assert.equal(c.got.closeCount, 1);
  });

  test("data that arrives before start() is held and delivered, in order, with the end", async () => {
    const d = await tcpDialer().dial({ host: "127.0.0.1", port: serverFirst.port });
    const c = collect(d, { start: false });
    await new Promise((r) => setTimeout(r, 50));
    c.start();
    await c.ended;
    assert.equal(c.text(), "hello from server");
    d.closeWrite();
    assert.equal(await c.closed, undefined);
  });

  test("pause stops delivery, resume restarts it", async () => {
    const d = await tcpDialer().dial({ host: "127.0.0.1", port: echo.port });
    const c = collect(d);
    d.pause();
    d.write(enc("held"));
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(c.got.chunks.length, 0);
    d.resume();
    d.closeWrite();
    await c.ended;
    assert.equal(c.text(), "held");
    await c.closed;
  });

  test("write returns false above the high-water mark and drain follows", async () => {
    let serverSocket: net.Socket | undefined;
    const slow = await listen((s) => {
      serverSocket = s;
      s.pause();
    });
    try {
      const d = await tcpDialer().dial({ host: "127.0.0.1", port: slow.port });
      const c = collect(d);
      const block = new Uint8Array(64 * 1024);
      let writes = 0;
      while (d.write(block)) {
        if (++writes > 10_000) assert.fail("write never returned false");
      }
      let total = 0;
      serverSocket!.on("data", (x) => (total += x.length));
      serverSocket!.resume();
      while (!c.got.events.includes("drain")) await new Promise((r) => setTimeout(r, 5));
      assert.ok(total > 0);
      d.close();
      assert.equal(await c.closed, undefined);
      assert.equal(c.got.closeCount, 1);
    } finally {
      await closeServer(slow);
    }
  });

  test("close(err) tears down both ways and reports that error exactly once", async () => {
    const d = await tcpDialer().dial({ host: "127.0.0.1", port: echo.port });
    const c = collect(d);
    d.close(new StreamError("test_reason"));
    d.close(new StreamError("other"));
    const e = await c.closed;
    assert.equal(e?.code, "test_reason");
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(c.got.closeCount, 1);
    assert.equal(d.write(enc("x")), false);
  });

  test("a connection reset by the peer closes with upstream_reset", async () => {
    // Closing a socket with unread received data makes the kernel send RST, not FIN.
    const rst = await listen((s) => {
      setTimeout(() => s.destroy(), 50);
    }, true);
    try {
      const d = await tcpDialer().dial({ host: "127.0.0.1", port: rst.port });
      const c = collect(d);
      d.write(new Uint8Array(1000));
      const e = await c.closed;
      assert.equal(e?.code, "upstream_reset");
    } finally {
      await closeServer(rst);
    }
  });
});

describe("tcpDialer failures", () => {
  test("refused → upstream_refused", async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(
      tcpDialer().dial({ host: "127.0.0.1", port }),
      (e: unknown) => e instanceof StreamError && e.code === "upstream_refused",
    );
  });

  test("a connect that never completes → upstream_timeout", async () => {
    const stuck: net.Socket[] = [];
    const dialer = tcpDialer({
      connectTimeoutMs: 100,
      connect: () => {
        const s = new net.Socket();
        stuck.push(s);
        return s;
      },
    });
    await assert.rejects(
      dialer.dial({ host: "127.0.0.1", port: 9 }),
      (e: unknown) => e instanceof StreamError && e.code === "upstream_timeout",
    );
    assert.ok(stuck[0]!.destroyed);
  });

  test("abort before and during connect → aborted", async () => {
    await assert.rejects(
      tcpDialer().dial({ host: "127.0.0.1", port: 9 }, AbortSignal.abort()),
      (e: unknown) => e instanceof StreamError && e.code === "aborted",
    );
    const ac = new AbortController();
    const dialer = tcpDialer({ connectTimeoutMs: 0, connect: () => new net.Socket() });
    const p = dialer.dial({ host: "127.0.0.1", port: 9 }, ac.signal);
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(p, (e: unknown) => e instanceof StreamError && e.code === "aborted");
  });

  test("bad targets are typed errors", async () => {
    for (const t of [{ host: "127.0.0.1", port: 0 }, { host: "127.0.0.1", port: 70000 }, { host: "", port: 80 }]) {
      await assert.rejects(tcpDialer().dial(t), (e: unknown) => e instanceof StreamError && e.code === "bad_target");
    }
  });

  test("IPv6 loopback", async () => {
    const server = net.createServer({ allowHalfOpen: true }, (s) => s.end("v6"));
    const ok = await new Promise<boolean>((r) => {
      server.once("error", () => r(false));
      server.listen(0, "::1", () => r(true));
    });
    if (!ok) return; // no IPv6 loopback on this host: nothing to test, nothing to close
    try {
      const port = (server.address() as net.AddressInfo).port;
      const d = await tcpDialer().dial({ host: "::1", port });
      const c = collect(d);
      await c.ended;
      assert.equal(c.text(), "v6");
      d.closeWrite();
      await c.closed;
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test("socket error codes map to stable codes", () => {
    const code = (c: string) => streamErrorFromSocket(Object.assign(new Error("x"), { code: c })).code;
    assert.equal(code("ECONNREFUSED"), "upstream_refused");
    assert.equal(code("ETIMEDOUT"), "upstream_timeout");
    for (const c of ["EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND"]) assert.equal(code(c), "upstream_unreachable");
    for (const c of ["ECONNRESET", "EPIPE"]) assert.equal(code(c), "upstream_reset");
    assert.equal(code("EWHATEVER"), "upstream_error");
  });
});

describe("duplexFromSocket on an accepted socket", () => {
  test("the server side of a connection works the same way", async () => {
    let serverDuplex: Duplex | undefined;
    let resolveServer!: () => void;
    const haveServer = new Promise<void>((r) => (resolveServer = r));
    const s = await listen((sock) => {
      serverDuplex = duplexFromSocket(sock);
      resolveServer();
    });
    try {
      const client = await tcpDialer().dial({ host: "127.0.0.1", port: s.port });
      const cc = collect(client);
      await haveServer;
      const sc = collect(serverDuplex!);
      client.write(enc("request"));
      client.closeWrite();
      await sc.ended;
      assert.equal(sc.text(), "request");
      serverDuplex!.write(enc("response"));
      serverDuplex!.closeWrite();
      await cc.ended;
      assert.equal(cc.text(), "response");
      assert.equal(await cc.closed, undefined);
      assert.equal(await sc.closed, undefined);
    } finally {
      await closeServer(s);
    }
  });
});

test("bytes that arrived before start() survive a closeWrite() in the same tick", async () => {
  // The server answers and closes at once; the client half-closes before it ever reads.
  const server = net.createServer((c) => c.end("early answer"));
  const port = await new Promise<number>((r) =>
    server.listen(0, "127.0.0.1", () => r((server.address() as net.AddressInfo).port))
  );
  try {
    const conn = await tcpDialer().dial({ host: "127.0.0.1", port });
    const got = await new Promise<string>((resolve) => {
      let s = "";
      conn.start({ data: (c) => (s += new TextDecoder().decode(c)), end() {}, drain() {}, close: () => resolve(s) });
      conn.closeWrite();
    });
    assert.equal(got, "early answer");
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
