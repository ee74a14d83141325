#!/usr/bin/env node
// Run by `npm install` / `npm ci` (postinstall): fixes a bug in a dependency that has no
// released fix yet, in node_modules, so Node, Bun, Deno (nodeModulesDir: manual) and the
// compiled binary all get it. Idempotent. package.json pins postgres to the exact version
// the patch was written for; any other version, or code that is not what the patch expects,
// fails the install (exit 1) rather than leaving the backend unpatched without a word: then
// check whether the fix is still needed, and update or drop it here with the pin.
//
// postgres.js 3.4.9 (porsager/postgres#1066, #1154, #1208; fixes proposed in #1168, #1176,
// #1209): a small write is sent from a setImmediate; when PostgreSQL closes the connection
// first (a restart: `pg_ctl stop -m fast`), that callback writes to a null socket and throws
// outside any promise, so the whole backend process dies. And the teardown cancels the timer
// without forgetting it, so a connection that survives could never send again. Found by
// test/stress/outages.stress.ts (PostgreSQL restarted under a busy backend).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const POSTGRES_VERSION = "3.4.9";
export const MARK = "/* httvps: patched, postgres#1208 */";

/** [what the file says, what it says patched], in each of postgres.js's three builds. */
export const EDITS = [
  // Settle rather than write: the queries waiting on this connection get CONNECTION_CLOSED.
  [
    "  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)",
    `  function nextWrite(fn) {\n    if (!socket) { ${MARK}\n      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n      chunk = nextWriteTimer = null\n      error(Errors.connection('CONNECTION_CLOSED', options))\n      return false\n    }\n    const x = socket.write(chunk, fn)`,
  ],
  // Forget the cancelled timer and the bytes meant for the dead socket, so the next connection can write.
  [
    "    incomings = null\n    clearImmediate(nextWriteTimer)\n",
    `    incomings = null\n    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null ${MARK}\n`,
  ],
  [
    "      error(Errors.connection('CONNECTION_DESTROYED', options))\n\n    clearImmediate(nextWriteTimer)\n",
    `      error(Errors.connection('CONNECTION_DESTROYED', options))\n\n    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null ${MARK}\n`,
  ],
];
const BUILDS = ["src", "cjs/src", "cf/src"];

export class PatchError extends Error {
  constructor(message) {
    super(message);
    this.name = "PatchError";
    this.code = "patch_does_not_apply";
  }
}

/** Patches postgres.js under `root`/node_modules; the files it changed. Throws PatchError when it cannot. */
export function patchPostgres(root) {
  const pkg = join(root, "node_modules", "postgres");
  const pkgJson = join(pkg, "package.json");
  if (!existsSync(pkgJson)) throw new PatchError(`${pkg} is not installed`);
  const { version } = JSON.parse(readFileSync(pkgJson, "utf8"));
  if (version !== POSTGRES_VERSION) {
    throw new PatchError(
      `postgres.js ${version} is installed; the patch is for ${POSTGRES_VERSION} (package.json pins it): ` +
        "check whether the fix is still needed, then update or drop scripts/patch-deps.mjs",
    );
  }
  const patched = [];
  for (const build of BUILDS) {
    const file = join(pkg, build, "connection.js");
    if (!existsSync(file)) throw new PatchError(`${file} is missing from postgres.js ${version}`);
    let text = readFileSync(file, "utf8");
    if (text.includes(MARK)) continue;
    const missing = EDITS.filter(([from]) => !text.includes(from)).length;
    if (missing) throw new PatchError(`${file}: ${missing} of ${EDITS.length} places the patch changes are not there`);
    for (const [from, to] of EDITS) text = text.replace(from, to);
    writeFileSync(file, text);
    patched.push(file);
  }
  return patched;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    for (const file of patchPostgres(fileURLToPath(new URL("..", import.meta.url)))) {
      console.log(`patch-deps: patched ${file} (postgres.js: no write to a closed socket)`);
    }
  } catch (e) {
    console.error(`patch-deps: ${e.message}`);
    process.exit(1);
  }
}
