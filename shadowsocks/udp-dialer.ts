// Shadowsocks AEAD over UDP as a PacketDialer: one association per target, carried to the
// server's UDP port on the same cipher and key as TCP. Every datagram is sealed with its own
// salt and the target's address (udp.ts); a reply counts only if it opens with our key and
// its header names the target (the server writes the source it got the reply from), so
// neither garbage nor another target's packets reach the caller.
import { type PacketConn, type PacketDialer, type PacketHandlers } from "../transport/packet.ts";
import { StreamError, type Target } from "../transport/stream.ts";
import { sameAddress } from "../transport/udp.ts";
import { parseIP } from "../protocol/ip-address.ts";
import { encodeAddress } from "../protocol/socks-address.ts";
import { UdpCodec } from "./udp.ts";

export interface ShadowsocksUdpConfig {
  /** The server's address and (UDP) port: Shadowsocks servers listen for UDP on the TCP port. */
  host: string;
  port: number;
  method: string;
  password: string;
}

export function shadowsocksPacketDialer(cfg: ShadowsocksUdpConfig, base: PacketDialer): PacketDialer {
  // Throws ss_unsupported_method / ss_bad_key now, at set-up, like the TCP dialer.
  const codec = new UdpCodec(cfg.method, cfg.password);
  return {
    async dial(target: Target, signal?: AbortSignal): Promise<PacketConn> {
      let header: Uint8Array;
      try {
        header = encodeAddress(target);
      } catch (e) {
        throw e instanceof StreamError ? new StreamError("bad_target", e.message) : e;
      }
      const inner = await base.dial({ host: cfg.host, port: cfg.port }, signal);
      return new ShadowsocksPackets(inner, codec, header, target);
    },
  };
}

class ShadowsocksPackets implements PacketConn {
  private ownDrops = 0;
  /** A name cannot be compared with the address the server resolved it to; the port still must match. */
  private readonly literal: boolean;

  constructor(
    private readonly inner: PacketConn,
    private readonly codec: UdpCodec,
    private readonly header: Uint8Array,
    private readonly target: Target,
  ) {
    this.literal = parseIP(target.host) !== null;
  }

  get dropped(): number {
    return this.inner.dropped + this.ownDrops;
  }

  start(h: PacketHandlers): void {
    this.inner.start({
      data: (packet) => {
        const r = this.codec.decode(packet);
        if (
          r instanceof StreamError || r.target.port !== this.target.port ||
          (this.literal && !sameAddress(r.target.host, this.target.host))
        ) {
          this.ownDrops++;
          return;
        }
        h.data(r.payload);
      },
      close: (err) => h.close(err),
    });
  }

  send(datagram: Uint8Array): boolean {
    return this.inner.send(this.codec.encode(this.header, datagram));
  }

  close(err?: StreamError): void {
    this.inner.close(err);
  }
}
