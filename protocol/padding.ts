// The "padding" feature (docs/03 §12): what gets padded and by how much, and the two wire forms.
// Pure like the codec, except for the random numbers.
//
// Why: a browser inside the tunnel runs its own TLS handshake, and without padding every
// message of a new stream has exactly the size of what it carries — a 517-byte ClientHello,
// a ~90-byte ServerHello flight, a 64-byte Finished — so the outer TLS records repeat the inner
// handshake's sizes (the TLS-in-TLS signature censors look for). Two proven shapes:
// - NaïveProxy pads the first 8 reads and writes of each tunnelled connection with 0–255
//   random bytes (kFirstPaddings = 8, padding size < 256), which is enough to blur sizes that
//   are already application-sized;
// - Xray's XTLS Vision pads records shorter than 900 bytes up to 900–1399 bytes (long
//   padding: 900 − length + rand(500)), so the short handshake records disappear among
//   ordinary full-sized data records.
// We do both: the first PADDED_FRAMES frames of each stream in each direction get padding;
// a short one is padded up to SHORT_TARGET_MIN + rand(SHORT_TARGET_SPAN), a longer one gets
// rand(LONG_PAD_MAX + 1) extra bytes.
//
// Wire forms:
// - binary kind 0x04 (codec.ts decodes it): u16 padLen, padLen zero bytes, then one frame of
//   any other kind. Only sent once "padding" is granted (it needs "binary").
// - a `pad` string field in a JSON frame (the hello, auth_result, and the frames a client sends
//   before auth_result): every v1 decoder drops unknown fields (docs/03 "Compatibility rules"),
//   so a hello may carry it to any gateway.
// The padding bytes are zeros: the outer TLS encrypts them, WebSocket compression is never
// negotiated, and random bytes would cost CPU for nothing.
import { randomInt } from "node:crypto";
import { BinaryKind, encodeBinary, encodeStreamDataBinary } from "./codec.ts";
import type { Frame } from "./frames.ts";

/** Frames padded at the start of each stream, per direction (NaïveProxy's first 8 reads/writes). */
export const PADDED_FRAMES = 8;
/** A message shorter than this is padded up to SHORT_TARGET_MIN..+SHORT_TARGET_SPAN (Vision's 900). */
export const SHORT_TARGET_MIN = 900;
export const SHORT_TARGET_SPAN = 500;
/** A message at least SHORT_TARGET_MIN long gets 0..LONG_PAD_MAX bytes more (NaïveProxy's < 256). */
export const LONG_PAD_MAX = 255;
/** The 0x04 header: kind byte and u16 padding length. */
export const PADDED_HEADER_BYTES = 3;
/** The upgrade request's padding: a query value of this many characters or more, below UPGRADE_PAD_MAX. */
export const UPGRADE_PAD_MIN = 16;
export const UPGRADE_PAD_MAX = 256;

/** A uniform integer in [0, n). Tests pass their own to pin the sizes. */
export type RandomInt = (n: number) => number;
const cryptoRandom: RandomInt = (n) => randomInt(n);

/**
 * The size a message of `size` bytes should have after padding: a short one lands in
 * [SHORT_TARGET_MIN, SHORT_TARGET_MIN + SHORT_TARGET_SPAN), a long one grows by 0..LONG_PAD_MAX.
 */
export function paddedSize(size: number, random: RandomInt = cryptoRandom): number {
  if (size < SHORT_TARGET_MIN) return SHORT_TARGET_MIN + random(SHORT_TARGET_SPAN);
  return size + random(LONG_PAD_MAX + 1);
}

/** `frame` (an encoded binary frame, not itself padded) behind a 0x04 header and `padLen` zero bytes. */
export function wrapPadded(frame: Uint8Array, padLen: number): Uint8Array {
  const pad = Math.max(0, Math.min(0xffff, Math.floor(padLen)));
  const out = new Uint8Array(PADDED_HEADER_BYTES + pad + frame.length);
  out[0] = BinaryKind.padded;
  out[1] = pad >>> 8;
  out[2] = pad & 0xff;
  out.set(frame, PADDED_HEADER_BYTES + pad);
  return out;
}

/** `frame` encoded in binary (compact where it has a compact form) and padded to paddedSize(). */
export function encodePadded(frame: Uint8Array | Frame, random: RandomInt = cryptoRandom): Uint8Array {
  const inner = frame instanceof Uint8Array ? frame : encodeBinary(frame);
  const total = paddedSize(inner.length + PADDED_HEADER_BYTES, random);
  return wrapPadded(inner, total - inner.length - PADDED_HEADER_BYTES);
}

/** A padded stream_data. */
export function encodePaddedStreamData(streamId: string, data: Uint8Array, random: RandomInt = cryptoRandom): Uint8Array {
  return encodePadded(encodeStreamDataBinary(streamId, data), random);
}

/** `,"pad":""` — what the field costs before its value. */
const PAD_FIELD_BYTES = 9;

/**
 * A JSON frame's text (as encodeText writes it: one object, ending in `}`) with a `pad` field
 * that brings it to paddedSize(). Decoders drop the field: zod strips unknown keys, and a
 * stream_data leaves the fast path for JSON.parse, which ignores them.
 */
export function padJson(text: string, random: RandomInt = cryptoRandom): string {
  const size = text.length;
  const padLen = Math.max(0, paddedSize(size + PAD_FIELD_BYTES, random) - size - PAD_FIELD_BYTES);
  return text.slice(0, -1) + ',"pad":"' + "0".repeat(padLen) + '"}';
}

const QUERY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const NAME_CHARS = "abcdefghijklmnopqrstuvwxyz";

/**
 * `path` with a query parameter (`name=value`) of random length added, for the session request
 * (WebSocket upgrade or HTTP/2 POST), so those requests are not all one size. Gateways route by
 * path alone and ignore the query. The name is random too: the query has no constant part to match.
 */
export function padPath(path: string, random: RandomInt = cryptoRandom): string {
  let name = "";
  for (let n = 1 + random(6); n > 0; n--) name += NAME_CHARS[random(NAME_CHARS.length)];
  let value = "";
  for (let n = UPGRADE_PAD_MIN + random(UPGRADE_PAD_MAX - UPGRADE_PAD_MIN); n > 0; n--) {
    value += QUERY_CHARS[random(QUERY_CHARS.length)];
  }
  return `${path}${path.includes("?") ? "&" : "?"}${name}=${value}`;
}
