// The rows of a bench run that are not throughput: the gateway's memory per idle session
// (idle/<rt>), the same load against the runtime's TLS + WebSocket alone (floor/<rt>), and what
// node:tls alone moves on each runtime (tls/<rt>). `bench` is the run's context from
// bench/run.mjs: { root, opts, log, elapsed, dir, certs, backend }.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startGateway } from "./httvps.mjs";
import { commandChannel } from "./loader.mjs";
import { MiB } from "./options.mjs";
import { rssKiB, sleep, start, treeCpu } from "./procs.mjs";

/**
 * Open opts.sizes.sessions idle sessions (cumulative steps) on a gateway of runtime `rt` and
 * read its RSS and CPU at each step. `floor`: the same load against bench/ws-floor-server.mjs,
 * the runtime's TLS + WebSocket stack alone, to tell the gateway's own memory per session from
 * what the runtime costs anyway.
 */
export async function idleSessions(bench, rt, device, floor = false) {
  const { opts, log, elapsed, backend } = bench;
  const res = { id: `${floor ? "floor" : "idle"}/${rt}`, runtime: floor ? `${rt}, TLS + WebSocket only` : rt, steps: [] };
  // The throughput rounds still need their share of the budget after this.
  if (elapsed() > opts.budget * 0.55) {
    res.error = "skipped: time budget (the machine is too busy)";
    log(`idle/${rt}: ${res.error}`);
    return res;
  }
  log(`${res.id}: opening ${opts.sizes.sessions.join(", then ")} sessions`);
  const most = Math.max(...opts.sizes.sessions);
  const server = () => floor ? startFloor(bench, rt, most * 2 + 4096) : startIdleGateway(bench, rt, most);
  return await underLoad(bench, res, server, device, most, async (gw, ask, loader) => {
    await sleep(1500); // let start-up garbage settle before the baseline
    res.baseKiB = rssKiB(gw.proc.pid);
    let have = 0;
    for (const n of opts.sizes.sessions) {
      const cpu0 = treeCpu(gw.proc.pid);
      const others0 = [treeCpu(loader.pid), treeCpu(backend.proc.pid)];
      const a = await ask(`open ${n - have}`, Math.max(60_000, (n - have) * 20));
      const cpu1 = treeCpu(gw.proc.pid);
      const others1 = [treeCpu(loader.pid), treeCpu(backend.proc.pid)];
      have = n;
      await sleep(2000); // the handshakes' garbage, and the usage reporter's batch
      const rss = rssKiB(gw.proc.pid);
      const step = {
        sessions: n,
        open: a.open,
        failed: a.failed,
        error: a.error,
        openMs: a.ms,
        rssKiB: rss,
        perSessionKiB: (rss - res.baseKiB) / Math.max(1, a.open),
        cpuMsPerSession: ((cpu1 - cpu0) * 1000) / Math.max(1, a.open - (res.steps.at(-1)?.open ?? 0)),
        loaderCpuS: others1[0] - others0[0],
        backendCpuS: others1[1] - others0[1],
        gatewayCpuS: cpu1 - cpu0,
      };
      res.steps.push(step);
      log(
        `${res.id}: ${a.open} open (${a.failed} failed${a.error ? `: ${a.error}` : ""}) in ${a.ms} ms, RSS ${
          (rss / 1024).toFixed(1)
        } MiB, ${step.perSessionKiB.toFixed(1)} KiB/session; CPU s: gateway ${step.gatewayCpuS.toFixed(1)}, loader ${
          step.loaderCpuS.toFixed(1)
        }, backend ${step.backendCpuS.toFixed(1)}`,
      );
    }
  });
}

/**
 * A direct-mode gateway for holding up to `most` sessions. What is measured is memory, not the
 * control plane: one validation per device (a long cache), and a backend slowed by the handshake
 * storm is waited for rather than refused. The idle timeout would close the first sessions while
 * the last are still being opened.
 */
