// SOCKS5 UDP ASSOCIATE (RFC 1928 §7) over a PacketDialer (the tunnel's UDP streams).
//
// The relay is a UDP socket bound on the address the client reached the proxy on (loopback),
// announced in the reply. It takes datagrams only from the control connection's peer address
// (and, when the request named one, only from that port; otherwise from the first port that
// sends), reads the header RSV(2) FRAG ATYP DST.ADDR DST.PORT, drops fragments (FRAG ≠ 0), and
// sends the payload on one tunnel UDP stream per destination. Replies come back with the
// destination as the header's address. At most `maxDestinations` streams per association:
// a new destination beyond that closes the least recently used one. The association, its
// socket and its streams end when the TCP control connection closes.
import dgram from "node:dgram";
import type * as net from "node:net";
import type { Logger } from "../logging/logger.ts";
import { Code } from "../protocol/errors.ts";
import { decodeAddress, encodeAddress } from "../protocol/socks-address.ts";
import type { PacketConn, PacketDialer } from "../transport/packet.ts";
import { StreamError, type Target } from "../transport/stream.ts";
import { sameAddress } from "../transport/udp.ts";

export const DEFAULT_MAX_DESTINATIONS = 64;
/** Datagrams held per destination while its stream is being opened; more are dropped. */
const PENDING_PER_DESTINATION = 16;

export interface UdpAssociateOptions {
  packetDialer: PacketDialer;
  logger?: Logger;
  maxDestinations?: number;
}

export type UdpHeader = { frag: number; target: Target; payload: Uint8Array } | { error: string };

/** RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA, as a SOCKS5 client sends it to the relay. */
export function parseUdpHeader(b: Uint8Array): UdpHeader {
  if (b.length < 4) return { error: "shorter than a header" };
  if (b[0] !== 0 || b[1] !== 0) return { error: "RSV is not zero" };
  const addr = decodeAddress(b, 3);
  if (addr instanceof StreamError) return { error: addr.message };
  if (addr.port === 0) return { error: "port 0" };
  return { frag: b[2]!, target: { host: addr.host, port: addr.port }, payload: b.subarray(3 + addr.length) };
}

/** The header in front of a reply from `from`. */
export function udpReplyHeader(from: Target): Uint8Array {
  const addr = encodeAddress(from);
  const out = new Uint8Array(3 + addr.length);
  out.set(addr, 3);
  return out;
}

/** VER REP RSV ATYP BND.ADDR BND.PORT: where the client must send its datagrams. */
export function socksBoundReply(rep: number, bound: Target): Uint8Array {
  const addr = encodeAddress(bound);
  const out = new Uint8Array(3 + addr.length);
  out[0] = 0x05;
  out[1] = rep;
  out.set(addr, 3);
  return out;
}

interface Destination {
  conn: PacketConn | null;
  pending: Uint8Array[];
  header: Uint8Array;
}

export interface UdpAssociation {
  /** The relay socket's address, as announced to the client. */
  readonly bound: Target;
  /** Datagrams dropped: fragments, bad headers, strangers, full queues. */
  readonly dropped: number;
  readonly destinations: number;
  readonly closed: Promise<void>;
}

const unmapped = (a: string) => a.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "");

/**
 * Serve one UDP ASSOCIATE on `control` (its handshake done; the success reply not yet sent).
 * `hint` is the request's DST.ADDR/PORT: where the client will send from, 0 when unknown.
 */
export async function udpAssociate(control: net.Socket, hint: Target, opts: UdpAssociateOptions): Promise<UdpAssociation> {
  const log = opts.logger;
  const max = opts.maxDestinations ?? DEFAULT_MAX_DESTINATIONS;
  const localAddress = unmapped(control.localAddress ?? "127.0.0.1");
  const clientAddress = unmapped(control.remoteAddress ?? "");
  const relay = dgram.createSocket(localAddress.includes(":") ? "udp6" : "udp4");
  const destinations = new Map<string, Destination>();
  let clientPort = hint.port || 0;
  let dropped = 0;
  let over = false;
  let finished!: () => void;
  const closed = new Promise<void>((r) => (finished = r));

  const end = () => {
    if (over) return;
    over = true;
    for (const d of destinations.values()) d.conn?.close(new StreamError(Code.cancelled, "the SOCKS5 association ended"));
    destinations.clear();
    try {
      relay.close();
    } catch {
      // never bound
    }
    if (!control.destroyed) control.destroy();
    finished();
  };

  relay.on("error", (e) => {
    log?.debug("socks5 udp: relay socket error", { error: e });
    end();
  });
  relay.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    if (over) return;
    // Only the client that holds the control connection may use its relay.
    if (!sameAddress(rinfo.address, clientAddress) || (clientPort !== 0 && rinfo.port !== clientPort)) {
      dropped++;
      return;
    }
    clientPort = rinfo.port;
    const h = parseUdpHeader(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
    if ("error" in h || h.frag !== 0) {
      // Fragmentation is optional (§7) and this relay does not reassemble: fragments are dropped.
      dropped++;
      return;
    }
    forward(h.target, h.payload.slice());
  });

  function forward(target: Target, payload: Uint8Array): void {
    const key = `${target.host}|${target.port}`;
    let d = destinations.get(key);
    if (d) {
      destinations.delete(key); // re-insert: Map order is the LRU order
      destinations.set(key, d);
    } else {
      if (destinations.size >= max) {
        const [oldKey, old] = destinations.entries().next().value as [string, Destination];
        destinations.delete(oldKey);
        old.conn?.close();
      }
      d = { conn: null, pending: [], header: udpReplyHeader(target) };
      destinations.set(key, d);
      open(key, target, d);
    }
    if (d.conn) {
      if (!d.conn.send(payload)) dropped++;
    } else if (d.pending.length < PENDING_PER_DESTINATION) d.pending.push(payload);
    else dropped++;
  }

  function open(key: string, target: Target, d: Destination): void {
    opts.packetDialer.dial(target).then(
      (conn) => {
        if (over || destinations.get(key) !== d) return conn.close();
        d.conn = conn;
        conn.start({
          data: (datagram) => {
            if (over || clientPort === 0) return;
            const out = new Uint8Array(d.header.length + datagram.length);
            out.set(d.header);
            out.set(datagram, d.header.length);
            relay.send(out, clientPort, clientAddress);
          },
          close: (err) => {
            if (err) log?.debug("socks5 udp: stream ended", { target: `${target.host}:${target.port}`, code: err.code });
            // The next datagram to this destination opens a new stream.
            if (destinations.get(key) === d) destinations.delete(key);
          },
        });
        for (const p of d.pending.splice(0)) if (!conn.send(p)) dropped++;
      },
      (e: unknown) => {
        log?.debug("socks5 udp: cannot open a stream", {
          target: `${target.host}:${target.port}`,
          code: e instanceof StreamError ? e.code : Code.internal,
        });
        dropped += d.pending.length;
        if (destinations.get(key) === d) destinations.delete(key);
      },
    );
  }

  await new Promise<void>((resolve, reject) => {
    relay.once("error", reject);
    relay.bind(0, localAddress, () => {
      relay.off("error", reject);
      resolve();
    });
  });
  const bound = { host: localAddress, port: relay.address().port };
  // The control connection carries nothing more; its end is the association's.
  control.on("data", () => {});
  control.on("error", end);
  control.on("close", end);
  control.on("end", end);
  control.resume();
  if (control.destroyed) end();
  return {
    bound,
    get dropped() {
      return dropped;
    },
    get destinations() {
      return destinations.size;
    },
    closed,
  };
}
