// A UDP sub-session of the core layering (v2ray/Xray with mux on, SOCKS UDP through it): its
// New frame fixes the target, every Keep carries one datagram, every datagram back is one Keep
// (v2fly common/mux; Xray's per-packet XUDP addresses are not followed: the New target is the
// association's peer, as in v2fly). Datagrams are dropped, never queued without bound: a few
// wait for the dial, then the PacketConn's own bounded queue drops.
import type { Logger } from "../../logging/logger.ts";
import type { PacketConn } from "../../transport/packet.ts";
import { StreamError } from "../../transport/stream.ts";
import type { Upstream } from "../upstream/upstream.ts";
import type { Meter } from "./metered.ts";
import type { MuxSub } from "./mux-server.ts";

/** Datagrams held while the association dials; more are dropped. */
const PENDING_DATAGRAMS = 16;

export interface MuxUdpOptions {
  idleTimeoutMs: number;
  meter: Meter;
  log: Logger;
}

export function serveMuxUdp(sub: MuxSub, upstream: Upstream, opts: MuxUdpOptions): void {
  let conn: PacketConn | null = null;
  let pending: Uint8Array[] = [];
  let closed = false;
  let last = Date.now();
  /** The connection is over its high-water mark: datagrams for the app are dropped until it drains. */
  let busy = false;
  const ctrl = new AbortController();
  let idle: ReturnType<typeof setTimeout> | undefined;
  const finish = (err?: StreamError) => {
    if (closed) return;
    closed = true;
    clearTimeout(idle);
    ctrl.abort();
    conn?.close(err);
    pending = [];
    sub.close(err);
  };
  const check = () => {
    const quiet = Date.now() - last;
    if (quiet >= opts.idleTimeoutMs) return finish();
    idle = setTimeout(check, opts.idleTimeoutMs - quiet);
  };
  idle = setTimeout(check, opts.idleTimeoutMs);
  const send = (d: Uint8Array) => {
    last = Date.now();
    opts.meter.bytes("up", d.length);
    conn!.send(d);
  };
  sub.start({
    data(d) {
      if (closed) return;
      if (conn) return send(d);
      if (pending.length < PENDING_DATAGRAMS) pending.push(d.slice());
    },
    end: () => finish(),
    drain() {
      busy = false;
    },
    close: (err) => finish(err),
  });
  if (!upstream.packetDialer) return finish(new StreamError("udp_unsupported", "this upstream carries no UDP"));
  upstream.packetDialer.dial(sub.target, ctrl.signal).then(
    (c) => {
      if (closed) return c.close();
      conn = c;
      c.start({
        data(d) {
          if (closed || busy) return;
          last = Date.now();
          opts.meter.bytes("down", d.length);
          busy = !sub.write(d);
        },
        close: (err) => finish(err),
      });
      const held = pending;
      pending = [];
      for (const d of held) send(d);
    },
    (e: unknown) => {
      opts.log.debug("app udp dial failed", { code: e instanceof StreamError ? e.code : "upstream_unreachable" });
      finish(e instanceof StreamError ? e : new StreamError("upstream_unreachable", "could not reach the target"));
    },
  );
}
