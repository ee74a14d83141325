#!/usr/bin/env node
// Runs the one test suite on one runtime or all three: `node test/run.mjs [node|bun|deno|all] [file…]`.
// The same *.test.ts files (node:test + node:assert/strict) run unchanged everywhere.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const skipDirs = new Set(["node_modules", "dist", ".git", "data"]);
const stress = process.env.HTTVPS_STRESS === "1";

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (skipDirs.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith(stress ? ".stress.ts" : ".test.ts")) out.push("./" + relative(root, p));
  }
  return out.sort();
}

const args = process.argv.slice(2);
const which = ["node", "bun", "deno", "all"].includes(args[0]) ? args.shift() : "all";
const files = args.length ? args : find(root);
const bin = (name) => join(root, "node_modules", ".bin", name);

const commands = {
  node: (fs) => [process.execPath, ["--import", "tsx", "--test", "--test-timeout=300000", ...fs]],
  bun: (fs) => [bin("bun"), ["test", "--timeout", "300000", ...fs]],
  deno: (fs) => [bin("deno"), ["test", "-A", "--no-check", "--quiet", ...fs]],
};

const runtimes = which === "all" ? ["node", "bun", "deno"] : [which];
const failed = [];
// The stress files measure their process's memory (RSS growth under a flood, a soak), so each
// gets a fresh process: Node's runner already runs every file in its own, `bun test` and
// `deno test` would run them all in one, where the previous file's heap skews the next one's figures.
const batches = (rt) => (stress && rt !== "node" ? files.map((f) => [f]) : [files]);
for (const rt of runtimes) {
  console.log(`\n=== ${rt}: ${files.length} test files ===`);
  for (const batch of batches(rt)) {
    const [cmd, argv] = commands[rt](batch);
    const r = spawnSync(cmd, argv, { cwd: root, stdio: "inherit", env: { ...process.env, HTTVPS_TEST_RUNTIME: rt } });
    if (r.status !== 0) {
      failed.push(`${rt}${batch.length === 1 && files.length > 1 ? ` ${batch[0]}` : ""} (exit ${r.status ?? r.signal})`);
    }
  }
}
if (failed.length) {
  console.error(`\nFAILED on: ${failed.join(", ")}`);
  process.exit(1);
}
console.log(`\nall green on: ${runtimes.join(", ")}`);
