// A flood of connections that never authenticate, from one address (docs/07 "Before
// authentication"): against `httvps gateway` as a process of its own on the runtime under test
// (so /proc/<pid>/fd and VmRSS are the gateway's alone), for each of (a) half-open TLS (one byte
// of a ClientHello, then silence), (b) slow request heads (TLS done, half a head) and
// (c) upgraded-but-silent WebSockets:
//   1. what the gateway holds per such connection: a gateway with no cap and 60 s timeouts holds
//      HTTVPS_PREAUTH_MEASURE of them (default 500), then as many more; the RSS (lowest over 3 s)
//      and descriptors the second lot adds, per connection;
//   2. the flood: HTTVPS_PREAUTH_FLOOD of them (default 2000) from 127.0.0.2 against a gateway with the default
//      cap (64) and 5 s timeouts; the gateway's descriptors sampled throughout, every flood
//      connection's close timed, and a legitimate client's session set-up (hello → auth_result,
//      median of 7, from 127.0.0.1) measured before the flood and while it is held.
// Asserted where the runtime can bound a kind (docs/07 says where not): every flood connection
// is shed in time, descriptors stay within the cap (Node; Bun and Deno have no accept hook), and set-up during the flood is at
// most 2× the set-up before it (with a 10 ms floor: loopback set-up is a few ms, and the machine
// is shared). Prints a table (to stderr; also appended to the file HTTVPS_PREAUTH_TABLE names). Run with
// `HTTVPS_STRESS=1 node test/run.mjs all ./test/stress/preauth-flood.stress.ts`.
import assert from "node:assert/strict";
import { appendFileSync, readdirSync, writeSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { rssKiB, tree } from "../../bench/lib/procs.mjs";
import { runtime } from "../../runtime/index.ts";
import { FLOOD_KINDS, type FloodKind, type HeldConnection, hold } from "../e2e/preauth-kit.ts";
import { type AppDevice, type GatewayProcess, type Stack, startStack } from "../e2e/stack.ts";
import { TunnelClient } from "../e2e/tunnel-client.ts";

const FLOOD = Number(process.env.HTTVPS_PREAUTH_FLOOD ?? 2000);
const MEASURE = Number(process.env.HTTVPS_PREAUTH_MEASURE ?? 500);
const CAP = 64;
const TIMEOUT_S = 5;
const FLOODER = "127.0.0.2";
const SETUP_SAMPLES = 7;
/** How long after the last flood connection opened every one must be closed, where the runtime sheds that kind. */
const SHED_DEADLINE_MS = 30_000;
/** Opened this many at a time, each batch waited for (ready or closed). */
const BATCH = 200;

/** What a runtime cannot bound (docs/07): not asserted, only measured. */
const unbounded = (kind: FloodKind): boolean => runtime === "deno" && kind !== "silent WebSocket";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fds = (pid: number) =>
  tree(pid).reduce((n: number, p: number) => {
    try {
      return n + readdirSync(`/proc/${p}/fd`).length;
    } catch {
      return n; // exited meanwhile
    }
  }, 0);
/** Straight to stderr (`deno test --quiet` swallows console output), and to HTTVPS_PREAUTH_TABLE if set. */
const report = (text: string) => {
  writeSync(2, text + "\n");
  if (process.env.HTTVPS_PREAUTH_TABLE) appendFileSync(process.env.HTTVPS_PREAUTH_TABLE, text + "\n");
};
/** The lowest RSS over 3 s (bytes): what is held, once a collection has taken what is not. */
async function settledRss(pid: number): Promise<number> {
  let low = Infinity;
  for (let i = 0; i < 12; i++, await sleep(250)) low = Math.min(low, rssKiB(pid) * 1024);
  return low;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let stack: Stack<"app">;
let device: AppDevice;
let measuring: GatewayProcess;
let flooded: GatewayProcess;
const rows: string[] = [];

before(async () => {
  stack = await startStack();
  device = await stack.backend.device({ name: "legit" });
  measuring = await stack.gatewayProcess({
    LOG_LEVEL: "info", // its "gateway listening" line says it is ready
    GATEWAY_WORKERS: "1", // one process: its descriptors and RSS are the gateway's, all of it
    GATEWAY_PREAUTH_PER_ADDRESS: "0",
    GATEWAY_TLS_HANDSHAKE_TIMEOUT: "60s",
    GATEWAY_REQUEST_HEAD_TIMEOUT: "60s",
    GATEWAY_HELLO_TIMEOUT: "60s",
  });
  flooded = await stack.gatewayProcess({
    LOG_LEVEL: "info",
    GATEWAY_WORKERS: "1",
    GATEWAY_PREAUTH_PER_ADDRESS: String(CAP),
    GATEWAY_TLS_HANDSHAKE_TIMEOUT: `${TIMEOUT_S}s`,
    GATEWAY_REQUEST_HEAD_TIMEOUT: `${TIMEOUT_S}s`,
    GATEWAY_HELLO_TIMEOUT: `${TIMEOUT_S}s`,
  });
});

after(async () => {
  report(
    [
      `\n| runtime | flood | per connection: RSS | descriptors | flood: gateway descriptors (base → peak) | closed within 1 s | closed later (latest) | still open after ${
        SHED_DEADLINE_MS / 1000
      } s | set-up before (median ms) | during |`,
      "|---|---|---:|---:|---|---:|---|---:|---:|---:|",
      ...rows,
    ].join("\n"),
  );
  await stack?.close();
});

/** Open `n` connections of `kind` in batches; resolves once each is in its silent state or closed. */
async function open(kind: FloodKind, port: number, n: number): Promise<HeldConnection[]> {
  const all: HeldConnection[] = [];
  for (let i = 0; i < n; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, n - i) }, () => hold(kind, port, "/ws", { localAddress: FLOODER }));
    all.push(...batch);
    await Promise.all(batch.map((c) => Promise.race([c.ready, sleep(15_000)])));
  }
  return all;
}

