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
  node: [process.execPath, ["--import", "tsx", "--test", "--test-timeout=300000", ...files]],
  bun: [bin("bun"), ["test", "--timeout", "300000", ...files]],
  deno: [bin("deno"), ["test", "-A", "--no-check", "--quiet", ...files]],
};

const runtimes = which === "all" ? ["node", "bun", "deno"] : [which];
let failed = [];
for (const rt of runtimes) {
  const [cmd, argv] = commands[rt];
  console.log(`\n=== ${rt}: ${files.length} test files ===`);
  const r = spawnSync(cmd, argv, { cwd: root, stdio: "inherit", env: { ...process.env, HTTVPS_TEST_RUNTIME: rt } });
  if (r.status !== 0) failed.push(`${rt} (exit ${r.status ?? r.signal})`);
}
if (failed.length) {
  console.error(`\nFAILED on: ${failed.join(", ")}`);
  process.exit(1);
}
console.log(`\nall green on: ${runtimes.join(", ")}`);
