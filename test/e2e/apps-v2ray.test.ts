// Debian's v2ray (4.34) with a shadowsocks outbound over ws + tls to a device's path (v2ray-core v4.34
// infra/conf) through the gateway on the runtime under test, direct mode, real backend: without mux (a
// raw Shadowsocks stream per WebSocket) and with `mux.enabled`, the core layering v2ray/Xray
// apps use when their mux setting is on (Mux.Cool inside one Shadowsocks stream to v1.mux.cool).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { runtime } from "../../runtime/index.ts";
import { type HttpTarget, startHttpTarget } from "../../shadowsocks/ss-server.testing.ts";
import { curl } from "../curl.ts";
import { fetchSet, POOL } from "./app-fetch.ts";
import { type Stack, startStack } from "./stack.ts";

describe(`v2ray with a shadowsocks outbound over ws + tls through the gateway on ${runtime}`, () => {
  let stack: Stack<"app">;
  let target: HttpTarget;
  let gw: RunningGateway;

  before(async () => {
    [stack, target] = await Promise.all([
      startStack({ upstream: "direct", logLevel: "error", env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" } }),
      startHttpTarget(POOL),
    ]);
    gw = await stack.gateway();
  });
  after(async () => {
    await target?.close();
    await stack?.close();
  });

  for (const mux of [false, true]) {
    test(`mux ${mux ? "on (core layering, v1.mux.cool)" : "off"}: 0 B, 1 B, 16 KiB, 20 in parallel and 64 MiB, sha256-equal`, async () => {
      const d = await stack.backend.device({ name: "v2ray-e2e" });
      const peer = await stack.v2ray(gw.port, d.app, mux);
      await fetchSet(peer, target, `v2ray mux=${mux}`, true);
      const m = await gw.metrics.render();
      assert.match(
        m.body,
        new RegExp(`httvps_gateway_app_connections_total\\{flavour="${mux ? "v2ray-core-mux" : "v2ray-plugin"}"\\} [1-9]`),
      );
      // A name the gateway resolves (socks5h: v2ray passes it on as a domain target).
      const r = await curl(["--socks5-hostname", `127.0.0.1:${peer.socks}`, `http://localhost:${target.port}/bytes/5`]);
      assert.equal(r.size, 5, r.stderr);
      await peer.stop();
    });
  }
});