/** hello → auth_result of a fresh session from 127.0.0.1, median of SETUP_SAMPLES (ms). */
async function setupMs(port: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < SETUP_SAMPLES; i++) {
    const c = await TunnelClient.connect(port, stack.cert.certPem, 30_000);
    const t0 = performance.now();
    const r = await c.hello(device.device_id, device.token);
    times.push(performance.now() - t0);
    assert.ok(r.type === "auth_result" && r.ok, "the legitimate client's session is accepted");
    await c.shut();
  }
  return median(times);
}

describe(`pre-authentication flood on ${runtime}`, { timeout: 170_000 }, () => {
  for (const kind of FLOOD_KINDS) {
    test(`${FLOOD} × ${kind} from one address`, async () => {
      // 1. What one such connection costs the gateway (no cap, long timeouts).
      const pid0 = measuring.child.pid!;
      // The marginal cost: MEASURE held, then MEASURE more. The first ones bring the heaps to a
      // steady state, so the difference is what the connections hold rather than a collection
      // of earlier garbage landing in between.
      const first = await open(kind, measuring.port, MEASURE);
      const [rss0, fd0] = [await settledRss(pid0), fds(pid0)];
      const held = await open(kind, measuring.port, MEASURE);
      const [rss1, fd1] = [await settledRss(pid0), fds(pid0)];
      const readyCount = (await Promise.all(held.map((c) => Promise.race([c.ready, Promise.resolve(false)])))).filter(Boolean)
        .length;
      for (const c of [...first, ...held]) c.destroy();
      const perConn = (rss1 - rss0) / MEASURE;

      // 2. The flood against the default cap and 5 s timeouts.
      const pid = flooded.child.pid!;
      const before = await setupMs(flooded.port);
      const base = fds(pid);
      let peak = base;
      const sampler = setInterval(() => (peak = Math.max(peak, fds(pid))), 100);
      const t0 = performance.now();
      const flood = await open(kind, flooded.port, FLOOD);
      const openedAt = performance.now() - t0;
      const during = await setupMs(flooded.port);
      const closes = flood.map((c) =>
        Promise.race([
          c.closed.then((ms) => ms),
          sleep(unbounded(kind) ? 2000 : SHED_DEADLINE_MS + openedAt).then(() => Infinity),
        ])
      );
      const closedMs = await Promise.all(closes);
      clearInterval(sampler);
      for (const c of flood) c.destroy();
      const stillOpen = closedMs.filter((ms) => ms === Infinity).length;
      const atOnce = closedMs.filter((ms) => ms < 1000).length;
      const shed = closedMs.filter((ms) => ms >= 1000 && ms !== Infinity);
      const maxShed = shed.length ? `${(Math.max(...shed) / 1000).toFixed(1)} s (${shed.length})` : "–";
      rows.push(
        `| ${runtime} | ${kind} | ${(perConn / 1024).toFixed(1)} KiB | ${
          ((fd1 - fd0) / MEASURE).toFixed(2)
        } (${readyCount}/${MEASURE} held) | ${base} → ${peak} | ${atOnce} | ${maxShed} | ${
          unbounded(kind) ? `${stillOpen} (not shed: docs/07)` : stillOpen
        } | ${before.toFixed(1)} | ${during.toFixed(1)} |`,
      );
      report(rows.at(-1)!);

      assert.ok(
        during <= 2 * Math.max(before, 10),
        `session set-up during the flood ${during.toFixed(1)} ms vs ${before.toFixed(1)} ms before`,
      );
      if (unbounded(kind)) return;
      assert.equal(stillOpen, 0, `${stillOpen} of the ${kind} flood still open ${SHED_DEADLINE_MS / 1000} s after it was opened`);
      // Node caps at accept. Bun and Deno have no accept hook: they cap session requests only
      // (one over the cap gets the site's answer on a kept-alive connection), so there the bound
      // is time, asserted above.
      if (runtime === "node") {
        assert.ok(peak - base <= CAP + 64, `the gateway's descriptors grew by ${peak - base} (cap ${CAP})`);
      }
    });
  }
});
