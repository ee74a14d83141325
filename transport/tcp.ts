// Plain TCP as a Dialer, over node:net (the same module on Node, Bun and Deno), and the
// socket → Duplex wrapper that the SOCKS5 server reuses for accepted connections.
import * as net from "node:net";
import { formatHostPort } from "../protocol/ip-address.ts";
import { type Dialer, type Duplex, type DuplexHandlers, StreamError, type Target } from "./stream.ts";

export interface TcpDialerOptions {
  /** Give up on a connect (DNS included) after this many ms with `upstream_timeout`. Default 5000; 0 = never. */
  connectTimeoutMs?: number;
  /** Replaces net.connect; lets tests simulate a connect that never completes. */
  connect?: (opts: net.NetConnectOpts) => net.Socket;
}

const unreachable = new Set([
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_NONAME",
  "EAI_FAIL",
  "EADDRNOTAVAIL",
  "ENETDOWN",
  "EHOSTDOWN",
]);

/** Maps a node:net error to the stable codes the tunnel reports. */
export function streamErrorFromSocket(err: unknown, what = "connection"): StreamError {
  if (err instanceof StreamError) return err;
  const code = typeof err === "object" && err !== null ? String((err as { code?: unknown }).code ?? "") : "";
  if (code === "ECONNREFUSED") return new StreamError("upstream_refused", `${what}: connection refused`);
  if (code === "ETIMEDOUT") return new StreamError("upstream_timeout", `${what}: timed out`);
  if (unreachable.has(code)) return new StreamError("upstream_unreachable", `${what}: unreachable (${code})`);
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ECONNABORTED") {
    return new StreamError("upstream_reset", `${what}: reset by peer (${code})`);
  }
  return new StreamError("upstream_error", `${what}: ${code || (err instanceof Error ? err.message : "socket error")}`);
}

export function tcpDialer(opts: TcpDialerOptions = {}): Dialer {
  const timeoutMs = opts.connectTimeoutMs ?? 5000;
  const connect = opts.connect ?? net.connect;
  return {
    dial(target: Target, signal?: AbortSignal): Promise<Duplex> {
      const { host } = target;
      const what = formatHostPort(host, target.port);
      return new Promise<Duplex>((resolve, reject) => {
        if (signal?.aborted) return reject(new StreamError("aborted", `dial ${what}: aborted`));
        if (!host || !Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
          return reject(new StreamError("bad_target", `dial: bad target ${what}`));
        }
        let socket: net.Socket;
        try {
          // allowHalfOpen: a peer FIN must not close our write side (half-close both ways).
          socket = connect({ host, port: target.port, allowHalfOpen: true, noDelay: true });
        } catch (e) {
          return reject(streamErrorFromSocket(e, `dial ${what}`));
        }
        let settled = false;
        const cleanup = () => {
          settled = true;
          if (timer !== undefined) clearTimeout(timer);
          socket.off("connect", onConnect);
          socket.off("error", onError);
          signal?.removeEventListener("abort", onAbort);
        };
        const fail = (err: StreamError) => {
          if (settled) return;
          cleanup();
          // Swallow late errors of the abandoned socket; the promise already carries the failure.
          socket.on("error", () => {});
          socket.destroy();
          reject(err);
        };
        const onConnect = () => {
          if (settled) return;
          cleanup();
          resolve(duplexFromSocket(socket));
        };
        const onError = (e: unknown) => fail(streamErrorFromSocket(e, `dial ${what}`));
        const onAbort = () => fail(new StreamError("aborted", `dial ${what}: aborted`));
        const timer = timeoutMs > 0
          ? setTimeout(
            () => fail(new StreamError("upstream_timeout", `dial ${what}: no connection after ${timeoutMs} ms`)),
            timeoutMs,
          )
          : undefined;
        socket.once("connect", onConnect);
        socket.once("error", onError);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
  };
}

/**
 * A connected socket as a Duplex. Create listening servers with `allowHalfOpen: true`,
 * or Node ends our write side as soon as the peer sends FIN.
 */
export function duplexFromSocket(socket: net.Socket): Duplex {
  let handlers: DuplexHandlers | null = null;
  let closeErr: StreamError | undefined;
  let socketClosed = false;
  let closeDelivered = false;
  let paused = false;
  let endQueued = false;
  // Nagle would hold back the small writes (handshakes, requests) that latency depends on.
  socket.setNoDelay(true);

  const deliverClose = () => {
    if (!handlers || closeDelivered || !socketClosed) return;
    closeDelivered = true;
    handlers.close(closeErr);
  };
  // Listening for "error" from the start keeps an early failure from crashing the process;
  // it is reported through close() once handlers exist.
  socket.on("error", (e) => {
    closeErr ??= streamErrorFromSocket(e);
  });
  socket.on("close", () => {
    socketClosed = true;
    deliverClose();
  });
  socket.on("drain", () => handlers?.drain());

  return {
    start(h) {
      if (handlers) return;
      handlers = h;
      // Until a "data" listener exists the socket reads at most its high-water mark and then
      // leaves the rest in the kernel: data before start() is held, bounded.
      socket.on("data", (chunk: Uint8Array) => h.data(chunk));
      socket.on("end", () => h.end());
      if (paused) socket.pause();
      else socket.resume();
      deliverClose();
    },
    write(chunk) {
      if (socket.destroyed || socket.writableEnded || endQueued) return false;
      return socket.write(chunk);
    },
    closeWrite() {
      if (socket.destroyed || socket.writableEnded || endQueued) return;
      endQueued = true;
      // One macrotask later: Deno's node:net drops data already received but not yet read
      // when end() runs in the same tick as the resume() that starts reading it.
      setTimeout(() => {
        if (!socket.destroyed && !socket.writableEnded) socket.end();
      }, 0);
    },
    close(err) {
      if (err) closeErr ??= err;
      socket.destroy();
    },
    pause() {
      paused = true;
      socket.pause();
    },
    resume() {
      paused = false;
      if (handlers) socket.resume();
    },
  };
}