function startIdleGateway({ root, dir, certs, backend }, rt, most) {
  return startGateway(root, rt, {
    mode: "direct",
    backendUrl: backend.url,
    certs,
    dir,
    ulimit: most * 2 + 4096,
    env: {
      GATEWAY_AUTH_CACHE_TTL: "30m",
      GATEWAY_BACKEND_TIMEOUT: "15s",
      GATEWAY_IDLE_TIMEOUT: "30m",
      // One loader address opens everyone's sessions, 64 handshakes at a time: no per-address cap.
      GATEWAY_PREAUTH_PER_ADDRESS: "0",
    },
  });
}

/** bench/idle-sessions.mjs on Bun against `gw`, driven by commands (bench/lib/loader.mjs). */
async function startLoader({ root, dir, certs }, gw, device, most) {
  const tokenFile = join(dir, "idle-token");
  // The floor server answers any hello; the loader still sends one.
  writeFileSync(tokenFile, device?.token ?? "floor", { mode: 0o600 });
  return await start("idle loader", join(root, "node_modules/.bin/bun"), [
    join(root, "bench/idle-sessions.mjs"),
    String(gw.port),
    certs.cert,
    device?.device_id ?? "floor",
    tokenFile,
  ], { stdin: "pipe", ulimit: most + 4096, ready: () => Promise.resolve(true) });
}

/**
 * The lowest RSS of a few samples over `ms`: after a burst of work a runtime returns memory to
 * the system in its own time (V8's memory reducer, the allocator's trim); the lowest sample is
 * what the process keeps.
 */
async function settledRssKiB(pid, ms) {
  let low = Infinity;
  for (let t = 0; t < ms; t += 1000) {
    await sleep(1000);
    low = Math.min(low, rssKiB(pid));
  }
  return low;
}

/**
 * bulk/<rt>: what a session keeps after a bulk transfer. On one gateway: first N warm-up sessions
 * each move a transfer and are closed, twice. That takes the process to the high-water mark that
 * transfers leave whoever made them (garbage the runtime collects late, heap pages and malloc
 * arenas it keeps for the next ones; docs/06 "Memory per session"), which a second batch of
 * transfers reuses rather than adds to; left in, it would be divided among the measured sessions
 * as if they held it. Then N sessions open as `httvps connect` does and stay idle (the idle figure, same features);
 * then N more each download opts.sizes.bulkBytes through one stream from the bench target, one
 * at a time, close it and stay idle. RSS settles after each step; the target is the second
 * step's KiB per session within 4 KiB of the first's. Last, every session closes: the RSS that
 * stays tells the process's high-water mark from what the sessions themselves hold.
 */
export async function bulkSessions(bench, rt, device) {
  const { opts, log, elapsed, target } = bench;
  const n = opts.sizes.bulk;
  const bytes = opts.sizes.bulkBytes;
  const res = { id: `bulk/${rt}`, runtime: rt, sessions: n, bytesPerSession: bytes };
  if (elapsed() > opts.budget * 0.55) {
    res.error = "skipped: time budget (the machine is too busy)";
    log(`${res.id}: ${res.error}`);
    return res;
  }
  log(`${res.id}: ${n} idle sessions, then ${n} that each move ${bytes / MiB} MiB and stay open`);
  const server = () => startIdleGateway(bench, rt, 2 * n + 8);
  return await underLoad(bench, res, server, device, 2 * n + 8, async (gw, ask) => {
    const step = async (what, count, size) => {
      const a = await ask(`bulk ${count} ${size} ${target.port}`, Math.max(120_000, count * 2_000));
      if (a.error || a.failed) throw new Error(`${what}: ${a.failed} failed: ${a.error}`);
      return a;
    };
    res.startKiB = await settledRssKiB(gw.proc.pid, 3000);
    // Two rounds: one left the high-water still rising (Node, 2026-12-03).
    for (let round = 0; round < 2; round++) {
      await step("warm-up", n, bytes);
      await ask("drop", 60_000);
    }
    res.baseKiB = await settledRssKiB(gw.proc.pid, 5000);
    const idle = await step("idle", n, 0);
    res.idleKiB = await settledRssKiB(gw.proc.pid, 5000);
    const moved = await step("bulk", n, bytes);
    res.bulkMs = moved.ms;
    res.bulkKiB = await settledRssKiB(gw.proc.pid, 8000);
    res.idlePerSessionKiB = (res.idleKiB - res.baseKiB) / idle.open;
    res.bulkPerSessionKiB = (res.bulkKiB - res.idleKiB) / (moved.open - idle.open);
    res.retainedKiB = res.bulkPerSessionKiB - res.idlePerSessionKiB;
    // Every session closed: what RSS stays is the process's high-water mark (heap, allocator),
    // not memory that the sessions hold.
    await ask("drop", 60_000);
    res.closedKiB = await settledRssKiB(gw.proc.pid, 5000);
    log(
      `${res.id}: the warm-up's transfers took RSS ${(res.startKiB / 1024).toFixed(1)} → ${
        (res.baseKiB / 1024).toFixed(1)
      } MiB; idle ${res.idlePerSessionKiB.toFixed(1)} KiB/session, after bulk ${res.bulkPerSessionKiB.toFixed(1)} KiB/session (+${
        res.retainedKiB.toFixed(1)
      }); RSS ${(res.baseKiB / 1024).toFixed(1)} → ${(res.idleKiB / 1024).toFixed(1)} → ${(res.bulkKiB / 1024).toFixed(1)} MiB, ${
        (res.closedKiB / 1024).toFixed(1)
      } MiB once all closed`,
    );
  });
}

