// SOCKS5 UDP ASSOCIATE (RFC 1928 §7) over a recording echo PacketDialer: the relay's reply,
// headers both ways, one stream per destination with a bound, dropped fragments and strangers,
// and the association ending with its control connection.
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { after, before, describe, test } from "node:test";
import { fakePacketDialer } from "../gateway/upstream/fake-udp.ts";
import { fakeDialer } from "../gateway/upstream/fake.ts";
import type { PacketConn, PacketDialer } from "../transport/packet.ts";
import type { Target } from "../transport/stream.ts";
import type { ProxyServer } from "./proxy-server.ts";
import { startSocks5 } from "./socks5.ts";
import { parseUdpHeader, udpReplyHeader } from "./socks5-udp.ts";
import { socksUdpAssociate } from "./socks5-udp.testing.ts";
import { until } from "./testing.ts";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** The echo, recording every stream it opens, what was sent on it and whether it was closed. */
function recordingEcho() {
  const echo = fakePacketDialer();
  const conns: Array<{ target: Target; sent: string[]; closed: boolean }> = [];
  const dialer: PacketDialer = {
    async dial(target, signal) {
      const inner = await echo.dial(target, signal);
      const rec = { target, sent: [] as string[], closed: false };
      conns.push(rec);
      const conn: PacketConn = {
        get dropped() {
          return inner.dropped;
        },
        start: (h) =>
          inner.start({
            data: h.data,
            close: (err) => {
              rec.closed = true;
              h.close(err);
            },
          }),
        send: (d) => (rec.sent.push(str(d)), inner.send(d)),
        close: (err) => inner.close(err),
      };
      return conn;
    },
  };
  return { dialer, conns };
}

describe("SOCKS5 UDP ASSOCIATE", () => {
  const rec = recordingEcho();
  let socks: ProxyServer;
  before(async () => {
    socks = await startSocks5({
      host: "127.0.0.1",
      port: 0,
      dialer: fakeDialer(),
      packetDialer: rec.dialer,
      maxUdpDestinations: 2,
    });
  });
  after(async () => {
    await socks?.close();
  });

  test("header parsing: fields, fragments, bad RSV and truncation", () => {
    const h = parseUdpHeader(Uint8Array.of(0, 0, 0, 1, 10, 0, 0, 1, 0, 53, 0xaa));
    assert.ok(!("error" in h));
    assert.deepEqual(h.target, { host: "10.0.0.1", port: 53 });
    assert.deepEqual([...h.payload], [0xaa]);
    const frag = parseUdpHeader(Uint8Array.of(0, 0, 1, 3, 1, 0x61, 0, 53));
    assert.ok(!("error" in frag) && frag.frag === 1 && frag.target.host === "a");
    for (
      const bad of [[0, 1, 0, 1, 1, 2, 3, 4, 0, 53], [0, 0, 0, 1, 1, 2], [0, 0], [0, 0, 0, 9, 1, 2, 3, 4, 0, 53], [
        0,
        0,
        0,
        1,
        1,
        2,
        3,
        4,
        0,
        0,
      ]]
    ) {
      assert.ok("error" in parseUdpHeader(Uint8Array.from(bad)), JSON.stringify(bad));
    }
    assert.deepEqual([...udpReplyHeader({ host: "::1", port: 53 })].slice(0, 4), [0, 0, 0, 4]);
  });

  test("datagrams to two destinations come back with their destination in the header; the relay is on loopback", async () => {
    const c = await socksUdpAssociate(socks.port);
    try {
      assert.equal(c.relay.host, "127.0.0.1");
      assert.notEqual(c.relay.port, 0);
      c.send({ host: "dns.example", port: 53 }, text("q1"));
      const r1 = await c.next();
      assert.deepEqual(r1.from, { host: "dns.example", port: 53 });
      assert.equal(str(r1.payload), "q1");
      c.send({ host: "192.0.2.1", port: 4433 }, text("quic"));
      c.send({ host: "dns.example", port: 53 }, text("q2"));
      const replies = [await c.next(), await c.next()].map((r) => `${r.from.host}:${r.from.port} ${str(r.payload)}`).sort();
      assert.deepEqual(replies, ["192.0.2.1:4433 quic", "dns.example:53 q2"]);
      const mine = rec.conns.filter((x) => x.sent.some((s) => ["q1", "quic"].includes(s)));
      assert.equal(mine.length, 2, "one stream per destination");
    } finally {
      c.close();
    }
  });

  test("fragments, bad headers and datagrams from another port are dropped; a third destination evicts the oldest", async () => {
    const c = await socksUdpAssociate(socks.port);
    try {
      const t = { host: "203.0.113.9", port: 7 };
      c.send(t, text("first"));
      await c.next();
      c.send(t, text("fragment"), 1);
      c.sendRaw(Uint8Array.of(1, 0, 0, 1, 1, 2, 3, 4, 0, 7, 0x61));
      const stranger = dgram.createSocket("udp4");
      await new Promise<void>((r) => stranger.bind(0, "127.0.0.1", () => r()));
      const a = Uint8Array.of(0, 0, 0, 1, 203, 0, 113, 9, 0, 7, ...text("stranger"));
      await new Promise<void>((r) => stranger.send(a, c.relay.port, c.relay.host, () => r()));
      stranger.close();
      c.send(t, text("last"));
      assert.equal(str((await c.next()).payload), "last");
      const conn = rec.conns.find((x) => x.target.host === t.host)!;
      assert.deepEqual(conn.sent, ["first", "last"]);

      c.send({ host: "203.0.113.10", port: 7 }, text("b"));
      await c.next();
      c.send({ host: "203.0.113.11", port: 7 }, text("c"));
      await c.next();
      await until(() => conn.closed, "the least recently used destination's stream is closed");
    } finally {
      c.close();
    }
  });

  test("closing the control connection ends the association and its streams", async () => {
    const c = await socksUdpAssociate(socks.port);
    c.send({ host: "198.51.100.7", port: 9 }, text("x"));
    await c.next();
    const conn = rec.conns.find((x) => x.target.host === "198.51.100.7")!;
    c.control.destroy();
    await until(() => conn.closed, "the stream closed with the association");
    c.close();
  });

  test("without a PacketDialer UDP ASSOCIATE stays unsupported", async () => {
    const plain = await startSocks5({ host: "127.0.0.1", port: 0, dialer: fakeDialer() });
    try {
      await assert.rejects(socksUdpAssociate(plain.port, "127.0.0.1", 5000), /refused: reply 7/);
    } finally {
      await plain.close();
    }
  });
});
