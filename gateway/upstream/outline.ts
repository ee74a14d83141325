// Outline mode: every session dials through the Shadowsocks node the backend assigned to
// its device (shadowsocksDialer over TCP), and moves to another node when that one fails.
//
// What counts as the node failing (not the target): the TCP connect to the Shadowsocks
// server is refused, unreachable or times out, or — with a key not yet seen to work — the
// server stays silent past the dial timeout after our first bytes (how a wrong key looks:
// servers never answer or close on one). Then the gateway
//   1. queues a node_failure report (the backend marks the node down; never on the data path),
//   2. re-validates the device with exclude_node_ids (the backend picks and pins another node),
//   3. dials the stream once more there — for the silent case replaying the bytes already
//      sent (kept until the first answer, at most REPLAY_LIMIT),
//   4. and keeps the new node for the session's later streams.
// A target that refuses is not the node's fault: Shadowsocks servers then close the
// connection cleanly, which reaches the client as an ordinary end of stream.
//
// A node that dies mid-stream (process killed, host rebooted) closes its connections with the
// same FIN as a target that finished: Shadowsocks has no end-of-stream marker. So an end from
// a node is held until a fresh TCP connect to the node says it is still there; refused (or
// timed out), the stream closes with `upstream_reset` instead of ending, and the node counts
// as failed, so the session's next stream moves at once (see OutlineUpstream.alive).
import { createHash } from "node:crypto";
import type { Logger } from "../../logging/logger.ts";
import { Code, isErrorCode } from "../../protocol/errors.ts";
import { prefixBytes } from "../../protocol/ss-url.ts";
import { shadowsocksDialer } from "../../shadowsocks/dialer.ts";
import { shadowsocksPacketDialer } from "../../shadowsocks/udp-dialer.ts";
import type { PacketConn, PacketDialer } from "../../transport/packet.ts";
import { udpDialer } from "../../transport/udp.ts";
import { type Dialer, type Duplex, type DuplexHandlers, DuplexInbox, StreamError, type Target } from "../../transport/stream.ts";
import { tcpDialer } from "../../transport/tcp.ts";
import type { Assignment } from "../auth.ts";
import type { Upstream, UpstreamContext } from "./upstream.ts";

export interface OutlineUpstreamOptions {
  /** GATEWAY_DIAL_TIMEOUT: the connect to a node, and the wait for its first answer on a key not yet seen to work. */
  dialTimeoutMs: number;
  /** GATEWAY_BACKEND_TIMEOUT: bounds the re-validation inside a failover. */
  backendTimeoutMs: number;
  /** Queue a node_failure for the backend. Must return at once (the usage reporter's queue). */
  reportFailure(node_id: string, error: string): void;
  /** How the gateway reaches the nodes; default TCP with the dial timeout. */
  base?: Dialer;
  /** Whether a node still accepts connections; default: a TCP connect through `base`, closed at once. */
  probe?: (node: Target) => Promise<boolean>;
  /** Makes a node's dialer; default shadowsocksDialer over `base` (tests put fakes here). */
  nodeDialer?: (a: Assignment) => Dialer;
  /** How UDP streams reach the nodes; default node:dgram sockets. */
  packetBase?: PacketDialer;
  /** Makes a node's UDP dialer; default shadowsocksPacketDialer over `packetBase`. */
  nodePacketDialer?: (a: Assignment) => PacketDialer;
  logger?: Logger;
  now?: () => number;
}

/** A key that answered within this long skips the first-answer wait (shadowsocksDialer's trust window). */
export const KEY_TRUST_MS = 60_000;
/** Client bytes kept per stream until the node first answers, so a silent node's stream can move. */
export const REPLAY_LIMIT = 64 * 1024;
/**
 * How long a failed node stays failed for this gateway: one report per node in that time, and
 * sessions still pointed at it re-validate before dialing it. The backend's default health-check
 * interval; after it the backend's view is fresher than ours.
 */
export const FAILED_FOR_MS = 30_000;
/** After a re-validation that found no (other) node, a session asks again at most this often. */
export const NO_NODE_RETRY_MS = 1000;
const MAX_DIALERS = 4096;
const MAX_EXCLUDE = 64;

/** A node with one set of credentials; per-device keys make several per node. */
interface NodeRef {
  readonly id: string;
  readonly dialer: Dialer;
  /** UDP streams through the same node and key (no failover: a silent UDP target proves nothing about the node). */
  readonly packets: PacketDialer;
  /** The Shadowsocks server's address (what a liveness probe connects to). */
  readonly addr: Target;
  /** When a stream through this key last got an answer (mirrors the dialer's trust window). */
  confirmedAt: number;
}

