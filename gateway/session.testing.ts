// The gateway session's unit harness: an in-memory SessionSocket the test speaks the real codec
// over, the real DeviceAuth over an in-memory validate function (the unit seam), usage and
// metrics sinks, and small purpose-built upstreams. Used by session.test.ts and tcp-streams.test.ts.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { setImmediate } from "node:timers";
import { afterEach } from "node:test";
import { memoryLogger } from "../logging/logger.ts";
import * as codec from "../protocol/codec.ts";
import type { Frame, Hello } from "../protocol/frames.ts";
import { type Dialer, type Duplex, DuplexInbox } from "../transport/stream.ts";
import { type AuthOutcome, DeviceAuth, type ValidateRequest } from "./auth.ts";
import { createGatewayMetrics, type GatewayMetrics } from "./metrics.ts";
import { Session, type SessionConfig, type SessionHandler, type SessionSocket } from "./session.ts";
import type { Upstream } from "./upstream/upstream.ts";
import { fakeDialer } from "./upstream/fake.ts";
import type { UsageSink, UsageSource } from "./usage.ts";
// ---------------------------------------------------------------------------------------------
// harness

export class MemorySocket implements SessionSocket {
  readonly remoteAddress = "127.0.0.1";
  handler!: SessionHandler & { bufferedBytes?: number };
  frames: Frame[] = [];
  /** The messages themselves, in the order of `frames` (to see their kind byte and size). */
  messages: Array<string | Uint8Array> = [];
  binaryFrames = 0;
  textFrames = 0;
  bufferedAmount = 0;
  /** Largest bufferedAmount + session.bufferedBytes seen at any send. */
  peakHeld = 0;
  closed: { code?: number; reason?: string } | null = null;
  private reading = true;
  private held: Array<string | Uint8Array> = [];

  send(msg: string | Uint8Array): void {
    if (this.closed) return;
    if (!this.reading) {
      this.held.push(msg);
      this.bufferedAmount += typeof msg === "string" ? Buffer.byteLength(msg) : msg.byteLength;
    } else this.deliver(msg);
    this.peakHeld = Math.max(this.peakHeld, this.bufferedAmount + (this.handler.bufferedBytes ?? 0));
  }

  close(code?: number, reason?: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    // As a runtime would: the close event comes back on a later turn.
    setImmediate(() => this.handler.close(code ?? 1005, reason ?? ""));
  }

  stopReading(): void {
    this.reading = false;
  }

  startReading(): void {
    this.reading = true;
    const held = this.held;
    this.held = [];
    for (const m of held) this.deliver(m);
    this.bufferedAmount = 0;
    this.handler.drain();
  }

  private deliver(msg: string | Uint8Array): void {
    if (typeof msg === "string") this.textFrames++;
    else this.binaryFrames++;
    const r = typeof msg === "string" ? codec.decodeText(msg) : codec.decodeBinary(msg);
    assert.ok(r.ok, `the gateway sent an undecodable frame: ${!r.ok && r.error.message}`);
    this.frames.push(r.frame);
    this.messages.push(msg);
  }
}