/**
 * Start the server (`startServer()`: a gateway or a floor server) and the loader against it, run
 * `body(gw, ask, loader)`; a failure lands in `res.error`. Both are stopped after. Resolves with `res`.
 */
async function underLoad(bench, res, startServer, device, most, body) {
  let gw;
  let loader;
  try {
    gw = await startServer();
    loader = await startLoader(bench, gw, device, most);
    const { ask, close } = commandChannel(loader);
    // The loader answers once it runs: its start (a bash for the open-files limit, then Bun) can
    // take long on a busy machine, and must not eat into the first step's time limit.
    await ask("drop", 300_000);
    await body(gw, ask, loader);
    close();
  } catch (e) {
    res.error = e.message;
    bench.log(`${res.id}: FAILED ${e.message.split("\n").slice(0, 8).join("\n")}`);
  } finally {
    await loader?.stop();
    await gw?.proc.stop();
  }
  return res;
}

/** A plain script of bench/ on runtime `rt`: [command, args]. */
function scriptCommand(root, rt, script) {
  if (rt === "bun") return [join(root, "node_modules/.bin/bun"), [script]];
  if (rt === "deno") return [join(root, "node_modules/.bin/deno"), ["run", "-A", script]];
  return [process.execPath, [script]];
}

async function startFloor({ root, certs }, rt, ulimit) {
  const [cmd, argv] = scriptCommand(root, rt, join(root, "bench/ws-floor-server.mjs"));
  const proc = await start(`floor ${rt}`, cmd, [...argv, certs.cert, certs.key], { ready: /listening (\d+)/, ulimit });
  return { proc, port: Number(proc.match[1]) };
}

/** tls/<rt>: bench/tls-floor.mjs on runtime `rt`, its one JSON line of figures. */
export function tlsFloor({ root, opts, log, certs }, rt) {
  const [cmd, argv] = scriptCommand(root, rt, join(root, "bench/tls-floor.mjs"));
  // Short and self-contained: it runs to its end, so a plain spawnSync bounded by a timeout.
  const p = spawnSync(cmd, [...argv, certs.cert, certs.key, String(Math.max(64, opts.sizes.down / MiB))], {
    encoding: "utf8",
    timeout: 120_000,
  });
  const line = /^\{.*\}$/m.exec(p.stdout ?? "");
  if (p.status !== 0 || !line) throw new Error(`exit ${p.status ?? p.signal}: ${(p.stderr ?? "").slice(-500)}`);
  const r = JSON.parse(line[0]);
  log(`tls/${rt}: node:tls ${r.mbps.toFixed(0)} MB/s, ${r.cpuSPerGiB.toFixed(2)} CPU-s/GiB (${r.cipher})`);
  return r;
}