/** Codes the Shadowsocks layer uses that the protocol does not (docs/03 §7), mapped for stream_close. */
const DIAL_CODES: Record<string, string> = {
  upstream_error: Code.upstream_unreachable,
  upstream_protocol_error: Code.upstream_protocol,
  ss_unsupported_method: Code.upstream_protocol,
  ss_bad_prefix: Code.upstream_protocol,
  bad_address: Code.bad_target,
  aborted: Code.cancelled,
};
const STREAM_CODES: Record<string, string> = { ...DIAL_CODES, upstream_error: Code.upstream_reset };

function normalize(e: unknown, codes: Record<string, string>): StreamError {
  if (!(e instanceof StreamError)) return new StreamError(Code.internal, "the Outline upstream failed unexpectedly");
  if (isErrorCode(e.code)) return e;
  return new StreamError(codes[e.code] ?? Code.internal, e.message);
}

/** Dial failures that are the node's (the dial only reaches the Shadowsocks server, never the target). */
const NODE_FAILURES = new Set<string>([
  Code.upstream_refused,
  Code.upstream_unreachable,
  Code.upstream_timeout,
  Code.upstream_reset,
  Code.upstream_protocol,
]);

/** The gateway-wide part: dialers per credentials, and which nodes failed lately. */
export class OutlineUpstream {
  private readonly dialers = new Map<string, NodeRef>();
  private readonly failures = new Map<string, number>();
  /** Liveness probes per node address; `sent` once the connect went out (later ends need the next one). */
  private readonly probes = new Map<string, { sent: boolean; result: Promise<boolean> }>();
  private readonly base: Dialer;
  private readonly packetBase: PacketDialer;
  readonly now: () => number;

  constructor(private readonly opts: OutlineUpstreamOptions) {
    this.base = opts.base ?? tcpDialer({ connectTimeoutMs: opts.dialTimeoutMs });
    this.packetBase = opts.packetBase ?? udpDialer();
    this.now = opts.now ?? (() => performance.now());
  }

  /** The session's Upstream: its assigned node (or none yet), with failover. */
  forSession(assignment: Assignment | null, ctx: UpstreamContext): Upstream {
    const nodes = new SessionNodes(this, ctx, assignment && this.node(assignment));
    return {
      dialer: nodes,
      packetDialer: { dial: (target, signal) => nodes.dialPackets(target, signal) },
      // One dial may be: a failed node, a re-validation, the next node.
      dialTimeoutMs: 2 * this.opts.dialTimeoutMs + this.opts.backendTimeoutMs + 1000,
    };
  }

  /**
   * One dialer per (node, address, credentials), shared by the sessions that use them, so a key
   * seen working on one session skips the first-answer wait on the next. Keyed by a hash of
   * the password, never the password.
   */
  node(a: Assignment): NodeRef {
    const key = [a.node_id, a.host, a.port, a.method, createHash("sha256").update(a.password).digest("hex"), a.prefix ?? ""].join(
      "\n",
    );
    let ref = this.dialers.get(key);
    if (ref) {
      this.dialers.delete(key); // re-insert: Map order is the LRU order
      this.dialers.set(key, ref);
      return ref;
    }
    let dialer: Dialer;
    try {
      dialer = (this.opts.nodeDialer ?? ((x) => this.shadowsocks(x)))(a);
    } catch (e) {
      // A method or prefix we cannot use: a failure of this node like any other, so the device moves on.
      const err = new StreamError(Code.upstream_protocol, `node ${a.node_id} cannot be used: ${(e as Error).message}`);
      dialer = { dial: () => Promise.reject(err) };
    }
    let packets: PacketDialer;
    try {
      packets = (this.opts.nodePacketDialer ?? ((x) => shadowsocksPacketDialer(x, this.packetBase)))(a);
    } catch (e) {
      const err = new StreamError(Code.upstream_protocol, `node ${a.node_id} cannot carry UDP: ${(e as Error).message}`);
      packets = { dial: () => Promise.reject(err) };
    }
    ref = { id: a.node_id, dialer, packets, addr: { host: a.host, port: a.port }, confirmedAt: -Infinity };
    this.dialers.set(key, ref);
    if (this.dialers.size > MAX_DIALERS) this.dialers.delete(this.dialers.keys().next().value as string);
    return ref;
  }

