// Outline mode end to end on the runtime under test: the real backend (PGlite, one per file:
// it is slow to start) assigns nodes that are real shadowsocks-libev ss-servers; the real
// gateway dials them with the device's assignment; a test client speaks the session
// protocol over WSS and fetches from a local HTTP target through them, bodies compared by
// SHA-256. Then the failures: a wrong key (silent node), a dead node (failover), no node.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { DevCertificate } from "../../gateway/certs.ts";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { runtime } from "../../runtime/index.ts";
import { METHODS } from "../../shadowsocks/ciphers.ts";
import { type HttpTarget, type SsServer, startHttpTarget, startSsServer } from "../../shadowsocks/ss-server.testing.ts";
import { NODE_PASSWORD, type Stack, startStack } from "./stack.ts";
import { TunnelClient } from "./tunnel-client.ts";

const MiB = 1024 * 1024;
const BIG = 64 * MiB;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const POOL = new Uint8Array(randomBytes(BIG));

const get = (n: number) => `GET /bytes/${n} HTTP/1.1\r\nHost: target\r\nConnection: close\r\n\r\n`;
const post = (n: number) => `POST /upload HTTP/1.1\r\nHost: target\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n`;

describe(`outline upstream end to end on ${runtime}`, () => {
  let stack: Stack<"app">;
  let cert: DevCertificate;
  let target: HttpTarget;
  const servers = new Map<string, SsServer>();
  const extra: SsServer[] = [];
  /** What the gateway asked the backend: validate-device calls, node_failure events. */
  const seen = { validations: 0, nodeFailures: [] as Array<{ node_id: string; error: string }> };

  before(async () => {
    [stack, target] = await Promise.all([
      startStack({
        upstream: "outline",
        logLevel: "error",
        env: { GATEWAY_DIAL_TIMEOUT: "3s", GATEWAY_USAGE_FLUSH_INTERVAL: "200ms" },
        observe: async (req) => {
          const path = new URL(req.url).pathname;
          if (path === "/api/v1/auth/validate-device") seen.validations++;
          if (path === "/api/v1/gateway/report") {
            const body = (await req.clone().json()) as { events: Array<{ type: string; node_id: string; error: string }> };
            for (const e of body.events) {
              if (e.type === "node_failure") seen.nodeFailures.push({ node_id: e.node_id, error: e.error });
            }
          }
        },
      }),
      startHttpTarget(POOL),
    ]);
    cert = stack.cert;
    for (const m of METHODS) servers.set(m, await startSsServer(m, NODE_PASSWORD));
  });

  after(async () => {
    for (const s of [...servers.values(), ...extra]) await s.stop();
    await target?.close();
    await stack?.close();
  });

  const admin = (method: string, path: string, body?: unknown) => stack.backend.admin(method, path, body);
  const withGateway = (more: Record<string, string>, fn: (gw: RunningGateway) => Promise<void>) => stack.withGateway(more, fn);

  let nodeCount = 0;
  async function addNode(port: number, method: string, password = NODE_PASSWORD): Promise<string> {
    const n = await admin("POST", "/api/v1/nodes", { name: `node-${++nodeCount}`, host: "127.0.0.1", port, method, password });
    return n.id as string;
  }

  /** Exactly these nodes take part in assignment (tests share one backend). */
  async function useOnly(ids: string[]): Promise<void> {
    const { nodes } = await admin("GET", "/api/v1/nodes");
    for (const n of nodes as Array<{ id: string; enabled: boolean }>) {
      const want = ids.includes(n.id);
      if (n.enabled !== want) await admin("PATCH", `/api/v1/nodes/${n.id}`, { enabled: want });
    }
  }

  const newDevice = () => stack.backend.device({ name: "outline-e2e" });

  async function download(c: TunnelClient, n: number): Promise<void> {
    const r = await c.http({ host: "127.0.0.1", port: target.port }, get(n));
    assert.equal(r.code, undefined, `download ${n}: closed cleanly`);
    assert.equal(r.status, 200);
    assert.equal(r.bodyLength, n);
    assert.equal(r.bodySha256, sha(POOL.subarray(0, n)), `download ${n}: sha256`);
  }

  async function upload(c: TunnelClient, n: number): Promise<void> {
    const body = POOL.subarray(0, n);
    const r = await c.http({ host: "127.0.0.1", port: target.port }, post(n), body);
    assert.equal(r.code, undefined, `upload ${n}: closed cleanly`);
    assert.equal(r.status, 200);
    assert.equal(r.bodyText, `${n} ${sha(body)}`, `upload ${n}: sha256`);
  }

  for (const method of METHODS) {
    test(`${method}: 1, 16383 and 16384 bytes down and up through the assigned node`, async () => {
      const node = await addNode(servers.get(method)!.port, method);
      await useOnly([node]);
      const dev = await newDevice();
      await withGateway({}, async (gw) => {
        const c = await TunnelClient.session(gw.port, cert.certPem, dev);
        try {
          for (const n of [1, 16383, 16384]) {
            await download(c, n);
            await upload(c, n);
          }
          // Outline mode needs a target.
          const rx = c.open(c.newId());
          await c.until(() => rx.close !== null, "target_required");
          assert.equal(rx.close!.code, "target_required");
        } finally {
          await c.shut();
        }
      });
      assert.equal((await admin("GET", `/api/v1/devices/${dev.device_id}`)).node_id, node);
    });
  }

  test("chacha20-ietf-poly1305: a 64 MiB download, sha256-equal", async () => {
    const node = await addNode(servers.get("chacha20-ietf-poly1305")!.port, "chacha20-ietf-poly1305");
    await useOnly([node]);
    const dev = await newDevice();
    await withGateway({}, async (gw) => {
      const c = await TunnelClient.session(gw.port, cert.certPem, dev);
      try {
        const t0 = performance.now();
        await download(c, BIG);
        const s = (performance.now() - t0) / 1000;
        console.log(
          `[${runtime}] 64 MiB download through gateway + ss-server (chacha20-ietf-poly1305): ${s.toFixed(2)} s (${
            ((BIG * 8) / s / 1e6).toFixed(0)
          } Mbit/s)`,
        );
      } finally {
        await c.shut();
      }
    });
  });

  test("a wrong password and no other node: the stream closes with upstream_timeout after GATEWAY_DIAL_TIMEOUT; the node is reported down", async () => {
    const wrong = await addNode(servers.get("aes-256-gcm")!.port, "aes-256-gcm", "not-the-password");
    await useOnly([wrong]);
    const dev = await newDevice();
    await withGateway({ GATEWAY_DIAL_TIMEOUT: "1s" }, async (gw) => {
      const c = await TunnelClient.session(gw.port, cert.certPem, dev);
      try {
        const t0 = performance.now();
        const r = await c.http({ host: "127.0.0.1", port: target.port }, get(10));
        const ms = performance.now() - t0;
        console.log(`[${runtime}] wrong key: stream_close ${r.code} after ${ms.toFixed(0)} ms (dial timeout 1000 ms)`);
        assert.equal(r.code, "upstream_timeout");
        assert.equal(r.bodyLength, 0);
        // The dial timeout, plus one re-validation that finds no other node (bounded by GATEWAY_BACKEND_TIMEOUT, 2 s).
        assert.ok(ms >= 950 && ms < 3500, `closed after ${ms.toFixed(0)} ms`);
      } finally {
        await c.shut();
      }
    });
    assert.ok(seen.nodeFailures.some((f) => f.node_id === wrong && /^upstream_timeout: /.test(f.error)));
    assert.equal((await admin("GET", `/api/v1/nodes/${wrong}`)).health.status, "down");
  });

  test("a wrong password with another node up: the stream moves there with its request, the device is re-pinned", async () => {
    const method = "aes-128-gcm";
    const wrong = await addNode(servers.get(method)!.port, method, "also-not-the-password");
    const good = await addNode(servers.get(method)!.port, method);
    await useOnly([wrong]);
    const dev = await newDevice();
    await withGateway({ GATEWAY_DIAL_TIMEOUT: "1s" }, async (gw) => {
      const c = await TunnelClient.session(gw.port, cert.certPem, dev); // pinned to `wrong`
      try {
        await useOnly([wrong, good]);
        await upload(c, 16384); // the request head and body sent to the silent node are replayed
        await download(c, 16384);
      } finally {
        await c.shut();
      }
    });
    assert.equal((await admin("GET", `/api/v1/nodes/${wrong}`)).health.status, "down");
    assert.equal((await admin("GET", `/api/v1/devices/${dev.device_id}`)).node_id, good);
  });

  test("failover: node A dies; the next stream reaches B, later ones go straight to B; the backend has A down and the device on B", async () => {
    const method = "chacha20-ietf-poly1305";
    const ssA = await startSsServer(method, NODE_PASSWORD);
    const ssB = await startSsServer(method, NODE_PASSWORD);
    extra.push(ssA, ssB);
    const a = await addNode(ssA.port, method);
    const b = await addNode(ssB.port, method);
    await useOnly([a]);
    const dev = await newDevice();
    await withGateway({}, async (gw) => {
      const c = await TunnelClient.session(gw.port, cert.certPem, dev);
      try {
        await download(c, 1000); // through A
        assert.equal((await admin("GET", `/api/v1/devices/${dev.device_id}`)).node_id, a);
        await useOnly([a, b]);
        await ssA.kill();
        const validations = seen.validations;
        const failures = seen.nodeFailures.length;

        let t0 = performance.now();
        await download(c, 1000); // pays the failover
        const first = performance.now() - t0;
        assert.equal(seen.validations, validations + 1, "one re-validation, excluding A");
        const later: number[] = [];
        for (let i = 0; i < 5; i++) {
          t0 = performance.now();
          await download(c, 1000);
          later.push(performance.now() - t0);
        }
        console.log(
          `[${runtime}] failover: first stream after A died ${first.toFixed(0)} ms; next ${
            later.map((x) => x.toFixed(0)).join(", ")
          } ms`,
        );
        // Straight to B: no further re-validation, and A was reported once.
        assert.equal(seen.validations, validations + 1, "later streams did not re-validate");
        await c.until(() => seen.nodeFailures.length > failures, "the node_failure report", 5000);
        assert.deepEqual(
          seen.nodeFailures.slice(failures).map((f) => f.node_id),
          [a],
        );
        assert.match(seen.nodeFailures.at(-1)!.error, /^upstream_refused: /);

        // A second session of the device starts on B (the re-validation refreshed the cache).
        const c2 = await TunnelClient.session(gw.port, cert.certPem, dev);
        try {
          await download(c2, 1000);
        } finally {
          await c2.shut();
        }
        assert.equal(seen.nodeFailures.length, failures + 1);

        // The live session now counts towards B's load, not A's.
        let load: number[] = [];
        for (let i = 0; i < 100; i++) {
          load = [
            (await admin("GET", `/api/v1/nodes/${a}`)).sessions_active,
            (await admin("GET", `/api/v1/nodes/${b}`)).sessions_active,
          ];
          if (load[0] === 0 && load[1] === 1) break;
          await sleep(50);
        }
        assert.deepEqual(load, [0, 1], "open sessions on [A, B]");
      } finally {
        await c.shut();
      }
    });
    const nodeA = await admin("GET", `/api/v1/nodes/${a}`);
    assert.equal(nodeA.health.status, "down");
    assert.match(nodeA.health.last_error, /upstream_refused/);
    assert.equal((await admin("GET", `/api/v1/devices/${dev.device_id}`)).node_id, b);
  });

  test("no usable node: the session opens, its streams close with `unavailable`", async () => {
    await useOnly([]);
    const dev = await newDevice();
    await withGateway({}, async (gw) => {
      const c = await TunnelClient.session(gw.port, cert.certPem, dev);
      try {
        const r = await c.http({ host: "127.0.0.1", port: target.port }, get(1));
        assert.equal(r.code, "unavailable");
      } finally {
        await c.shut();
      }
    });
  });
});
