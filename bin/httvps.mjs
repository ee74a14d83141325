#!/usr/bin/env node
// The `httvps` command. The code is TypeScript; Bun and Deno run it as it is, and on
// Node this launcher loads it through tsx. `bun run backend` calls this file with the
// package script's `node`, so when Bun invoked us we hand over to Bun itself.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
const viaBun = /^bun\//.test(process.env.npm_config_user_agent ?? "") && /bun(\.exe)?$/.test(process.env.npm_execpath ?? "");

if (viaBun && typeof globalThis.Bun === "undefined") {
  const env = { ...process.env };
  delete env.npm_config_user_agent; // don't loop through this branch again in children
  const child = spawn(process.env.npm_execpath, [main, ...process.argv.slice(2)], { stdio: "inherit", env });
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else if (typeof globalThis.Bun !== "undefined" || typeof globalThis.Deno !== "undefined") {
  await import(main);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(main);
}
