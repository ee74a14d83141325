#!/usr/bin/env node
// `npm run bench`: HTTVPS against the peers of docs/06-performance.md, in one bounded run on loopback.
// Installs what it needs (Debian: shadowsocks-libev, shadowsocks-v2ray-plugin, v2ray, curl),
// then measures every row the same way — curl through SOCKS5 against one local target
// (bench/target.mjs): 1-stream download and upload, 8-stream download, TTFB of a new
// connection, CPU-seconds per GiB of the tunnel's processes — plus the gateway's RSS per idle
// session; after the rounds, alone on the machine, the reconnect storm, validate-device on
// PostgreSQL and the backend's footprint on PGlite. Prints markdown (figures, ratios, issue 17's
// targets met/missed) and writes bench/results/<date>.json. Only ratios within one run mean
// anything: the machine is shared.
//
// Every row's chain is started first and stays up (idle, it costs nothing); then rounds go over
// all rows, each row measured once per round, and the best round counts. Other work on a
// shared machine comes and goes: interleaving lets it hit every row alike instead of whichever
// row happened to run at the time, and best-of keeps what the tunnel itself can do.
//
//   node bench/run.mjs [--only LIST] [--runtimes bun,node,deno] [--quick] [--cpu-prof ROW] …
// Run `node bench/run.mjs --help` for every option.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { httvpsCommand, startBackend } from "./lib/httvps.mjs";
import { firstByte } from "./lib/first-byte.mjs";
import { bulkSessions, idleSessions, tlsFloor } from "./lib/idle.mjs";
import { GiB, parseOptions, selected } from "./lib/options.mjs";
import { cpuPressure10, cpuStallUs, killAllNow, setScratchDir, start, stopAll } from "./lib/procs.mjs";
import { runReport, summarizeProfile } from "./lib/report.mjs";
import { resultsJson } from "./lib/results-file.mjs";
import { measureRound, prepareRow, SECONDS_PER_TRANSFER, summarize } from "./lib/rounds.mjs";
import { httvpsRows, httvpsSelection, peerRows } from "./lib/rows.mjs";
import { SMALL, SMALL_PEERS } from "./lib/small.mjs";
import { targets } from "./lib/targets.mjs";
import { ensureTools, versions } from "./lib/tools.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));

let opts;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (e) {
  console.error(`bench: ${e.message}`);
  process.exit(2);
}
if (opts.waitQuiet) {
  const until = Date.now() + opts.waitQuiet * 1000;
  let p = cpuPressure10();
  while (p !== null && p >= 15 && Date.now() < until) {
    console.error(`bench: waiting for a quiet machine (CPU pressure ${p} % over the last 10 s)`);
    await new Promise((r) => setTimeout(r, 10_000));
    p = cpuPressure10();
  }
}
const t0 = Date.now();
const elapsed = () => (Date.now() - t0) / 1000;
const log = (msg) => console.error(`[${elapsed().toFixed(0).padStart(3)} s] ${msg}`);
/** The run's context, handed to bench/lib: filled in as the run sets things up. */
const bench = { root, opts, log, elapsed, dir: null, certs: null, target: null, backend: null, profileDir: null };

// ---- cleanup on every way out ----
let finishing = false;
process.on("exit", killAllNow);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, async () => {
    log(`${sig}: stopping everything`);
    await stopAll();
    if (bench.dir) rmSync(bench.dir, { recursive: true, force: true });
    process.exit(130);
  });
}
// The hard bound: rounds stop starting well before the budget; if something still hangs past
// it, write what we have and go.
const watchdog = setTimeout(
  () => {
    log(`budget of ${opts.budget} s exceeded: stopping`);
    killAllNow();
    if (!finishing) finish(true);
    process.exit(1);
  },
  (opts.budget + 10) * 1000,
);
watchdog.unref();

