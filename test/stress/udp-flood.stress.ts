// A datagram flood through the whole path (docs/03 §11 "No flow control, bounded loss"): the
// library client floods UDP streams over a real gateway in direct mode to a local UDP echo, as
// fast as it can. Datagrams may be lost anywhere — but the process's memory must stay flat,
// and the session must still carry datagrams afterwards. Prints a table; run with
// `HTTVPS_STRESS=1 node test/run.mjs all ./test/stress/udp-flood.stress.ts`
// (HTTVPS_UDP_FLOOD=datagrams per stream, default 50000).
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { after, before, test } from "node:test";
import { connect } from "../../client/tunnel-dialer.ts";
import type { BackendClient } from "../../gateway/auth.ts";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { runtime } from "../../runtime/index.ts";
import { type Stack, startStack, stubBackend, TEST_DEVICE } from "../e2e/stack.ts";

const PER_STREAM = Number(process.env.HTTVPS_UDP_FLOOD ?? 50_000);
const STREAMS = 8;
const SIZE = 1200;

let stack: Stack<BackendClient>;
let gw: RunningGateway;
let echo: dgram.Socket;

before(async () => {
  stack = await startStack({
    backend: stubBackend(),
    upstream: "direct",
    logLevel: "error",
    env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" },
  });
  echo = dgram.createSocket("udp4");
  echo.on("message", (m, r) => echo.send(m, r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, "127.0.0.1", () => r()));
  gw = await stack.gateway();
});

after(async () => {
  await stack?.close();
  echo?.close();
});

const mib = (n: number) => (n / 1024 / 1024).toFixed(1);

test(`UDP flood on ${runtime}: ${STREAMS} streams × ${PER_STREAM} datagrams of ${SIZE} B stay bounded in memory`, {
  timeout: 600_000,
}, async () => {
  const tunnel = connect(stack.accessKey(TEST_DEVICE, gw.port), {});
  try {
    await tunnel.ready();
    const target = { host: "127.0.0.1", port: echo.address().port };
    const conns = await Promise.all(Array.from({ length: STREAMS }, () => tunnel.dialPacket(target)));
    let received = 0;
    const closes: string[] = [];
    for (const c of conns) c.start({ data: () => void received++, close: (e) => void closes.push(e?.code ?? "normal") });
    globalThis.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const datagram = new Uint8Array(SIZE).fill(7);
    let accepted = 0;
    const t0 = performance.now();
    for (let i = 0; i < PER_STREAM; i += 100) {
      for (const c of conns) for (let k = 0; k < 100; k++) if (c.send(datagram)) accepted++;
      // Let the sockets move: a real application's sends are spread over time too.
      await new Promise((r) => setImmediate(r));
    }
    const sendMs = performance.now() - t0;
    // Whatever is still in flight arrives or is lost within a moment; memory is measured meanwhile.
    await new Promise((r) => setTimeout(r, 1000));
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    const clientDropped = conns.reduce((n, c) => n + c.dropped, 0);
    const sent = STREAMS * PER_STREAM;

    // The session still works: one more datagram comes back.
    const before = received;
    for (let i = 0; i < 20 && received === before; i++) {
      conns[0]!.send(Uint8Array.of(1));
      await new Promise((r) => setTimeout(r, 100));
    }

    console.log(
      `\n| runtime | datagrams offered | taken by the client | dropped by the client | echoes back | send time | RSS before | RSS peak | growth |`,
    );
    console.log(`|---|---|---|---|---|---|---|---|---|`);
    console.log(
      `| ${runtime} | ${sent} | ${accepted} | ${clientDropped} | ${before} | ${(sendMs / 1000).toFixed(1)} s | ${
        mib(base)
      } MiB | ${mib(peak)} MiB | ${mib(peak - base)} MiB |`,
    );
    assert.deepEqual(closes, [], "no stream ended during the flood");
    assert.ok(received > before, "the session still carries datagrams after the flood");
    assert.equal(accepted + clientDropped, sent);
    // Client and gateway share this process: all their datagram queues together stay far below this.
    assert.ok(peak - base < 256 * 1024 * 1024, `RSS grew by ${mib(peak - base)} MiB`);
  } finally {
    await tunnel.close();
  }
});
