#!/usr/bin/env node
// `npm run build`: one self-contained executable, dist/httvps, with every subcommand.
// `bun build --compile` bundles cli/compiled.ts (which embeds PGlite's WebAssembly and data
// bundle, the SQL migrations and the decoy site's templates) together with the Bun runtime. The project's
// own Bun (node_modules/.bin/bun) compiles for this machine with nothing downloaded; other
// targets (`npm run build -- --target=bun-linux-arm64`) make Bun download that runtime.
// Extra arguments go to `bun build`; HTTVPS_BUILD_OUT changes the output path.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = process.env.HTTVPS_BUILD_OUT ?? join(root, "dist", "httvps");
const bun = join(root, "node_modules", ".bin", process.platform === "win32" ? "bun.exe" : "bun");

function fail(message) {
  console.error(`build: ${message}`);
  process.exit(1);
}

if (!existsSync(bun)) fail(`${relative(root, bun)} is missing: run \`npm install\` first`);
for (const f of ["pglite.wasm", "initdb.wasm", "pglite.data"]) {
  const p = join(root, "node_modules", "@electric-sql", "pglite", "dist", f);
  if (!existsSync(p)) fail(`${relative(root, p)} is missing: the PGlite package changed its layout; update cli/compiled.ts`);
}

mkdirSync(dirname(out), { recursive: true });
const started = Date.now();
const r = spawnSync(bun, ["build", "--compile", "cli/compiled.ts", "--outfile", out, ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
});
if (r.status !== 0) fail(`bun build exited with ${r.status ?? r.signal}`);

// A binary that cannot even print its usage is not a build.
const check = spawnSync(out, ["help"], { cwd: dirname(out), encoding: "utf8", timeout: 30_000 });
if (check.status !== 0 || !/usage: httvps/.test(check.stdout)) {
  fail(`${relative(root, out)} help failed: ${check.stderr || check.error}`);
}

const mib = (statSync(out).size / 1024 / 1024).toFixed(1);
console.log(`built ${relative(process.cwd(), out) || out} (${mib} MiB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
