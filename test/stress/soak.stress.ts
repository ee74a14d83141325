// Load and soak (docs/07-security.md "Load and soak"). Run with `npm run test:stress`
// (or `HTTVPS_STRESS=1 node test/run.mjs all ./test/stress/soak.stress.ts`; HTTVPS_SOAK_TABLE=file
// appends each runtime's table there; HTTVPS_SOAK_SESSIONS / _SECONDS / _ACTIVE / _WORKERS change the load).
// The real gateway (`httvps gateway`, direct mode) as a process of its own on the runtime under
// test, so its RSS from /proc/<pid>/status is its alone; the backend app on PGlite and two
// loopback targets (TCP echo, an endless stream) in this process; two driver processes
// (soak-driver.ts, same runtime, that runtime's WebSocket client) hold the sessions.
// 1. 10,000 sessions, all authenticated (hello → auth_result ok), held concurrently.
// 2. One stalled reader: a session that opens streams to the endless target and then stops
//    reading at the TCP level (no flow control granted), so only the gateway's socket
//    backpressure can stop the push.
// 3. 60 s of mixed streams (small, request/response, bulk up to 4 MiB, all half-closed) over
//    200 of the sessions in turn (the rest stay held), payloads from a seeded PRNG, each echo
//    compared by length and sha256: 0 bytes lost or corrupted; first-byte latency p50/p99;
//    gateway RSS each second, then 15 s of quiet.
// 4. The stalled reader held the gateway's memory flat: the endless target could push only a
//    bounded amount, which stopped growing, and RSS did not climb; all 10,000 sessions still open.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFile, writeFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { commandChannel } from "../../bench/lib/loader.mjs";
import { type Proc, rssKiB, start, treeCpu } from "../../bench/lib/procs.mjs";
import { runtime } from "../../runtime/index.ts";
import { childEnv, httvpsCommand, repoRoot, tsCommand } from "../cli.ts";
import { head, upgradeHeaders, wsFrame, wsFrames } from "../e2e/probe-kit.ts";
import { GATEWAY_READY, type Stack, startStack } from "../e2e/stack.ts";
import { ResponseReader } from "../http-response.ts";

const SESSIONS = Number(process.env.HTTVPS_SOAK_SESSIONS ?? 10_000);
const SOAK_SECONDS = Number(process.env.HTTVPS_SOAK_SECONDS ?? 60);
const DRIVERS = 2;
/** Concurrent streams per driver. */
const WORKERS = Number(process.env.HTTVPS_SOAK_WORKERS ?? 24);
const DEVICES = 8;
/**
 * Sessions that carry the streams (in turn), the others only held. Few enough that each has
 * carried bulk transfers within the first third of the soak: on Node and Deno a session keeps
 * about 200 KiB of buffers after its first bulk transfer (docs/07-security.md), so with more
 * the RSS keeps rising as session after session is used for the first time, which would hide
 * a leak instead of showing one.
 */
const ACTIVE = Math.min(Number(process.env.HTTVPS_SOAK_ACTIVE ?? 200), SESSIONS);
/** Streams the stalled session opens to the endless target. */
const STALLED_STREAMS = 4;
/** Generous bounds: what a leak or an unbounded buffer would blow through, not tight timing. */
const STALL_PUSH_LIMIT = 64 * 1024 * 1024;
const RSS_GROWTH_LIMIT_KIB = 64 * 1024;
const SETTLE_SECONDS = 15;

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;

interface SoakAnswer {
  streams: number;
  bytes: number;
  byKind: Record<string, { streams: number; bytes: number }>;
  bad: number;
  badExamples: string[];
  sessionsUsed: number;
  firstByteMs: number[];
  open: number;
  error?: string;
}

