// Plain UDP as a PacketDialer over node:dgram (the same module on Node, Bun and Deno). Each
// dial is one connected socket: the kernel picks the source port, and only datagrams from the
// target are delivered (checked here too: Deno's connect does not filter in every version).
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { parseIP, parseIPv4, unmapIPv4 } from "../protocol/ip-address.ts";
import { type PacketConn, type PacketDialer, type PacketHandlers, PacketInbox } from "./packet.ts";
import { StreamError, type Target } from "./stream.ts";
import { streamErrorFromSocket } from "./tcp.ts";

export interface UdpDialerOptions {
  /** Sends handed to the socket and not yet completed; beyond this a datagram is dropped. Default 256. */
  maxInFlight?: number;
  /** The same bound in bytes, so large datagrams cannot multiply it. Default 256 KiB (a stream window). */
  maxInFlightBytes?: number;
}

const DEFAULT_MAX_IN_FLIGHT = 256;
const DEFAULT_MAX_IN_FLIGHT_BYTES = 256 * 1024;

/** Same address, whatever the text form (IPv6 compression, v4-mapped). */
export function sameAddress(a: string, b: string): boolean {
  const norm = (t: string) => {
    const ip = parseIP(t);
    if (!ip) return t.toLowerCase();
    const v4 = ip.length === 4 ? ip : unmapIPv4(ip);
    return v4 ? v4.join(".") : ip.join(",");
  };
  return norm(a) === norm(b);
}

export function udpDialer(opts: UdpDialerOptions = {}): PacketDialer {
  const limits = {
    count: opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
    bytes: opts.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES,
  };
  return {
    async dial(target: Target, signal?: AbortSignal): Promise<PacketConn> {
      if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
        throw new StreamError("bad_target", `port ${target.port} is out of range`);
      }
      let host = target.host;
      if (!parseIP(host)) {
        try {
          host = (await lookup(host)).address;
        } catch (e) {
          throw streamErrorFromSocket(e, `resolve ${host}`);
        }
      }
      if (signal?.aborted) throw new StreamError("aborted", "dial aborted");
      const socket = dgram.createSocket(parseIPv4(host) ? "udp4" : "udp6");
      const conn = new UdpConn(socket, host, target.port, limits);
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
  private readonly inbox = new PacketInbox();
  private sendDrops = 0;
  private inFlight = 0;
  private inFlightBytes = 0;

  constructor(
    private readonly socket: dgram.Socket,
    private readonly host: string,
    private readonly port: number,
    private readonly limits: { count: number; bytes: number },
  ) {}

  get dropped(): number {
    return this.inbox.dropped + this.sendDrops;
  }

  listen(): void {
    this.socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
      if (rinfo.port !== this.port || !sameAddress(rinfo.address, this.host)) {
        this.inbox.dropped++;
        return;
      }
      this.inbox.deliver(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
    });
    // A connected UDP socket reports the target's ICMP port-unreachable as ECONNREFUSED (Node,
    // Bun): the association is over, as a TCP reset would end a stream.
    this.socket.on("error", (e) => this.close(streamErrorFromSocket(e, `udp ${this.host}:${this.port}`)));
  }

  start(h: PacketHandlers): void {
    this.inbox.start(h);
  }

  send(datagram: Uint8Array): boolean {
    const n = datagram.length;
    if (this.inbox.isClosed || this.inFlight >= this.limits.count || this.inFlightBytes + n > this.limits.bytes) {
      this.sendDrops++;
      return false;
    }
    this.inFlight++;
    this.inFlightBytes += n;
    const done = () => {
      this.inFlight--;
      this.inFlightBytes -= n;
    };
    try {
      this.socket.send(datagram, done);
    } catch {
      done();
      this.sendDrops++;
      return false;
    }
    return true;
  }

  close(err?: StreamError): void {
    if (this.inbox.isClosed) return;
    try {
      this.socket.close();
    } catch {
      // never bound or already closed
    }
    this.inbox.close(err);
  }
}
