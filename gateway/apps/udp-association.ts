// One WebSocket on a device's `/<P>/udp` path: Outline's websocket-packet (outline-ss-server
// service/udp.go; outline-sdk transport/shadowsocks/packet_listener.go). Every binary message
// is one Shadowsocks UDP packet `salt ‖ AEAD(SOCKS address ‖ payload)` naming its own target;
// every datagram back is one message, sealed under the device key with the replying target's
// address. The first message must decrypt, or the connection is absorbed like a TCP probe;
// later ones that do not are dropped. No datagram either way for GATEWAY_UDP_IDLE_TIMEOUT ends
// the association with Close 1000.
//
// Memory: one PacketConn per target, at most MAX_TARGETS; a few datagrams wait for a dial; a
// datagram for an app whose WebSocket is over its high-water mark is dropped, not queued.
import type { Logger } from "../../logging/logger.ts";
import { formatHostPort } from "../../protocol/ip-address.ts";
import type { SessionHandler, SessionSocket } from "../../runtime/types.ts";
import type { PacketConn } from "../../transport/packet.ts";
import { StreamError, type Target } from "../../transport/stream.ts";
import type { Upstream } from "../upstream/upstream.ts";
import type { DeviceKey } from "./device-key.ts";
import type { Meter } from "./metered.ts";

/** Targets one association may talk to at once (a DNS resolver, a game server, a few peers). */
export const MAX_TARGETS = 64;
/** Datagrams per target held while it dials. */
const PENDING_DATAGRAMS = 16;

export interface UdpAssociationDeps {
  socket: SessionSocket;
  key: DeviceKey;
  upstream: Upstream;
  idleTimeoutMs: number;
  probeTimeoutMs: number;
  highWater: number;
  log: Logger;
  meter: Meter;
  /** The first packet decrypted: the association is real. */
  opened(): void;
  probe(code: string): void;
  /** Datagrams dropped (bad packets later on, full queues, too many targets). */
  dropped(n: number): void;
}

interface Peer {
  target: Target;
  conn: PacketConn | null;
  pending: Uint8Array[];
  ctrl: AbortController;
}

export class UdpAssociation {
  private readonly peers = new Map<string, Peer>();
  private readonly acceptedAt = performance.now();
  private opened = false;
  private absorbing = false;
  private closed = false;
  private last = Date.now();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly d: UdpAssociationDeps) {
    // Until the first packet decrypts, the probe deadline; then the idle timeout.
    this.timer = setTimeout(() => this.absorbFor("app_no_packet"), d.probeTimeoutMs);
  }

  handler(): SessionHandler {
    return {
      message: (m) => this.message(m),
      drain() {},
      close: () => this.teardown(),
    };
  }

  /** Close now (access ended, the gateway stops). */
  terminate(code: number): void {
    this.d.socket.close(code, "");
    this.teardown();
  }

  private message(m: string | Uint8Array): void {
    if (this.closed || this.absorbing) return;
    if (typeof m === "string") return this.bad(new StreamError("app_text_message", "a text message on the UDP path"));
    const p = this.d.key.udp.decode(m);
    if (p instanceof StreamError) return this.bad(p);
    if (!this.opened) {
      this.opened = true;
      clearTimeout(this.timer);
      this.armIdle();
      this.d.opened();
    }
    this.last = Date.now();
    this.d.meter.bytes("up", p.payload.length);
    const key = formatHostPort(p.target.host, p.target.port);
    let peer = this.peers.get(key);
    if (!peer) {
      if (this.peers.size >= MAX_TARGETS) return this.d.dropped(1);
      peer = this.dial(key, p.target);
    }
    if (peer.conn) peer.conn.send(p.payload);
    else if (peer.pending.length < PENDING_DATAGRAMS) peer.pending.push(p.payload);
    else this.d.dropped(1);
  }

  private dial(key: string, target: Target): Peer {
    const peer: Peer = { target, conn: null, pending: [], ctrl: new AbortController() };
    this.peers.set(key, peer);
    const dialer = this.d.upstream.packetDialer;
    const gone = (err?: StreamError) => {
      if (this.peers.get(key) !== peer) return;
      this.peers.delete(key);
      this.d.dropped(peer.pending.length);
      peer.pending = [];
      if (err) this.d.log.debug("app udp target closed", { code: err.code });
    };
    if (!dialer) {
      queueMicrotask(() => gone(new StreamError("udp_unsupported", "this upstream carries no UDP")));
      return peer;
    }
    dialer.dial(target, peer.ctrl.signal).then(
      (conn) => {
        if (this.closed || this.peers.get(key) !== peer) return conn.close();
        peer.conn = conn;
        conn.start({
          data: (d) => this.reply(peer, d),
          close: (err) => gone(err),
        });
        const held = peer.pending;
        peer.pending = [];
        for (const d of held) conn.send(d);
      },
      (e: unknown) => gone(e instanceof StreamError ? e : new StreamError("upstream_unreachable", "could not reach the target")),
    );
    return peer;
  }

  private reply(peer: Peer, datagram: Uint8Array): void {
    if (this.closed) return;
    if (this.d.socket.bufferedAmount > this.d.highWater) return this.d.dropped(1);
    this.last = Date.now();
    this.d.meter.bytes("down", datagram.length);
    this.d.socket.send(this.d.key.udp.encode(peer.target, datagram));
  }

  private bad(err: StreamError): void {
    // After the first good packet a bad one is only dropped: UDP loses packets anyway.
    if (this.opened) return this.d.dropped(1);
    this.absorbFor(err.code);
  }

  /** Read and discard until the probe deadline from the accept, then close (Outline closes at once; quiet is the same). */
  private absorbFor(code: string): void {
    if (this.absorbing || this.closed) return;
    this.absorbing = true;
    this.d.probe(code);
    this.d.log.debug("app udp connection absorbed", { code });
    clearTimeout(this.timer);
    const wait = Math.max(0, this.acceptedAt + this.d.probeTimeoutMs - performance.now());
    this.timer = setTimeout(() => this.d.socket.close(1000, ""), wait);
  }

  private armIdle(): void {
    const ms = this.d.idleTimeoutMs;
    const check = () => {
      if (this.closed) return;
      const quiet = Date.now() - this.last;
      if (quiet >= ms) return this.d.socket.close(1000, "");
      this.timer = setTimeout(check, ms - quiet);
    };
    this.timer = setTimeout(check, ms);
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    for (const p of this.peers.values()) {
      p.ctrl.abort();
      p.conn?.close();
    }
    this.peers.clear();
  }
}
