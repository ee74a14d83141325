// What the SOCKS5 and HTTP proxies share: a node:net listener (the same module on Node, Bun
// and Deno) that tracks its connections so close() can end them, and the handshake phase
// that reads a bounded amount from a fresh socket before it is handed to pipeDuplex().
import * as net from "node:net";
import type { Logger } from "../logging/logger.ts";
import type { Dialer } from "../transport/stream.ts";

export interface ProxyOptions {
  /** Listen address; the proxies are meant for loopback. */
  host: string;
  /** 0 lets the OS choose; the running server reports the real port. */
  port: number;
  dialer: Dialer;
  logger?: Logger;
  /** A client that has not finished its request after this long is dropped. Default 10 s. */
  handshakeTimeoutMs?: number;
}

export interface ProxyServer {
  readonly host: string;
  readonly port: number;
  /** Connections accepted and not yet closed. */
  readonly connections: number;
  /** Stop listening and end every connection. */
  close(): Promise<void>;
}

export class ProxyListenError extends Error {
  readonly code = "listen_failed";
}

export async function listenProxy(
  opts: ProxyOptions,
  name: string,
  onConnection: (socket: net.Socket) => void,
): Promise<ProxyServer> {
  const sockets = new Set<net.Socket>();
  // allowHalfOpen: a client's FIN must not end our side; it is forwarded as stream_end.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // From the start, not only once piped: the handshake's replies (SOCKS5 method and CONNECT
    // reply, HTTP 200) are small writes the application waits for.
    socket.setNoDelay(true);
    // Until the handshake installs its own, an early error must not crash the process.
    socket.on("error", () => {});
    try {
      onConnection(socket);
    } catch (e) {
      opts.logger?.error(`${name}: connection handler threw`, { error: e });
      socket.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) =>
      reject(new ProxyListenError(`${name}: cannot listen on ${opts.host}:${opts.port}: ${e.code ?? e.message}`));
    server.once("error", onError);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (e) => opts.logger?.error(`${name}: listener error`, { error: e }));
  const port = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    host: opts.host,
    port,
    get connections() {
      return sockets.size;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}

export type HandshakeStep = number | { used: number; done: true } | "fail";

/**
 * Read from a fresh socket until the handshake is over. `step` gets everything read so far
 * and returns how many bytes it used (0 = need more), `{used, done}` when the handshake is
 * complete (`done` then gets the bytes after it), or "fail" once it has answered the client
 * and the socket should go. At most `maxBytes` wait; past that, at the client's FIN, or after
 * the timeout, the socket is destroyed.
 */
export function readHandshake(
  socket: net.Socket,
  timeoutMs: number,
  maxBytes: number,
  step: (buf: Uint8Array) => HandshakeStep,
  done: (rest: Uint8Array) => void,
): void {
  let buf = new Uint8Array(0);
  let over = false;
  const timer = setTimeout(() => {
    stop();
    socket.destroy();
  }, timeoutMs);
  const onData = (chunk: Uint8Array) => {
    if (over) return;
    const next = new Uint8Array(buf.length + chunk.length);
    next.set(buf);
    next.set(chunk, buf.length);
    buf = next;
    for (;;) {
      const r = step(buf);
      if (r === "fail") {
        stop();
        // Let the error reply go out, then make sure the socket does not linger.
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref?.();
        return;
      }
      if (typeof r === "object") {
        stop();
        return done(buf.subarray(r.used));
      }
      if (r === 0) break;
      buf = buf.subarray(r);
    }
    if (buf.length > maxBytes) {
      stop();
      socket.destroy();
    }
  };
  const onEnd = () => {
    stop();
    socket.destroy();
  };
  const stop = () => {
    over = true;
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("end", onEnd);
    socket.off("close", stop);
    // Further bytes wait in the kernel until the socket is wrapped and piped.
    socket.pause();
  };
  socket.on("data", onData);
  socket.on("end", onEnd);
  socket.on("close", stop);
}