  private shadowsocks(a: Assignment): Dialer {
    const prefix = a.prefix ? prefixBytes(a.prefix) : undefined;
    return shadowsocksDialer(
      {
        host: a.host,
        port: a.port,
        method: a.method,
        password: a.password,
        prefix: prefix?.length ? prefix : undefined,
        timeoutMs: this.opts.dialTimeoutMs,
        trustWindowMs: KEY_TRUST_MS,
      },
      this.base,
    );
  }

  /** Remember a failed node and report it, once per FAILED_FOR_MS. */
  failed(node: NodeRef, err: StreamError): void {
    const t = this.now();
    const last = this.failures.get(node.id);
    if (last !== undefined && t - last < FAILED_FOR_MS) return;
    this.failures.set(node.id, t);
    if (this.failures.size > MAX_DIALERS) {
      for (const [id, at] of this.failures) if (t - at >= FAILED_FOR_MS) this.failures.delete(id);
    }
    this.opts.logger?.warn("outline node failed; reporting it", { node_id: node.id, code: err.code, error: err.message });
    this.opts.reportFailure(node.id, `${err.code}: ${err.message}`);
  }

  /**
   * Whether a node that just ended a stream still accepts connections. Coalesced per address:
   * ends observed before a probe's connect goes out share it; an end observed after must wait
   * for the next one (a probe sent before the end may predate the node's death). So however
   * many streams end at once, a node gets one probe at a time. The cost: a connect per end (or
   * burst of ends), and the end of a stream waits that round trip.
   */
  async alive(node: NodeRef): Promise<boolean> {
    const key = `${node.addr.host}\n${node.addr.port}`;
    for (let p = this.probes.get(key); p; p = this.probes.get(key)) {
      if (!p.sent) return p.result;
      await p.result;
    }
    const entry = { sent: false, result: Promise.resolve(false) };
    entry.result = new Promise<void>((r) => setTimeout(r, 0)).then(() => {
      entry.sent = true;
      return this.probe(node.addr);
    });
    this.probes.set(key, entry);
    void entry.result.finally(() => {
      if (this.probes.get(key) === entry) this.probes.delete(key);
    });
    return entry.result;
  }

  private probe(addr: Target): Promise<boolean> {
    if (this.opts.probe) return this.opts.probe(addr).catch(() => false);
    return this.base.dial(addr).then(
      (d) => {
        d.close();
        return true;
      },
      () => false,
    );
  }

  recentlyFailed(id: string): boolean {
    const at = this.failures.get(id);
    return at !== undefined && this.now() - at < FAILED_FOR_MS;
  }
}

/** What an OutlineStream asks of its session when its node stays silent. */
interface Mover {
  /** The stream's node answered: its key is good. */
  confirmed(): void;
  /** The node ended the stream: null when it is still there (an ordinary end), else the error to close with (the node is reported). */
  ended(): Promise<StreamError | null>;
  /** The node never answered: report it, move the session, and with `retry` dial the stream again on the next node. */
  silent(err: StreamError, retry: AbortSignal | null): Promise<{ duplex: Duplex; mover: Mover } | null>;
}

/** One session's view: its current node, the nodes it gave up on, one failover at a time. */
class SessionNodes implements Dialer {
  private excluded = new Map<string, number>();
  private switching: Promise<NodeRef | null> | null = null;
  private quietUntil = -Infinity;

  constructor(
    private readonly pool: OutlineUpstream,
    private readonly ctx: UpstreamContext,
    private current: NodeRef | null,
  ) {}

  async dial(target: Target, signal?: AbortSignal): Promise<Duplex> {
    let node = await this.pick();
    if (signal?.aborted) throw new StreamError(Code.cancelled, "the stream was closed");
    if (!node) throw new StreamError(Code.unavailable, "no Outline node is available for this device; retry later");
    let retried = false;
    let inner: Duplex;
    try {
      inner = await node.dialer.dial(target, signal);
    } catch (e) {
      const err = normalize(e, DIAL_CODES);
      if (!NODE_FAILURES.has(err.code) || signal?.aborted) throw err;
      const next = await this.failover(node, err);
      if (!next || signal?.aborted) throw err;
      this.ctx.logger.debug("retrying the stream on the new node", { from: node.id, to: next.id, code: err.code });
      node = next;
      retried = true;
      try {
        inner = await next.dialer.dial(target, signal);
      } catch (e2) {
        const err2 = normalize(e2, DIAL_CODES);
        if (NODE_FAILURES.has(err2.code) && !signal?.aborted) void this.failover(next, err2);
        throw err2;
      }
    }
    // Only an untried, untrusted key arms the first-answer wait, so only then is there a replay to keep.
    const replay = !retried && this.pool.now() - node.confirmedAt >= KEY_TRUST_MS;
    return new OutlineStream(inner, this.mover(node, target), replay);
  }

