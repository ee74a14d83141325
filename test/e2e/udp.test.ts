// UDP end to end on the runtime under test: a DNS query from this test, through the real
// `httvps connect` (a child process) and its SOCKS5 UDP ASSOCIATE, over the real gateway
//   - in outline mode, to the real ss-server -u (Shadowsocks AEAD UDP), to a local DNS responder;
//   - in direct mode, to the same responder, which the address guard refuses unless
//     GATEWAY_DIRECT_ALLOW lets loopback in (seen through the library client's stream_close code).
// The device's auth comes from an in-process backend client that assigns the ss-server as its
// node: the data path is what is under test here.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { socksUdpAssociate } from "../../client/socks5-udp.testing.ts";
import { connect } from "../../client/tunnel-dialer.ts";
import type { Assignment, BackendClient } from "../../gateway/auth.ts";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { runtime } from "../../runtime/index.ts";
import { startSsServer } from "../../shadowsocks/ss-server.testing.ts";
import type { StreamError } from "../../transport/stream.ts";
import { dnsQuery, type DnsResponder, parseDnsAnswer, startDnsResponder } from "../dns.testing.ts";
import { NODE_PASSWORD, type Stack, startStack, stubBackend, TEST_DEVICE } from "./stack.ts";

const METHOD = "chacha20-ietf-poly1305";

describe(`UDP through httvps connect end to end on ${runtime}`, () => {
  let stack: Stack<BackendClient>;
  let dns: DnsResponder;

  before(async () => {
    stack = await startStack({ backend: stubBackend(), env: { GATEWAY_DIAL_TIMEOUT: "3s" } });
    dns = await startDnsResponder("192.0.2.53");
  });
  after(async () => {
    await stack?.close();
    await dns?.close();
  });

  /** A gateway whose stub backend assigns TEST_DEVICE `assignment`. */
  const gateway = (extra: Record<string, string>, assignment: Assignment | null = null) =>
    stack.gateway(extra, { backend: stubBackend(assignment) });

  const keyFor = (gw: RunningGateway) => stack.accessKey(TEST_DEVICE, gw.port);

  /** `httvps connect` with its SOCKS5 proxy (no HTTP proxy); resolves once it listens. */
  const client = async (gw: RunningGateway): Promise<number> => (await stack.client(keyFor(gw), { http: false })).socks;

  /** DNS queries through a SOCKS5 UDP association; every answer checked. */
  async function queries(socksPort: number, names: string[]): Promise<void> {
    const udp = await socksUdpAssociate(socksPort);
    try {
      for (const [i, name] of names.entries()) {
        const id = 0x4000 + i;
        // UDP may lose a datagram; the first query of a fresh association also pays for the tunnel stream's open.
        let answer;
        for (let attempt = 0; attempt < 3 && !answer; attempt++) {
          udp.send({ host: "127.0.0.1", port: dns.port }, dnsQuery(id, name));
          answer = await udp.next(5000).catch(() => undefined);
        }
        assert.ok(answer, `an answer for ${name}`);
        assert.deepEqual(answer.from, { host: "127.0.0.1", port: dns.port }, "the reply header names the DNS server");
        const a = parseDnsAnswer(answer.payload);
        assert.ok(a && a.response && a.rcode === 0, `a DNS response for ${name}`);
        assert.equal(a.id, id);
        assert.equal(a.name, name);
        assert.deepEqual(a.addresses, ["192.0.2.53"]);
      }
    } finally {
      udp.close();
    }
  }

  test("outline mode: a DNS query through SOCKS5 UDP ASSOCIATE gets its answer via ss-server -u", async () => {
    const ss = await startSsServer(METHOD, NODE_PASSWORD, { udp: true });
    try {
      const gw = await gateway({ GATEWAY_UPSTREAM_MODE: "outline" }, {
        node_id: "ss-udp",
        host: "127.0.0.1",
        port: ss.port,
        method: METHOD,
        password: NODE_PASSWORD,
        prefix: null,
      });
      const socks = await client(gw);
      const before = dns.answered.length;
      await queries(socks, ["example.com", "udp.through.outline.test", "x.y"]);
      assert.ok(dns.answered.length - before >= 3);
    } finally {
      await ss.stop();
    }
  });

  test("direct mode: loopback refused by the address guard with target_forbidden; allowed with GATEWAY_DIRECT_ALLOW", async () => {
    const guarded = await gateway({ GATEWAY_UPSTREAM_MODE: "direct" });
    const tunnel = connect(keyFor(guarded), { tls: { ca: stack.cert.certPem } });
    try {
      await tunnel.ready();
      for (const host of ["127.0.0.1", "10.0.0.53", "::ffff:127.0.0.1"]) {
        const conn = await tunnel.dialPacket({ host, port: dns.port });
        const closed = new Promise<StreamError | undefined>((resolve) =>
          conn.start({ data: () => assert.fail("no datagram may come back"), close: resolve })
        );
        conn.send(dnsQuery(1, "forbidden.test"));
        const err = await closed;
        assert.equal(err?.code, "target_forbidden", host);
      }
    } finally {
      await tunnel.close();
    }

    const allowed = await gateway({ GATEWAY_UPSTREAM_MODE: "direct", GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" });
    await queries(await client(allowed), ["direct.test", "second.direct.test"]);
  });
});
