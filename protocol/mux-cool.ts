// Mux.Cool, the sub-connection framing of v2ray's mux, byte-exact (v2fly/v2ray-core
// common/mux/frame.go, reader.go, writer.go, server.go; XTLS/Xray-core common/mux/frame.go):
//
//   Frame = MetaLen:u16 | Meta[MetaLen] | (Option & 0x01) DataLen:u16 | Data[DataLen]
//   Meta  = SessionID:u16 | Status:u8 | Option:u8 | (Status New) Network:u8 | Port:u16 | AType:u8 | Addr
//
// All integers are big-endian. The port comes BEFORE the address, and the address types are
// v2ray's (1 IPv4, 2 domain, 3 IPv6), not SOCKS's. It runs inside the WebSocket of a
// v2ray-plugin client (ss-local + v2ray-plugin, mihomo, sing-box), where every sub-session
// carries one whole Shadowsocks stream and the New target means nothing, and inside the
// decrypted Shadowsocks stream of a v2ray/Xray client with mux on (target `v1.mux.cool`), where
// the New target is the real one. Pure: no I/O.
import { StreamError } from "./errors.ts";
import type { Target } from "./frames.ts";
import { formatIPv6, parseIPv4, parseIPv6 } from "./ip-address.ts";
import { UnitReader } from "./unit-reader.ts";

/** v2fly rejects a larger MetaLen ("invalid metalen"); so does mihomo's reader. */
export const MUX_MAX_META_LEN = 512;
/** SessionID, Status and Option: every frame has them. */
export const MUX_MIN_META_LEN = 4;
/** The most data one frame can carry (DataLen is a u16). */
export const MUX_MAX_DATA = 0xffff;
/**
 * Where encodeMuxKeep splits server data. v2ray splits at 8 KiB to interleave many sessions
 * fairly. We split at 16 KiB: one Shadowsocks AEAD chunk is up to 16,417 bytes, the known
 * clients' readers take any DataLen (v2ray's ChunkStreamReader reads at most DataLen into
 * pooled buffers; mihomo and sing-vmess read straight into the caller's buffer), and the
 * plugin clients run one session per WebSocket, where fairness between sessions does not
 * arise. A 16 KiB frame is 1.3 ms of a 100 Mbit/s link, so an interleaved session waits no longer.
 */
export const MUX_DEFAULT_MAX_DATA = 16 * 1024;
/** The target a v2ray/Xray mux client dials; v2fly's server recognises mux by this address alone. */
export const MUX_COOL_DOMAIN = "v1.mux.cool";

export type MuxStatus = "new" | "keep" | "end" | "keepalive";
export type MuxNetwork = "tcp" | "udp";

const STATUS_BY_BYTE: Record<number, MuxStatus> = { 1: "new", 2: "keep", 3: "end", 4: "keepalive" };
const BYTE_BY_STATUS: Record<MuxStatus, number> = { new: 1, keep: 2, end: 3, keepalive: 4 };
const OPTION_DATA = 0x01;
const OPTION_ERROR = 0x02;
const NETWORK_TCP = 0x01;
const NETWORK_UDP = 0x02;
const ATYPE_IPV4 = 0x01;
const ATYPE_DOMAIN = 0x02;
const ATYPE_IPV6 = 0x03;
const GLOBAL_ID_LEN = 8;

export interface MuxFrame {
  sessionId: number;
  status: MuxStatus;
  /** Option bit 0x02: on End it makes the close abortive. */
  error: boolean;
  /** New: the session's network. Keep: "udp" when the frame carries an XUDP packet address. */
  network?: MuxNetwork;
  /** New: the session's target. Keep: the XUDP packet's address (Xray), for this one datagram. */
  target?: Target;
  /** Present exactly when Option bit 0x01 is set (it may be empty). On KeepAlive and End it is to be discarded. */
  data?: Uint8Array;
  /** Xray XUDP: the 8 bytes after the address of a UDP New that carries data, when present. */
  globalId?: Uint8Array;
}

