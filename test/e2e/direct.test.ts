// Direct mode end to end on the runtime under test: the real gateway (TLS, WebSocket) dials
// targets itself through directDialer. Loopback is not a global address, so the local HTTP
// target is reachable only when GATEWAY_DIRECT_ALLOW lets it in. Auth comes from an
// in-process backend client: what is under test here is the upstream, not the backend.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ConfigError } from "../../config/config.ts";
import type { BackendClient } from "../../gateway/auth.ts";
import { type RunningGateway, startGateway } from "../../gateway/gateway.ts";
import { runtime } from "../../runtime/index.ts";
import { freePort, type HttpTarget, startHttpTarget } from "../../shadowsocks/ss-server.testing.ts";
import { type Stack, startStack, stubBackend, TEST_DEVICE } from "./stack.ts";
import { TunnelClient } from "./tunnel-client.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const POOL = new Uint8Array(randomBytes(1024 * 1024));

describe(`direct upstream end to end on ${runtime}`, () => {
  let stack: Stack<BackendClient>;
  let target: HttpTarget;

  before(async () => {
    stack = await startStack({ backend: stubBackend(), upstream: "direct", env: { GATEWAY_DIAL_TIMEOUT: "2s" } });
    target = await startHttpTarget(POOL);
  });
  after(async () => {
    await target?.close();
    await stack?.close();
  });

  async function withSession(
    extra: Record<string, string>,
    fn: (c: TunnelClient, gw: RunningGateway) => Promise<void>,
  ): Promise<void> {
    await stack.withGateway(extra, async (gw) => {
      const c = await TunnelClient.session(gw.port, stack.cert.certPem, TEST_DEVICE);
      try {
        await fn(c, gw);
      } finally {
        await c.shut();
      }
    });
  }

  test("GATEWAY_DIRECT_ALLOW=127.0.0.0/8: download and upload reach the loopback target, sha256-equal", async () => {
    await withSession({ GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" }, async (c) => {
      const t = { host: "127.0.0.1", port: target.port };
      for (const n of [1, 16384, 1024 * 1024]) {
        const down = await c.http(t, `GET /bytes/${n} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
        assert.equal(down.code, undefined, `download ${n}: closed cleanly`);
        assert.equal(down.status, 200);
        assert.equal(down.bodyLength, n);
        assert.equal(down.bodySha256, sha(POOL.subarray(0, n)));
        const body = POOL.subarray(0, n);
        const up = await c.http(t, `POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n`, body);
        assert.equal(up.code, undefined, `upload ${n}: closed cleanly`);
        assert.equal(up.bodyText, `${n} ${sha(body)}`);
      }
      // A name is resolved once and the checked address dialed: "localhost" is loopback too.
      const named = await c.http(
        { host: "localhost", port: target.port },
        `GET /bytes/100 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(named.bodySha256, sha(POOL.subarray(0, 100)));
    });
  });

  test("without the allow-list the same target is target_forbidden; a closed port is upstream_refused; no target is target_required", async () => {
    await withSession({}, async (c) => {
      const forbidden = await c.http({ host: "127.0.0.1", port: target.port }, "GET /bytes/1 HTTP/1.1\r\nHost: t\r\n\r\n");
      assert.equal(forbidden.code, "target_forbidden");
      assert.equal(forbidden.bodyLength, 0);
      const rx = c.open(c.newId());
      await c.until(() => rx.close !== null, "target_required");
      assert.equal(rx.close!.code, "target_required");
    });
    await withSession({ GATEWAY_DIRECT_ALLOW: "127.0.0.1" }, async (c) => {
      const refused = await c.http({ host: "127.0.0.1", port: await freePort() }, "GET / HTTP/1.1\r\n\r\n");
      assert.equal(refused.code, "upstream_refused");
    });
  });

  test("a bad GATEWAY_DIRECT_ALLOW stops the start with a ConfigError naming the variable", async () => {
    for (const bad of ["10.0.0.0/33", "not-an-ip", "127.0.0.1/x"]) {
      await assert.rejects(
        startGateway(stack.config({ GATEWAY_DIRECT_ALLOW: bad }), stack.deps()),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError, String(e));
          assert.equal(e.variable, "GATEWAY_DIRECT_ALLOW");
          assert.match(e.message, /^config: GATEWAY_DIRECT_ALLOW: /);
          assert.ok(!e.message.includes("\n"), "one line");
          return true;
        },
      );
    }
  });
});
