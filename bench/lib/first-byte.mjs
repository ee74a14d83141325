// early/<rt>: bench/first-byte.ts on runtime `rt` — the time to the first byte of the first
// request on a fresh session, without and with early data (docs/03 §13).
import { spawnSync } from "node:child_process";
import { join } from "node:path";

/** A TypeScript program of bench/ on runtime `rt`: [command, args]. */
function tsScript(root, rt, script) {
  if (rt === "bun") return [join(root, "node_modules/.bin/bun"), [script]];
  if (rt === "deno") return [join(root, "node_modules/.bin/deno"), ["run", "-A", script]];
  return [process.execPath, ["--import", "tsx", script]];
}

/** Runs it (its own stack: gateway in process, backend app on loopback) and returns its JSON line. */
export function firstByte({ root, opts, log }, rt) {
  const [cmd, argv] = tsScript(root, rt, join(root, "bench/first-byte.ts"));
  // 40 ms: a round trip within a continent, what early data saves once per fresh session.
  const p = spawnSync(cmd, [...argv, String(opts.quick ? 20 : 60), "40"], { cwd: root, encoding: "utf8", timeout: 300_000 });
  const line = /^\{.*\}$/m.exec(p.stdout ?? "");
  if (p.status !== 0 || !line) throw new Error(`exit ${p.status ?? p.signal}: ${(p.stderr ?? "").slice(-500)}`);
  const r = JSON.parse(line[0]);
  log(
    `early/${rt}: first byte on a fresh session (RTT ${r.rttMs} ms) ${r.without.p50} ms without early data, ${r.with.p50} ms with`,
  );
  return r;
}