// ---- the run ----
const results = [];
const idle = [];
/** storm/<runtime>: bench/reconnect-storm.mjs's JSON, run after the rounds. */
let storm = null;
/** How long the storm may take, beyond --budget. */
const STORM_BOUND_S = 1200;
/** validate/<runtime>: bench/validate-device.mjs's JSON (PostgreSQL only), run after the rounds. */
let validate = null;
const VALIDATE_BOUND_S = 300;
/** footprint/<runtime>: bench/backend-footprint.mjs's JSON (the backend on PGlite), run after the rounds. */
let footprint = null;
const FOOTPRINT_BOUND_S = 600;
/** tls/<runtime>: what node:tls alone moves on each runtime (bench/tls-floor.mjs). */
const tlsFloors = [];
/** early/<runtime>: first byte on a fresh session without and with early data (bench/first-byte.ts). */
const firstBytes = [];
const profiles = [];
const machine = {
  nproc: availableParallelism(),
  cores: cpus().length,
  model: cpus()[0]?.model ?? "?",
  kernel: release(),
  memGiB: +(totalmem() / GiB).toFixed(1),
  loadAtStart: loadavg().map((l) => +l.toFixed(2)),
};
const stallAtStart = cpuStallUs();
let versionsInfo;

/** Print the markdown and write the JSON of what was measured so far. */
function finish(partial = false) {
  finishing = true;
  const date = new Date().toISOString();
  machine.loadAtEnd = loadavg().map((l) => +l.toFixed(2));
  const stallEnd = cpuStallUs();
  if (stallAtStart !== null && stallEnd !== null) {
    machine.cpuStallPct = +((100 * (stallEnd - stallAtStart)) / ((Date.now() - t0) * 1000)).toFixed(1);
  }
  const t = targets({ rows: results, idle, storm, validate, footprint, small: { requests: SMALL.requests, peers: SMALL_PEERS } });
  const text = runReport({
    date,
    machine,
    versions: versionsInfo,
    opts,
    secondsPerTransfer: SECONDS_PER_TRANSFER,
    results,
    idle,
    tlsFloors,
    firstBytes,
    targets: t,
    profiles,
    partial,
  }) + afterRoundsMarkdown();
  console.log("\n" + text);
  const full = !opts.only && !opts.quick && !partial;
  mkdirSync(join(root, "bench/results"), { recursive: true });
  const file = opts.out ?? join(root, "bench/results", `${date.slice(0, 10)}${full ? "" : "-subset"}.json`);
  writeFileSync(
    file,
    resultsJson({
      date,
      partial,
      options: { ...opts, only: opts.only ? [...opts.only] : null },
      machine,
      versions: versionsInfo,
      results,
      idle,
      tlsFloors,
      firstBytes,
      targets: t,
      profiles,
      storm,
      validate,
      footprint,
      markdown: text,
    }),
  );
  console.log(`written ${file}`);
}

/** The after-the-rounds scripts' own tables (storm, validate, footprint), or the way each failed. */
function afterRoundsMarkdown() {
  const parts = [["reconnect storm", storm], ["validate-device", validate], ["backend footprint", footprint]];
  return parts.filter(([, j]) => j).map(([name, j]) => `\n\n${j.markdown ?? `${name}: FAILED ${j.error}`}`).join("");
}

/**
 * A bench script after the rounds, alone on the machine and bounded on its own (outside
 * --budget: the rounds keep all of it): its JSON (written to --out), or { error }.
 */
function afterRounds(name, script, args, boundS) {
  clearTimeout(watchdog);
  const out = join(bench.dir, `${name}.json`);
  log(`${name}: ${script} ${args.join(" ")} (at most ${boundS} s)`);
  const r = spawnSync(process.execPath, [join(root, script), ...args, "--out", out], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    timeout: boundS * 1000,
    killSignal: "SIGINT",
  });
  try {
    return JSON.parse(readFileSync(out, "utf8"));
  } catch {
    return { error: `exit ${r.status ?? r.signal}${r.error?.code === "ETIMEDOUT" ? ` (past its ${boundS} s bound)` : ""}` };
  }
}

