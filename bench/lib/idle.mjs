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
  const { root, opts, log, elapsed, dir, certs, backend } = bench;
  const res = { id: `${floor ? "floor" : "idle"}/${rt}`, runtime: floor ? `${rt}, TLS + WebSocket only` : rt, steps: [] };
  // The throughput rounds still need their share of the budget after this.
  if (elapsed() > opts.budget * 0.55) {
    res.error = "skipped: time budget (the machine is too busy)";
    log(`idle/${rt}: ${res.error}`);
    return res;
  }
  log(`${res.id}: opening ${opts.sizes.sessions.join(", then ")} sessions`);
  let gw;
  let loader;
  try {
    const most = Math.max(...opts.sizes.sessions);
    // What is measured is memory, not the control plane: one validation per device (a long
    // cache), and a backend slowed by the handshake storm is waited for rather than refused.
    // The idle timeout would close the first sessions while the last are still being opened.
    gw = floor ? await startFloor(bench, rt, most * 2 + 4096) : await startGateway(root, rt, {
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
    const tokenFile = join(dir, "idle-token");
    // The floor server answers any hello; the loader still sends one.
    writeFileSync(tokenFile, device?.token ?? "floor", { mode: 0o600 });
    loader = await start("idle loader", join(root, "node_modules/.bin/bun"), [
      join(root, "bench/idle-sessions.mjs"),
      String(gw.port),
      certs.cert,
      device?.device_id ?? "floor",
      tokenFile,
    ], { stdin: "pipe", ulimit: most + 4096, ready: () => Promise.resolve(true) });
    const { ask, close: closeLoader } = commandChannel(loader);
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
    closeLoader();
  } catch (e) {
    res.error = e.message;
    log(`${res.id}: FAILED ${e.message.split("\n").slice(0, 8).join("\n")}`);
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
