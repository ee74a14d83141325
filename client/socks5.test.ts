// The SOCKS5 server with a fake Dialer: the parsers on their own, then real loopback sockets
// for the handshake, authentication, reply codes, data with half-close, and malformed input.
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";
import { runtime } from "../runtime/index.ts";
import { type Dialer, type Duplex, StreamError, type Target } from "../transport/stream.ts";
import type { ProxyServer } from "./proxy-server.ts";
import { parseGreeting, parseRequest, parseUserPass, socksReplyFor, startSocks5 } from "./socks5.ts";
import { memoryPair, until } from "./testing.ts";

/** A Dialer whose upstreams echo (or fail with the code a target's host asks for: "fail-<code>"). */
function fakeDialer() {
  const targets: Target[] = [];
  const upstreams: Array<{ received: number[]; ended: boolean; closed: boolean }> = [];
  const dialer: Dialer = {
    async dial(target: Target): Promise<Duplex> {
      targets.push(target);
      const m = /^fail-(.+)$/.exec(target.host);
      if (m) throw new StreamError(m[1]!, `fake ${m[1]}`);
      const [mine, theirs] = memoryPair();
      const up = { received: [] as number[], ended: false, closed: false };
      upstreams.push(up);
      theirs.start({
        data(c) {
          up.received.push(...c);
          theirs.write(c);
        },
        end() {
          up.ended = true;
          theirs.closeWrite();
        },
        drain() {},
        close() {
          up.closed = true;
        },
      });
      return mine;
    },
  };
  return { dialer, targets, upstreams };
}

/** A client socket that collects what it reads. */
async function client(port: number) {
  const sock = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => sock.once("connect", resolve).once("error", reject));
  const got: number[] = [];
  const state = { got, ended: false, closed: false };
  sock.on("data", (d: Uint8Array) => got.push(...d));
  // Like most applications: when the server is done, so are we.
  sock.on("end", () => {
    state.ended = true;
    sock.end();
  });
  sock.on("close", () => (state.closed = true));
  sock.on("error", () => {});
  return {
    sock,
    state,
    send: (...b: number[]) => sock.write(Uint8Array.from(b)),
    /** Wait for `n` bytes read in total. */
    read: async (n: number) => {
      await until(() => got.length >= n || state.closed, `${n} bytes`);
      return got.slice(0, n);
    },
  };
}

const servers: ProxyServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

