// Shadowsocks over UDP against the real ss-server -u (shadowsocks-libev) to a local DNS
// responder, and the reply checks (key, source address) with a scripted server.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { dnsQuery, type DnsResponder, parseDnsAnswer, startDnsResponder } from "../test/dns.testing.ts";
import type { PacketConn, PacketDialer, PacketHandlers } from "../transport/packet.ts";
import { StreamError } from "../transport/stream.ts";
import { udpDialer } from "../transport/udp.ts";
import { startSsServer } from "./ss-server.testing.ts";
import { UdpCodec } from "./udp.ts";
import { shadowsocksPacketDialer } from "./udp-dialer.ts";

/** The next datagram on `conn`, or a failure after `ms`. */
function collector(conn: PacketConn) {
  const got: Uint8Array[] = [];
  const waiters: Array<() => void> = [];
  let closed: StreamError | undefined | null = null;
  conn.start({
    data: (d) => {
      got.push(d);
      waiters.splice(0).forEach((w) => w());
    },
    close: (err) => {
      closed = err;
    },
  });
  return {
    got,
    get closed() {
      return closed;
    },
    async next(ms = 5000): Promise<Uint8Array> {
      const deadline = Date.now() + ms;
      while (got.length === 0) {
        if (Date.now() > deadline) throw new Error("no datagram in time");
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
      return got.shift()!;
    },
  };
}

/**
 * A DNS query until its answer comes, asked again every 500 ms as DNS clients do: UDP promises
 * no delivery, and a datagram that reaches ss-server before its UDP socket is bound, or while
 * it resolves a name, is gone (seen on a loaded machine). Late answers to earlier tries are
 * skipped by id.
 */
async function ask(conn: PacketConn, c: ReturnType<typeof collector>, id: number, name: string): Promise<Uint8Array> {
  for (let i = 0; i < 20; i++) {
    assert.equal(conn.send(dnsQuery(id, name)), true);
    const until = Date.now() + 500;
    while (Date.now() < until) {
      const d = await c.next(until - Date.now()).catch(() => undefined);
      if (d && parseDnsAnswer(d)?.id === id) return d;
    }
  }
  throw new Error(`no answer for ${name} to 20 tries over 10 s`);
}

describe("Shadowsocks UDP through the real ss-server -u", () => {
  let dns: DnsResponder;
  before(async () => {
    dns = await startDnsResponder("192.0.2.53");
  });
  after(async () => {
    await dns?.close();
  });

  for (const method of ["chacha20-ietf-poly1305", "aes-256-gcm", "aes-128-gcm"]) {
    test(`${method}: DNS queries get their answers`, async () => {
      const ss = await startSsServer(method, "udp-secret", { udp: true });
      try {
        const dialer = shadowsocksPacketDialer({ host: "127.0.0.1", port: ss.port, method, password: "udp-secret" }, udpDialer());
        const conn = await dialer.dial({ host: "127.0.0.1", port: dns.port });
        const c = collector(conn);
        for (const [i, name] of ["example.com", "a.b.example.org", "x.test"].entries()) {
          const a = parseDnsAnswer(await ask(conn, c, 100 + i, name));
          assert.ok(a, "a DNS response");
          assert.equal(a.id, 100 + i);
          assert.equal(a.name, name);
          assert.ok(a.response && a.rcode === 0);
          assert.deepEqual(a.addresses, ["192.0.2.53"]);
        }
        assert.equal(conn.dropped, 0);
        conn.close();
        assert.equal(c.closed, undefined);
      } finally {
        await ss.stop();
      }
    });
  }

  test("a target given by name: the server resolves it, and the reply's address is the resolved one", async () => {
    const method = "chacha20-ietf-poly1305";
    const ss = await startSsServer(method, "udp-secret", { udp: true });
    try {
      const dialer = shadowsocksPacketDialer({ host: "127.0.0.1", port: ss.port, method, password: "udp-secret" }, udpDialer());
      const conn = await dialer.dial({ host: "localhost", port: dns.port });
      const c = collector(conn);
      assert.deepEqual(parseDnsAnswer(await ask(conn, c, 7, "by-name.test"))?.addresses, ["192.0.2.53"]);
      conn.close();
    } finally {
      await ss.stop();
    }
  });
});

describe("Shadowsocks UDP reply checks", () => {
  /** A base dialer whose conn records what is sent and lets the test play the server. */
  function scripted() {
    const sent: Uint8Array[] = [];
    let h: PacketHandlers | null = null;
    const base: PacketDialer = {
      async dial() {
        return {
          dropped: 0,
          start: (x: PacketHandlers) => void (h = x),
          send: (d: Uint8Array) => (sent.push(d), true),
          close: (err?: StreamError) => h?.close(err),
        };
      },
    };
    return { base, sent, reply: (d: Uint8Array) => h!.data(d) };
  }

  test("only packets that open with the key and name the target are delivered; the rest are counted", async () => {
    const s = scripted();
    const dialer = shadowsocksPacketDialer({ host: "127.0.0.1", port: 8388, method: "aes-128-gcm", password: "pw" }, s.base);
    const conn = await dialer.dial({ host: "127.0.0.1", port: 53 });
    const c = collector(conn);
    conn.send(Uint8Array.of(1, 2, 3));
    const server = new UdpCodec("aes-128-gcm", "pw");
    const seen = server.decode(s.sent[0]!);
    assert.ok(!(seen instanceof StreamError));
    assert.deepEqual(seen.target, { host: "127.0.0.1", port: 53 });
    assert.deepEqual([...seen.payload], [1, 2, 3]);

    s.reply(new UdpCodec("aes-128-gcm", "other").encode({ host: "127.0.0.1", port: 53 }, Uint8Array.of(9))); // wrong key
    s.reply(server.encode({ host: "127.0.0.2", port: 53 }, Uint8Array.of(9))); // another source
    s.reply(server.encode({ host: "127.0.0.1", port: 54 }, Uint8Array.of(9))); // another port
    s.reply(Uint8Array.of(1, 2, 3)); // garbage
    s.reply(server.encode({ host: "::ffff:127.0.0.1", port: 53 }, Uint8Array.of(4, 2))); // the same address, another form
    assert.deepEqual(c.got.map((d) => [...d]), [[4, 2]]);
    assert.equal(conn.dropped, 4);
  });

  test("an unsupported method fails at set-up; an unencodable target fails the dial with bad_target", async () => {
    assert.throws(
      () => shadowsocksPacketDialer({ host: "h", port: 1, method: "rc4-md5", password: "pw" }, scripted().base),
      (e: unknown) => e instanceof StreamError && e.code === "ss_unsupported_method",
    );
    const dialer = shadowsocksPacketDialer({ host: "h", port: 1, method: "aes-128-gcm", password: "pw" }, scripted().base);
    await assert.rejects(
      dialer.dial({ host: "x".repeat(256), port: 53 }),
      (e: unknown) => e instanceof StreamError && e.code === "bad_target",
    );
  });
});
