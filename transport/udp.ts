// Plain UDP as a PacketDialer over node:dgram (the same module on Node, Bun and Deno). Each
// dial is one connected socket: the kernel picks the source port, and only datagrams from the
// target are delivered (checked here too: Deno's connect does not filter in every version).
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { parseIPv4, parseIPv6 } from "../shadowsocks/address.ts";
import { EARLY_DATAGRAMS, type PacketConn, type PacketDialer, type PacketHandlers } from "./packet.ts";
import { StreamError, type Target } from "./stream.ts";
import { streamErrorFromSocket } from "./tcp.ts";

export interface UdpDialerOptions {
  /** Sends handed to the socket and not yet completed; beyond this a datagram is dropped. Default 64. */
  maxInFlight?: number;
}

const DEFAULT_MAX_IN_FLIGHT = 64;

function bare(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** Same address, whatever the text form (IPv6 compression, v4-mapped). */
export function sameAddress(a: string, b: string): boolean {
  const norm = (t: string) => {
    const h = bare(t);
    const v4 = parseIPv4(h);
    if (v4) return v4.join(".");
    const v6 = parseIPv6(h);
    if (!v6) return h.toLowerCase();
    const mapped = v6.subarray(0, 10).every((x) => x === 0) && v6[10] === 0xff && v6[11] === 0xff;
    return mapped ? Array.from(v6.subarray(12)).join(".") : Array.from(v6).join(",");
  };
  return norm(a) === norm(b);
}

export function udpDialer(opts: UdpDialerOptions = {}): PacketDialer {
  const maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  return {
    async dial(target: Target, signal?: AbortSignal): Promise<PacketConn> {
      if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) throw new StreamError("bad_target", `port ${target.port} is out of range`);
      let host = bare(target.host);
      if (!parseIPv4(host) && !parseIPv6(host)) {
        try {
          host = (await lookup(host)).address;
        } catch (e) {
          throw streamErrorFromSocket(e, `resolve ${host}`);
        }
      }
      if (signal?.aborted) throw new StreamError("aborted", "dial aborted");
      const socket = dgram.createSocket(parseIPv4(host) ? "udp4" : "udp6");
      const conn = new UdpConn(socket, host, target.port, maxInFlight);
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once("error", reject);
          socket.connect(target.port, host, () => {
            socket.off("error", reject);
            resolve();
          });
        });
      } catch (e) {
        conn.close();
        throw streamErrorFromSocket(e, `udp ${host}:${target.port}`);
      }
      conn.listen();
      return conn;
    },
  };
}

class UdpConn implements PacketConn {
  dropped = 0;
  private h: PacketHandlers | null = null;
  private early: Uint8Array[] = [];
  private inFlight = 0;
  private closed = false;
  private closeErr: StreamError | undefined;

  constructor(
    private readonly socket: dgram.Socket,
    private readonly host: string,
    private readonly port: number,
    private readonly maxInFlight: number,
  ) {}

  listen(): void {
    this.socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
      if (this.closed) return;
      if (rinfo.port !== this.port || !sameAddress(rinfo.address, this.host)) {
        this.dropped++;
        return;
      }
      const datagram = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      if (this.h) this.h.data(datagram);
      else if (this.early.length < EARLY_DATAGRAMS) this.early.push(datagram);
      else this.dropped++;
    });
    // A connected UDP socket reports the target's ICMP port-unreachable as ECONNREFUSED (Node,
    // Bun): the association is over, as a TCP reset would end a stream.
    this.socket.on("error", (e) => this.close(streamErrorFromSocket(e, `udp ${this.host}:${this.port}`)));
  }

  start(h: PacketHandlers): void {
    if (this.h) return;
    this.h = h;
    if (this.closed) return h.close(this.closeErr);
    const early = this.early;
    this.early = [];
    for (const d of early) {
      if (this.closed) return;
      h.data(d);
    }
  }

  send(datagram: Uint8Array): boolean {
    if (this.closed || this.inFlight >= this.maxInFlight) {
      this.dropped++;
      return false;
    }
    this.inFlight++;
    try {
      this.socket.send(datagram, () => this.inFlight--);
    } catch {
      this.inFlight--;
      this.dropped++;
      return false;
    }
    return true;
  }

  close(err?: StreamError): void {
    if (this.closed) return;
    this.closed = true;
    this.closeErr = err;
    this.early = [];
    try {
      this.socket.close();
    } catch {
      // never bound or already closed
    }
    this.h?.close(err);
  }
}