/** --cpu-prof ROW: the self time of that row's gateway and client during its measurements. */
function collectProfiles(profileDir) {
  const res = results.find((r) => r.id === opts.cpuProf);
  const windows = (res?.rounds ?? []).filter((r) => r.windowUs).map((r) => r.windowUs);
  for (const who of ["gateway", "client"]) {
    const d = join(profileDir, who);
    let files = [];
    try {
      files = readdirSync(d).filter((f) => f.endsWith(".cpuprofile"));
    } catch {
      // no folder: the process wrote no profile, said below
    }
    if (!files.length) {
      log(`${opts.cpuProf}: no ${who} profile was written (only Node and Bun rows can be profiled)`);
      continue;
    }
    const prof = JSON.parse(readFileSync(join(d, files[0]), "utf8"));
    // V8 stamps samples on CLOCK_MONOTONIC like process.hrtime; Bun on the wall clock (µs since 1970).
    const wall = prof.startTime > 1e15 ? Date.now() * 1000 - Number(process.hrtime.bigint() / 1000n) : 0;
    const shifted = windows.map((w) => ({ startUs: w.startUs + wall, endUs: w.endUs + wall }));
    profiles.push({ row: opts.cpuProf, process: who, ...summarizeProfile(prof, root, shifted) });
    const keep = join(tmpdir(), `httvps-${opts.cpuProf.replace("/", "-")}-${who}.cpuprofile`);
    writeFileSync(keep, JSON.stringify(prof));
    log(`${opts.cpuProf}: ${who} profile kept in ${keep} (open it in Chrome DevTools → Performance)`);
  }
}

