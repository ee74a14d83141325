// The markdown the benchmark prints: one table of figures, ratios to the peers, the issue's
// targets marked met/missed, the idle-session memory table, and the whole run's text
// (runReport). Pure: results in, text out.
import { SMALL, SMALL_PEERS } from "./small.mjs";
import { targetsTable } from "./targets.mjs";

const f = (v, d = 0) => (v === undefined || v === null || Number.isNaN(v) ? "–" : v.toFixed(d));
const x = (v) => (v === undefined || Number.isNaN(v) || !Number.isFinite(v) ? "–" : `${v.toFixed(2)}×`);

export function figuresTable(rows) {
  const out = [
    "| configuration | 1 stream MB/s | upload MB/s | 8 streams MB/s | TTFB ms (median) | TTFB ms (p90) | CPU-s/GiB tunnel | CPU-s/GiB all | tunnel CPU by process (s/GiB) | MiB down/up/8× |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
  ];
  for (const r of rows.filter((r) => r.kind !== "small")) {
    if (r.error) {
      out.push(`| ${r.label} | failed: ${r.error.split("\n")[0].slice(0, 120).replace(/\|/g, "/")} | | | | | | | | |`);
      continue;
    }
    const by = Object.entries(r.cpu?.perProcessPerGiB ?? {})
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(" · ");
    out.push(
      `| ${r.label} | ${f(r.down?.mbps)} | ${r.up?.error ? "failed" : `${f(r.up?.mbps)}${r.uploadsFailed ? "†" : ""}`} | ${
        f(r.par?.mbps)
      } | ${f(r.ttfb?.medianMs, 2)} | ${f(r.ttfb?.p90Ms, 2)} | ${f(r.cpu?.tunnelPerGiB, 2)} | ${f(r.cpu?.allPerGiB, 2)} | ${
        by || "–"
      } | ${r.sizes ? `${r.sizes.down / 2 ** 20}/${r.sizes.up / 2 ** 20}/${r.sizes.par / 2 ** 20}` : "–"} |`,
    );
  }
  return out.join("\n");
}

const ok = (r) => r && !r.error;

