// Test support for the client: a scripted gateway (the real runtime WebSocket server with a
// handler the test drives frame by frame) and an in-memory Duplex pair for fake Dialers.
import { after } from "node:test";
import { createDevCertificate, type DevCertificate } from "../gateway/certs.ts";
import { type AccessKey, formatAccessKey, parseAccessKey } from "../protocol/access-key.ts";
import * as codec from "../protocol/codec.ts";
import type { Feature, Frame } from "../protocol/frames.ts";
import { type ListeningServer, serveGateway, type SessionSocket } from "../runtime/index.ts";
import { type Duplex, DuplexInbox, type StreamError } from "../transport/stream.ts";

let certPromise: Promise<DevCertificate> | undefined;
/** One certificate per test process: generating one per test only costs time. */
export function testCertificate(): Promise<DevCertificate> {
  certPromise ??= createDevCertificate();
  return certPromise;
}

/** Wait until `cond()` holds, polling; throws after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One WebSocket accepted by the scripted gateway. */
export class GatewayConn {
  /** Every frame received, decoded, in order (binary frames included). */
  readonly frames: Frame[] = [];
  /** Raw messages received: `binary` tells which kind each frame came as. */
  readonly kinds: Array<"text" | "binary"> = [];
  /** The messages themselves (binary ones copied), in the order of `frames`. */
  readonly messages: Array<string | Uint8Array> = [];
  closed: { code: number; reason: string } | null = null;
  binary = false;

  constructor(readonly socket: SessionSocket) {}

  send(frame: Frame): void {
    this.socket.send(
      this.binary && (frame.type === "stream_data" || frame.type === "window_update" || frame.type === "stream_end")
        ? codec.encodeBinary(frame)
        : codec.encodeText(frame),
    );
  }

  sendRaw(msg: string | Uint8Array): void {
    this.socket.send(msg);
  }

  close(code = 1000, reason = ""): void {
    this.socket.close(code, reason);
  }

  /** Frames of one type (optionally of one stream). */
  of<T extends Frame["type"]>(type: T, streamId?: string): Extract<Frame, { type: T }>[] {
    return this.frames.filter((f) =>
      f.type === type && (streamId === undefined || (f as { stream_id?: string }).stream_id === streamId)
    ) as Extract<Frame, { type: T }>[];
  }

