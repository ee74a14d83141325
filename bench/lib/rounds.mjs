// The throughput rows of a bench run, measured the same way for every tunnel: a row's chain is
// started and warmed up once (prepareRow), each round measures it once (measureRound), the best
// round counts (summarize). `bench` is the run's context from bench/run.mjs:
// { opts, log, dir, target } — the options, the logger, the scratch folder, the HTTP target.
import { randomFillSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as measure from "./curl.mjs";
import { GiB, MiB } from "./options.mjs";
import { cpuStallUs, reapedChildrenCpu, sleep, treeCpu } from "./procs.mjs";
import { smallBatch } from "./small.mjs";

/** A slower row moves about this many seconds' worth per transfer, so it cannot eat the budget. */
export const SECONDS_PER_TRANSFER = 2;

function cpuSnapshot(bench, chain) {
  return { chain: chain.map((p) => treeCpu(p.pid)), target: treeCpu(bench.target.pid), reaped: reapedChildrenCpu() };
}

const uploads = new Map();
/** A file of `bytes` random bytes to upload (random: nothing on the way compresses it). */
function uploadFile(bench, bytes) {
  if (!uploads.has(bytes)) {
    const pool = randomFillSync(Buffer.alloc(Math.min(16 * MiB, bytes)));
    const parts = [];
    for (let left = bytes; left > 0; left -= pool.length) parts.push(pool.subarray(0, Math.min(pool.length, left)));
    const file = join(bench.dir, `upload-${bytes}.bin`);
    writeFileSync(file, Buffer.concat(parts));
    uploads.set(bytes, file);
  }
  return uploads.get(bytes);
}

/** `transfer()`'s result, retried for up to 15 s while a fresh chain comes up (plugins accept before they can carry). */
async function whenUp(transfer) {
  const until = Date.now() + 15_000;
  for (;;) {
    try {
      return await transfer();
    } catch (e) {
      if (Date.now() > until) throw e;
      await sleep(250);
    }
  }
}

/** Start a row's chain, check it carries, size its transfers. `row.start()` → { socksPort, chain: [proc…] }. */
export async function prepareRow(bench, row) {
  const { opts, log, target } = bench;
  const s = opts.sizes;
  const result = {
    id: row.id,
    label: row.label,
    group: row.group,
    httvps: !!row.httvps,
    mode: row.mode,
    runtime: row.runtime,
    cipher: row.cipher,
    peer: row.peer,
    kind: row.kind,
    rounds: [],
  };
  const prep = { row, result, setup: null };
  log(`${row.id}: starting`);
  try {
    prep.setup = await row.start();
    const port = prep.setup.socksPort;
    if (row.kind === "small") {
      // Warm-up: one whole batch.
      const warm = await whenUp(() => smallBatch(port, target.port));
      log(`${row.id}: ready, warm-up ${warm.wallMs.toFixed(0)} ms for ${warm.requests} requests`);
      return prep;
    }
    // Warm-up: the chain is really up, JITs have run.
    const warm = await whenUp(() => measure.download(port, target.port, s.warm, 30));
    await measure.ttfb(port, target.port, 3);
    // Sizes fit the row's speed, so a slow row cannot eat the run's budget: about
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
export async function measureRound(bench, prep, ttfbCount) {
  const { opts, log, target } = bench;
  const { result, setup } = prep;
  if (!setup || result.error) return;
  const port = setup.socksPort;
  if (result.kind === "small") return smallRound(bench, prep);
  const sz = result.sizes;
  const r = {};
  try {
    const t0 = process.hrtime.bigint() / 1000n;
    const stall0 = cpuStallUs();
    const before = cpuSnapshot(bench, setup.chain);
    r.down = await measure.download(port, target.port, sz.down);
    const after = cpuSnapshot(bench, setup.chain);
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
    // An upload a chain cannot carry is a finding, not a broken row: the row's other figures still
    // count (Deno's gateway closes an app's WebSocket that outruns its upstream by
    // WS_PAUSED_MAX_HELD, since Deno cannot stop reading it: docs/08).
    r.up = await measure.upload(port, target.port, uploadFile(bench, sz.up), sz.up)
      .catch((e) => ({ error: e.message.split("\n")[0], mbps: NaN }));
    r.par = await measure.parallel(port, target.port, opts.sizes.streams, sz.par);
    r.ttfb = await measure.ttfb(port, target.port, ttfbCount);
    const t1 = process.hrtime.bigint() / 1000n;
    r.windowUs = { startUs: Number(t0), endUs: Number(t1) };
    const stall1 = cpuStallUs();
    if (stall0 !== null && stall1 !== null) r.cpuStallPct = (100 * (stall1 - stall0)) / Number(t1 - t0);
    result.rounds.push(r);
    log(
      `${result.id}: down ${r.down.mbps.toFixed(0)} MB/s, up ${
        r.up.error ? `FAILED (${r.up.error})` : r.up.mbps.toFixed(0)
      }, ${opts.sizes.streams}× ${r.par.mbps.toFixed(0)}, TTFB ${r.ttfb.medianMs.toFixed(2)} ms, ${tunnel.toFixed(2)} CPU-s/GiB${
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

/** One round of a small-request row: one batch, with the CPU the tunnel's processes spent on it. */
async function smallRound(bench, { result, setup }) {
  try {
    const t0 = process.hrtime.bigint() / 1000n;
    const before = cpuSnapshot(bench, setup.chain);
    const r = await smallBatch(setup.socksPort, bench.target.port);
    const after = cpuSnapshot(bench, setup.chain);
    // The measurement's window, for --cpu-prof small/direct-node (as measureRound's).
    r.windowUs = { startUs: Number(t0), endUs: Number(process.hrtime.bigint() / 1000n) };
    r.tunnelCpuS = setup.chain.reduce((s, _p, i) => s + after.chain[i] - before.chain[i], 0);
    result.rounds.push(r);
    bench.log(`${result.id}: ${r.requests} requests in ${r.wallMs.toFixed(0)} ms, tunnel CPU ${r.tunnelCpuS.toFixed(2)} s`);
  } catch (e) {
    result.rounds.push({ error: e.message });
    bench.log(`${result.id}: round FAILED ${e.message.split("\n").slice(0, 4).join("\n")}`);
  }
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];

/** The best of the rounds: highest throughput, least CPU; TTFB over all samples of all rounds. */
export function summarize(result) {
  const good = result.rounds.filter((r) => !r.error);
  if (result.error) return result;
  if (!good.length) {
    result.error = result.rounds.find((r) => r.error)?.error ?? "no round ran (time budget)";
    return result;
  }
  const best = (key) => good.reduce((a, b) => (key(b) > key(a) ? b : a));
  if (result.kind === "small") {
    result.small = best((r) => -r.wallMs);
    result.roundsMeasured = good.length;
    return result;
  }
  result.down = best((r) => r.down.mbps).down;
  const uploaded = good.filter((r) => !r.up.error);
  result.up = uploaded.length ? uploaded.reduce((a, b) => (b.up.mbps > a.up.mbps ? b : a)).up : good[0].up;
  const failedUploads = good.filter((r) => r.up.error);
  if (failedUploads.length) {
    result.uploadsFailed = { count: failedUploads.length, of: good.length, first: failedUploads[0].up.error };
  }
  result.par = best((r) => r.par.mbps).par;
  result.cpu = best((r) => -r.cpu.tunnelPerGiB).cpu;
  // TTFB is a distribution already: pool every sample rather than pick a round.
  const samples = good.flatMap((r) => r.ttfb.samplesMs);
  const sorted = [...samples].sort((a, b) => a - b);
  result.ttfb = { n: samples.length, medianMs: quantile(sorted, 0.5), p90Ms: quantile(sorted, 0.9) };
  result.roundsMeasured = good.length;
  return result;
}