describe(`socks5 parsers`, () => {
  test("greeting", () => {
    assert.deepEqual(parseGreeting(Uint8Array.of(5)), { ok: false, need: "more" });
    assert.deepEqual(parseGreeting(Uint8Array.of(5, 2, 0)), { ok: false, need: "more" });
    assert.deepEqual(parseGreeting(Uint8Array.of(5, 2, 0, 2, 9)), { ok: true, value: [0, 2], used: 4 });
    assert.equal((parseGreeting(Uint8Array.of(4, 1, 0)) as { error: string }).error.includes("not SOCKS5"), true);
    assert.equal("error" in parseGreeting(Uint8Array.of(5, 0)), true);
    assert.equal("error" in parseGreeting(new TextEncoder().encode("GET / HTTP/1.1\r\n")), true);
  });

  test("requests: IPv4, IPv6, domain; refusals that still get a reply", () => {
    assert.deepEqual(parseRequest(Uint8Array.of(5, 1, 0, 1, 10, 0, 0, 1, 0x1f, 0x90)), {
      ok: true,
      value: { cmd: 1, target: { host: "10.0.0.1", port: 8080 } },
      used: 10,
    });
    const v6 = Uint8Array.of(5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80);
    assert.deepEqual(parseRequest(v6), { ok: true, value: { cmd: 1, target: { host: "2001:db8::1", port: 80 } }, used: 22 });
    const name = new TextEncoder().encode("example.com");
    assert.deepEqual(parseRequest(Uint8Array.of(5, 1, 0, 3, name.length, ...name, 1, 187)), {
      ok: true,
      value: { cmd: 1, target: { host: "example.com", port: 443 } },
      used: 7 + name.length,
    });
    assert.deepEqual(parseRequest(Uint8Array.of(5, 1, 0, 3, 5, 97)), { ok: false, need: "more" });
    assert.deepEqual(parseRequest(Uint8Array.of(5, 1, 0, 1, 1, 2)), { ok: false, need: "more" });
    const r = (b: number[]) => (parseRequest(Uint8Array.from(b)) as { value: { reply?: number } }).value.reply;
    assert.equal(r([5, 1, 0, 9, 1, 2, 3]), 8, "unknown address type");
    assert.equal(r([5, 1, 0, 3, 0, 0, 80]), 4, "empty name");
    assert.equal(r([5, 1, 0, 3, 3, 97, 10, 98, 0, 80]), 4, "control character in the name");
    assert.equal(r([5, 1, 0, 3, 2, 0xc3, 0xa9, 0, 80]), 4, "a name that is not ASCII");
    assert.equal(r([5, 1, 0, 3, 2, 0xff, 0xfe, 0, 80]), 4, "a name that is not UTF-8");
    assert.equal(r([5, 1, 0, 1, 1, 2, 3, 4, 0, 0]), 1, "port 0");
    assert.equal("error" in parseRequest(Uint8Array.of(4, 1, 0, 1, 1, 2, 3, 4, 0, 80)), true);
  });

  test("username/password (RFC 1929)", () => {
    const ok = parseUserPass(Uint8Array.of(1, 2, 97, 98, 1, 99));
    assert.equal(
      ok.ok && new TextDecoder().decode(ok.value.username) + ":" + new TextDecoder().decode(ok.value.password),
      "ab:c",
    );
    assert.deepEqual(parseUserPass(Uint8Array.of(1, 2, 97)), { ok: false, need: "more" });
    assert.equal("error" in parseUserPass(Uint8Array.of(5, 1, 97, 1, 98)), true);
  });

  test("reply codes", () => {
    assert.deepEqual(
      [
        "upstream_refused",
        "upstream_unreachable",
        "target_forbidden",
        "upstream_timeout",
        "unavailable",
        "session_closed",
        "whatever",
      ].map(socksReplyFor),
      [5, 4, 2, 6, 1, 1, 1],
    );
  });
});

