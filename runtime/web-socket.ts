// Pieces the adapters share: the high/low-water-mark logic behind SessionHandler.drain(), and
// the wrapping of a WHATWG WebSocket (Deno's server sockets, Bun's and Deno's clients) into a
// SessionSocket. WHATWG WebSockets have bufferedAmount but no drain event, so while — and only
// while — a socket is above the high-water mark a timer (1 ms, backing off to 50 ms) watches it.
import {
  CLOSE_GRACE_MS,
  RuntimeError,
  type SessionHandler,
  type SessionSocket,
  WS_CLOSE_INTERNAL,
  WS_CLOSE_TOO_BIG,
  WS_HIGH_WATER,
  WS_LOW_WATER,
  WS_PAUSED_MAX_HELD,
} from "./types.ts";

/**
 * Polling for WHATWG sockets above the high-water mark: first after 1 ms, so a short stall
 * costs little throughput, then backing off to 50 ms, so a client stalled for minutes costs
 * 20 wakeups a second rather than a thousand.
 */
const POLL_FIRST_MS = 1;
const POLL_MAX_MS = 50;

export class Watermark {
  private above = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  constructor(
    private readonly buffered: () => number,
    private readonly drained: () => void,
    private readonly poll = false,
  ) {}

  /** Call after every send. */
  sent(): void {
    if (this.above || this.buffered() <= WS_HIGH_WATER) return;
    this.above = true;
    if (this.poll) this.schedule(POLL_FIRST_MS);
  }

  /** Call when the runtime says the socket can take more (and from the poll timer). */
  check(): void {
    if (!this.above || this.buffered() > WS_LOW_WATER) return;
    this.above = false;
    this.stop();
    this.drained();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.check();
      if (this.above && this.timer === undefined) this.schedule(Math.min(ms * 2, POLL_MAX_MS));
    }, ms);
  }
}

/**
 * Run a session callback so that a bug in it closes that one socket (1011) instead of
 * escaping into the runtime's event loop, where it would take every session down.
 */
export function guard(socket: Pick<SessionSocket, "close">, onError: ((err: unknown) => void) | undefined, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    try {
      socket.close(WS_CLOSE_INTERNAL, "internal error");
    } finally {
      onError?.(e);
    }
  }
}

/** UTF-8 length without encoding unless the answer is in doubt (a UTF-16 unit is 1 to 3 bytes). */
export function tooBig(msg: string | ArrayBuffer | Uint8Array, max: number): boolean {
  if (typeof msg !== "string") return msg.byteLength > max;
  if (msg.length > max) return true;
  return msg.length * 3 > max && new TextEncoder().encode(msg).length > max;
}

/**
 * Wrap a WHATWG WebSocket. `accept` runs when the socket opens (at once if it is open already)
 * and `opened` then resolves; every later event goes to the handler accept returned.
 * `terminate`, where the runtime has a way, closes the connection without the peer's close
 * frame: used when the peer has not answered ours within CLOSE_GRACE_MS.
 */
export function adoptWebSocket(
  ws: WebSocket,
  remoteAddress: string,
  maxMessageBytes: number,
  accept: (socket: SessionSocket) => SessionHandler,
  onError?: (err: unknown) => void,
  terminate?: () => void,
): { socket: SessionSocket; opened: Promise<void> } {
  ws.binaryType = "arraybuffer";
  let handler: SessionHandler | undefined;
  let closed = false; // the close event came
  let closing = false; // we asked to close: no more messages to the handler
  let tooBigSeen = false; // report 1009 to our handler even where the runtime sent another code
  // A WHATWG WebSocket cannot stop reading: while paused, what arrives is held here (bounded).
  let paused = false;
  let held: (string | Uint8Array)[] = [];
  let heldBytes = 0;
  const deliver = (m: string | Uint8Array) => guard(socket, onError, () => handler!.message(m));
  const mark = new Watermark(
    () => ws.bufferedAmount,
    () => guard(socket, onError, () => handler?.drain()),
    true,
  );
  const socket: SessionSocket = {
    send(msg) {
      if (closed || ws.readyState !== 1) return;
      ws.send(msg as string | Uint8Array<ArrayBuffer>); // views over a SharedArrayBuffer are the caller's bug
      mark.sent();
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    close(code, reason) {
      const first = !closing;
      closing = true;
      try {
        ws.close(code, reason);
      } catch {
        ws.close(1000, reason); // a client WebSocket refuses codes other than 1000 and 3000-4999
      }
      if (terminate && first) {
        const grace = setTimeout(() => closed || terminate(), CLOSE_GRACE_MS);
        ws.addEventListener("close", () => clearTimeout(grace));
      }
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      while (!paused && held.length > 0 && !closing && !closed) {
        const m = held.shift()!;
        heldBytes -= typeof m === "string" ? m.length : m.byteLength;
        deliver(m);
      }
      if (held.length === 0) heldBytes = 0;
    },
    remoteAddress,
    get protocol() {
      return ws.protocol;
    },
  };
  const opened = new Promise<void>((resolve, reject) => {
    const start = () => {
      guard(socket, onError, () => (handler = accept(socket)));
      resolve();
    };
    if (ws.readyState === 1) start();
    else ws.onopen = start;
    ws.onclose = (e) => {
      if (closed) return;
      closed = true;
      mark.stop(); // no timer may outlive the socket
      const [code, reason] = tooBigSeen ? [WS_CLOSE_TOO_BIG, "message too big"] : [e.code, e.reason];
      if (handler) guard(socket, onError, () => handler!.close(code, reason));
      else reject(new Error(`closed before open (${e.code})`));
    };
  });
  opened.catch(() => {}); // the caller may not be waiting; a server-side socket that never opened is just gone
  ws.onerror = () => {}; // a close event always follows
  ws.onmessage = (e: MessageEvent) => {
    if (closing || closed || !handler) return;
    const d = e.data as string | ArrayBuffer;
    if (tooBig(d, maxMessageBytes)) {
      tooBigSeen = true;
      return socket.close(WS_CLOSE_TOO_BIG, "message too big");
    }
    const m = typeof d === "string" ? d : new Uint8Array(d);
    if (!paused && held.length === 0) return deliver(m);
    held.push(m);
    heldBytes += typeof m === "string" ? m.length : m.byteLength;
    if (heldBytes > WS_PAUSED_MAX_HELD) {
      held = [];
      heldBytes = 0;
      tooBigSeen = true;
      socket.close(WS_CLOSE_TOO_BIG, "paused too long");
    }
  };
  return { socket, opened };
}

/**
 * RFC 6455 4.1: a client that offered subprotocols fails the connection when the 101 chose none
 * of them. `ws` (Node) does; Bun's and Deno's WebSocket open anyway, so their adapters check here.
 */
export function offeredProtocolChosen(socket: SessionSocket, offered: string[] | undefined, host: string): SessionSocket {
  if (!offered?.length || offered.includes(socket.protocol ?? "")) return socket;
  socket.close(1000, "no subprotocol");
  throw new RuntimeError("ws_connect_failed", `cannot open ${host}: the server chose none of the offered subprotocols`);
}

/** A client socket's `opened`, as a RuntimeError on failure or after `ms`. */
export function openedWithin(p: Promise<void>, ms: number, ws: WebSocket, host: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ws.close();
      reject(new RuntimeError("ws_connect_timeout", `no WebSocket from ${host} after ${ms} ms`));
    }, ms);
  });
  return Promise.race([
    p.catch((e: Error) => Promise.reject(new RuntimeError("ws_connect_failed", `cannot open ${host}: ${e.message}`))),
    timeout,
  ]).finally(() => clearTimeout(timer));
}
