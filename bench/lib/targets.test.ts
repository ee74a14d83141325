// Issue 17's targets (bench/lib/targets.mjs): synthetic rows and script results in, each goal
// met or missed on the right runtime with the right ratio.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type TargetEntry, targets, targetsTable } from "./targets.mjs";

const small = { requests: 200, peers: ["plugin-mux0", "plugin-mux1", "vless"] };
/** A throughput row as rounds.mjs summarizes it. */
const row = (
  id: string,
  o: { mode?: string; runtime?: string; down?: number; par?: number; ttfb?: [number, number]; cpu?: number },
) => ({
  id,
  httvps: !!o.mode && !o.mode.startsWith("peer"),
  mode: o.mode,
  runtime: o.runtime,
  down: { mbps: o.down ?? 100 },
  par: { mbps: o.par ?? 100 },
  ttfb: { medianMs: o.ttfb?.[0] ?? 1, p90Ms: o.ttfb?.[1] ?? 2 },
  cpu: { tunnelPerGiB: o.cpu ?? 1 },
});
const one = (t: TargetEntry[], target: RegExp, runtime: string) => {
  const found = t.filter((e) => target.test(e.target) && e.runtime === runtime);
  assert.equal(found.length, 1, `one entry for ${target} on ${runtime}, got ${found.length}`);
  return found[0]!;
};
const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} ≈ ${b}`);

test("first byte: median and p90 against VLESS and the faster ss-libev row, which is named", () => {
  const rows = [
    row("vless", { ttfb: [2, 4] }),
    row("ss-chacha", { ttfb: [0.8, 1.0] }),
    row("ss-aes256", { ttfb: [0.7, 1.2] }), // faster by median: the one used
    row("direct/bun", { mode: "direct", runtime: "bun", ttfb: [0.9, 1.3] }),
    row("h2/node", { mode: "direct-h2", runtime: "node", ttfb: [1.4, 3.0] }),
  ];
  const t = targets({ rows, small });
  const med = one(t, /^direct first byte, median ≤ 0.5× VLESS/, "bun");
  near(med.measured, 0.45);
  assert.equal(med.met, true);
  const ss = one(t, /^direct first byte, p90 ≤ 1.4× ss-libev alone \(ss-aes256/, "bun");
  near(ss.measured, 1.3 / 1.2);
  assert.equal(ss.met, true);
  assert.equal(one(t, /^h2 first byte, median ≤ 0.5× VLESS/, "node").met, false); // 0.7×
  assert.equal(one(t, /^h2 first byte, p90 ≤ 1.4× ss-libev/, "node").met, false); // 2.5×
  assert.ok(t.every((e) => e.item === 1));
});

test("direct parity with Bun and outline against mux=0 hold each runtime to its own line", () => {
  const rows = [
    row("plugin-mux0", { down: 100, par: 200, cpu: 10 }),
    row("direct/bun", { mode: "direct", runtime: "bun", down: 600, par: 600 }),
    row("direct/node", { mode: "direct", runtime: "node", down: 500, par: 400 }),
    row("outline-chacha/bun", { mode: "outline", runtime: "bun", down: 110, par: 260, cpu: 7 }),
    row("outline-chacha/deno", { mode: "outline", runtime: "deno", down: 110, par: 190, cpu: 30 }),
  ];
  const t = targets({ rows, small });
  const p1 = one(t, /^direct ≥ 0.8× Bun, 1 stream/, "node");
  near(p1.measured, 500 / 600);
  assert.equal(p1.met, true);
  assert.equal(one(t, /^direct ≥ 0.8× Bun, 8 streams/, "node").met, false);
  assert.ok(!t.some((e) => e.item === 2 && e.runtime === "bun"), "Bun is not held against itself");
  // 1.1× mux=0: missed on Bun (1.2× needed), met on Deno (1.0×).
  assert.equal(one(t, /^outline-chacha .* 1 stream/, "bun").met, false);
  assert.equal(one(t, /^outline-chacha .* 1 stream/, "deno").met, true);
  assert.equal(one(t, /^outline-chacha .* 8 streams/, "bun").met, true); // 1.3×
  assert.equal(one(t, /^outline-chacha .* 8 streams/, "deno").met, false); // 0.95×
  near(one(t, /CPU-s\/GiB/, "bun").measured, 0.7);
  assert.ok(!t.some((e) => /CPU-s\/GiB/.test(e.target) && e.runtime === "deno"), "the CPU goal is Bun's");
});

test("memory: the gateway's own share is idle minus floor at the largest step both reached; a bulk session against an idle one", () => {
  const idle = [
    { id: "idle/node", runtime: "node", steps: [{ sessions: 1000, perSessionKiB: 50 }, { sessions: 10000, perSessionKiB: 36 }] },
    {
      id: "floor/node",
      runtime: "node, TLS + WebSocket only",
      steps: [{ sessions: 1000, perSessionKiB: 40 }, { sessions: 10000, perSessionKiB: 33 }],
    },
    { id: "idle/bun", runtime: "bun", steps: [{ sessions: 1000, perSessionKiB: 12 }, { sessions: 10000, perSessionKiB: 11.7 }] },
    // Bun's floor stopped at 1,000: its 1,000 step is compared.
    { id: "floor/bun", runtime: "bun, TLS + WebSocket only", steps: [{ sessions: 1000, perSessionKiB: 6 }] },
    { id: "idle/deno", runtime: "deno", steps: [{ sessions: 10000, perSessionKiB: 30 }] }, // no floor: no line
    // After a bulk transfer: what such a session keeps above an idle one.
    { id: "bulk/node", runtime: "node", retainedKiB: 4.5 },
    { id: "bulk/bun", runtime: "bun", retainedKiB: 1.2 },
  ];
  const t = targets({ idle, small });
  const node = one(t, /idle − floor\) at 10,000 ≤ 4 KiB/, "node");
  near(node.measured, 3);
  assert.equal(node.met, true);
  const bun = one(t, /idle − floor\) at 1,000 ≤ 4 KiB/, "bun");
  near(bun.measured, 6);
  assert.equal(bun.met, false);
  assert.ok(!t.some((e) => e.runtime === "deno"));
  assert.equal(one(t, /^after bulk: KiB per session within 4 KiB of idle/, "node").met, false);
  assert.equal(one(t, /^after bulk/, "bun").met, true);
  assert.equal(t.length, 4);
});

test("storm, workers, validate-device and footprint results become target lines; failures are missed", () => {
  const storm = {
    devices: 10000,
    results: [
      { runtime: "bun", workers: 1, cold: { seconds: 6, failed: 0 } },
      { runtime: "bun", workers: 2, cold: { seconds: 3, failed: 0 } },
      { runtime: "node", workers: 1, cold: { seconds: 4, failed: 12 } },
      { runtime: "node", workers: 2, error: "gateway not ready" },
    ],
  };
  const validate = {
    results: [
      { database: "postgres", runtime: "node", rps: 5200, p99: 12, non2xx: 0 },
      { database: "pglite", runtime: "node", rps: 100, p99: 90, non2xx: 0 }, // not the target's database
      { database: "postgres", runtime: "bun", rps: 9000, p99: 4, non2xx: 3 },
    ],
  };
  const footprint = {
    sessions: 10000,
    results: [
      { runtime: "bun", firstStartS: 4, rssAfterStartMiB: 140, rssUnderLoadMiB: 145, peakMiB: 160 },
      { runtime: "deno", error: "backend exited" },
    ],
  };
  const rows = [
    row("direct/node", { mode: "direct", runtime: "node", par: 300 }),
    row("direct-w2/node", { mode: "direct-w2", runtime: "node", par: 330 }),
  ];
  const t = targets({ rows, storm, validate, footprint, small });
  assert.equal(one(t, /storm: 10,000 devices back < 5 s, GATEWAY_WORKERS=1/, "bun").met, false);
  assert.equal(one(t, /GATEWAY_WORKERS=2/, "bun").met, true);
  const nodeStorm = one(t, /GATEWAY_WORKERS=1/, "node");
  assert.equal(nodeStorm.met, false, "4 s but devices left out");
  assert.match(nodeStorm.note ?? "", /12 failed/);
  assert.equal(one(t, /GATEWAY_WORKERS=2/, "node").met, false);
  near(one(t, /2 workers ≤ 0.6× 1 worker/, "bun").measured, 0.5);
  assert.ok(!t.some((e) => /2 workers ≤/.test(e.target) && e.runtime === "node"), "no ratio from a failed storm");
  const w2 = one(t, /8 streams, 2 workers/, "node");
  near(w2.measured, 1.1);
  assert.equal(w2.met, true);

  assert.equal(one(t, /validate-device on PostgreSQL ≥ 5,000\/s/, "node").met, true);
  assert.equal(one(t, /p99 < 10 ms/, "node").met, false);
  assert.equal(one(t, /p99 < 10 ms/, "bun").met, false, "non-2xx answers miss the goal");
  assert.equal(t.filter((e) => e.item === 8).length, 4, "PGlite is not the target's database");

  assert.equal(one(t, /after start ≤ 150 MiB/, "bun").met, true);
  const load = one(t, /under 10,000 sessions' usage, peak included/, "bun");
  assert.equal(load.measured, 160);
  assert.equal(load.met, false);
  assert.equal(one(t, /first start ≤ 5 s/, "bun").met, true);
  assert.equal(one(t, /first start ≤ 5 s/, "deno").met, false);
});

test("the table: one line per goal, a column per runtime, and the items not measured named", () => {
  const rows = [
    row("small/plugin-mux0", {}),
    row("small/vless", {}),
    row("small/direct-node", { mode: "small", runtime: "node" }),
  ];
  const walls: Record<string, number> = { "small/plugin-mux0": 900, "small/vless": 1000, "small/direct-node": 630 };
  const withWalls = rows.map((r) => ({ ...r, small: { wallMs: walls[r.id]! } }));
  const t = targets({ rows: withWalls, small });
  const e = one(t, /small: 200 requests/, "node");
  near(e.measured, 0.7);
  assert.equal(e.met, true);
  const md = targetsTable(t);
  assert.match(md, /\| 5 \| small: 200 requests total time ≤ 0.8× the fastest peer's \| 0.70× met \|/);
  assert.match(md, /Not measured in this run: 1\. .*; 9\. /);
  assert.doesNotMatch(md, /5\. many small/);
});
