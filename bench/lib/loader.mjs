// A load generator in a child process, driven line by line: the parent writes a command on the
// child's stdin, the child answers one JSON line on stdout. The idle-session loader of the
// benchmark (bench/idle-sessions.mjs) and the soak test's drivers (test/stress/soak-driver.ts)
// both hold thousands of sessions this way: in a process of their own, so the gateway's RSS
// is the gateway's alone, with their own open-files limit, and on the other core.
import { createInterface } from "node:readline";

/**
 * Run `one()` `n` times, at most `inFlight` at once: enough handshakes to keep both cores busy,
 * few enough that none times out.
 */
export async function pool(n, inFlight, one) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, worker));
}

/**
 * The child's side: `handlers[cmd](...args)` for each stdin line `cmd arg…`, its result printed
 * as one JSON line. Returns on `close` (or end of input), for the caller to clean up and exit.
 */
export async function serveCommands(handlers) {
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const [cmd, ...args] = line.trim().split(/\s+/);
    if (cmd === "close") break;
    const handler = handlers[cmd];
    let answer;
    try {
      answer = handler ? await handler(...args) : { error: `unknown command ${cmd}` };
    } catch (e) {
      answer = { error: String(e?.stack ?? e) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
  rl.close();
}

/**
 * The parent's side, for a child started by procs.mjs `start(…, { stdin: "pipe" })`:
 * `ask(line, timeoutMs)` sends one command and resolves with its JSON answer.
 */
export function commandChannel(proc) {
  const answers = [];
  let buf = "";
  proc.child.stdout.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      // Anything that is not an answer (a runtime's warning) is only output.
      if (line.startsWith("{")) answers.push(JSON.parse(line));
    }
  });
  const ask = async (line, timeoutMs) => {
    const n = answers.length;
    proc.child.stdin.write(line + "\n");
    const until = Date.now() + timeoutMs;
    while (answers.length === n) {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        throw new Error(`${proc.name} exited: ${proc.output().slice(-2000)}`);
      }
      if (Date.now() > until) throw new Error(`${proc.name}: "${line}" got no answer in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return answers[n];
  };
  return { ask, close: () => proc.child.stdin.end("close\n") };
}