function muxError(code: string, message: string): StreamError {
  return new StreamError(code, `Mux.Cool: ${message}`);
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Port ‖ AType ‖ Addr at `at` inside `meta`: the target and where it ends, or `mux_bad_address`. */
function readAddress(meta: Uint8Array, at: number): { target: Target; end: number } | StreamError {
  if (meta.length < at + 3) return muxError("mux_bad_address", "the address does not fit in the metadata");
  const port = (meta[at]! << 8) | meta[at + 1]!;
  const atype = meta[at + 2]!;
  let p = at + 3;
  let host: string;
  if (atype === ATYPE_IPV4 || atype === ATYPE_IPV6) {
    const n = atype === ATYPE_IPV4 ? 4 : 16;
    if (meta.length < p + n) return muxError("mux_bad_address", "the address does not fit in the metadata");
    const raw = meta.subarray(p, p + n);
    host = n === 4 ? raw.join(".") : formatIPv6(raw);
    p += n;
  } else if (atype === ATYPE_DOMAIN) {
    const n = meta[p] ?? 0;
    p++;
    if (n === 0) return muxError("mux_bad_address", "empty domain name");
    if (meta.length < p + n) return muxError("mux_bad_address", "the address does not fit in the metadata");
    try {
      host = utf8Strict.decode(meta.subarray(p, p + n));
    } catch {
      return muxError("mux_bad_address", "the domain name is not UTF-8");
    }
    p += n;
  } else {
    return muxError("mux_bad_address", `unknown address type ${atype}`);
  }
  return { target: { host, port }, end: p };
}

/** The frame a whole Meta describes (without its data), or the error that ends the connection. */
function parseMeta(meta: Uint8Array): { frame: MuxFrame; hasData: boolean } | StreamError {
  const status = STATUS_BY_BYTE[meta[2]!];
  if (status === undefined) return muxError("mux_bad_status", `unknown session status ${meta[2]}`);
  const option = meta[3]!;
  const frame: MuxFrame = { sessionId: (meta[0]! << 8) | meta[1]!, status, error: (option & OPTION_ERROR) !== 0 };
  const hasData = (option & OPTION_DATA) !== 0;
  if (status === "new") {
    if (meta.length < 8) return muxError("mux_bad_metalen", `a New frame needs at least 8 bytes of metadata, got ${meta.length}`);
    const net = meta[4]!;
    if (net !== NETWORK_TCP && net !== NETWORK_UDP) return muxError("mux_bad_network", `unknown network ${net}`);
    frame.network = net === NETWORK_TCP ? "tcp" : "udp";
    const addr = readAddress(meta, 5);
    if (addr instanceof StreamError) return addr;
    frame.target = addr.target;
    // Xray writes the GlobalID only on a UDP New with data; anything else after the address
    // (Xray's reverse-mux source and local addresses, padding) is skipped, as v2fly skips it.
    if (frame.network === "udp" && hasData && meta.length - addr.end >= GLOBAL_ID_LEN) {
      frame.globalId = meta.slice(addr.end, addr.end + GLOBAL_ID_LEN);
    }
  } else if (status === "keep" && meta.length > MUX_MIN_META_LEN && meta[4] === NETWORK_UDP) {
    // XUDP: a UDP Keep may name its packet's address (Xray checks byte 4 first, then needs 8 bytes).
    if (meta.length < 8) {
      return muxError("mux_bad_metalen", `a Keep frame with an address needs 8 bytes of metadata, got ${meta.length}`);
    }
    const addr = readAddress(meta, 5);
    if (addr instanceof StreamError) return addr;
    frame.network = "udp";
    frame.target = addr.target;
  }
  return { frame, hasData };
}

const Phase = { MetaLen: 0, Meta: 1, DataLen: 2, Data: 3 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/**
 * Splits a Mux.Cool byte stream, fed in arbitrary pieces, into frames. A frame whose data lies
 * whole inside one input is returned as subarray views of that input (the caller must not
 * reuse the input's memory); only a frame that straddles inputs is copied. It holds at most one
 * partial unit: MetaLen ≤ 512 and DataLen ≤ 65535 bound the memory per decoder. `push` (never
 * throws) ends the stream on `mux_bad_metalen` (MetaLen outside 4..512, a New under 8),
 * `mux_bad_status`, `mux_bad_network` or `mux_bad_address`, and returns that error from then on.
 */
export class MuxCoolDecoder extends UnitReader<MuxFrame> {
  private phase: Phase = Phase.MetaLen;
  private pending: MuxFrame | null = null;

  constructor() {
    super(2);
  }

  /** True between frames: a clean place for the stream to end. */
  get atBoundary(): boolean {
    return this.phase === Phase.MetaLen && !this.midUnit && !this.hasFailed;
  }

  protected consume(unit: Uint8Array, out: MuxFrame[]): StreamError | null {
    switch (this.phase) {
      case Phase.MetaLen: {
        const n = (unit[0]! << 8) | unit[1]!;
        if (n < MUX_MIN_META_LEN || n > MUX_MAX_META_LEN) {
          return muxError("mux_bad_metalen", `metadata length ${n} outside ${MUX_MIN_META_LEN}..${MUX_MAX_META_LEN}`);
        }
        this.phase = Phase.Meta;
        this.need = n;
        return null;
      }
      case Phase.Meta: {
        const parsed = parseMeta(unit);
        if (parsed instanceof StreamError) return parsed;
        if (parsed.hasData) {
          this.pending = parsed.frame;
          this.phase = Phase.DataLen;
          this.need = 2;
        } else {
          out.push(parsed.frame);
          this.phase = Phase.MetaLen;
          this.need = 2;
        }
        return null;
      }
      case Phase.DataLen:
        this.phase = Phase.Data;
        // A zero DataLen completes the frame without another byte: push() loops once more for it.
        this.need = (unit[0]! << 8) | unit[1]!;
        return null;
      case Phase.Data: {
        const frame = this.pending!;
        frame.data = unit;
        out.push(frame);
        this.pending = null;
        this.phase = Phase.MetaLen;
        this.need = 2;
        return null;
      }
    }
  }
}

/** Whether a target is the mux marker (v2fly's server.go compares the address alone; the port varies: 9527, 666). */
export function isMuxCoolTarget(target: Target): boolean {
  return target.host === MUX_COOL_DOMAIN;
}

/** Port ‖ AType ‖ Addr in Mux.Cool's order and types. */
function encodeAddress(target: Target): Uint8Array {
  const { port } = target;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw muxError("mux_bad_address", `port must be 0-65535, got ${port}`);
  const host = target.host.startsWith("[") && target.host.endsWith("]") ? target.host.slice(1, -1) : target.host;
  const v4 = parseIPv4(host);
  const v6 = v4 ? null : host.includes(":") ? parseIPv6(host) : null;
  let out: Uint8Array;
  if (v4 || v6) {
    const raw = (v4 ?? v6)!;
    out = new Uint8Array(3 + raw.length);
    out[2] = v4 ? ATYPE_IPV4 : ATYPE_IPV6;
    out.set(raw, 3);
  } else {
    const name = utf8.encode(host);
    if (host.includes(":") || name.length < 1 || name.length > 255) {
      throw muxError("mux_bad_address", "the host is neither an IP address nor a 1-255 byte domain name");
    }
    out = new Uint8Array(4 + name.length);
    out[2] = ATYPE_DOMAIN;
    out[3] = name.length;
    out.set(name, 4);
  }
  out[0] = port >>> 8;
  out[1] = port & 0xff;
  return out;
}

export interface MuxFrameInput {
  sessionId: number;
  status: MuxStatus;
  error?: boolean;
  /** Required on New; on Keep, "udp" with a target writes an XUDP packet address. */
  network?: MuxNetwork;
  target?: Target;
  data?: Uint8Array;
  globalId?: Uint8Array;
}

/**
 * One frame, any status: what a client sends (New), and tests. Throws StreamError for input no
 * peer would accept (a session id outside u16, New without network and target, data over 65535 bytes).
 */
export function encodeMuxFrame(f: MuxFrameInput): Uint8Array {
  if (!Number.isInteger(f.sessionId) || f.sessionId < 0 || f.sessionId > 0xffff) {
    throw muxError("mux_bad_session", `session id must be 0-65535, got ${f.sessionId}`);
  }
  if (f.data && f.data.length > MUX_MAX_DATA) throw muxError("mux_data_too_large", `${f.data.length} bytes exceed one frame`);
  const parts: Uint8Array[] = [];
  if (f.status === "new" || (f.status === "keep" && f.network === "udp" && f.target)) {
    if (!f.network || !f.target) throw muxError("mux_bad_address", "a New frame needs a network and a target");
    parts.push(Uint8Array.of(f.network === "tcp" ? NETWORK_TCP : NETWORK_UDP), encodeAddress(f.target));
    if (f.status === "new" && f.globalId) parts.push(f.globalId);
  }
  const extra = parts.reduce((n, p) => n + p.length, 0);
  const metaLen = MUX_MIN_META_LEN + extra;
  if (metaLen > MUX_MAX_META_LEN) throw muxError("mux_bad_metalen", `metadata of ${metaLen} bytes exceeds ${MUX_MAX_META_LEN}`);
  const dataLen = f.data ? 2 + f.data.length : 0;
  const out = new Uint8Array(2 + metaLen + dataLen);
  out[0] = metaLen >>> 8;
  out[1] = metaLen & 0xff;
  out[2] = f.sessionId >>> 8;
  out[3] = f.sessionId & 0xff;
  out[4] = BYTE_BY_STATUS[f.status];
  out[5] = (f.data ? OPTION_DATA : 0) | (f.error ? OPTION_ERROR : 0);
  let o = 6;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  if (f.data) {
    out[o] = f.data.length >>> 8;
    out[o + 1] = f.data.length & 0xff;
    out.set(f.data, o + 2);
  }
  return out;
}

/**
 * What a server sends for a session's data: Keep frames with MetaLen exactly 4 (mihomo's reader
 * assumes it), `maxData` bytes at most each, concatenated into one array (one WebSocket message;
 * the plugin clients read the WebSocket as a byte stream). Empty data gives an empty array: a
 * zero DataLen is EOF to v2ray's stream reader. For a UDP session, call it once per datagram
 * with `maxData` ≥ its length: one datagram per frame.
 */
export function encodeMuxKeep(sessionId: number, data: Uint8Array, maxData: number = MUX_DEFAULT_MAX_DATA): Uint8Array {
  if (!Number.isInteger(sessionId) || sessionId < 0 || sessionId > 0xffff) {
    throw muxError("mux_bad_session", `session id must be 0-65535, got ${sessionId}`);
  }
  if (!Number.isInteger(maxData) || maxData < 1 || maxData > MUX_MAX_DATA) {
    throw muxError("mux_data_too_large", `maxData must be 1-${MUX_MAX_DATA}, got ${maxData}`);
  }
  const n = data.length;
  const frames = Math.ceil(n / maxData);
  const out = new Uint8Array(n + frames * 8);
  let o = 0;
  for (let i = 0; i < n; i += maxData) {
    const m = Math.min(maxData, n - i);
    out[o + 1] = MUX_MIN_META_LEN;
    out[o + 2] = sessionId >>> 8;
    out[o + 3] = sessionId & 0xff;
    out[o + 4] = BYTE_BY_STATUS.keep;
    out[o + 5] = OPTION_DATA;
    out[o + 6] = m >>> 8;
    out[o + 7] = m & 0xff;
    out.set(data.subarray(i, i + m), o + 8);
    o += 8 + m;
  }
  return out;
}

/** End for a session (MetaLen 4, no data); `error` sets the abortive bit. mihomo ignores End, sing-box reads it as EOF. */
export function encodeMuxEnd(sessionId: number, error = false): Uint8Array {
  return encodeMuxFrame({ sessionId, status: "end", error });
}

export type MuxSniff = "yes" | "no" | "need_more";

/**
 * Whether the first bytes of a WebSocket stream are a Mux.Cool New frame (v2ray-plugin mux≠0,
 * mihomo, sing-box) rather than a raw Shadowsocks salt. "need_more" until the bytes decide
 * (10 bytes for an IP target, 11 for a domain); every client sends at least a salt of 16
 * bytes, and every New frame is at least 14, so a caller waits for at most one more read.
 *
 * A New frame must have: MetaLen 8..512 (byte 0 ∈ {0, 1, 2}), Status 0x01, Option 0x00 or
 * 0x01, Network 0x01 or 0x02, AType 1-3, an address that fits MetaLen and a non-empty domain.
 * The session id is not checked (v2ray starts at 1, mihomo and sing-box use 0).
 * A random salt passes with probability ≈ (2/256)·(1/256)·(2/256)·(2/256)·(3/256) = 24/2⁴⁰
 * ≈ 2.2·10⁻¹¹ per connection (the length checks hardly narrow it): a gateway taking a million
 * raw connections a day misreads one every ~125,000 years, and that one client retries with a new salt.
 */
export function looksLikeMuxCool(bytes: Uint8Array): MuxSniff {
  for (let i = 0; i < 10; i++) {
    if (i >= bytes.length) return "need_more";
    const b = bytes[i]!;
    let ok = true;
    if (i === 0) ok = b <= 2;
    else if (i === 1) ok = metaLenOf(bytes) >= 8 && metaLenOf(bytes) <= MUX_MAX_META_LEN;
    else if (i === 4) ok = b === BYTE_BY_STATUS.new;
    else if (i === 5) ok = b === 0 || b === OPTION_DATA;
    else if (i === 6) ok = b === NETWORK_TCP || b === NETWORK_UDP;
    else if (i === 9) ok = b === ATYPE_IPV4 || b === ATYPE_DOMAIN || b === ATYPE_IPV6;
    if (!ok) return "no";
  }
  const metaLen = metaLenOf(bytes);
  // Meta = 5 fixed bytes, then port (2), AType (1) and the address.
  if (bytes[9] === ATYPE_IPV4) return metaLen >= 8 + 4 ? "yes" : "no";
  if (bytes[9] === ATYPE_IPV6) return metaLen >= 8 + 16 ? "yes" : "no";
  if (bytes.length < 11) return "need_more";
  const nameLen = bytes[10]!;
  return nameLen >= 1 && metaLen >= 9 + nameLen ? "yes" : "no";
}

function metaLenOf(bytes: Uint8Array): number {
  return (bytes[0]! << 8) | bytes[1]!;
}
