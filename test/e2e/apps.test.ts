// The v2ray-plugin flavour end to end with clients nobody here wrote: Debian's ss-local +
// ss-v2ray-plugin (`tls;host=localhost;path=<device path>/tcp;cert=…;mux=0|1`) against a gateway
// on the runtime under test, the real backend (PGlite) behind it, curl over ss-local's SOCKS5.
// Direct mode reaches a local HTTP target itself; outline mode re-encrypts to a real ss-server
// node the backend assigns. Bodies are compared by sha256.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { runtime } from "../../runtime/index.ts";
import { type HttpTarget, type SsServer, startHttpTarget, startSsServer } from "../../shadowsocks/ss-server.testing.ts";
import { curl } from "../curl.ts";
import { type AppIdentity, NODE_PASSWORD, type PeerProcess, type Stack, startStack } from "./stack.ts";

const MiB = 1024 * 1024;
const BIG = 64 * MiB;
const POOL = new Uint8Array(randomBytes(BIG));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** curl through the peer's SOCKS5 (names resolved by the peer), `n` bytes from the target, checked. */
export async function fetchThrough(peer: PeerProcess, target: HttpTarget, n: number, label: string): Promise<void> {
  const r = await curl(["--socks5-hostname", `127.0.0.1:${peer.socks}`, `http://127.0.0.1:${target.port}/bytes/${n}`], 120);
  assert.equal(r.code, 0, `${label}: curl ${n} B: ${r.stderr}\n${peer.output().slice(-2000)}`);
  assert.equal(r.status, "200", label);
  assert.equal(r.size, n, `${label}: ${n} B`);
  assert.equal(r.sha, sha(POOL.subarray(0, n)), `${label}: sha256 of ${n} B`);
}

/** 0 B, 1 B, 16 KiB, then 20 in parallel, and 64 MiB when `big`, all sha256-equal. */
export async function fetchSet(peer: PeerProcess, target: HttpTarget, label: string, big: boolean): Promise<void> {
  for (const n of [0, 1, 16 * 1024]) await fetchThrough(peer, target, n, label);
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => fetchThrough(peer, target, [1, 1000, 16 * 1024, 100_000][i % 4]!, label)),
  );
  if (!big) return;
  const t0 = performance.now();
  await fetchThrough(peer, target, BIG, label);
  const s = (performance.now() - t0) / 1000;
  console.log(`[${runtime}] ${label}: 64 MiB in ${s.toFixed(2)} s (${((BIG * 8) / s / 1e6).toFixed(0)} Mbit/s)`);
}

describe(`ss-local + ss-v2ray-plugin through the gateway on ${runtime}`, () => {
  let stack: Stack<"app">;
  let target: HttpTarget;
  let node: SsServer;
  let direct: RunningGateway;
  let outline: RunningGateway;

  before(async () => {
    [stack, target, node] = await Promise.all([
      startStack({ upstream: "direct", logLevel: "error", env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" } }),
      startHttpTarget(POOL),
      startSsServer("chacha20-ietf-poly1305", NODE_PASSWORD),
    ]);
    direct = await stack.gateway();
    outline = await stack.gateway({ GATEWAY_UPSTREAM_MODE: "outline" });
    await stack.backend.admin("POST", "/api/v1/nodes", {
      name: "apps-node",
      host: "127.0.0.1",
      port: node.port,
      method: "chacha20-ietf-poly1305",
      password: NODE_PASSWORD,
    });
  });
  after(async () => {
    await node?.stop();
    await target?.close();
    await stack?.close();
  });

  const newApp = async (): Promise<AppIdentity> => {
    const d = await stack.backend.device({ name: "apps-e2e" });
    assert.ok(d.app, "POST /api/v1/devices answers the app identity");
    return d.app;
  };

  for (const mux of [0, 1] as const) {
    test(`direct mode, mux=${mux}: 0 B, 1 B, 16 KiB, 20 in parallel and 64 MiB, sha256-equal`, async () => {
      const peer = await stack.ssLocal(direct.port, await newApp(), mux);
      await fetchSet(peer, target, `v2ray-plugin mux=${mux} direct`, true);
      const m = await direct.metrics.render();
      assert.match(
        m.body,
        new RegExp(`httvps_gateway_app_connections_total\\{flavour="${mux ? "mux" : "v2ray-plugin"}"\\} [1-9]`),
      );
      await peer.stop();
    });

    test(`outline mode through a real ss-server node, mux=${mux}: the same set`, async () => {
      const peer = await stack.ssLocal(outline.port, await newApp(), mux);
      await fetchSet(peer, target, `v2ray-plugin mux=${mux} outline`, mux === 1);
      await peer.stop();
    });
  }
});
