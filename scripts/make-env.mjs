#!/usr/bin/env node
// `make .env`: .env.example copied to a new .env (or the path given), with what a
// docker-compose deployment cannot run without filled in: ADMIN_TOKEN and GATEWAY_API_KEY
// (fresh 256-bit secrets), and HTTVPS_CONTAINER_USER set to whoever runs this — the same user
// `make certs` writes deploy/certs/key.pem as, so the gateway container can read its key.
// Never overwrites an existing file. The file is private (0600): it holds secrets.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = process.argv[2] ?? ".env";
if (existsSync(out)) {
  console.error(`make-env: ${out} exists; not touching it`);
  process.exit(1);
}
let text = readFileSync(`${root}.env.example`, "utf8");
const set = (name, value) => {
  const line = new RegExp(`^#?\\s*${name}=.*$`, "m");
  if (!line.test(text)) throw new Error(`.env.example has no ${name} line`);
  // A function replacement: the value is inserted as it is, never read as a `$` pattern.
  text = text.replace(line, () => `${name}=${value}`);
};
set("ADMIN_TOKEN", randomBytes(32).toString("hex"));
set("GATEWAY_API_KEY", randomBytes(32).toString("hex"));
if (typeof process.getuid === "function") set("HTTVPS_CONTAINER_USER", `${process.getuid()}:${process.getgid()}`);
writeFileSync(out, text, { mode: 0o600 });
console.log(`wrote ${out} (ADMIN_TOKEN and GATEWAY_API_KEY generated; review it before \`make up\`)`);