  /** Payload bytes received on a stream (stream_open.data and stream_data). */
  bytes(streamId: string): Uint8Array {
    const parts = this.frames.flatMap((
      f,
    ) => ((f.type === "stream_data" || f.type === "stream_open") && f.stream_id === streamId && f.data ? [f.data] : []));
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Accept the hello with these grants. */
  authOk(opts: { features?: Feature[]; window?: number; maxStreams?: number; session_id?: string } = {}): void {
    const features = opts.features ?? ["flow", "binary", "half_close"];
    this.send({
      type: "auth_result",
      ok: true,
      session_id: opts.session_id ?? "0123456789abcdef0123456789abcdef",
      features,
      ...(features.includes("flow") ? { window: opts.window ?? codec.DEFAULT_WINDOW } : {}),
      limits: { ...codec.DEFAULT_LIMITS, max_streams: opts.maxStreams ?? codec.MAX_STREAMS },
      protocol: 1,
    });
    this.binary = features.includes("binary");
  }
}

export interface ScriptedGateway {
  port: number;
  cert: DevCertificate;
  conns: GatewayConn[];
  /** An access key for this gateway, pinned to its certificate. */
  key(overrides?: Partial<AccessKey>): AccessKey;
  close(): Promise<void>;
}

/**
 * A gateway whose behaviour is the test's: `onFrame(conn, frame)` sees every decoded frame
 * (the hello included) and answers however the test wants. Listens on 127.0.0.1.
 */
export async function startScriptedGateway(
  onFrame: (conn: GatewayConn, frame: Frame) => void,
  opts: { port?: number } = {},
): Promise<ScriptedGateway> {
  const cert = await testCertificate();
  const conns: GatewayConn[] = [];
  const server: ListeningServer = await serveGateway({
    hostname: "127.0.0.1",
    port: opts.port ?? 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    wsPath: "/ws",
    fetch: () => new Response("decoy"),
    accept: (socket) => {
      const conn = new GatewayConn(socket);
      conns.push(conn);
      return {
        message(msg) {
          conn.kinds.push(typeof msg === "string" ? "text" : "binary");
          conn.messages.push(typeof msg === "string" ? msg : msg.slice());
          const r = typeof msg === "string" ? codec.decodeText(msg) : codec.decodeBinary(msg);
          if (!r.ok) throw new Error(`the client sent an undecodable frame: ${r.error.message}`);
          // Binary payloads are views into a message buffer the runtime may reuse: keep a copy.
          const f = r.frame.type === "stream_data" ? { ...r.frame, data: r.frame.data.slice() } : r.frame;
          conn.frames.push(f);
          onFrame(conn, f);
        },
        drain() {},
        close(code, reason) {
          conn.closed = { code, reason };
        },
      };
    },
  });
  return {
    port: server.port,
    cert,
    conns,
    key(overrides = {}) {
      const text = formatAccessKey({
        host: "127.0.0.1",
        port: server.port,
        deviceId: "dev-1",
        token: "secret-token-123",
        pin: cert.sha256,
        ...overrides,
      });
      const r = parseAccessKey(text);
      if (!r.ok) throw new Error(r.error.message);
      return r.key;
    },
    async close() {
      for (const c of conns) if (!c.closed) c.close(1001, "shutdown");
      await server.close();
      await until(() => conns.every((c) => c.closed !== null), "scripted gateway sockets to close", 5000).catch(() => {});
    },
  };
}

/**
 * For a test file: scripted gateways and whatever else it opens (sessions, tunnels), all closed
 * after its tests — the things first, then the gateways.
 */
export function closedAfterTests() {
  const gateways: ScriptedGateway[] = [];
  const things: Array<{ close(): unknown }> = [];
  after(async () => {
    for (const t of things) await t.close();
    for (const g of gateways) await g.close();
  });
  return {
    async gateway(onFrame: (conn: GatewayConn, frame: Frame) => void): Promise<ScriptedGateway> {
      const g = await startScriptedGateway(onFrame);
      gateways.push(g);
      return g;
    },
    track<T extends { close(): unknown }>(thing: T): T {
      things.push(thing);
      return thing;
    },
  };
}

/** A gateway that accepts every hello and echoes every stream's bytes back (with stream_end and stream_close). */
export function echoScript(grant: Parameters<GatewayConn["authOk"]>[0] = {}) {
  return (conn: GatewayConn, f: Frame) => {
    switch (f.type) {
      case "hello":
        return conn.authOk(grant);
      case "stream_open":
        if (f.data) conn.send({ type: "stream_data", stream_id: f.stream_id, data: f.data });
        return;
      case "stream_data":
        conn.send({ type: "stream_data", stream_id: f.stream_id, data: f.data });
        // Echoed bytes are consumed bytes: hand the credit back at once.
        if (f.data.length > 0) conn.send({ type: "window_update", stream_id: f.stream_id, increment: f.data.length });
        return;
      case "stream_end":
        conn.send({ type: "stream_end", stream_id: f.stream_id });
        conn.send({ type: "stream_close", stream_id: f.stream_id });
        return;
      case "ping":
        return conn.send({ type: "pong", id: f.id });
    }
  };
}

// ---------------------------------------------------------------------------------------------

/** What a test can see of one end of a memory pair. */
export interface Recorded {
  data: Uint8Array[];
  ended: boolean;
  closed: { err?: StreamError } | null;
  text(): string;
}

/** Collect everything a Duplex delivers. */
export function record(d: Duplex): Recorded {
  const r: Recorded = {
    data: [],
    ended: false,
    closed: null,
    text: () => new TextDecoder().decode(concat(r.data)),
  };
  d.start({
    data: (c) => void r.data.push(c.slice()),
    end: () => void (r.ended = true),
    drain: () => {},
    close: (err) => void (r.closed = err ? { err } : {}),
  });
  return r;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Two Duplexes joined in memory, like a socketpair: what one writes the other reads, always on a later microtask. */
export function memoryPair(): [Duplex, Duplex] {
  type Side = { inbox: DuplexInbox; writeEnded: boolean; closed: boolean };
  const s: [Side, Side] = [
    { inbox: new DuplexInbox(), writeEnded: false, closed: false },
    { inbox: new DuplexInbox(), writeEnded: false, closed: false },
  ];
  const side = (i: 0 | 1): Duplex => {
    const me = s[i];
    const peer = s[1 - i]!;
    return {
      start: (h) => queueMicrotask(() => me.inbox.start(h)),
      write(chunk) {
        if (me.closed || me.writeEnded) return false;
        const copy = chunk.slice();
        queueMicrotask(() => peer.inbox.deliver(copy));
        return true;
      },
      closeWrite() {
        if (me.closed || me.writeEnded) return;
        me.writeEnded = true;
        queueMicrotask(() => peer.inbox.end());
        // Both directions finished: like a socket, both ends close normally.
        if (!peer.writeEnded) return;
        me.closed = peer.closed = true;
        queueMicrotask(() => (me.inbox.closeAfterData(), peer.inbox.closeAfterData()));
      },
      close(err) {
        if (me.closed) return;
        me.closed = peer.closed = true;
        queueMicrotask(() => {
          me.inbox.close(err);
          if (err) peer.inbox.close(err);
          else peer.inbox.closeAfterData();
        });
      },
      pause: () => me.inbox.pause(),
      resume: () => queueMicrotask(() => me.inbox.resume()),
    };
  };
  return [side(0), side(1)];
}
