#!/usr/bin/env node
// The embedded default's footprint: `httvps backend` on PGlite (a fresh DATA_DIR) on each
// runtime — how long the first start of a new data directory takes (its cluster + migrations), its RSS once started and its
// peak (VmHWM), then the same under a usage load of many sessions (the gateways' heartbeat:
// reports of 1,000 `session_usage` events), then a restart on the same data directory.
//   node bench/backend-footprint.mjs [--runtimes bun,node,deno] [--sessions 10000] [--heartbeats 3] [--out FILE]
// --out: the results and the markdown as JSON there (`npm run bench -- --only footprint` runs it
// after the rounds and puts its result in the targets table).
// Loopback only; every process is ours and stopped at the end.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GATEWAY_API_KEY, startBackend } from "./lib/httvps.mjs";
import { argValue } from "./lib/options.mjs";
import { killAllNow, rssKiB, sleep, stopAll } from "./lib/procs.mjs";
import { GOALS } from "./lib/targets.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const runtimes = argValue("runtimes", "bun,node,deno").split(",");
const sessions = Number(argValue("sessions", "10000"));
const heartbeats = Number(argValue("heartbeats", "3"));
const DEVICES = 8;
// Every backend this script started goes with it, however it ends (the bench's bound sends SIGINT).
process.on("exit", killAllNow);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));
const PER_REPORT = 1000;

const mib = (kib) => kib / 1024;
/** The process's peak RSS so far (VmHWM), in KiB: catches a spike between two samples. */
function peakKiB(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

async function report(url, events) {
  const res = await fetch(url + "/api/v1/gateway/report", {
    method: "POST",
    headers: { authorization: `Bearer ${GATEWAY_API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ gateway_id: "bench-footprint", events }),
  });
  if (!res.ok) throw new Error(`report: ${res.status} ${await res.text()}`);
}

/** `sessions` sessions over DEVICES devices, opened, then `heartbeats` rounds of usage for every one. */
async function usageLoad(backend) {
  const devices = [];
  for (let i = 0; i < DEVICES; i++) devices.push((await backend.admin("POST", "/api/v1/devices", { name: `fp-${i}` })).device_id);
  const ids = Array.from({ length: sessions }, (_, i) => `fp-session-${i}`);
  const device = (i) => devices[i % DEVICES];
  const batches = async (make) => {
    for (let i = 0; i < ids.length; i += PER_REPORT) {
      await report(backend.url, ids.slice(i, i + PER_REPORT).map((id, j) => make(id, i + j)));
    }
  };
  const t0 = performance.now();
  await batches((session_id, i) => ({ type: "session_open", session_id, device_id: device(i) }));
  const heartbeatMs = [];
  for (let h = 0; h < heartbeats; h++) {
    const t = performance.now();
    await batches((session_id, i) => ({
      type: "session_usage",
      session_id,
      device_id: device(i),
      bytes_up: 1000 + h,
      bytes_down: 5000 + h,
    }));
    heartbeatMs.push(performance.now() - t);
  }
  return { totalMs: performance.now() - t0, heartbeatMs };
}

const results = [];
for (const rt of runtimes) {
  const dir = mkdtempSync(join(tmpdir(), "httvps-footprint-"));
  try {
    // A throwaway start first: the runtime's own caches (Deno's transpiled modules, tsx's, the
    // page cache of PGlite's files) are then warm, and the start below times the new database.
    mkdirSync(join(dir, "warm-up"));
    await (await startBackend(root, join(dir, "warm-up"), { runtime: rt })).proc.stop();
    let t = performance.now();
    let backend = await startBackend(root, dir, { runtime: rt });
    const firstStartS = (performance.now() - t) / 1000;
    await sleep(2000); // what it settles at, not the moment /readyz first answered
    const afterStart = rssKiB(backend.proc.pid);
    const startPeak = peakKiB(backend.proc.pid);
    const load = await usageLoad(backend);
    await sleep(1000);
    const underLoad = rssKiB(backend.proc.pid);
    const loadPeak = peakKiB(backend.proc.pid);
    await backend.proc.stop();
    t = performance.now();
    backend = await startBackend(root, dir, { runtime: rt });
    const restartS = (performance.now() - t) / 1000;
    await sleep(2000);
    const afterRestart = rssKiB(backend.proc.pid);
    await backend.proc.stop();
    const r = {
      runtime: rt,
      firstStartS,
      rssAfterStartMiB: mib(afterStart),
      peakAtStartMiB: mib(startPeak),
      rssUnderLoadMiB: mib(underLoad),
      peakMiB: mib(loadPeak),
      heartbeatMs: Math.max(...load.heartbeatMs),
      restartS,
      rssAfterRestartMiB: mib(afterRestart),
    };
    results.push(r);
    console.error(`${rt}: ${JSON.stringify(r, (_, v) => (typeof v === "number" ? +v.toFixed(2) : v))}`);
  } catch (e) {
    results.push({ runtime: rt, error: e.message });
    console.error(`${rt}: FAILED ${e.message.split("\n").slice(0, 6).join("\n")}`);
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

const f = (v, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : "–");
const date = new Date().toISOString();
const md = [
  `httvps backend on PGlite, ${
    sessions.toLocaleString("en")
  } sessions over ${DEVICES} devices, ${heartbeats} heartbeats; ${cpus().length} cores, ${date}`,
  "",
  "| runtime | first start s | RSS after start MiB | peak at start MiB | RSS under load MiB | peak MiB | heartbeat ms (slowest) | restart s | RSS after restart MiB | ≤ 150 MiB, first start ≤ 5 s |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
];
for (const r of results) {
  if (r.error) {
    md.push(`| ${r.runtime} | failed: ${r.error.split("\n")[0].slice(0, 100).replace(/\|/g, "/")} |||||||||`);
    continue;
  }
  const met = Math.max(r.rssAfterStartMiB, r.rssUnderLoadMiB, r.peakMiB) <= GOALS.footprintMiB &&
    r.firstStartS <= GOALS.firstStartS;
  md.push(
    `| ${r.runtime} | ${f(r.firstStartS, 1)} | ${f(r.rssAfterStartMiB)} | ${f(r.peakAtStartMiB)} | ${f(r.rssUnderLoadMiB)} | ${
      f(r.peakMiB)
    } | ${f(r.heartbeatMs)} | ${f(r.restartS, 1)} | ${f(r.rssAfterRestartMiB)} | ${met ? "met" : "**missed**"} |`,
  );
}
console.log("\n" + md.join("\n"));
const out = argValue("out", "");
if (out) {
  writeFileSync(
    out,
    JSON.stringify({ date, sessions, heartbeats, devices: DEVICES, results, markdown: md.join("\n") }, null, 2) + "\n",
  );
}
process.exit(results.some((r) => r.error) ? 1 : 0);
