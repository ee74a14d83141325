// Child processes for the benchmark: each in its own process group, all on one cleanup list,
// so a failure anywhere (or Ctrl-C) still kills every process we started — and only those.
// Also the /proc readings the benchmark is about: CPU time of a process tree, RSS.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const live = new Set();

// If we are killed outright (SIGKILL, OOM) no handler of ours runs. A guardian shell outlives
// us by at most a second and kills the process groups listed in this file, which we keep current.
// It also removes the scratch directory (upload files of up to 128 MiB) when we could not.
const groupsFile = join(tmpdir(), `httvps-bench-${process.pid}.pgids`);
let guardian;
let scratch = "";
function recordGroups() {
  if (!guardian) {
    const script = [
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
      `for g in $(tail -n +2 "${groupsFile}" 2>/dev/null); do kill -KILL -- -$g 2>/dev/null; done`,
      `d=$(head -n 1 "${groupsFile}" 2>/dev/null)`,
      `case "$d" in "${join(tmpdir(), "httvps-bench-")}"*) rm -rf -- "$d";; esac`,
      `rm -f "${groupsFile}"`,
    ].join("; ");
    guardian = spawn("bash", ["-c", script], { detached: true, stdio: "ignore" });
    guardian.unref();
  }
  // The scratch directory (or an empty line) first, then one pgid per line.
  writeFileSync(groupsFile, [scratch, ...[...live].map((p) => p.pid)].join("\n") + "\n");
}

/** The run's scratch directory, for the guardian to remove if we die without cleaning up. */
export function setScratchDir(dir) {
  scratch = dir;
  recordGroups();
}
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export { sleep };

export const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });

function killGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Start a long-running process and wait until its output matches `ready` (a RegExp) or, when
 * `ready` is a function, until it resolves truthy. `ulimit` raises the open-files limit first.
 */
export async function start(
  name,
  cmd,
  args,
  { env = process.env, cwd, ready, timeoutMs = 60_000, ulimit, stdin = "ignore" } = {},
) {
  if (ulimit) {
    // Raise the soft limit as far as the hard limit allows (containers often cap it).
    args = ["-c", `ulimit -n ${ulimit} 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$@"`, "bash", cmd, ...args];
    cmd = "bash";
  }
  // Its own process group (so stop() reaches whatever it forks: plugins, wrappers) but NOT
  // its own session. Node's `detached` calls setsid(), and with the kernel's scheduler
  // autogroups (sched_autogroup_enabled=1, the default here) every session is a separate CPU
  // group with an equal share: a chain of two processes (ss-local + its plugin) then gets half
  // of what one process gets, which cost v2ray-plugin and VLESS rows ~40 % against a shell
  // running the same commands (bench/peers-check.sh). perl's setpgrp is setpgid(0, 0) only;
  // perl-base is essential in Debian.
  args = ["-e", "setpgrp(0, 0); exec { $ARGV[0] } @ARGV or die qq(exec $ARGV[0]: $!\n)", cmd, ...args];
  cmd = "perl";
  const child = spawn(cmd, args, { env, cwd, stdio: [stdin, "pipe", "pipe"] });
  let out = "";
  const keep = (d) => {
    out += d;
    if (out.length > 256 * 1024) out = out.slice(-128 * 1024);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((r) => child.on("exit", (code, signal) => r(code ?? signal)));
  child.on("error", (e) => keep(`spawn error: ${e.message}\n`));
  const proc = {
    name,
    child,
    pid: child.pid,
    output: () => out,
    exited,
    match: null,
    async stop(graceMs = 5000) {
      live.delete(proc);
      recordGroups();
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      killGroup(child.pid, "SIGTERM");
      const t = setTimeout(() => killGroup(child.pid, "SIGKILL"), graceMs);
      const r = await exited;
      clearTimeout(t);
      killGroup(child.pid, "SIGKILL"); // whatever the leader left behind (plugins, wrappers)
      return r;
    },
  };
  if (child.pid === undefined) {
    await new Promise((r) => setTimeout(r, 50)); // let the spawn error land in `out`
    throw new Error(`${name}: cannot start ${cmd}: ${out.trim()}`);
  }
  live.add(proc);
  recordGroups();
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  exited.then(() => (gone = true));
  while (true) {
    if (gone) {
      await proc.stop();
      throw new Error(`${name} exited before it was ready:\n${out.slice(-4000)}`);
    }
    if (ready instanceof RegExp) {
      const m = out.match(ready);
      if (m) {
        proc.match = m;
        return proc;
      }
    } else if (!ready || (await ready().catch(() => false))) return proc;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`${name} not ready in ${timeoutMs} ms:\n${out.slice(-4000)}`);
    }
    await sleep(ready instanceof RegExp ? 20 : 100);
  }
}

/** Stop everything still running, newest first. */
export async function stopAll() {
  await Promise.all([...live].reverse().map((p) => p.stop(3000)));
}

/** Last resort on exit: SIGKILL each group we started (synchronous, no waiting). */
export function killAllNow() {
  for (const p of live) killGroup(p.pid, "SIGKILL");
  live.clear();
  if (guardian) writeFileSync(groupsFile, `${scratch}\n`);
}

function statOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm may hold spaces and parentheses: the fields start after the last ')'.
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
  } catch {
    return null;
  }
}

/** pid and every descendant (ss-server's plugin, a wrapper's real program). */
export function tree(pid) {
  const kids = new Map();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const st = statOf(e);
    if (!st) continue;
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(Number(e));
  }
  const all = [];
  const walk = (p) => {
    all.push(p);
    for (const k of kids.get(p) ?? []) walk(k);
  };
  walk(pid);
  return all;
}

/** CPU seconds (user + system) a process and its live descendants have used so far. */
export function treeCpu(pid) {
  let ticks = 0;
  for (const p of tree(pid)) {
    const st = statOf(p);
    if (st) ticks += st.utime + st.stime;
  }
  return ticks / CLK_TCK;
}

/** CPU seconds of our own children that have exited and been reaped (curl runs). */
export function reapedChildrenCpu() {
  const st = statOf("self");
  return (st.cutime + st.cstime) / CLK_TCK;
}

/** VmRSS of a process tree in KiB. */
export function rssKiB(pid) {
  let kib = 0;
  for (const p of tree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) kib += Number(m[1]);
    } catch {
      // exited meanwhile
    }
  }
  return kib;
}

/** The machine's CPU pressure (Linux PSI), or null where the kernel does not offer it. */
function cpuPressure(pattern) {
  try {
    return Number(pattern.exec(readFileSync("/proc/pressure/cpu", "utf8"))[1]);
  } catch {
    return null;
  }
}
/** PSI "some avg10": the share (%) of the last 10 s in which some task waited for a CPU. */
export const cpuPressure10 = () => cpuPressure(/some avg10=([\d.]+)/);
/** PSI "some total": µs some task has waited for a CPU, ever. */
export const cpuStallUs = () => cpuPressure(/some .*total=(\d+)/);
