#!/usr/bin/env node
// `npm run bench`: HTTVPS against the peers of docs/06-performance.md, in one bounded run on loopback.
// Installs what it needs (Debian: shadowsocks-libev, shadowsocks-v2ray-plugin, v2ray, curl),
// then measures every row the same way — curl through SOCKS5 against one local target
// (bench/target.mjs): 1-stream download and upload, 8-stream download, TTFB of a new
// connection, CPU-seconds per GiB of the tunnel's processes — plus the gateway's RSS per idle
// session. Prints markdown (figures, ratios, the issue's targets met/missed) and writes
// bench/results/<date>.json. Only ratios within one run mean anything: the machine is shared.
//
// Every row's chain is started first and stays up (idle, it costs nothing); then rounds go over
// all rows, each row measured once per round, and the best round counts. Other work on a
// shared machine comes and goes: interleaving lets it hit every row alike instead of whichever
// row happened to run at the time, and best-of keeps what the tunnel itself can do.
//
//   node bench/run.mjs [--only LIST] [--runtimes bun,node,deno] [--quick] [--cpu-prof ROW] …
// Run `node bench/run.mjs --help` for every option.
import { spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as measure from "./lib/curl.mjs";
import { GATEWAY_API_KEY, httvpsCommand, startBackend, startClient, startGateway } from "./lib/httvps.mjs";
import { startSs, startSsServer, startVless } from "./lib/peers.mjs";
import { killAllNow, reapedChildrenCpu, rssKiB, setScratchDir, sleep, start, stopAll, treeCpu } from "./lib/procs.mjs";
import { commandChannel } from "./lib/loader.mjs";
import { figuresTable, idleTable, profileText, ratioTable, summarizeProfile, targets, targetsTable } from "./lib/report.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SECONDS_PER_TRANSFER = 2;
const CIPHER_SHORT = { "chacha20-ietf-poly1305": "chacha", "aes-256-gcm": "aes256" };

const HELP = `usage: node bench/run.mjs [options]      (npm run bench -- [options])

  --only LIST        rows to run, comma-separated groups or row ids (default: all)
                     groups: raw, ss, plugin, vless, direct, h2, outline, idle, tls
                     aliases: peers = raw,ss,plugin,vless; httvps = direct,h2,outline,idle,tls
                     row ids: raw, ss-chacha, ss-aes256, plugin-mux0, plugin-mux1, vless,
                              direct/bun, h2/node, outline-chacha/node, idle/deno, floor/deno,
                              tls/node, …
                     (h2: direct mode over the HTTP/2 transport, on the runtimes whose
                     gateway serves it — Node and Deno, not Bun; floor: the runtime's TLS +
                     WebSocket alone holding idle connections, in group idle; tls: what
                     node:tls alone moves on each runtime)
  --runtimes LIST    HTTVPS runtimes (default bun,node,deno)
  --ciphers LIST     outline ciphers (default chacha20-ietf-poly1305,aes-256-gcm)
  --quick            small sizes: 32 MiB down, 16 MiB up, 8 × 4 MiB, 10 TTFB, 200/1000 sessions
  --down MiB         single-stream download (default 256)
  --up MiB           single-stream upload (default 128)
  --par MiB          per stream of the 8-stream download (default 32)
  --streams N        streams of the parallel download (default 8)
  --ttfb N           sequential new connections for TTFB (default 50)
  --rounds N         rounds over all rows, the best counts (default up to 3 as the budget
                     allows, --quick 1)
  --sessions LIST    idle sessions held open, cumulative steps (default 1000,10000)
  --cpu-prof ROW     run that Node row's gateway and client under node --cpu-prof and print the
                     top self-time functions (e.g. --cpu-prof outline-chacha/node)
  --no-install       do not apt-get install missing peers
  --budget SECONDS   no round starts that would not end before this; everything is killed
                     at it (default 600)
  --wait-quiet S     first wait up to S seconds (not counted in the budget) until no other work
                     keeps the CPUs busy (Linux PSI: some avg10 < 15 %); default 0
  --out FILE         where the JSON goes (default bench/results/<date>.json for a full run,
                     <date>-subset.json otherwise)

examples:
  npm run bench                                          # everything, ≤ 10 minutes
  npm run bench -- --only httvps --runtimes bun --quick  # iterate on the hot path
  npm run bench -- --only plugin-mux0,outline --runtimes node --cpu-prof outline-chacha/node`;

function parseOptions(argv) {
  const o = {
    only: null,
    runtimes: ["bun", "node", "deno"],
    ciphers: ["chacha20-ietf-poly1305", "aes-256-gcm"],
    quick: false,
    install: true,
    budget: 600,
    cpuProf: null,
    out: null,
  };
  const sizes = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = () => {
      const v = Number(val());
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a}: expected a positive number`);
      return v;
    };
    if (a === "--help" || a === "-h") {
      console.log(HELP);
      process.exit(0);
    } else if (a === "--only") {
      o.only = new Set(
        val().split(",").flatMap((
          s,
        ) => (s === "peers"
          ? ["raw", "ss", "plugin", "vless"]
          : s === "httvps"
          ? ["direct", "h2", "outline", "idle", "tls"]
          : [s])
        ),
      );
    } else if (a === "--runtimes") o.runtimes = val().split(",");
    else if (a === "--ciphers") o.ciphers = val().split(",");
    else if (a === "--quick") o.quick = true;
    else if (a === "--no-install") o.install = false;
    else if (a === "--budget") o.budget = num();
    else if (a === "--cpu-prof") o.cpuProf = val();
    else if (a === "--out") o.out = val();
    else if (a === "--wait-quiet") o.waitQuiet = num();
    else if (a === "--down") sizes.down = num() * MiB;
    else if (a === "--up") sizes.up = num() * MiB;
    else if (a === "--par") sizes.par = num() * MiB;
    else if (a === "--streams") sizes.streams = num();
    else if (a === "--ttfb") sizes.ttfb = num();
    else if (a === "--rounds") sizes.rounds = num();
    else if (a === "--sessions") sizes.sessions = val().split(",").map(Number);
    else throw new Error(`unknown option ${a} (see --help)`);
  }
  for (const rt of o.runtimes) if (!["bun", "node", "deno"].includes(rt)) throw new Error(`--runtimes: unknown runtime ${rt}`);
  for (const c of o.ciphers) {
    if (!CIPHER_SHORT[c]) throw new Error(`--ciphers: expected chacha20-ietf-poly1305 or aes-256-gcm, got ${c}`);
  }
  const base = o.quick
    ? { down: 32 * MiB, up: 16 * MiB, par: 4 * MiB, streams: 8, ttfb: 10, sessions: [200, 1000], rounds: 1 }
    : { down: 256 * MiB, up: 128 * MiB, par: 32 * MiB, streams: 8, ttfb: 50, sessions: [1000, 10000], rounds: 3 };
  o.sizes = { ...base, ...sizes };
  o.sizes.warm = Math.min(16 * MiB, o.sizes.down);
  return o;
}

let opts;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (e) {
  console.error(`bench: ${e.message}`);
  process.exit(2);
}
/** PSI "some avg10" of the CPU: the share of the last 10 s in which some task waited for a CPU. */
function cpuPressure10() {
  try {
    return Number(/some avg10=([\d.]+)/.exec(readFileSync("/proc/pressure/cpu", "utf8"))[1]);
  } catch {
    return null;
  }
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
const selected = (group, id) => !opts.only || opts.only.has(group) || opts.only.has(id);

// ---- cleanup on every way out ----
let finishing = false;
let target;
let backend;
let certs;
let dir;
process.on("exit", killAllNow);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, async () => {
    log(`${sig}: stopping everything`);
    await stopAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}
// The hard bound: rounds stop starting well before the budget; if something still hangs past
// it, write what we have and go.
const watchdog = setTimeout(
  async () => {
    log(`budget of ${opts.budget} s exceeded: stopping`);
    killAllNow();
    if (!finishing) await finish(true);
    process.exit(1);
  },
  (opts.budget + 10) * 1000,
);
watchdog.unref();

// ---- tools ----
const has = (bin) => spawnSync("bash", ["-c", `command -v ${bin}`]).status === 0;
function ensureTools() {
  const wants = (group) =>
    !opts.only || [...opts.only].some((s) => s === group || s.startsWith(`${group}-`) || s.startsWith(`${group}/`));
  const want = [["curl", "curl"]];
  if (wants("ss") || wants("plugin") || wants("outline")) {
    want.push(["ss-server", "shadowsocks-libev"], ["ss-local", "shadowsocks-libev"]);
  }
  if (wants("plugin")) want.push(["ss-v2ray-plugin", "shadowsocks-v2ray-plugin"]);
  if (wants("vless")) want.push(["v2ray", "v2ray"]);
  const missing = [...new Set(want.filter(([bin]) => !has(bin)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  if (!opts.install) {
    throw new Error(`missing ${missing.join(", ")} (apt-get install ${missing.join(" ")}), or drop --no-install`);
  }
  if (!has("apt-get")) throw new Error(`missing ${missing.join(", ")} and no apt-get to install them`);
  const sudo = process.getuid?.() === 0 ? [] : ["sudo", "-n"];
  log(`installing ${missing.join(", ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const run = (args) => {
    const r = spawnSync(sudo[0] ?? args[0], [...sudo.slice(1), ...(sudo.length ? args : args.slice(1))], {
      env,
      encoding: "utf8",
      timeout: 240_000,
    });
    if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${(r.stderr || r.error?.message || "").slice(-800)}`);
  };
  run(["apt-get", "update", "-qq"]);
  run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing]);
}

function versions() {
  const first = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
    return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n").find((l) => l.trim())?.trim() ?? "?";
  };
  const deb = (pkg) => {
    const r = spawnSync("dpkg-query", ["-W", "-f=${Version}", pkg], { encoding: "utf8" });
    return r.status === 0 && r.stdout ? r.stdout : "?";
  };
  return {
    node: process.version.slice(1),
    bun: first(join(root, "node_modules/.bin/bun"), ["--version"]),
    deno: first(join(root, "node_modules/.bin/deno"), ["--version"]).match(/[\d.]+/)?.[0] ?? "?",
    curl: first("curl", ["--version"]).match(/curl ([\d.]+)/)?.[1] ?? "?",
    "shadowsocks-libev": deb("shadowsocks-libev"),
    "shadowsocks-v2ray-plugin": deb("shadowsocks-v2ray-plugin"),
    v2ray: has("v2ray") ? (first("v2ray", ["-version"]).match(/V2Ray ([\d.]+)/)?.[1] ?? "?") : "missing",
  };
}

// ---- rows ----
/** Total µs some task waited for a CPU (Linux PSI); null where the kernel does not offer it. */
function cpuStallUs() {
  try {
    return Number(/some .*total=(\d+)/.exec(readFileSync("/proc/pressure/cpu", "utf8"))[1]);
  } catch {
    return null;
  }
}

function cpuSnapshot(chain) {
  return { chain: chain.map((p) => treeCpu(p.pid)), target: treeCpu(target.pid), reaped: reapedChildrenCpu() };
}

/** Start a row's chain, check it carries, size its transfers. `startChain` → { socksPort, chain: [proc…] }. */
async function prepareRow(row, startChain) {
  const s = opts.sizes;
  const result = {
    id: row.id,
    label: row.label,
    group: row.group,
    httvps: !!row.httvps,
    mode: row.mode,
    runtime: row.runtime,
    cipher: row.cipher,
    rounds: [],
  };
  const prep = { row, result, setup: null };
  log(`${row.id}: starting`);
  try {
    prep.setup = await startChain();
    const port = prep.setup.socksPort;
    // Warm-up: the chain is really up (plugins accept before they can carry), JITs have run.
    const until = Date.now() + 15_000;
    let warm;
    for (;;) {
      try {
        warm = await measure.download(port, target.port, s.warm, 30);
        break;
      } catch (e) {
        if (Date.now() > until) throw e;
        await sleep(250);
      }
    }
    await measure.ttfb(port, target.port, 3);
    // Sizes fit the row's speed, so a slow row cannot eat the run's 10 minutes: about
    // SECONDS_PER_TRANSFER per transfer at the warm-up's speed, never more than asked for.
    const speed = warm.bytes / warm.totalS;
    const fit = (want, floor) =>
      Math.max(Math.min(floor, want), Math.min(want, Math.round((speed * SECONDS_PER_TRANSFER) / MiB) * MiB));
    const sz = {
      down: fit(s.down, 32 * MiB),
      up: fit(s.up, 16 * MiB),
      par: fit(s.par * s.streams, 4 * MiB * s.streams) / s.streams,
    };
    sz.par = Math.max(MiB, Math.round(sz.par / MiB) * MiB);
    result.sizes = sz;
    log(`${row.id}: ready, warm-up ${(speed / 1e6).toFixed(0)} MB/s`);
  } catch (e) {
    result.error = e.message;
    log(`${row.id}: FAILED ${e.message.split("\n").slice(0, 8).join("\n")}`);
    for (const p of prep.setup?.chain ?? []) if (p.ownedByRow !== false) await p.stop();
    prep.setup = null;
  }
  return prep;
}

/** One round of one row: download (with CPU), upload, 8 streams, a share of the TTFB samples. */
async function measureRound(prep, ttfbCount) {
  const { result, setup } = prep;
  if (!setup || result.error) return;
  const port = setup.socksPort;
  const sz = result.sizes;
  const r = {};
  try {
    const t0 = process.hrtime.bigint() / 1000n;
    const stall0 = cpuStallUs();
    const before = cpuSnapshot(setup.chain);
    r.down = await measure.download(port, target.port, sz.down);
    const after = cpuSnapshot(setup.chain);
    const gib = r.down.bytes / GiB;
    const perProcess = {};
    setup.chain.forEach((p, i) => (perProcess[p.role ?? p.name] = (after.chain[i] - before.chain[i]) / gib));
    const tunnel = Object.values(perProcess).reduce((a, b) => a + b, 0);
    const targetCpu = (after.target - before.target) / gib;
    const curlCpu = (after.reaped - before.reaped) / gib;
    r.cpu = {
      tunnelPerGiB: tunnel,
      allPerGiB: tunnel + targetCpu + curlCpu,
      targetPerGiB: targetCpu,
      curlPerGiB: curlCpu,
      perProcessPerGiB: perProcess,
    };
    r.up = await measure.upload(port, target.port, uploadFile(sz.up), sz.up);
    r.par = await measure.parallel(port, target.port, opts.sizes.streams, sz.par);
    r.ttfb = await measure.ttfb(port, target.port, ttfbCount);
    const t1 = process.hrtime.bigint() / 1000n;
    r.windowUs = { startUs: Number(t0), endUs: Number(t1) };
    const stall1 = cpuStallUs();
    if (stall0 !== null && stall1 !== null) r.cpuStallPct = (100 * (stall1 - stall0)) / Number(t1 - t0);
    result.rounds.push(r);
    log(
      `${result.id}: down ${r.down.mbps.toFixed(0)} MB/s, up ${r.up.mbps.toFixed(0)}, ${opts.sizes.streams}× ${
        r.par.mbps.toFixed(0)
      }, TTFB ${r.ttfb.medianMs.toFixed(2)} ms, ${tunnel.toFixed(2)} CPU-s/GiB${
        r.cpuStallPct !== undefined ? `, CPU stall ${r.cpuStallPct.toFixed(0)} %` : ""
      }`,
    );
  } catch (e) {
    // One failed round does not sink the row; a row with no good round is reported failed.
    r.error = e.message;
    result.rounds.push(r);
    log(`${result.id}: round FAILED ${e.message.split("\n").slice(0, 4).join("\n")}`);
  }
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];

/** The best of the rounds: highest throughput, least CPU; TTFB over all samples of all rounds. */
function summarize(result) {
  const good = result.rounds.filter((r) => !r.error);
  if (result.error) return result;
  if (!good.length) {
    result.error = result.rounds.find((r) => r.error)?.error ?? "no round ran (time budget)";
    return result;
  }
  const best = (key) => good.reduce((a, b) => (key(b) > key(a) ? b : a));
  result.down = best((r) => r.down.mbps).down;
  result.up = best((r) => r.up.mbps).up;
  result.par = best((r) => r.par.mbps).par;
  result.cpu = best((r) => -r.cpu.tunnelPerGiB).cpu;
  // TTFB is a distribution already: pool every sample rather than pick a round.
  const samples = good.flatMap((r) => r.ttfb.samplesMs);
  const sorted = [...samples].sort((a, b) => a - b);
  result.ttfb = { n: samples.length, medianMs: quantile(sorted, 0.5), p90Ms: quantile(sorted, 0.9) };
  result.roundsMeasured = good.length;
  return result;
}

// ---- idle sessions: the gateway's memory per session ----
/**
 * `floor`: the same load against bench/ws-floor-server.mjs, the runtime's TLS + WebSocket stack
 * alone, to tell the gateway's own memory per session from what the runtime costs anyway.
 */
async function idleSessions(rt, device, floor = false) {
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
    gw = floor ? await startFloor(rt, most * 2 + 4096) : await startGateway(root, rt, {
      mode: "direct",
      backendUrl: backend.url,
      certs,
      dir,
      ulimit: most * 2 + 4096,
      env: { GATEWAY_AUTH_CACHE_TTL: "30m", GATEWAY_BACKEND_TIMEOUT: "15s", GATEWAY_IDLE_TIMEOUT: "30m" },
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
function scriptCommand(rt, script) {
  if (rt === "bun") return [join(root, "node_modules/.bin/bun"), [script]];
  if (rt === "deno") return [join(root, "node_modules/.bin/deno"), ["run", "-A", script]];
  return [process.execPath, [script]];
}

async function startFloor(rt, ulimit) {
  const server = join(root, "bench/ws-floor-server.mjs");
  const [cmd, argv] = scriptCommand(rt, server);
  const proc = await start(`floor ${rt}`, cmd, [...argv, certs.cert, certs.key], { ready: /listening (\d+)/, ulimit });
  return { proc, port: Number(proc.match[1]) };
}

async function tlsFloor(rt) {
  const script = join(root, "bench/tls-floor.mjs");
  const [cmd, argv] = scriptCommand(rt, script);
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

// ---- the run ----
const results = [];
const idle = [];
/** tls/<runtime>: what node:tls alone moves on each runtime (bench/tls-floor.mjs). */
const tlsFloors = [];
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

const uploads = new Map();
/** A file of `bytes` random bytes to upload (random: nothing on the way compresses it). */
function uploadFile(bytes) {
  if (!uploads.has(bytes)) {
    const pool = randomFillSync(Buffer.alloc(Math.min(16 * MiB, bytes)));
    const parts = [];
    for (let left = bytes; left > 0; left -= pool.length) parts.push(pool.subarray(0, Math.min(pool.length, left)));
    const file = join(dir, `upload-${bytes}.bin`);
    writeFileSync(file, Buffer.concat(parts));
    uploads.set(bytes, file);
  }
  return uploads.get(bytes);
}

async function finish(partial = false) {
  finishing = true;
  const date = new Date().toISOString();
  machine.loadAtEnd = loadavg().map((l) => +l.toFixed(2));
  const stallEnd = cpuStallUs();
  if (stallAtStart !== null && stallEnd !== null) {
    machine.cpuStallPct = +((100 * (stallEnd - stallAtStart)) / ((Date.now() - t0) * 1000)).toFixed(1);
  }
  const rounds = Math.max(0, ...results.map((r) => r.roundsMeasured ?? 0));
  const md = [
    `HTTVPS vs peers — ${date.slice(0, 10)}, ${machine.nproc} vCPU (${machine.model}), ${
      Object.entries(versionsInfo ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")
    }`,
    `sizes: 1 stream up to ${opts.sizes.down / MiB} MiB down and ${
      opts.sizes.up / MiB
    } MiB up, ${opts.sizes.streams} streams × up to ${
      opts.sizes.par / MiB
    } MiB (a slower row moves about ${SECONDS_PER_TRANSFER} s worth: MiB per row in the last column); best of ${rounds} interleaved round(s); TTFB over ${opts.sizes.ttfb} new connections; MB = 10^6 B${
      partial ? " — PARTIAL (budget exceeded)" : ""
    }`,
    `load average (1 min) at start ${machine.loadAtStart[0]}, at end ${machine.loadAtEnd[0]}${
      machine.cpuStallPct !== undefined ? `; some task waited for a CPU ${machine.cpuStallPct} % of the run (PSI)` : ""
    }${
      Math.max(machine.loadAtStart[0], machine.loadAtEnd[0]) > 2.5
        ? " — other work shared the machine: ratios are noisier than usual"
        : ""
    }`,
    "",
    figuresTable(results),
    "",
    "CPU-s/GiB tunnel: user+system CPU of the tunnel's processes (client, gateway, ss-server / ss-local, ss-server, plugins / v2ray ×2) during the 1-stream download; all: plus curl and the target.",
    "",
  ];
  const ratios = ratioTable(results);
  if (ratios) md.push("Ratios, HTTVPS row / peer (throughput: higher is better; TTFB and CPU: lower is better):", "", ratios, "");
  if (idle.length) {
    md.push("Idle sessions (hello → auth_result, then nothing), gateway RSS from /proc/<pid>/status:", "", idleTable(idle), "");
  }
  if (tlsFloors.length) {
    md.push(
      "The runtimes' floor: node:tls alone, both ends in one process, 64 KiB writes (bench/tls-floor.mjs):",
      "",
      "| runtime | MB/s | CPU-s/GiB | cipher |",
      "|---|---:|---:|---|",
    );
    for (const t of tlsFloors) md.push(`| ${t.runtime} | ${t.mbps.toFixed(0)} | ${t.cpuSPerGiB.toFixed(2)} | ${t.cipher} |`);
    md.push("");
  }
  const t = targets(results, idle);
  if (t.length) md.push("Targets of the issue:", "", targetsTable(t), "");
  for (const p of profiles) md.push(profileText(p), "");
  const text = md.join("\n");
  console.log("\n" + text);
  const full = !opts.only && !opts.quick && !partial;
  mkdirSync(join(root, "bench/results"), { recursive: true });
  const file = opts.out ?? join(root, "bench/results", `${date.slice(0, 10)}${full ? "" : "-subset"}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        date,
        partial,
        options: { ...opts, only: opts.only ? [...opts.only] : null },
        machine,
        versions: versionsInfo,
        results,
        idle,
        tlsFloors,
        targets: t,
        profiles,
        markdown: text,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`written ${file}`);
}

let versionsInfo;
let exitCode = 0;
try {
  ensureTools();
  versionsInfo = versions();
  log(`machine: ${machine.nproc} vCPU ${machine.model}; ${Object.entries(versionsInfo).map(([k, v]) => `${k} ${v}`).join("; ")}`);
  dir = mkdtempSync(join(tmpdir(), "httvps-bench-"));
  setScratchDir(dir);
  // Our own generator (no openssl): a self-signed certificate for localhost, used by every TLS hop.
  const certDir = join(dir, "certs");
  const [certCmd, certArgs] = httvpsCommand(root, "node", ["certs", "dev", "--dir", certDir]);
  const c = spawnSync(certCmd, certArgs, { cwd: dir, encoding: "utf8", timeout: 60_000 });
  if (c.status !== 0) throw new Error(`certs dev failed: ${c.stderr}`);
  certs = { cert: join(certDir, "cert.pem"), key: join(certDir, "key.pem") };
  target = await start("target", process.execPath, [join(root, "bench/target.mjs")], { ready: /target listening on (\d+)/ });
  target.port = Number(target.match[1]);

  // ---- which rows ----
  const rows = [
    { id: "raw", group: "raw", label: "raw loopback (curl → target)", start: async () => ({ socksPort: 0, chain: [] }) },
    ...opts.ciphers.map((m) => ({
      id: `ss-${CIPHER_SHORT[m]}`,
      group: "ss",
      label: `ss-libev ${m}`,
      start: () => startSs({ method: m }),
    })),
    {
      id: "plugin-mux0",
      group: "plugin",
      label: "ss-libev + v2ray-plugin WS+TLS, mux=0",
      start: () => startSs({ method: "chacha20-ietf-poly1305", plugin: true, mux: 0, certs }),
    },
    {
      id: "plugin-mux1",
      group: "plugin",
      label: "ss-libev + v2ray-plugin WS+TLS, mux=1",
      start: () => startSs({ method: "chacha20-ietf-poly1305", plugin: true, mux: 1, certs }),
    },
    { id: "vless", group: "vless", label: "v2ray VLESS WS+TLS", start: () => startVless({ certs, dir }) },
  ].filter((r) => selected(r.group, r.id));
  const wantDirect = opts.runtimes.filter((rt) => selected("direct", `direct/${rt}`));
  // Bun's gateway serves no HTTP/2 (Bun.serve has none): an h2 row there would measure the ws fallback.
  const wantH2 = opts.runtimes.filter((rt) => rt !== "bun" && selected("h2", `h2/${rt}`));
  const wantOutline = opts.ciphers.map((
    m,
  ) => [m, opts.runtimes.filter((rt) => selected("outline", `outline-${CIPHER_SHORT[m]}/${rt}`))]).filter(([, rts]) =>
    rts.length
  );
  const wantIdle = opts.runtimes.filter((rt) => selected("idle", `idle/${rt}`));
  const wantFloor = opts.runtimes.filter((rt) => selected("idle", `floor/${rt}`));
  const wantTls = opts.runtimes.filter((rt) => selected("tls", `tls/${rt}`));
  const profileDir = join(dir, "profiles");

  if (wantDirect.length || wantH2.length || wantOutline.length || wantIdle.length || wantFloor.length || wantTls.length) {
    log("backend: starting (PGlite; the first start initialises the database)");
    backend = await startBackend(root, dir);
    // The gateway's own view of a device: validate it once, which pins it to a node (outline).
    const validate = async (device) => {
      const res = await fetch(backend.url + "/api/v1/auth/validate-device", {
        method: "POST",
        headers: { authorization: `Bearer ${GATEWAY_API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ device_id: device.device_id, token: device.token, client_version: "bench" }),
      });
      return res.json();
    };

    // Idle sessions first: nothing else of ours runs, and the rounds get whatever time is left.
    if (wantIdle.length) {
      const device = await backend.admin("POST", "/api/v1/devices", { name: "bench-idle" });
      for (const rt of wantIdle) idle.push(await idleSessions(rt, device));
    }
    if (wantFloor.length) {
      for (const rt of wantFloor) idle.push(await idleSessions(rt, null, true));
    }
    for (const rt of wantTls) {
      try {
        tlsFloors.push(await tlsFloor(rt));
      } catch (e) {
        log(`tls/${rt}: FAILED ${e.message.split("\n")[0]}`);
      }
    }

    const httvpsChain = (rt, mode, device, id, extra = [], transport = "ws") => async () => {
      const prof = opts.cpuProf === id && rt !== "deno";
      // Node and Bun both write a Chrome .cpuprofile when the process exits.
      const flags = (
        who,
      ) => (!prof
        ? []
        : rt === "bun"
        ? ["--cpu-prof", `--cpu-prof-dir=${join(profileDir, who)}`]
        : ["--cpu-prof", "--cpu-prof-dir", join(profileDir, who)]);
      const gw = await startGateway(root, rt, { mode, backendUrl: backend.url, certs, dir, nodeFlags: flags("gateway") });
      gw.proc.role = "gateway";
      const cl = await startClient(root, rt, { gatewayPort: gw.port, device, certs, dir, nodeFlags: flags("client"), transport })
        .catch(async (e) => {
          await gw.proc.stop();
          throw e;
        });
      cl.proc.role = "client";
      return { socksPort: cl.socksPort, chain: [cl.proc, gw.proc, ...extra] };
    };
    if (wantDirect.length) {
      const device = await backend.admin("POST", "/api/v1/devices", { name: "bench-direct" });
      for (const rt of wantDirect) {
        const id = `direct/${rt}`;
        rows.push({
          id,
          group: "direct",
          label: `HTTVPS direct (${rt})`,
          httvps: true,
          mode: "direct",
          runtime: rt,
          start: httvpsChain(rt, "direct", device, id),
        });
      }
    }
    if (wantH2.length) {
      const device = await backend.admin("POST", "/api/v1/devices", { name: "bench-direct-h2" });
      for (const rt of wantH2) {
        const id = `h2/${rt}`;
        rows.push({
          id,
          group: "h2",
          label: `HTTVPS direct over HTTP/2 (${rt})`,
          httvps: true,
          mode: "direct-h2",
          runtime: rt,
          start: httvpsChain(rt, "direct", device, id, [], "h2"),
        });
      }
    }
    // One ss-server per cipher as the Outline node, and a device pinned to each: while a device
    // is validated for the first time its node is the only one enabled, so every later session of
    // that device (all of its rows, on every runtime) lands on that cipher's node.
    const nodes = [];
    for (const [m, rts] of wantOutline) {
      const ss = await startSsServer(m, `ss-server (node) ${m}`);
      ss.proc.role = "ss-server";
      ss.proc.ownedByRow = false;
      for (const n of nodes) await backend.admin("PATCH", `/api/v1/nodes/${n.id}`, { enabled: false });
      const node = await backend.admin("POST", "/api/v1/nodes", {
        name: `bench-${CIPHER_SHORT[m]}`,
        host: "127.0.0.1",
        port: ss.port,
        method: m,
        password: ss.password,
      });
      const device = await backend.admin("POST", "/api/v1/devices", { name: `bench-outline-${CIPHER_SHORT[m]}` });
      const v = await validate(device);
      for (const n of nodes) await backend.admin("PATCH", `/api/v1/nodes/${n.id}`, { enabled: true });
      if (v.valid !== true || v.assignment?.port !== ss.port || v.assignment?.method !== m) {
        throw new Error(
          `the ${m} device was not pinned to its node: ${
            JSON.stringify({ ...v, assignment: v.assignment && { ...v.assignment, password: "…" } })
          }`,
        );
      }
      nodes.push(node);
      for (const rt of rts) {
        const id = `outline-${CIPHER_SHORT[m]}/${rt}`;
        rows.push({
          id,
          group: "outline",
          label: `HTTVPS outline ${m} (${rt})`,
          httvps: true,
          mode: "outline",
          runtime: rt,
          cipher: m,
          start: httvpsChain(rt, "outline", device, id, [ss.proc]),
        });
      }
    }
  }

  // ---- start every chain, then interleaved rounds ----
  const preps = [];
  for (const row of rows) preps.push(await prepareRow(row, row.start));
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
    for (const p of order) await measureRound(p, ttfbCount);
    lastRoundS = elapsed() - started;
  }
  for (const p of preps) results.push(summarize(p.result));

  // Profiles are written when node exits: stop the profiled row first.
  for (const p of live) for (const proc of p.setup.chain) if (proc.ownedByRow !== false) await proc.stop();
  if (opts.cpuProf) {
    const res = results.find((r) => r.id === opts.cpuProf);
    const windows = (res?.rounds ?? []).filter((r) => r.windowUs).map((r) => r.windowUs);
    for (const who of ["gateway", "client"]) {
      const d = join(profileDir, who);
      let files = [];
      try {
        files = readdirSync(d).filter((f) => f.endsWith(".cpuprofile"));
      } catch {}
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
} catch (e) {
  exitCode = 1;
  log(`bench: ${e.stack ?? e.message}`);
} finally {
  await stopAll();
  if (!finishing) await finish(elapsed() > opts.budget);
  if (dir) rmSync(dir, { recursive: true, force: true });
  setScratchDir("");
  clearTimeout(watchdog);
  log(`done in ${elapsed().toFixed(0)} s`);
}
process.exit(exitCode || (results.some((r) => r.error) || idle.some((i) => i.error) ? 1 : 0));
