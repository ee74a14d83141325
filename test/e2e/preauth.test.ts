// Bounded before authentication (docs/07 "Before authentication"), fast enough for CI on every
// runtime: each timeout sheds the connection it is for, the per-address cap closes a
// connection past it at once, and a session that authenticated no longer counts. Short
// timeouts set by the variables an operator would set; margins generous for a loaded machine
// (Bun's timer has seconds of granularity). The flood itself is test/stress/preauth-flood.stress.ts.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { gatewayTransports, runtime } from "../../runtime/index.ts";
import { FLOOD_KINDS, type HeldConnection, hold } from "./preauth-kit.ts";
import { h2Session, hasCloseRecord } from "./probe-kit.ts";
import { type Stack, startStack, stubBackend, TEST_DEVICE } from "./stack.ts";
import { TunnelClient } from "./tunnel-client.ts";

/** Another loopback address: the "attacker" of these tests, so the client on 127.0.0.1 is someone else. */
const FLOODER = "127.0.0.2";
/** Shed no later than this: 1 s timeouts on Node; Bun's own, fixed ~10 s (seen at 12 s); generous for a loaded machine. */
const SHED_WITHIN_MS = 25_000;
/** What each runtime cannot bound before a request (docs/07 "Before authentication"). */
const unbounded = (kind: string): string | false =>
  runtime === "deno" && kind !== "silent WebSocket"
    ? "Deno.serve has no TLS handshake or request-head timeout, nor a hook to add one (docs/07)"
    : false;

describe("before authentication", () => {
  let stack: Stack<ReturnType<typeof stubBackend>>;
  before(async () => {
    stack = await startStack({ backend: stubBackend() });
  });
  after(() => stack.close());

  for (const kind of FLOOD_KINDS) {
    test(`a ${kind} is shed by its timeout`, { skip: unbounded(kind) }, async () => {
      await stack.withGateway({
        GATEWAY_TLS_HANDSHAKE_TIMEOUT: "1s",
        GATEWAY_REQUEST_HEAD_TIMEOUT: "1s",
        GATEWAY_HELLO_TIMEOUT: "1s",
      }, async (gw) => {
        const c = hold(kind, gw.port, "/ws", { localAddress: FLOODER });
        try {
          assert.equal(await c.ready, true, `the ${kind} reached its silent state`);
          const ms = await Promise.race([c.closed, new Promise<number>((r) => setTimeout(() => r(Infinity), SHED_WITHIN_MS))]);
          assert.ok(ms < SHED_WITHIN_MS, `the ${kind} is still open after ${SHED_WITHIN_MS} ms`);
          assert.ok(ms >= 500, `closed after ${ms.toFixed(0)} ms: before its 1 s timeout`);
        } finally {
          c.destroy();
        }
      });
    });
  }

  test("an HTTP/2 session request that never says hello is closed by the hello timeout", {
    skip: gatewayTransports.includes("h2") ? false : `${runtime}'s gateway has no HTTP/2 transport`,
  }, async () => {
    await stack.withGateway({ GATEWAY_HELLO_TIMEOUT: "1s" }, async (gw) => {
      const r = await h2Session(gw.port, "/ws", [], 10_000);
      assert.equal(r.status, 200);
      assert.ok(hasCloseRecord(r.body), `the gateway closed the session (${r.body.length} bytes, ${r.error ?? "no error"})`);
      assert.ok((r.firstByteAfterMs ?? 0) >= 500, `closed after ${r.firstByteAfterMs} ms: before its 1 s timeout`);
    });
  });

  test("past GATEWAY_PREAUTH_PER_ADDRESS a new connection is closed at once; other addresses and authenticated sessions are not counted", async () => {
    await stack.withGateway({ GATEWAY_PREAUTH_PER_ADDRESS: "3", GATEWAY_HELLO_TIMEOUT: "30s" }, async (gw) => {
      // Silent WebSockets: counted on every runtime (Bun and Deno have no accept hook, docs/07).
      const held = [0, 1, 2].map(() => hold("silent WebSocket", gw.port, "/ws", { localAddress: FLOODER }));
      const clients: TunnelClient[] = [];
      try {
        assert.deepEqual(await Promise.all(held.map((h) => h.ready)), [true, true, true]);
        const over = hold("silent WebSocket", gw.port, "/ws", { localAddress: FLOODER });
        assert.equal(await stays(over), false, "the fourth unauthenticated connection from one address is closed at once");
        // 127.0.0.1 is another address, and its sessions leave the count once authenticated: four of them with a cap of three.
        for (let i = 0; i < 4; i++) clients.push(await TunnelClient.session(gw.port, stack.cert.certPem, TEST_DEVICE));
        // A held connection that closes frees its place (seen by the gateway a moment later).
        held.pop()!.destroy();
        let again = false;
        for (let i = 0; i < 20 && !again; i++) {
          const h = hold("silent WebSocket", gw.port, "/ws", { localAddress: FLOODER });
          held.push(h);
          again = await stays(h);
        }
        assert.ok(again, "a place freed by a closed connection is taken again");
      } finally {
        for (const h of held) h.destroy();
        for (const c of clients) await c.shut();
      }
    });
  });

  test("on Node the cap closes a half-open TLS connection at accept, before the handshake timeout", {
    skip: runtime !== "node" ? `${runtime}'s server has no accept hook: its cap counts session requests only (docs/07)` : false,
  }, async () => {
    await stack.withGateway({ GATEWAY_PREAUTH_PER_ADDRESS: "2", GATEWAY_TLS_HANDSHAKE_TIMEOUT: "60s" }, async (gw) => {
      const held = [0, 1].map(() => hold("half-open TLS", gw.port, "/ws", { localAddress: FLOODER }));
      try {
        assert.deepEqual(await Promise.all(held.map((h) => h.ready)), [true, true]);
        const over = hold("half-open TLS", gw.port, "/ws", { localAddress: FLOODER });
        const ms = await Promise.race([over.closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 10_000))]);
        over.destroy();
        assert.ok(ms < 10_000, "the third half-open connection was closed long before its 60 s handshake timeout");
        const client = await TunnelClient.session(gw.port, stack.cert.certPem, TEST_DEVICE);
        await client.shut();
      } finally {
        for (const h of held) h.destroy();
      }
    });
  });
});

/** Whether a connection reaches its silent state and is still open a second later (not closed by the cap). */
async function stays(h: HeldConnection): Promise<boolean> {
  if (!(await h.ready)) return false;
  return await Promise.race([h.closed.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 1000))]);
}