let exitCode = 0;
/** When the rounds ended (s into the run); unset if the run stopped before. */
let roundsEndS;
try {
  ensureTools(opts, log);
  versionsInfo = versions(root);
  log(`machine: ${machine.nproc} vCPU ${machine.model}; ${Object.entries(versionsInfo).map(([k, v]) => `${k} ${v}`).join("; ")}`);
  const dir = bench.dir = mkdtempSync(join(tmpdir(), "httvps-bench-"));
  setScratchDir(dir);
  // Our own generator (no openssl): a self-signed certificate for localhost, used by every TLS hop.
  const certDir = join(dir, "certs");
  const [certCmd, certArgs] = httvpsCommand(root, "node", ["certs", "dev", "--dir", certDir]);
  const c = spawnSync(certCmd, certArgs, { cwd: dir, encoding: "utf8", timeout: 60_000 });
  if (c.status !== 0) throw new Error(`certs dev failed: ${c.stderr}`);
  bench.certs = { cert: join(certDir, "cert.pem"), key: join(certDir, "key.pem") };
  const target = bench.target = await start("target", process.execPath, [join(root, "bench/target.mjs")], {
    ready: /target listening on (\d+)/,
  });
  target.port = Number(target.match[1]);
  bench.profileDir = join(dir, "profiles");

  // ---- which rows ----
  const rows = peerRows(bench);
  const want = httvpsSelection(opts);
  if (want.any) {
    log("backend: starting (PGlite; the first start initialises the database)");
    bench.backend = await startBackend(root, dir);
    // Idle sessions first: nothing else of ours runs, and the rounds get whatever time is left.
    if (want.idle.length || want.bulk.length) {
      const device = await bench.backend.admin("POST", "/api/v1/devices", { name: "bench-idle" });
      for (const rt of want.idle) idle.push(await idleSessions(bench, rt, device));
      // What a session keeps after a bulk transfer, against an idle one (issue 17, item 4).
      for (const rt of want.bulk) idle.push(await bulkSessions(bench, rt, device));
    }
    for (const rt of want.floor) idle.push(await idleSessions(bench, rt, null, true));
    for (const rt of want.tls) {
      try {
        tlsFloors.push(tlsFloor(bench, rt));
      } catch (e) {
        log(`tls/${rt}: FAILED ${e.message.split("\n")[0]}`);
      }
    }
    for (const rt of want.early) {
      try {
        firstBytes.push(firstByte(bench, rt));
      } catch (e) {
        log(`early/${rt}: FAILED ${e.message.split("\n")[0]}`);
      }
    }
    rows.push(...await httvpsRows(bench, want));
  }

  // ---- start every chain, then interleaved rounds ----
  const preps = [];
  for (const row of rows) preps.push(await prepareRow(bench, row));
  const live = preps.filter((p) => p.setup);
  const maxRounds = opts.sizes.rounds;
  let lastRoundS = 0;
  for (let round = 0; round < maxRounds && live.length; round++) {
    // Keep a margin for stopping everything and writing the results.
    if (round > 0 && elapsed() + lastRoundS * 1.15 > opts.budget - 20) {
      log(`round ${round + 1}: skipped, it would not end within the ${opts.budget} s budget`);
      break;
    }
    const started = elapsed();
    log(`round ${round + 1} of ${maxRounds}`);
    // Alternate the order so no row always runs right after the same neighbour.
    const order = round % 2 === 0 ? live : [...live].reverse();
    const ttfbCount = Math.ceil(opts.sizes.ttfb / maxRounds);
    for (const p of order) await measureRound(bench, p, ttfbCount);
    lastRoundS = elapsed() - started;
  }
  for (const p of preps) results.push(summarize(p.result));
  roundsEndS = elapsed();

  // Profiles are written when node exits: stop the profiled row first.
  for (const p of live) for (const proc of p.setup.chain) if (proc.ownedByRow !== false) await proc.stop();
  if (opts.cpuProf) collectProfiles(bench.profileDir);

  // The reconnect storm, validate-device and the footprint last, each alone on the machine.
  const after = (group) => opts.runtimes.filter((rt) => selected(opts, group, `${group}/${rt}`));
  if (after("storm").length) {
    // Its own backend on PostgreSQL, its gateways, 1 and 2 GATEWAY_WORKERS.
    const devices = opts.quick ? 2000 : 10_000;
    storm = afterRounds("storm", "bench/reconnect-storm.mjs", [
      ...["--devices", String(devices), "--runtimes", after("storm").join(",")],
    ], STORM_BOUND_S);
  }
  if (after("validate").length) {
    // Issue 17 item 8 is on PostgreSQL: PGlite's figures stay in the script's own runs.
    validate = afterRounds("validate", "bench/validate-device.mjs", [
      ...["--runtimes", after("validate").join(","), "--databases", "postgres", "--seconds", opts.quick ? "5" : "10"],
    ], VALIDATE_BOUND_S);
  }
  if (after("footprint").length) {
    footprint = afterRounds("footprint", "bench/backend-footprint.mjs", [
      ...["--runtimes", after("footprint").join(","), "--sessions", "10000"],
    ], FOOTPRINT_BOUND_S);
  }
} catch (e) {
  exitCode = 1;
  log(`bench: ${e.stack ?? e.message}`);
} finally {
  await stopAll();
  // The groups after the rounds (storm, validate, footprint) are outside --budget, bounded on their
  // own: only rounds that ran past it make the run partial.
  if (!finishing) finish((roundsEndS ?? elapsed()) > opts.budget);
  if (bench.dir) rmSync(bench.dir, { recursive: true, force: true });
  setScratchDir("");
  clearTimeout(watchdog);
  log(`done in ${elapsed().toFixed(0)} s`);
}
process.exit(
  exitCode ||
    (results.some((r) => r.error) || idle.some((i) => i.error) ||
        [storm, validate, footprint].some((j) => j?.error || j?.results?.some((r) => r.error))
      ? 1
      : 0),
);
