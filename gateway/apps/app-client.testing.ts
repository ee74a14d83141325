// The app side of the gateway's app paths, written from the protocols' documents for tests:
// a WebSocket whose binary messages are collected, a Shadowsocks AEAD stream client (salt, SOCKS
// address, chunks; shadowsocks-org aead.md), Mux.Cool frames (protocol/mux-cool.ts), and
// Outline's websocket-packet framing (outline-sdk transport/shadowsocks/packet.go: one
// `salt ‖ AEAD(SOCKS address ‖ payload)` per binary message, replies the same with the source),
// and the first write sent as WebSocket early data the ways Xray and mihomo send it.
import { MuxCoolDecoder, type MuxFrame } from "../../protocol/mux-cool.ts";
import { encodeEarlyData } from "../../protocol/ws-early-data.ts";
import { encodeAddress } from "../../protocol/socks-address.ts";
import { type SessionSocket, wsConnect } from "../../runtime/index.ts";
import { AeadDecryptor, AeadEncryptor } from "../../shadowsocks/aead-stream.ts";
import { cipherSpec } from "../../shadowsocks/ciphers.ts";
import { evpBytesToKey } from "../../shadowsocks/kdf.ts";
import { concatBytes as concat } from "../../shadowsocks/test-vectors.ts";
import { UdpCodec } from "../../shadowsocks/udp.ts";
import { StreamError, type Target } from "../../transport/stream.ts";

/** A client WebSocket that keeps what arrives. */
export interface AppWs {
  socket: SessionSocket;
  messages: Uint8Array[];
  closes: [number, string][];
  /** When the close came (performance.now()). */
  closedAt?: number;
}

export async function openAppWs(
  url: string,
  ca: string,
  headers?: Record<string, string>,
  protocols?: string[],
): Promise<AppWs> {
  const ws = { messages: [] as Uint8Array[], closes: [] as [number, string][] } as AppWs;
  ws.socket = await wsConnect(url, { ca, headers, protocols }, () => ({
    message: (m) => void ws.messages.push(typeof m === "string" ? new TextEncoder().encode(m) : m),
    drain() {},
    close: (code, reason) => {
      ws.closes.push([code, reason]);
      ws.closedAt = performance.now();
    },
  }));
  return ws;
}

/**
 * How a client with `?ed=N` in its path sends the start of its first write in
 * Sec-WebSocket-Protocol, base64url without padding (Xray `transport/internet/websocket/dialer.go`, mihomo `transport/vmess/websocket.go`):
 * - `xray` (Xray-core transport/internet/websocket/dialer.go): the whole first write when it is
 *   at most N bytes, else none of it (it is then the first message);
 * - `mihomo` (MetaCubeX/mihomo transport/vmess/websocket.go): the first min(N, length) bytes,
 *   the rest as the first message.
 */
export type EarlyDataClient = "xray" | "mihomo";

/** What went where when a first write was sent with early data. */
export interface EarlyDataWs extends AppWs {
  /** The bytes in Sec-WebSocket-Protocol (none: no header was sent). */
  early: Uint8Array;
  /** The header value sent; undefined when none. */
  header: string | undefined;
  /** The bytes sent as the first message (none: no message). */
  rest: Uint8Array;
}

/** Open `url` (with its `?ed=N`) and send `first` as `client` does with early data of at most `ed` bytes. */
export async function openWithEarlyData(
  url: string,
  ca: string,
  client: EarlyDataClient,
  ed: number,
  first: Uint8Array,
): Promise<EarlyDataWs> {
  const cut = client === "xray" ? (first.length <= ed ? first.length : 0) : Math.min(ed, first.length);
  const early = first.subarray(0, cut);
  const rest = first.subarray(cut);
  const header = early.length > 0 ? encodeEarlyData(early) : undefined;
  const ws = await openAppWs(url, ca, undefined, header === undefined ? undefined : [header]);
  if (rest.length > 0) ws.socket.send(rest);
  return Object.assign(ws, { early, header, rest });
}

/** Both directions of one Shadowsocks stream, client side. */
export class SsClient {
  private readonly enc: AeadEncryptor;
  private readonly dec: AeadDecryptor;
  private first: Uint8Array | null;
  /** Plaintext received so far, and the server's salt once seen. */
  received: Uint8Array[] = [];
  error: StreamError | undefined;

  constructor(method: string, secret: string, target: Target) {
    const spec = cipherSpec(method);
    const key = evpBytesToKey(secret, spec.keyLen);
    this.enc = new AeadEncryptor(spec, key);
    this.dec = new AeadDecryptor(spec, key);
    this.first = encodeAddress(target);
  }

  /** Wire bytes for `plain` (the address goes in front of the first). */
  seal(plain: Uint8Array): Uint8Array {
    const p = this.first ? concat([this.first, plain]) : plain;
    this.first = null;
    return this.enc.seal(p);
  }

  /** Feed wire bytes from the server. */
  open(bytes: Uint8Array): void {
    const r = this.dec.push(bytes);
    if (r instanceof StreamError) this.error = r;
    else this.received.push(...r);
  }

  get text(): string {
    return new TextDecoder().decode(concat(this.received));
  }

  get bytes(): Uint8Array {
    return concat(this.received);
  }

  get serverSalt(): Uint8Array | null {
    return this.dec.salt;
  }
}

/** Splits Mux.Cool frames out of what a server sent. */
export class MuxReader {
  private readonly dec = new MuxCoolDecoder();
  frames: MuxFrame[] = [];
  push(bytes: Uint8Array): void {
    const r = this.dec.push(bytes);
    if (r instanceof StreamError) throw r;
    this.frames.push(...r);
  }
  /** Data of session `id`'s Keep frames. */
  data(id: number): Uint8Array {
    return concat(this.frames.filter((f) => f.sessionId === id && f.status === "keep" && f.data).map((f) => f.data!));
  }
  ended(id: number): boolean {
    return this.frames.some((f) => f.sessionId === id && f.status === "end");
  }
}

/** Outline's websocket-packet: one packet per message. */
export function udpCodec(method: string, secret: string): UdpCodec {
  return new UdpCodec(method, secret);
}
