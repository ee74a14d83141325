#!/usr/bin/env node
// Run by `npm install` / `npm ci` (postinstall): fixes a bug in a dependency that has no
// released fix yet, in node_modules, so Node, Bun, Deno (nodeModulesDir: manual) and the
// compiled binary all get it. Idempotent; says so when the code it expects is gone (then the
// dependency changed: check whether the fix is still needed and drop it here).
//
// postgres.js 3.4.9 (porsager/postgres#1066, #1154, #1208; fixes proposed in #1168, #1176,
// #1209): a small write is sent from a setImmediate; when PostgreSQL closes the connection
// first (a restart: `pg_ctl stop -m fast`), that callback writes to a null socket and throws
// outside any promise, so the whole backend process dies. And the teardown cancels the timer
// without forgetting it, so a connection that survives could never send again. Found by
// test/stress/outages.stress.ts (PostgreSQL restarted under a busy backend).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const MARK = "/* httvps: patched, postgres#1208 */";

const edits = [
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

for (const dir of ["src", "cjs/src", "cf/src"]) {
  const file = join(root, "node_modules", "postgres", dir, "connection.js");
  if (!existsSync(file)) continue;
  let text = readFileSync(file, "utf8");
  if (text.includes(MARK)) continue;
  const missing = edits.filter(([from]) => !text.includes(from));
  if (missing.length) {
    console.warn(
      `patch-deps: ${file} is not the postgres.js 3.4.9 this patch was written for; not patched (is the fix still needed?)`,
    );
    continue;
  }
  for (const [from, to] of edits) text = text.replace(from, to);
  writeFileSync(file, text);
  console.log(`patch-deps: patched ${file} (postgres.js: no write to a closed socket)`);
}