  /** A UDP stream on the session's current node. */
  async dialPackets(target: Target, signal?: AbortSignal): Promise<PacketConn> {
    const node = await this.pick();
    if (signal?.aborted) throw new StreamError(Code.cancelled, "the stream was closed");
    if (!node) throw new StreamError(Code.unavailable, "no Outline node is available for this device; retry later");
    try {
      return await node.packets.dial(target, signal);
    } catch (e) {
      throw normalize(e, DIAL_CODES);
    }
  }

  private mover(node: NodeRef, target: Target): Mover {
    return {
      confirmed: () => {
        node.confirmedAt = this.pool.now();
      },
      ended: async () => {
        if (await this.pool.alive(node)) return null;
        const err = new StreamError(Code.upstream_reset, "the Outline node went away in the middle of the stream");
        this.pool.failed(node, err);
        return err;
      },
      silent: async (err, retry) => {
        const next = await this.failover(node, err);
        if (!retry || !next || retry.aborted) return null;
        this.ctx.logger.debug("the node stayed silent; moving the stream", { from: node.id, to: next.id });
        try {
          return { duplex: await next.dialer.dial(target, retry), mover: this.mover(next, target) };
        } catch (e) {
          const err2 = normalize(e, DIAL_CODES);
          if (NODE_FAILURES.has(err2.code) && !retry.aborted) void this.failover(next, err2);
          return null;
        }
      },
    };
  }

  private async pick(): Promise<NodeRef | null> {
    const node = this.current;
    if (!node) return this.ask();
    // Another session found this node dead a moment ago: move before paying for the same failure.
    if (this.pool.recentlyFailed(node.id)) return (await this.failover(node, null)) ?? node;
    return node;
  }

  /** `from` failed (err: here; null: elsewhere on this gateway). Resolves with the node to use now, if any. */
  private failover(from: NodeRef, err: StreamError | null): Promise<NodeRef | null> {
    if (err) this.pool.failed(from, err);
    this.excluded.delete(from.id); // re-insert: newest last
    this.excluded.set(from.id, this.pool.now());
    if (this.current && this.current.id !== from.id) return Promise.resolve(this.current); // another stream already moved us
    return this.ask();
  }

  /** Re-validate past the cache, avoiding the nodes that failed; shared by concurrent streams, rate-limited when fruitless. */
  private ask(): Promise<NodeRef | null> {
    if (this.switching) return this.switching;
    if (this.pool.now() < this.quietUntil) return Promise.resolve(null);
    this.switching = this.revalidate().finally(() => {
      this.switching = null;
    });
    return this.switching;
  }

  private async revalidate(): Promise<NodeRef | null> {
    const t = this.pool.now();
    for (const [id, at] of this.excluded) if (t - at >= FAILED_FOR_MS) this.excluded.delete(id);
    // The backend takes at most 64; the newest failures matter most.
    const exclude = [...this.excluded.keys()].slice(-MAX_EXCLUDE);
    let a: Assignment | null = null;
    try {
      const r = await this.ctx.revalidate(exclude.length ? { exclude_node_ids: exclude } : {});
      a = r.ok ? r.assignment : null;
    } catch {
      a = null;
    }
    if (!a || this.excluded.has(a.node_id)) {
      this.quietUntil = this.pool.now() + NO_NODE_RETRY_MS;
      return null;
    }
    const next = this.pool.node(a);
    const moved = this.current?.id !== next.id;
    this.current = next;
    if (moved) this.ctx.nodeChanged(next.id);
    return next;
  }
}

/**
 * A Shadowsocks stream that can move once to another node while that node has not answered
 * yet: it keeps what the client wrote until the first answer, and on a silent-node timeout
 * dials again (through its Mover) and replays it. The caller sees one Duplex throughout.
 */
class OutlineStream implements Duplex {
  private readonly inbox = new DuplexInbox();
  private replay: Uint8Array[] | null;
  private replayBytes = 0;
  private confirmed = false;
  private writeEnded = false;
  private paused = false;
  private closing = false;
  private done = false;
  /** Set while the stream is between nodes. */
  private moving: AbortController | null = null;
  /** Set while an end from the node waits for the node's liveness check; a close meanwhile waits too. */
  private checkingEnd = false;
  private heldClose: { err?: StreamError } | null = null;
  private owesDrain = false;

  constructor(
    private inner: Duplex,
    private mover: Mover,
    replay: boolean,
  ) {
    this.replay = replay ? [] : null;
  }

