// The v2ray-plugin flavour end to end with clients nobody here wrote: Debian's ss-local +
// ss-v2ray-plugin (`tls;host=localhost;path=<device path>/tcp;cert=…;mux=0|1`) against a gateway
// on the runtime under test, the real backend (PGlite) behind it, curl over ss-local's SOCKS5.
// Direct mode reaches a local HTTP target itself; outline mode re-encrypts to a real ss-server
// node the backend assigns. Bodies are compared by sha256.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { runtime } from "../../runtime/index.ts";
import { type HttpTarget, type SsServer, startHttpTarget, startSsServer } from "../../shadowsocks/ss-server.testing.ts";
import { fetchSet, POOL } from "./app-fetch.ts";
import { type AppIdentity, NODE_PASSWORD, type Stack, startStack } from "./stack.ts";

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