/** Every HTTVPS row against the peers it is meant to beat: row / peer (TTFB and CPU: lower is better). */
export function ratioTable(rows) {
  const by = Object.fromEntries(rows.filter(ok).map((r) => [r.id, r]));
  const mux0 = by["plugin-mux0"];
  const vless = by["vless"];
  const out = [
    "| HTTVPS row | vs ss+v2ray-plugin mux=0: 1 stream | 8 streams | CPU/GiB | vs VLESS WS+TLS: 1 stream | 8 streams | TTFB | vs ss-libev alone (same cipher): 1 stream | CPU/GiB |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  let any = false;
  for (const r of rows.filter((r) => ok(r) && r.httvps)) {
    const ss = by[r.cipher === "aes-256-gcm" ? "ss-aes256" : "ss-chacha"];
    const q = (p, get) => (p ? x(get(r) / get(p)) : "–");
    const down = (v) => v.down.mbps;
    const par = (v) => v.par.mbps;
    const cpu = (v) => v.cpu.tunnelPerGiB;
    out.push(
      `| ${r.id} | ${q(mux0, down)} | ${q(mux0, par)} | ${q(mux0, cpu)} | ${q(vless, down)} | ${q(vless, par)} | ${
        q(vless, (v) => v.ttfb.medianMs)
      } | ${q(ss, down)} | ${q(ss, cpu)} |`,
    );
    any = true;
  }
  return any ? out.join("\n") : "";
}

/**
 * The apps' rows against the same client (ss-local + ss-v2ray-plugin, same mux) talking to
 * ss-server + ss-v2ray-plugin: what putting an HTTVPS gateway (and, in outline mode, an Outline
 * node) in place of the plugin's server costs or gains.
 */
export function appsRatioTable(rows) {
  const by = Object.fromEntries(rows.filter(ok).map((r) => [r.id, r]));
  const out = [
    "| apps row | peer (same client, ss-server + v2ray-plugin) | 1 stream | upload | 8 streams | TTFB | CPU/GiB |",
    "|---|---|---:|---:|---:|---:|---:|",
  ];
  let any = false;
  for (const r of rows.filter((r) => ok(r) && r.group === "apps")) {
    const p = by[r.peer];
    // A figure that is not there (an upload that failed in every round) has no ratio.
    const q = (get) => (p && Number.isFinite(get(r)) && get(p) > 0 ? x(get(r) / get(p)) : "–");
    out.push(
      `| ${r.id} | ${r.peer}${p ? "" : " (not run)"} | ${q((v) => v.down.mbps)} | ${q((v) => v.up.mbps)} | ${
        q((v) => v.par.mbps)
      } | ${q((v) => v.ttfb.medianMs)} | ${q((v) => v.cpu.tunnelPerGiB)} |`,
    );
    any = true;
  }
  return any ? out.join("\n") : "";
}

/** The fastest of the small-request peer rows (small/plugin-mux0, small/plugin-mux1, small/vless) in this run. */
export function fastestSmallPeer(rows) {
  const peers = rows.filter((r) => ok(r) && r.kind === "small" && SMALL_PEERS.includes(r.id.slice("small/".length)));
  return peers.reduce((a, b) => (a && a.small.wallMs <= b.small.wallMs ? a : b), null);
}

/** The small-request rows: the batch's wall time (best round), tunnel CPU, and the ratio to the fastest peer. */
export function smallTable(rows) {
  const small = rows.filter((r) => r.kind === "small");
  if (!small.length) return "";
  const fastest = fastestSmallPeer(rows);
  const out = [
    `| row | total ms | requests/s | tunnel CPU-s | / fastest peer${fastest ? ` (${fastest.id})` : ""} |`,
    "|---|---:|---:|---:|---:|",
  ];
  for (const r of small) {
    if (r.error) {
      out.push(`| ${r.id} | failed: ${r.error.split("\n")[0].slice(0, 120).replace(/\|/g, "/")} | | | |`);
      continue;
    }
    const s = r.small;
    out.push(
      `| ${r.id} | ${f(s.wallMs)} | ${f(s.requests / (s.wallMs / 1000))} | ${f(s.tunnelCpuS, 2)} | ${
        fastest ? x(s.wallMs / fastest.small.wallMs) : "–"
      } |`,
    );
  }
  return out.join("\n");
}

export function idleTable(idle) {
  const out = [
    "| gateway runtime | sessions | opened / failed | RSS before MiB | RSS after MiB | KiB per session | gateway CPU ms per session set-up |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const i of idle.filter((i) => !i.id.startsWith("bulk/"))) {
    if (i.error) {
      out.push(`| ${i.runtime} | failed: ${i.error.split("\n")[0].slice(0, 120).replace(/\|/g, "/")} | | | | | |`);
      continue;
    }
    for (const s of i.steps) {
      out.push(
        `| ${i.runtime} | ${s.sessions.toLocaleString("en")} | ${s.open} / ${s.failed} | ${f(i.baseKiB / 1024, 1)} | ${
          f(s.rssKiB / 1024, 1)
        } | ${f(s.perSessionKiB, 1)} | ${f(s.cpuMsPerSession, 2)} |`,
      );
    }
  }
  return out.join("\n");
}

/** bulk/<rt>: KiB per session of idle sessions and of sessions that moved a bulk transfer, one gateway. */
export function bulkTable(idle) {
  const out = [
    "| gateway runtime | sessions | MiB each | RSS start / after warm-up / idle / after bulk / all closed MiB | idle KiB per session | after bulk KiB per session | kept by a bulk session KiB |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const b of idle.filter((i) => i.id.startsWith("bulk/"))) {
    if (b.error) {
      out.push(`| ${b.runtime} | failed: ${b.error.split("\n")[0].slice(0, 120).replace(/\|/g, "/")} | | | | | |`);
      continue;
    }
    const mib = (k) => f(k / 1024, 1);
    out.push(
      `| ${b.runtime} | ${b.sessions} + ${b.sessions} | ${f(b.bytesPerSession / 1048576, 0)} | ${mib(b.startKiB)} / ${
        mib(b.baseKiB)
      } / ${mib(b.idleKiB)} / ${mib(b.bulkKiB)} / ${mib(b.closedKiB)} | ${f(b.idlePerSessionKiB, 1)} | ${
        f(b.bulkPerSessionKiB, 1)
      } | ${f(b.retainedKiB, 1)} |`,
    );
  }
  return out.join("\n");
}

export function profileText(p) {
  const lines = [
    `CPU profile of ${p.row}, ${p.process} (--cpu-prof; ${
      f(p.totalMs)
    } ms of CPU sampled during the measurements, start-up left out):`,
    "",
    "| self % | self ms | function | where |",
    "|---:|---:|---|---|",
  ];
  for (const e of p.top) lines.push(`| ${f(e.pct, 1)} | ${f(e.ms)} | ${e.fn} | ${e.where} |`);
  lines.push("", "| self % | file |", "|---:|---|");
  for (const e of p.files) lines.push(`| ${f(e.pct, 1)} | ${e.file} |`);
  return lines.join("\n");
}

/** Self time per function and per file from a V8 .cpuprofile. */
/**
 * `windows` ([{ startUs, endUs }] on CLOCK_MONOTONIC, which V8's profile timestamps and
 * process.hrtime share on Linux) keep only the samples of the measurements, not start-up.
 */
export function summarizeProfile(profile, root, windows) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (windows?.length && !windows.some((w) => t >= w.startUs && t <= w.endUs)) continue;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const fns = new Map();
  const files = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    if (cf.functionName === "(idle)") continue; // waiting, not working
    const file = (cf.url || "(native)").replace(/^file:\/\//, "").replace(root, "");
    const key = `${cf.functionName || "(anonymous)"}\u0000${file}:${cf.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    files.set(file, (files.get(file) ?? 0) + us);
    total += us;
  }
  const top = [...fns]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20)
    .map(([k, us]) => {
      const [fn, where] = k.split("\u0000");
      return { fn, where, ms: us / 1000, pct: (100 * us) / total };
    });
  const fileTop = [...files]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([file, us]) => ({ file, pct: (100 * us) / total }));
  return { totalMs: total / 1000, top, files: fileTop };
}

/** The markdown table of the early/<rt> figures. */
function firstByteTable(firstBytes) {
  const cell = (v) => `${v.p50} (${v.p10}–${v.p90})`;
  return [
    "| runtime | client–gateway RTT | without early data | with early data | N |",
    "|---|---:|---:|---:|---:|",
    ...firstBytes.map((r) => `| ${r.runtime} | ${r.rttMs} ms | ${cell(r.without)} | ${cell(r.with)} | ${r.n} |`),
  ].join("\n");
}

/** direct-pad/<rt> against direct/<rt>: throughput (higher is better), TTFB and CPU (lower is better). */
function paddingTable(rows) {
  const by = Object.fromEntries(rows.filter(ok).map((r) => [r.id, r]));
  const lines = [];
  for (const r of rows.filter((r) => ok(r) && r.group === "direct-pad")) {
    const base = by[`direct/${r.runtime}`];
    if (!base) continue;
    lines.push(
      `| ${r.runtime} | ${x(r.down.mbps / base.down.mbps)} | ${x(r.par.mbps / base.par.mbps)} | ${
        x(r.ttfb.medianMs / base.ttfb.medianMs)
      } | ${x(r.cpu.tunnelPerGiB / base.cpu.tunnelPerGiB)} |`,
    );
  }
  if (!lines.length) return "";
  return ["| runtime | 1 stream | 8 streams | TTFB | CPU-s/GiB |", "|---|---:|---:|---:|---:|", ...lines].join("\n");
}

/**
 * The whole markdown of a run: its header (machine, versions, sizes, load), the figures, the
 * ratios, the idle sessions, the TLS floors, the targets and any profiles.
 */
export function runReport(
  { date, machine, versions, opts, secondsPerTransfer, results, idle, tlsFloors, firstBytes = [], targets: t, profiles, partial },
) {
  const MiB = 2 ** 20;
  const rounds = Math.max(0, ...results.map((r) => r.roundsMeasured ?? 0));
  const md = [
    `HTTVPS vs peers — ${date.slice(0, 10)}, ${machine.nproc} vCPU (${machine.model}), ${
      Object.entries(versions ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")
    }`,
    `sizes: 1 stream up to ${opts.sizes.down / MiB} MiB down and ${
      opts.sizes.up / MiB
    } MiB up, ${opts.sizes.streams} streams × up to ${
      opts.sizes.par / MiB
    } MiB (a slower row moves about ${secondsPerTransfer} s worth: MiB per row in the last column); best of ${rounds} interleaved round(s); TTFB over ${opts.sizes.ttfb} new connections; MB = 10^6 B${
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
  ];
  if (results.some((r) => r.kind !== "small")) {
    md.push(
      figuresTable(results),
      "",
      "CPU-s/GiB tunnel: user+system CPU of the tunnel's processes (client, gateway, ss-server / ss-local, ss-server, plugins / v2ray ×2 / ss-local and its plugin, gateway, ss-server) during the 1-stream download; all: plus curl and the target.",
      "",
    );
  }
  const failedUploads = results.filter((r) => ok(r) && r.uploadsFailed);
  if (failedUploads.length) {
    md.push("Uploads that failed (failed: in every round; †: in some, the figure is the best of the others):", "");
    for (const r of failedUploads) {
      md.push(`- ${r.id}: ${r.uploadsFailed.count} of ${r.uploadsFailed.of} rounds: ${r.uploadsFailed.first}`);
    }
    md.push("");
  }
  const small = smallTable(results);
  if (small) {
    md.push(
      `Many small requests: ${SMALL.requests} GETs of ${SMALL.minBytes / 1000}–${
        SMALL.maxBytes / 1000
      } KB (a fixed seeded list), ${SMALL.parallel} at a time, each on a new SOCKS5 connection (curl --parallel, Connection: close); wall time of the batch, best round (small/raw: curl straight to the target, the load generator's own floor):`,
      "",
      small,
      "",
    );
  }
  const ratios = ratioTable(results);
  if (ratios) md.push("Ratios, HTTVPS row / peer (throughput: higher is better; TTFB and CPU: lower is better):", "", ratios, "");
  const apps = appsRatioTable(results);
  if (apps) {
    md.push(
      "Ratios, the apps' rows (ss-local + ss-v2ray-plugin → an HTTVPS gateway's device path) / the same client against ss-server + ss-v2ray-plugin:",
      "",
      apps,
      "",
    );
  }
  if (idle.length) {
    md.push("Idle sessions (hello → auth_result, then nothing), gateway RSS from /proc/<pid>/status:", "", idleTable(idle), "");
    if (idle.some((i) => i.id.startsWith("bulk/"))) {
      md.push(
        "After a bulk transfer (bulk/<rt>: one gateway; N warm-up sessions each download and close (twice), then N sessions open and idle, then N more each download through one stream, one at a time, and stay open; RSS the lowest of samples over 5–8 s after each step):",
        "",
        bulkTable(idle),
        "",
      );
    }
  }
  if (tlsFloors.length) {
    md.push(
      "The runtimes' floor: node:tls alone, both ends in one process, 64 KiB writes (bench/tls-floor.mjs):",
      "",
      "| runtime | MB/s | CPU-s/GiB | cipher |",
      "|---|---:|---:|---|",
    );
    for (const e of tlsFloors) md.push(`| ${e.runtime} | ${e.mbps.toFixed(0)} | ${e.cpuSPerGiB.toFixed(2)} | ${e.cipher} |`);
    md.push("");
  }
  const padding = paddingTable(results);
  if (padding) {
    md.push("Padding's cost (docs/03 §12): direct-pad (padding on) / direct (httvps connect --no-padding):", "", padding, "");
  }
  if (firstBytes.length) {
    md.push(
      "First byte of the first request on a fresh session (open → answer), ms: median (p10–p90) (bench/first-byte.ts, docs/03 §13):",
      "",
      firstByteTable(firstBytes),
      "",
    );
  }
  md.push("Targets of issue 17 (bench/lib/targets.mjs):", "", targetsTable(t), "");
  for (const p of profiles) md.push(profileText(p), "");
  return md.join("\n");
}
