// TCP_NODELAY on sockets this process holds but whose runtime gives no handle for it, by their
// file descriptor: found in /proc (Linux) and set or read through libc by FFI (Bun, Deno).
//
// Why: Deno.serve with a certificate never sets TCP_NODELAY on the connections it accepts (Deno
// 2.9; its plain-TCP listener and node:net do), and nothing in Deno.serve, Deno.listenTls or a
// TlsConn sets it. A WebSocket frame of more than one segment then leaves its last small
// segment behind Nagle until the peer's delayed ACK, about 40 ms (docs/06). On Linux an
// accepted socket inherits TCP_NODELAY from its listening socket, so setting it once on the
// listener covers every connection the listener accepts from then on.
//
// Sockets are found by address in /proc/self/net/tcp{,6} (their inode) and then among this
// process's descriptors (/proc/self/fd), so another process's sockets on the same port (a
// reusePort sibling worker) are never touched. Without Linux's /proc, or without FFI (Node, or
// Deno without --allow-ffi), nothing is found and nothing is set: the callers go on as before.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { openNativeLibrary } from "./ffi.ts";

const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
/** /proc/net/tcp's `st` column: LISTEN and ESTABLISHED. */
const LISTEN = "0A";
const ESTABLISHED = "01";

const libc = openNativeLibrary(
  ["libc.so.6", "libc.so"],
  {
    setsockopt: { args: ["i32", "i32", "i32", "buffer", "i32"], result: "i32" },
    getsockopt: { args: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  } as const,
);

/** Which sockets to find: a local port, and a remote port for one connection (else listeners). */
export interface SocketMatch {
  localPort: number;
  /** An established connection with this peer port; without it, listening sockets. */
  remotePort?: number;
}

/** Inodes of the sockets in /proc/self/net/tcp and tcp6 that match; empty without /proc. */
function inodes(m: SocketMatch): Set<string> {
  const found = new Set<string>();
  for (const table of ["/proc/self/net/tcp", "/proc/self/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = parseInt(f[1]!.split(":")[1]!, 16);
      const remote = parseInt(f[2]!.split(":")[1]!, 16);
      if (local !== m.localPort) continue;
      if (m.remotePort === undefined ? f[3] !== LISTEN : f[3] !== ESTABLISHED || remote !== m.remotePort) continue;
      if (f[9] !== "0") found.add(f[9]!);
    }
  }
  return found;
}

/** This process's descriptors of the matching sockets; empty where /proc cannot say. */
export function socketFds(m: SocketMatch): number[] {
  const want = inodes(m);
  if (want.size === 0) return [];
  const fds: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc/self/fd");
  } catch {
    return [];
  }
  for (const name of entries) {
    try {
      const link = readlinkSync(`/proc/self/fd/${name}`);
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      if (inode !== undefined && want.has(inode)) fds.push(Number(name));
    } catch {
      // closed while we looked: not ours to set any more
    }
  }
  return fds;
}

/** Whether this runtime can set and read socket options by descriptor here (FFI to libc). */
export const socketOptionsAvailable = libc !== null;

/** TCP_NODELAY on the listening sockets of `localPort` this process holds: how many were set (0 where it cannot). */
export function setListenerNoDelay(localPort: number): number {
  if (!libc) return 0;
  const one = new Int32Array([1]);
  let set = 0;
  for (const fd of socketFds({ localPort })) {
    if (libc.symbols.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4) === 0) set++;
  }
  return set;
}

/** TCP_NODELAY of one descriptor: true/false, or undefined when it cannot be read. */
export function tcpNoDelay(fd: number): boolean | undefined {
  if (!libc) return undefined;
  const value = new Int32Array([0]);
  const len = new Int32Array([4]);
  if (libc.symbols.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, value, len) !== 0) return undefined;
  return value[0] !== 0;
}