describe(`socks5 server on ${runtime}`, () => {
  let open: ProxyServer;
  let auth: ProxyServer;
  let fake: ReturnType<typeof fakeDialer>;
  before(async () => {
    fake = fakeDialer();
    open = await startSocks5({ host: "127.0.0.1", port: 0, dialer: fake.dialer, handshakeTimeoutMs: 500 });
    auth = await startSocks5({
      host: "127.0.0.1",
      port: 0,
      dialer: fake.dialer,
      auth: { username: "alice", password: "wonderland" },
    });
    servers.push(open, auth);
  });

  const connectTo = (host: string, port: number) => {
    const name = new TextEncoder().encode(host);
    return [5, 1, 0, 3, name.length, ...name, port >> 8, port & 0xff];
  };

  test("no-auth CONNECT to a domain: success reply, echo both ways, half-close passed on", async () => {
    const c = await client(open.port);
    c.send(5, 1, 0);
    assert.deepEqual(await c.read(2), [5, 0]);
    c.send(...connectTo("example.com", 443));
    assert.deepEqual(await c.read(12), [5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(fake.targets.at(-1), { host: "example.com", port: 443 });
    c.sock.write(new TextEncoder().encode("ping"));
    await until(() => c.state.got.length >= 16, "echo");
    assert.equal(new TextDecoder().decode(Uint8Array.from(c.state.got.slice(12))), "ping");
    c.sock.end();
    await until(() => c.state.ended, "FIN back from the echo upstream");
    await until(() => c.state.closed, "socket closed");
    assert.equal(fake.upstreams.at(-1)!.ended, true);
  });

  test("bytes pipelined right behind the request reach the upstream", async () => {
    const c = await client(open.port);
    c.send(5, 1, 0, ...[5, 1, 0, 1, 127, 0, 0, 1, 0, 80], ...new TextEncoder().encode("early"));
    await until(() => c.state.got.length >= 2 + 10 + 5, "greeting, reply and echo");
    assert.deepEqual(fake.targets.at(-1), { host: "127.0.0.1", port: 80 });
    assert.equal(new TextDecoder().decode(Uint8Array.from(c.state.got.slice(12))), "early");
    c.sock.destroy();
  });

  test("IPv6 targets", async () => {
    const c = await client(open.port);
    c.send(5, 1, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xbb);
    assert.deepEqual((await c.read(12)).slice(0, 4), [5, 0, 5, 0]);
    assert.deepEqual(fake.targets.at(-1), { host: "::1", port: 443 });
    c.sock.destroy();
  });

  for (
    const [code, rep] of [
      ["upstream_refused", 5],
      ["upstream_unreachable", 4],
      ["target_forbidden", 2],
      ["upstream_timeout", 6],
      ["unavailable", 1],
    ] as const
  ) {
    test(`a dial failing with ${code} is reply ${rep}, then the connection closes`, async () => {
      const c = await client(open.port);
      c.send(5, 1, 0, ...connectTo(`fail-${code}`, 80));
      await until(() => c.state.closed, "closed");
      assert.deepEqual(c.state.got, [5, 0, 5, rep, 0, 1, 0, 0, 0, 0, 0, 0]);
    });
  }

  test("BIND and UDP ASSOCIATE: command not supported; unknown address type: 8", async () => {
    for (
      const [req, rep] of [[[5, 2, 0, 1, 1, 2, 3, 4, 0, 80], 7], [[5, 3, 0, 1, 0, 0, 0, 0, 0, 0], 7], [
        [5, 1, 0, 7, 1, 2, 3, 4],
        8,
      ]] as const
    ) {
      const c = await client(open.port);
      c.send(5, 1, 0, ...req);
      await until(() => c.state.closed, "closed");
      assert.deepEqual(c.state.got.slice(0, 4), [5, 0, 5, rep]);
    }
  });

  test("malformed greetings and truncated requests close the connection; the server keeps serving", async () => {
    const before = fake.targets.length;
    const http = await client(open.port);
    http.sock.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await until(() => http.state.closed, "closed");
    assert.deepEqual(http.state.got, []);
    const socks4 = await client(open.port);
    socks4.send(4, 1, 0, 80, 1, 2, 3, 4, 0);
    await until(() => socks4.state.closed, "closed");
    const truncated = await client(open.port);
    truncated.send(5, 1, 0, 5, 1, 0, 3, 200, 97, 98);
    truncated.sock.end();
    await until(() => truncated.state.closed, "closed");
    const silent = await client(open.port);
    await until(() => silent.state.closed, "handshake timeout", 3000);
    const noMethods = await client(open.port);
    noMethods.send(5, 1, 0x80);
    await until(() => noMethods.state.closed, "closed");
    assert.deepEqual(noMethods.state.got, [5, 0xff]);
    assert.equal(fake.targets.length, before, "nothing was dialled");
    // still healthy
    const c = await client(open.port);
    c.send(5, 1, 0, ...connectTo("example.org", 80));
    assert.deepEqual(await c.read(4), [5, 0, 5, 0]);
    c.sock.destroy();
  });

  test("username/password: required, checked, and a wrong one is refused", async () => {
    const noAuth = await client(auth.port);
    noAuth.send(5, 1, 0);
    await until(() => noAuth.state.closed, "closed");
    assert.deepEqual(noAuth.state.got, [5, 0xff]);

    const wrong = await client(auth.port);
    wrong.send(5, 1, 2, 1, 5, ...new TextEncoder().encode("alice"), 3, ...new TextEncoder().encode("bad"));
    await until(() => wrong.state.closed, "closed");
    assert.deepEqual(wrong.state.got, [5, 2, 1, 1]);

    const right = await client(auth.port);
    right.send(
      5,
      1,
      2,
      1,
      5,
      ...new TextEncoder().encode("alice"),
      10,
      ...new TextEncoder().encode("wonderland"),
      ...connectTo("example.net", 80),
    );
    assert.deepEqual(await right.read(6), [5, 2, 1, 0, 5, 0]);
    assert.deepEqual(fake.targets.at(-1), { host: "example.net", port: 80 });
    right.sock.destroy();
  });

  test("close() ends open connections", async () => {
    const f = fakeDialer();
    const s = await startSocks5({ host: "127.0.0.1", port: 0, dialer: f.dialer });
    const c = await client(s.port);
    c.send(5, 1, 0, ...connectTo("example.com", 80));
    await c.read(12);
    assert.equal(s.connections, 1);
    await s.close();
    await until(() => c.state.closed, "client closed");
    await until(() => f.upstreams[0]!.closed, "upstream closed");
  });
});
