// How tests start `httvps` on the runtime they themselves run on, so an end-to-end test
// under `bun test` exercises Bun, under `deno test` Deno, and under node:test Node.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const main = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
const launcher = fileURLToPath(new URL("../bin/httvps.mjs", import.meta.url));

export type Runtime = "node" | "bun" | "deno";
export const runtime: Runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

/** The command line that runs `httvps …args` on the current runtime. */
export function httvpsCommand(args: string[]): [string, string[]] {
  if (runtime === "bun") return [process.execPath, [main, ...args]];
  if (runtime === "deno") return [process.execPath, ["run", "-A", main, ...args]];
  return [process.execPath, [launcher, ...args]];
}

/** The command line that runs a TypeScript program (`file`, absolute) on the current runtime. */
export function tsCommand(file: string, args: string[]): [string, string[]] {
  if (runtime === "bun") return [process.execPath, [file, ...args]];
  if (runtime === "deno") return [process.execPath, ["run", "-A", file, ...args]];
  return [process.execPath, ["--import", "tsx", file, ...args]];
}

/** A clean environment for a child: nothing of the developer's .env or HTTVPS settings leaks in. */
export function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (/^(BACKEND_|GATEWAY_|DATABASE_URL|DATA_DIR|ADMIN_TOKEN|MIGRATE_ON_START|LOG_LEVEL|npm_)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, HTTVPS_ENV_FILE: "none", ...extra };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Where a command runs (default: the repository) and how long it may take to finish or be ready (default: 60 s). */
export interface CommandOptions {
  cwd?: string;
  timeoutMs?: number;
  /** Its stdin (default: none). */
  input?: string;
}

/** `cmd argv…` in a clean environment plus `env`, stdout and stderr piped, `input` on stdin. */
const spawnClean = (cmd: string, argv: string[], env: Record<string, string>, opts: CommandOptions) => {
  const child = spawn(cmd, argv, {
    cwd: opts.cwd ?? repoRoot,
    env: childEnv(env),
    stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  return child;
};

/** Run `httvps …` to completion (bounded by `timeoutMs`). */
export function runHttvps(
  args: string[],
  env: Record<string, string>,
  opts: CommandOptions = {},
): Promise<RunResult> {
  const [cmd, argv] = httvpsCommand(args);
  return runCommand(`httvps ${args.join(" ")}`, cmd, argv, env, opts);
}

/** Start a long-running `httvps …` and wait until a line of its output matches `ready`. */
export function startHttvps(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  opts: CommandOptions = {},
): Promise<Started> {
  const [cmd, argv] = httvpsCommand(args);
  return startCommand(`httvps ${args.join(" ")}`, cmd, argv, env, ready, opts);
}

/** Run `cmd argv…` (called `name` in errors) to completion in a clean environment plus `env`. */
export function runCommand(
  name: string,
  cmd: string,
  argv: string[],
  env: Record<string, string>,
  opts: CommandOptions = {},
): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawnClean(cmd, argv, env, opts);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface Started {
  child: ChildProcess;
  output: () => string;
  /** The first match of `ready` in the output. */
  match: RegExpMatchArray;
  /** SIGTERM (SIGKILL after 10 s) and wait for the exit; its code. Again after the exit: the same code. */
  stop: () => Promise<number | null>;
}

/** Start `cmd argv…` (called `name` in errors) and wait until its output (stdout and stderr) matches `ready`. */
export function startCommand(
  name: string,
  cmd: string,
  argv: string[],
  env: Record<string, string>,
  ready: RegExp,
  opts: CommandOptions = {},
): Promise<Started> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawnClean(cmd, argv, env, opts);
    let out = "";
    let done = false;
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    };
    const onData = (d: Buffer) => {
      out += d;
      const m = out.match(ready);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        resolve({ child, output: () => out, match: m, stop });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before it was ready:\n${out}`));
      }
    });
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill("SIGKILL");
      reject(new Error(`${name} not ready in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
  });
}