  start(h: DuplexHandlers): void {
    if (!this.inbox.start(h) || this.done) return;
    this.attach(this.inner);
  }

  private attach(d: Duplex): void {
    d.start({
      data: (c) => {
        if (d !== this.inner || this.done) return;
        this.confirm(true);
        this.inbox.deliver(c);
      },
      end: () => {
        if (d !== this.inner || this.done) return;
        this.confirm(false);
        this.checkEnd(d);
      },
      drain: () => {
        if (d === this.inner && !this.done) this.inbox.drain();
      },
      close: (err) => {
        if (d !== this.inner) return;
        if (this.checkingEnd && !this.closing) this.heldClose = { err };
        else this.onInnerClose(err);
      },
    });
    if (this.paused) d.pause();
  }

  /** An end from the node is passed on only once the node is known to be alive (see the top of this file). */
  private checkEnd(d: Duplex): void {
    this.checkingEnd = true;
    void this.mover.ended().then((err) => {
      this.checkingEnd = false;
      if (this.done) return;
      if (err) {
        this.finish(err);
        d.close(err);
        return;
      }
      this.inbox.end();
      const held = this.heldClose;
      this.heldClose = null;
      if (held) this.onInnerClose(held.err);
    });
  }

  /** `answered`: data came, so the key works. A bare end (the target refused) proves nothing about the key, but ends any retry. */
  private confirm(answered: boolean): void {
    if (this.confirmed) return;
    this.confirmed = true;
    this.replay = null;
    this.replayBytes = 0;
    if (answered) this.mover.confirmed();
  }

  private onInnerClose(err?: StreamError): void {
    if (this.done) return;
    const e = err && normalize(err, STREAM_CODES);
    if (!this.closing && !this.confirmed && e?.code === Code.upstream_timeout) {
      if (this.replay) return this.move(e);
      void this.mover.silent(e, null);
    }
    this.finish(e);
  }

  private move(err: StreamError): void {
    const ctrl = new AbortController();
    this.moving = ctrl;
    const settle = (next: { duplex: Duplex; mover: Mover } | null) => {
      if (this.moving !== ctrl) {
        next?.duplex.close();
        return;
      }
      this.moving = null;
      if (!next) return this.finish(err);
      const replay = this.replay ?? [];
      this.replay = null; // once: the new node's silence ends the stream
      this.replayBytes = 0;
      this.inner = next.duplex;
      this.mover = next.mover;
      this.attach(next.duplex);
      let ok = true;
      for (const c of replay) ok = next.duplex.write(c);
      if (this.writeEnded) next.duplex.closeWrite();
      if (this.owesDrain) {
        this.owesDrain = false;
        // Otherwise the new inner's own drain event comes through attach().
        if (ok) this.inbox.drain();
      }
    };
    this.mover.silent(err, ctrl.signal).then(settle, () => settle(null));
  }

  write(chunk: Uint8Array): boolean {
    if (this.done || this.closing || this.writeEnded) return false;
    if (this.moving) {
      // Between nodes: everything waits for the replay; past the limit, push back on the caller.
      this.replay!.push(chunk);
      this.replayBytes += chunk.length;
      if (this.replayBytes < REPLAY_LIMIT) return true;
      this.owesDrain = true;
      return false;
    }
    if (this.replay) {
      if (this.replayBytes + chunk.length <= REPLAY_LIMIT) {
        this.replay.push(chunk);
        this.replayBytes += chunk.length;
      } else {
        // Too much to replay: this stream stays where it is (its node is still reported if silent).
        this.replay = null;
        this.replayBytes = 0;
      }
    }
    return this.inner.write(chunk);
  }

  closeWrite(): void {
    if (this.done || this.closing || this.writeEnded) return;
    this.writeEnded = true;
    if (!this.moving) this.inner.closeWrite();
  }

  close(err?: StreamError): void {
    if (this.done || this.closing) return;
    this.closing = true;
    this.replay = null;
    if (this.moving) {
      // The old inner is already gone; whatever the move brings is closed on arrival.
      this.moving.abort();
      this.moving = null;
      this.finish(err);
      return;
    }
    this.inner.close(err); // its close callback finishes this stream
  }

  pause(): void {
    this.paused = true;
    if (!this.moving && !this.done) this.inner.pause();
  }

  resume(): void {
    this.paused = false;
    if (!this.moving && !this.done) this.inner.resume();
  }

  private finish(err?: StreamError): void {
    if (this.done) return;
    this.done = true;
    this.replay = null;
    this.inbox.close(err);
  }
}
