// UDP end to end on the runtime under test: a DNS query from this test, through the real
// `httvps connect` (a child process) and its SOCKS5 UDP ASSOCIATE, over the real gateway
//   - in outline mode, to the real ss-server -u (Shadowsocks AEAD UDP), to a local DNS responder;
//   - in direct mode, to the same responder, which the address guard refuses unless
//     GATEWAY_DIRECT_ALLOW lets loopback in (seen through the library client's stream_close code).
// The device's auth comes from an in-process backend client that assigns the ss-server as its
// node: the data path is what is under test here.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { socksUdpAssociate } from "../../client/socks5-udp.testing.ts";
import { connect } from "../../client/tunnel-dialer.ts";
import { type Env, loadConfig } from "../../config/config.ts";
import type { Assignment, BackendClient, ReportBody } from "../../gateway/auth.ts";
import { createDevCertificate, type DevCertificate } from "../../gateway/certs.ts";
import { type RunningGateway, startGateway } from "../../gateway/gateway.ts";
import { memoryLogger } from "../../logging/logger.ts";
import { formatAccessKey } from "../../protocol/access-key.ts";
import { runtime } from "../../runtime/index.ts";
import { startSsServer } from "../../shadowsocks/ss-server.testing.ts";
import type { StreamError } from "../../transport/stream.ts";
import { startHttvps } from "../cli.ts";
import { dnsQuery, type DnsResponder, parseDnsAnswer, startDnsResponder } from "../dns.testing.ts";

const site = fileURLToPath(new URL("../../deploy/decoy", import.meta.url));
const DEVICE = { device_id: "udp-device", token: "udp-device-token" };
const METHOD = "chacha20-ietf-poly1305";
const NODE_SECRET = "udp-e2e-node-secret";
const READY = /SOCKS5 proxy on 127\.0\.0\.1:(\d+)/;

function backendFor(assignment: Assignment | null): BackendClient {
  return {
    async validateDevice(req) {
      if (req.token !== DEVICE.token) return { ok: false, code: "bad_token", message: "no" };
      return {
        ok: true,
        device: { id: req.device_id, name: "d", max_sessions: null, data_quota_bytes: null, expires_at: null },
        assignment,
      };
    },
    async report(body: ReportBody) {
      return body.events.length;
    },
  };
}

describe(`UDP through httvps connect end to end on ${runtime}`, () => {
  let cert: DevCertificate;
  let dir: string;
  let dns: DnsResponder;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    cert = await createDevCertificate();
    dir = await mkdtemp(join(tmpdir(), "httvps-udp-e2e-"));
    await writeFile(join(dir, "cert.pem"), cert.certPem);
    await writeFile(join(dir, "key.pem"), cert.keyPem, { mode: 0o600 });
    dns = await startDnsResponder("192.0.2.53");
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await dns?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string>): Env =>
    loadConfig({
      LOG_LEVEL: "warn",
      GATEWAY_LISTEN_ADDR: "127.0.0.1:0",
      GATEWAY_TLS_CERT: join(dir, "cert.pem"),
      GATEWAY_TLS_KEY: join(dir, "key.pem"),
      GATEWAY_DECOY_DIR: site,
      GATEWAY_DIAL_TIMEOUT: "3s",
      ...extra,
    });

  async function gateway(extra: Record<string, string>, assignment: Assignment | null = null): Promise<RunningGateway> {
    const gw = await startGateway(env(extra), { logger: memoryLogger("warn"), backend: backendFor(assignment) });
    cleanups.push(() => gw.close());
    return gw;
  }

  const keyFor = (gw: RunningGateway) =>
    formatAccessKey({
      host: "127.0.0.1",
      port: gw.port,
      deviceId: DEVICE.device_id,
      token: DEVICE.token,
      pin: cert.sha256,
      name: "udp",
    });

  /** `httvps connect` with its SOCKS5 proxy; resolves once it listens. */
  async function client(gw: RunningGateway): Promise<number> {
    const file = join(dir, `key-${gw.port}`);
    await writeFile(file, keyFor(gw) + "\n", { mode: 0o600 });
    const c = await startHttvps(
      ["connect", "--key-file", file, "--socks", "127.0.0.1:0", "--http", "off"],
      { LOG_LEVEL: "info" },
      READY,
      { timeoutMs: 30_000 },
    );
    cleanups.push(() => c.stop());
    return Number(c.match[1]);
  }

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
    const ss = await startSsServer(METHOD, NODE_SECRET, { udp: true });
    cleanups.push(() => ss.stop());
    const gw = await gateway({ GATEWAY_UPSTREAM_MODE: "outline" }, {
      node_id: "ss-udp",
      host: "127.0.0.1",
      port: ss.port,
      method: METHOD,
      password: NODE_SECRET,
      prefix: null,
    });
    const socks = await client(gw);
    const before = dns.answered.length;
    await queries(socks, ["example.com", "udp.through.outline.test", "x.y"]);
    assert.ok(dns.answered.length - before >= 3);
  });

  test("direct mode: loopback refused by the address guard with target_forbidden; allowed with GATEWAY_DIRECT_ALLOW", async () => {
    const guarded = await gateway({ GATEWAY_UPSTREAM_MODE: "direct" });
    const tunnel = connect(keyFor(guarded), { tls: { ca: cert.certPem } });
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
