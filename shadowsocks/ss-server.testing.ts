// Test fixtures shared by the interop test and the gateway's end-to-end tests: the reference
// server (shadowsocks-libev's ss-server, one process per method and key) and the plain HTTP
// target the tests reach through it. A missing ss-server is an error, not a skip: a test
// against it would otherwise prove nothing.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import dgram from "node:dgram";
import { existsSync } from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { delimiter, join } from "node:path";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export function ssServerPath(): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const p = join(dir, "ss-server");
    if (dir && existsSync(p)) return p;
  }
  for (const p of ["/usr/bin/ss-server", "/usr/local/bin/ss-server"]) if (existsSync(p)) return p;
  throw new Error("ss-server not found: install it with `apt-get install shadowsocks-libev` (these tests need the real server)");
}

/** A port nothing listens on right now (the OS picks it; a race with other processes is possible but rare). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** ss-server exited before it listened: most likely its port was taken meanwhile. */
class PortTaken extends Error {}

async function waitListening(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new PortTaken(`ss-server exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`ss-server did not listen on ${port} within 10 s`);
}

export interface SsServer {
  port: number;
  /** SIGTERM and wait for the exit (idempotent). */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit: the node "dies"; its port then refuses connections. */
  kill(): Promise<void>;
}

/** Whether nothing holds `port` for UDP on 127.0.0.1 right now. */
function udpPortFree(port: number): Promise<boolean> {
  const s = dgram.createSocket("udp4");
  return new Promise((resolve) => {
    s.once("error", () => {
      s.close();
      resolve(false);
    });
    s.bind(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/**
 * One ss-server on 127.0.0.1 with one method and password: TCP only, or with `udp` also UDP on
 * the same port (`-u`). A server that exits before it listens (its port was taken between our
 * check and its bind: other tests run alongside) is tried again on another port, twice.
 */
export async function startSsServer(method: string, password: string, opts: { udp?: boolean } = {}): Promise<SsServer> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startSsServerOnce(method, password, opts);
    } catch (e) {
      if (attempt >= 3 || !(e instanceof PortTaken)) throw e;
    }
  }
}

async function startSsServerOnce(method: string, password: string, opts: { udp?: boolean }): Promise<SsServer> {
  const bin = ssServerPath();
  const port = await freePort();
  if (opts.udp && !(await udpPortFree(port))) throw new PortTaken(`UDP port ${port} is taken`);
  const args = ["-s", "127.0.0.1", "-p", String(port), "-k", password, "-m", method, "-t", "30"];
  if (opts.udp) args.push("-u");
  const child = spawn(bin, args, { stdio: "ignore" });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  try {
    await waitListening(port, child);
  } catch (e) {
    await end("SIGKILL");
    throw e;
  }
  return { port, stop: () => end("SIGTERM"), kill: () => end("SIGKILL") };
}

export interface HttpTarget {
  port: number;
  close(): Promise<void>;
}

/**
 * GET /bytes/N → the first N bytes of `pool` with their SHA-256 in `x-sha256`;
 * POST /upload → "<length> <sha256>" of the body. Every response closes the connection, unless
 * `keepAlive`: then the target answers as an ordinary web server, and the client ends it.
 */
export async function startHttpTarget(pool: Uint8Array, opts: { keepAlive?: boolean } = {}): Promise<HttpTarget> {
  const connection = opts.keepAlive ? {} : { connection: "close" };
  const server = http.createServer((req, res) => {
    const m = /^\/bytes\/(\d+)$/.exec(req.url ?? "");
    if (req.method === "GET" && m) {
      const body = pool.subarray(0, Math.min(Number(m[1]), pool.length));
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        "content-length": body.length,
        "x-sha256": sha256(body),
        ...connection,
      });
      res.end(body);
      return;
    }
    if (req.method === "POST" && req.url === "/upload") {
      const h = createHash("sha256");
      let n = 0;
      req.on("data", (c: Uint8Array) => {
        h.update(c);
        n += c.length;
      });
      req.on("end", () => {
        const body = `${n} ${h.digest("hex")}`;
        res.writeHead(200, { "content-type": "text/plain", "content-length": body.length, ...connection });
        res.end(body);
      });
      return;
    }
    res.writeHead(404, { "content-length": 0, ...connection });
    res.end();
  });
  return listenTracked(server);
}

/** Listen on a free loopback port; close() also destroys the connections still open. */
async function listenTracked(server: net.Server): Promise<HttpTarget> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A plain TCP target on loopback; `onSocket` serves each connection. */
export function startTcpTarget(onSocket: (s: net.Socket) => void): Promise<HttpTarget> {
  return listenTracked(net.createServer(onSocket));
}
