// A gateway worker process (gateway/workers.ts) as its primary sees it, over what Node's
// child_process and node:cluster both hand back: an IPC channel, an exit event, kill().
// Bun and Deno start the worker with child_process.spawn and an "ipc" stdio slot; Node with
// cluster.fork, so the worker can share the primary's listener.
import { type ChildProcess, spawn } from "node:child_process";
import type { WorkerProcess } from "./types.ts";

/** What a forked ChildProcess and a cluster Worker have in common. */
interface IpcChild {
  send(msg: unknown): unknown;
  on(event: "message", handler: (msg: unknown) => void): unknown;
  once(event: "exit", handler: (code: number | null, signal: string | null) => void): unknown;
}

export function ipcWorker(child: IpcChild, proc: ChildProcess): WorkerProcess {
  let gone = false;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      gone = true;
      resolve({ code, signal });
    })
  );
  return {
    pid: proc.pid ?? 0,
    send(msg) {
      if (gone || !proc.connected) return;
      try {
        child.send(msg);
      } catch {
        // The channel closed between the check and the send: the exit event follows.
      }
    },
    onMessage: (handler) => void child.on("message", handler),
    kill(signal) {
      if (!gone) proc.kill(signal);
    },
    exited,
  };
}

/** `cmd …args` with `env`, stdout and stderr shared with this process, an IPC channel to it. */
export function spawnWorker(cmd: string, args: string[], env: Record<string, string>): WorkerProcess {
  const child = spawn(cmd, args, { env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  // A failed spawn reports here, then exits: the primary sees the exit.
  child.on("error", () => {});
  return ipcWorker(child, child);
}