export async function waitUntil(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const bytes = (s: string) => new TextEncoder().encode(s);
export const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export interface DeviceRecord {
  token: string;
  reason?: string; // a non-undefined reason makes validation fail with it
  max_sessions?: number | null;
}

/** The in-memory validate-device: the unit seam DeviceAuth sits on. */
export function memoryBackend(devices: Record<string, DeviceRecord>) {
  const calls: ValidateRequest[] = [];
  let down = false;
  const validate = async (req: ValidateRequest): Promise<AuthOutcome> => {
    calls.push(req);
    await sleep(1);
    if (down) return { ok: false, code: "unavailable", message: "down" };
    const d = devices[req.device_id];
    if (!d) return { ok: false, code: "unknown_device", message: "no" };
    if (d.token !== req.token) return { ok: false, code: "bad_token", message: "no" };
    if (d.reason) return { ok: false, code: d.reason, message: d.reason };
    return {
      ok: true,
      device: {
        id: req.device_id,
        name: req.device_id,
        max_sessions: d.max_sessions ?? null,
        data_quota_bytes: null,
        expires_at: null,
      },
      assignment: null,
    };
  };
  return {
    validate,
    calls,
    devices,
    setDown(v: boolean) {
      down = v;
    },
  };
}

export class UsageLog implements UsageSink {
  events: string[] = [];
  closes: Array<{ reason: string; up: number; down: number }> = [];
  open(s: UsageSource, nodeId: string | null): void {
    this.events.push(`open ${s.session_id} ${nodeId}`);
  }
  close(s: UsageSource, reason: string): void {
    this.events.push(`close ${s.session_id} ${reason}`);
    this.closes.push({ reason, up: s.bytesUp, down: s.bytesDown });
  }
}

export const baseConfig: SessionConfig = {
  helloTimeoutMs: 2000,
  pingIntervalMs: 60_000,
  idleTimeoutMs: 60_000,
  dialTimeoutMs: 2000,
  maxStreams: 16,
  window: codec.DEFAULT_WINDOW,
  socketHighWater: 256 * 1024,
  maxConsecutiveErrors: 100,
};

const live = new Set<Session>();
/** Call at a test file's top level: every session ends after each test, so no timer outlives it (Deno's sanitizers check). */
export function endSessionsAfterEach(): void {
  afterEach(() => {
    for (const s of live) s.terminate();
    live.clear();
  });
}

export interface Harness {
  sock: MemorySocket;
  session: Session;
  metrics: GatewayMetrics;
  backend: ReturnType<typeof memoryBackend>;
  usage: UsageLog;
  logs: string[];
  send(frame: Frame | string): void;
  hello(extra?: Partial<Hello>): Promise<Frame>;
  find(pred: (f: Frame) => boolean): Frame | undefined;
  waitFrame(pred: (f: Frame) => boolean, what: string, ms?: number): Promise<Frame>;
  received(id: string): Uint8Array;
}

export function harness(opts: {
  config?: Partial<SessionConfig>;
  upstream?: Upstream;
  ttlMs?: number;
  backend?: ReturnType<typeof memoryBackend>;
  /** The socket to use (a MemorySocket with extra methods); a plain MemorySocket by default. */
  socket?: MemorySocket;
} = {}): Harness {
  const backend = opts.backend ?? memoryBackend({ dev1: { token: "secret-token-1" } });
  const auth = new DeviceAuth({ validate: backend.validate, ttlMs: opts.ttlMs ?? 60_000 });
  const metrics = createGatewayMetrics();
  const usage = new UsageLog();
  const logger = memoryLogger("debug");
  const sock = opts.socket ?? new MemorySocket();
  const session = new Session({
    socket: sock,
    auth,
    upstreamFor: () => opts.upstream ?? { dialer: fakeDialer(), defaultTarget: { host: "echo", port: 0 } },
    config: { ...baseConfig, ...opts.config },
    logger,
    metrics,
    usage,
    onClose: (s) => live.delete(s),
  });
  sock.handler = session;
  live.add(session);
  const h: Harness = {
    sock,
    session,
    metrics,
    backend,
    usage,
    logs: logger.lines,
    send: (frame) => session.message(typeof frame === "string" ? frame : codec.encodeText(frame)),
    async hello(extra = {}) {
      h.send({ type: "hello", device_id: "dev1", token: "secret-token-1", client_version: "test", ...extra } as Hello);
      return h.waitFrame((f) => f.type === "auth_result", "auth_result");
    },
    find: (pred) => sock.frames.find(pred),
    async waitFrame(pred, what, ms) {
      await waitUntil(() => sock.frames.some(pred), what, ms);
      return sock.frames.find(pred)!;
    },
    received(id) {
      const parts = sock.frames.filter((f) => f.type === "stream_data" && f.stream_id === id).map((f) =>
        (f as { data: Uint8Array }).data
      );
      return new Uint8Array(Buffer.concat(parts));
    },
  };
  return h;
}

export const isErr = (code: string, stream_id?: string) => (f: Frame) =>
  f.type === "error" && f.code === code && (stream_id === undefined || f.stream_id === stream_id);
export const isClose = (id: string) => (f: Frame) => f.type === "stream_close" && f.stream_id === id;

/** A dialer whose dial waits for release(), to test data sent while the dial is pending. */
export function gatedDialer(inner: Dialer = fakeDialer()) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  return {
    release: () => release(),
    dialer: {
      async dial(t, signal) {
        await gate;
        return inner.dial(t, signal);
      },
    } as Dialer,
  };
}

/** An upstream that pushes `total` bytes as fast as it is allowed to (pause() is honoured at once). */
export function firehose(total: number, chunk = 64 * 1024) {
  const stats = { pushed: 0, pauses: 0, streams: 0 };
  const dialer: Dialer = {
    async dial() {
      stats.streams++;
      const inbox = new DuplexInbox();
      let scheduled = false;
      // Only an unpaused inbox is fed, so pause() really stops the producer (and is counted).
      const pump = () => {
        scheduled = false;
        let budget = 8;
        while (inbox.started && !inbox.isPaused && !inbox.isClosed && stats.pushed < total && budget-- > 0) {
          stats.pushed += chunk;
          inbox.deliver(new Uint8Array(chunk).fill(0x61));
        }
        if (!inbox.isClosed && !inbox.isPaused && stats.pushed < total) schedule();
      };
      const schedule = () => {
        if (scheduled || inbox.isClosed) return;
        scheduled = true;
        setImmediate(pump);
      };
      const d: Duplex = {
        start(handlers) {
          inbox.start(handlers);
          schedule();
        },
        write: () => true,
        closeWrite() {},
        close: (err) => inbox.close(err),
        pause() {
          inbox.pause();
          stats.pauses++;
        },
        resume() {
          inbox.resume();
          schedule();
        },
      };
      return d;
    },
  };
  return { dialer, stats };
}

// ---------------------------------------------------------------------------------------------