/** A TCP server on 127.0.0.1 with every accepted socket tracked, so after() can end them. */
async function listen(onSocket: (s: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A session that never reads: WebSocket upgrade and hello (no features: no flow control, so
 * nothing but the gateway's socket backpressure limits what is pushed at it), then
 * `streams` stream_opens to `target`, then nothing is read any more. The stop is made in a
 * plain TCP relay in front of the gateway (its gateway-side socket is paused), not on the TLS
 * socket: Deno's node:tls keeps reading a paused client socket into memory.
 */
async function stalledReader(
  port: number,
  ca: string,
  device: { device_id: string; token: string },
  target: { host: string; port: number },
  streams: number,
) {
  const toGateway: net.Socket[] = [];
  const relay = await listen((c) => {
    const g = net.connect(port, "127.0.0.1");
    g.on("error", () => c.destroy());
    toGateway.push(g);
    c.pipe(g);
    g.pipe(c);
  });
  const socket = tls.connect({ host: "127.0.0.1", port: relay.port, ca, servername: "localhost" });
  socket.on("error", () => {});
  /** The bytes after the 101 head: the gateway's WebSocket frames. */
  let buf = Buffer.alloc(0);
  let upgraded = false;
  let authOk: boolean | undefined;
  const response = new ResponseReader((b) => (buf = Buffer.concat([buf, b])));
  socket.on("data", (b: Buffer) => {
    response.push(b);
    if (!response.head) return;
    if (!upgraded) {
      upgraded = response.head.statusLine.startsWith("HTTP/1.1 101");
      if (upgraded) {
        socket.write(
          wsFrame(
            1,
            JSON.stringify({ type: "hello", device_id: device.device_id, token: device.token, client_version: "soak-stalled" }),
          ),
        );
      }
    }
    for (const f of wsFrames(buf)) {
      if (f.opcode !== 1) continue;
      const j = JSON.parse(f.payload.toString("utf8")) as { type: string; ok?: boolean };
      if (j.type === "auth_result") authOk = j.ok === true;
    }
  });
  socket.write(head("GET /ws HTTP/1.1", upgradeHeaders()));
  const deadline = Date.now() + 60_000;
  while (authOk === undefined && Date.now() < deadline) await sleep(20);
  assert.equal(authOk, true, "the stalled reader's hello is accepted");
  socket.removeAllListeners("data");
  socket.on("data", () => {});
  for (const g of toGateway) {
    g.unpipe();
    g.pause();
  }
  for (let i = 1; i <= streams; i++) {
    socket.write(wsFrame(1, JSON.stringify({ type: "stream_open", stream_id: `stall${i}`, target })));
  }
  return {
    close: async () => {
      socket.destroy();
      await relay.close();
    },
  };
}

describe(`load and soak on ${runtime}`, () => {
  let stack: Stack<"app">;
  let echo: Awaited<ReturnType<typeof listen>>;
  let endless: Awaited<ReturnType<typeof listen>>;
  let gateway: Proc | undefined;
  const drivers: Proc[] = [];
  let stalled: { close(): Promise<void> } | undefined;
  /** Bytes the endless target has handed to its sockets (all of them belong to the stalled reader). */
  let pushed = 0;

  before(async () => {
    stack = await startStack({ upstream: "direct" });
    echo = await listen((s) => s.pipe(s));
    const chunk = new Uint8Array(64 * 1024).map((_, i) => (i * 31) & 255);
    endless = await listen((s) => {
      const pump = () => {
        while (!s.destroyed) {
          pushed += chunk.length;
          if (!s.write(chunk)) return void s.once("drain", pump);
        }
      };
      s.on("data", () => {});
      pump();
    });
  });

  after(async () => {
    await stalled?.close();
    await Promise.all(drivers.map((d) => d.stop(10_000)));
    await gateway?.stop(10_000);
    await echo?.close();
    await endless?.close();
    await stack?.close();
  });

  test(`${SESSIONS} sessions held, ${SOAK_SECONDS} s of checksummed streams, one stalled reader`, async () => {
    // The gateway needs a descriptor per session (plus one per upstream): say so plainly rather
    // than fail with refused handshakes.
    const hardLimit = spawnSync("sh", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim();
    assert.ok(
      hardLimit === "unlimited" || Number(hardLimit) >= SESSIONS + 1024,
      `the hard open-files limit (ulimit -Hn) is ${hardLimit}; ${SESSIONS} sessions need ${SESSIONS + 1024}`,
    );
    const devices: Array<{ device_id: string; token: string }> = [];
    for (let i = 0; i < DEVICES + 1; i++) devices.push(await stack.backend.device({ name: `soak-${i}` }));
    const stallDevice = devices.pop()!;
    const devicesFile = join(stack.dir, "devices.json");
    await writeFile(devicesFile, JSON.stringify(devices), { mode: 0o600 });

    // The gateway as users run it, the usage heartbeat included (10,000 session_usage events
    // every 10 s into this process's PGlite). What is measured is the gateway, not the control
    // plane: one validation per device cached for the run, a slow backend waited for, no idle
    // timeout while the first sessions wait for the last.
    const [cmd, argv] = httvpsCommand(["gateway"]);
    gateway = await start(`gateway ${runtime}`, cmd, argv, {
      cwd: stack.dir,
      ulimit: SESSIONS * 2 + 4096,
      timeoutMs: 60_000,
      ready: GATEWAY_READY,
      env: childEnv(stack.env({
        LOG_LEVEL: "info", // as in production: a line per session, none per stream
        DATA_DIR: join(stack.dir, "data"),
        GATEWAY_DIRECT_ALLOW: "127.0.0.0/8",
        GATEWAY_AUTH_CACHE_TTL: "30m",
        GATEWAY_BACKEND_TIMEOUT: "15s",
        GATEWAY_IDLE_TIMEOUT: "30m",
        GATEWAY_DRAIN_TIMEOUT: "1s",
        GATEWAY_WORKERS: "1", // one process: its RSS is the gateway's, all of it
        // Both drivers open everyone's sessions from one address, 64 handshakes at a time each:
        // more than the per-address cap on unauthenticated connections allows (docs/07).
        GATEWAY_PREAUTH_PER_ADDRESS: "0",
      })),
    });
    const gwPort = Number(gateway.match![1]);
    await sleep(1500); // start-up garbage settles before the baseline
    const baseKiB = rssKiB(gateway.pid);

    // ---- 1. the sessions ----
    const driverFile = fileURLToPath(new URL("./soak-driver.ts", import.meta.url));
    for (let i = 0; i < DRIVERS; i++) {
      const [dcmd, dargv] = tsCommand(driverFile, [String(gwPort), stack.certFile, devicesFile, String(echo.port)]);
      drivers.push(
        await start(`driver ${i}`, dcmd, dargv, {
          cwd: repoRoot,
          stdin: "pipe",
          ulimit: SESSIONS + 4096,
          env: childEnv({}),
          ready: () => Promise.resolve(true),
        }),
      );
    }
    const channels = drivers.map((d) => commandChannel(d));
    const t0 = Date.now();
    const per = Math.ceil(SESSIONS / DRIVERS);
    const opened = await Promise.all(
      channels.map((c, i) =>
        c.ask<{ open: number; failed: number; error?: string; ms: number }>(`open ${Math.min(per, SESSIONS - i * per)}`, 240_000)
      ),
    );
    const openMs = Date.now() - t0;
    const held = opened.reduce((n, a) => n + a.open, 0);
    assert.deepEqual(
      opened.map((a) => a.failed),
      opened.map(() => 0),
      `every hello accepted: ${JSON.stringify(opened)}`,
    );
    assert.equal(held, SESSIONS, "all sessions open");
    await sleep(2000); // the handshakes' garbage, and the usage reporter's batch
    const idleKiB = rssKiB(gateway.pid);

    // ---- 2. the stalled reader ----
    stalled = await stalledReader(
      gwPort,
      stack.cert.certPem,
      stallDevice,
      { host: "127.0.0.1", port: endless.port },
      STALLED_STREAMS,
    );
    // The push stops once every buffer on the way is full: wait for 3 s without growth.
    let last = -1;
    let still = 0;
    const stallDeadline = Date.now() + 60_000;
    while (still < 6 && Date.now() < stallDeadline) {
      await sleep(500);
      still = pushed === last && pushed > 0 ? still + 1 : 0;
      last = pushed;
    }
    const pushedAtStall = pushed;
    assert.ok(still >= 6, `the push into the stalled reader stops (${pushed} bytes so far)`);
    assert.ok(pushedAtStall < STALL_PUSH_LIMIT, `bounded push into the stalled reader: ${pushedAtStall} bytes`);
    const stallKiB = rssKiB(gateway.pid);

    // ---- 3. the soak ----
    const samples: Array<{ s: number; kib: number }> = [];
    const soakStart = Date.now();
    const cpu0 = { gateway: treeCpu(gateway.pid), drivers: drivers.map((d) => treeCpu(d.pid)), self: process.cpuUsage() };
    const sampler = setInterval(() => samples.push({ s: (Date.now() - soakStart) / 1000, kib: rssKiB(gateway!.pid) }), 1000);
    let results: SoakAnswer[];
    try {
      results = await Promise.all(
        channels.map((c, i) =>
          c.ask<SoakAnswer>(`soak ${SOAK_SECONDS} ${WORKERS} ${0x50a1 + i} ${ACTIVE / DRIVERS}`, SOAK_SECONDS * 1000 + 180_000)
        ),
      );
    } finally {
      clearInterval(sampler);
    }
    const soakMs = Date.now() - soakStart;
    const selfCpu = process.cpuUsage(cpu0.self);
    const cpu = {
      gateway: treeCpu(gateway.pid) - cpu0.gateway,
      drivers: drivers.reduce((n, d, i) => n + treeCpu(d.pid) - cpu0.drivers[i]!, 0),
      self: (selfCpu.user + selfCpu.system) / 1e6,
    };
    for (const r of results) assert.equal(r.error, undefined, `driver: ${r.error}`);
    const endKiB = rssKiB(gateway.pid);
    // Then quiet (the stall still in place): what is left once garbage is collected is what a leak would leave.
    const settle: number[] = [];
    for (let i = 0; i < SETTLE_SECONDS; i++) {
      await sleep(1000);
      settle.push(rssKiB(gateway.pid));
    }
    const settledKiB = Math.min(...settle.slice(-5));

    const streams = results.reduce((n, r) => n + r.streams, 0);
    const bytes = results.reduce((n, r) => n + r.bytes, 0);
    const bad = results.reduce((n, r) => n + r.bad, 0);
    const sessionsUsed = results.reduce((n, r) => n + r.sessionsUsed, 0);
    const lat = results.flatMap((r) => r.firstByteMs).sort((a, b) => a - b);
    const kinds: Record<string, { streams: number; bytes: number }> = {};
    for (const r of results) {
      for (const [k, v] of Object.entries(r.byKind)) {
        kinds[k] ??= { streams: 0, bytes: 0 };
        kinds[k].streams += v.streams;
        kinds[k].bytes += v.bytes;
      }
    }
    const stillOpen = results.reduce((n, r) => n + r.open, 0);
    const peakKiB = Math.max(...samples.map((x) => x.kib), endKiB);
    // Memory flat with the stall in place: after a third of the soak to warm up (heaps grow to
    // their working size), RSS once quiet again is no higher than the middle third's peak plus
    // the bound. Quiet, not the last third: V8 lets garbage pile up for a while before it collects.
    const middle = samples.filter((x) => x.s > SOAK_SECONDS / 3 && x.s <= (SOAK_SECONDS * 2) / 3).map((x) => x.kib);
    const growthKiB = settledKiB - Math.max(...middle);
    const fmt = (n: number) => n.toLocaleString("en-US");
    const table = [
      `| ${runtime} gateway | figure |`,
      "|---|---:|",
      `| sessions held (hello → auth_result ok, open to the end) | ${fmt(stillOpen)} of ${fmt(SESSIONS)} |`,
      `| sessions opened in | ${(openMs / 1000).toFixed(1)} s |`,
      `| streams (small / request-response / bulk ≤ 4 MiB) | ${fmt(streams)} (${
        ["small", "request/response", "bulk"].map((k) => fmt(kinds[k]?.streams ?? 0)).join(" / ")
      }) |`,
      `| sessions that carried streams | ${fmt(sessionsUsed)} |`,
      `| bytes echoed and checked (sha256) | ${fmt(bytes)} (${(bytes / 1e6).toFixed(0)} MB, ${
        (bytes / 1e6 / (soakMs / 1000)).toFixed(1)
      } MB/s) |`,
      `| bytes lost or corrupted | ${bad === 0 ? 0 : `${bad} bad streams`} |`,
      `| first byte p50 / p99 / max | ${quantile(lat, 0.5).toFixed(1)} / ${quantile(lat, 0.99).toFixed(1)} / ${
        (lat.at(-1) ?? NaN).toFixed(1)
      } ms |`,
      `| gateway RSS: start / ${fmt(SESSIONS)} idle / soak peak / end | ${(baseKiB / 1024).toFixed(0)} / ${
        (idleKiB / 1024).toFixed(0)
      } / ${(peakKiB / 1024).toFixed(0)} / ${(endKiB / 1024).toFixed(0)} MiB |`,
      `| RSS per idle session | ${((idleKiB - baseKiB) / SESSIONS).toFixed(1)} KiB |`,
      `| stalled reader: pushed before the stop / after ${(soakMs / 1000).toFixed(0)} s more | ${
        (pushedAtStall / MiB).toFixed(1)
      } / +${((pushed - pushedAtStall) / MiB).toFixed(1)} MiB |`,
      `| stalled reader: RSS when it stopped vs idle | ${stallKiB - idleKiB >= 0 ? "+" : ""}${
        ((stallKiB - idleKiB) / 1024).toFixed(1)
      } MiB |`,
      `| CPU during the soak: gateway / drivers / test process (backend, targets) | ${cpu.gateway.toFixed(1)} / ${
        cpu.drivers.toFixed(1)
      } / ${cpu.self.toFixed(1)} s |`,
      `| gateway RSS every 10 s of the soak | ${
        samples.filter((_, i) => i % 10 === 9).map((x) => (x.kib / 1024).toFixed(0)).join(", ")
      } MiB |`,
      `| gateway RSS ${SETTLE_SECONDS} s after the soak (stall still in place) | ${(settledKiB / 1024).toFixed(0)} MiB (${
        settledKiB >= idleKiB ? "+" : ""
      }${((settledKiB - idleKiB) / 1024).toFixed(0)} MiB vs idle) |`,
      `| RSS growth: quiet after the soak − peak of its middle third | ${growthKiB >= 0 ? "+" : ""}${
        (growthKiB / 1024).toFixed(1)
      } MiB |`,
    ].join("\n");
    console.log(`\n${table}\n`);
    // `deno test --quiet` shows no test output: the table also goes to a file when asked.
    if (process.env.HTTVPS_SOAK_TABLE) await appendFile(process.env.HTTVPS_SOAK_TABLE, `${table}\n\n`);
    if (bad) console.log(`bad streams: ${results.flatMap((r) => r.badExamples).join("\n")}`);

    assert.equal(bad, 0, `0 bytes lost or corrupted: ${results.flatMap((r) => r.badExamples).join("; ")}`);
    if (WORKERS > 0) assert.ok(streams >= 100, `streams ran: ${streams}`);
    assert.equal(stillOpen, SESSIONS, "every session still open after the soak");
    assert.ok(pushed < STALL_PUSH_LIMIT, `the stalled reader stayed bounded: ${pushed} bytes pushed in all`);
    assert.ok(
      pushed - pushedAtStall < 4 * MiB,
      `no push into the stalled reader during the soak: +${pushed - pushedAtStall} bytes`,
    );
    assert.ok(stallKiB - idleKiB < RSS_GROWTH_LIMIT_KIB, `the stall costs the gateway little: +${stallKiB - idleKiB} KiB`);
    assert.ok(growthKiB < RSS_GROWTH_LIMIT_KIB, `gateway RSS flat: +${growthKiB} KiB`);
    assert.equal(gateway.child.exitCode, null, "the gateway is still running");
  });
});
