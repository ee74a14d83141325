// Frame codecs for the HTTVPS session protocol (docs/03-httvps-protocol.md): JSON text
// frames and the compact binary layout. Pure: no I/O, no clocks, and decoding never throws —
// every bad input comes back as a ProtocolError with a stable code.
//
// The three frames that carry the traffic (stream_data, window_update, stream_end) are checked
// by hand; zod handles the rare control frames, where readable schemas matter more than
// nanoseconds. stream_data in the exact shape our encoder writes is parsed without JSON.parse
// (slicing the base64 out of the text instead of copying it into a new string); anything else,
// or anything that fails on that path, goes through JSON.parse, which stays the authority.
import { z } from "zod";
import { base64DecodedLength, decodeBase64, encodeBase64 } from "./base64.ts";
import type { ErrorCode, ProtocolError } from "./errors.ts";
import {
  type AuthResult,
  type ErrorFrame,
  type Feature,
  FEATURES,
  type Frame,
  type FrameType,
  type GoAway,
  type Hello,
  type Ping,
  type Pong,
  type SessionLimits,
  type StreamClose,
  type StreamOpen,
} from "./frames.ts";

// ---------------------------------------------------------------------------------------------
// Limits. Each is the default the gateway advertises in auth_result.limits (docs/03 §Limits).

/** Largest WebSocket message (text or binary) either side accepts. Fits one MAX_DATA_BYTES payload
 * as base64 JSON (87 404 bytes) with room to spare, while keeping what one message can make a
 * receiver buffer small; set the WebSocket library's maxPayload to this. */
export const MAX_FRAME_BYTES = 128 * 1024;
/** Largest payload of one stream_data (and of stream_open.data). 64 KiB matches what one TCP read
 * returns on all three runtimes, so the gateway forwards a read as one frame; a bigger frame would
 * only add head-of-line delay for the other streams sharing the socket. */
export const MAX_DATA_BYTES = 64 * 1024;
/** Per-stream credit when "flow" is negotiated without an explicit window: 4 full frames in flight,
 * about 20 Mbit/s per stream at 100 ms RTT, and at most 256 MiB buffered for 1024 streams. */
export const DEFAULT_WINDOW = 256 * 1024;
/** Smaller windows would let a peer force the sender into tiny frames. */
export const MIN_WINDOW = 4 * 1024;
/** Credit never exceeds 2^31-1, as in HTTP/2, so counters stay small integers. */
export const MAX_WINDOW = 2 ** 31 - 1;
/** A window_update that would push a stream's credit past this is a flow_violation (docs/03 §5). */
export const MAX_CREDIT = MAX_WINDOW;
export const MAX_STREAMS = 1024;
export const MAX_STREAM_ID_LENGTH = 64;
export const HELLO_TIMEOUT_MS = 10_000;
export const IDLE_TIMEOUT_MS = 120_000;
export const PING_INTERVAL_MS = 30_000;
/** Largest datagram on a UDP stream: the largest IPv4 UDP payload (65507) less the most a
 * Shadowsocks packet adds around it (32-byte salt, 259-byte address, 16-byte tag), so every
 * datagram a client may send can also leave the gateway as one packet in outline mode. */
export const MAX_DATAGRAM_BYTES = 65_507 - 32 - 259 - 16;
/** A UDP stream with no datagram either way for this long is closed: NAT-like, as Outline's 5 min association but shorter, since streams are cheap to reopen. */
export const UDP_IDLE_TIMEOUT_MS = 60_000;

export const DEFAULT_LIMITS: Readonly<SessionLimits> = Object.freeze({
  max_frame_bytes: MAX_FRAME_BYTES,
  max_data_bytes: MAX_DATA_BYTES,
  max_streams: MAX_STREAMS,
  idle_timeout_ms: IDLE_TIMEOUT_MS,
  ping_interval_ms: PING_INTERVAL_MS,
});

export interface DecodeLimits {
  /** Default MAX_FRAME_BYTES. For text it is compared with the UTF-16 length, which never exceeds the UTF-8 size. */
  maxFrameBytes?: number;
  /** Default MAX_DATA_BYTES. */
  maxDataBytes?: number;
}

export type DecodeResult = { ok: true; frame: Frame } | { ok: false; error: ProtocolError };

/** First byte of a binary message. */
export const BinaryKind = { json: 0x00, stream_data: 0x01, window_update: 0x02, stream_end: 0x03, padded: 0x04 } as const;

// ---------------------------------------------------------------------------------------------
// Shared checks.

const ID_CHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ID_CHAR[c.charCodeAt(0)] = 1;
const STREAM_ID_RULE = "1-64 characters of A-Z a-z 0-9 . _ : -";

export function isStreamId(s: unknown): s is string {
  if (typeof s !== "string") return false;
  const n = s.length;
  if (n < 1 || n > MAX_STREAM_ID_LENGTH) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || ID_CHAR[c] === 0) return false;
  }
  return true;
}

function isIncrement(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= MAX_WINDOW;
}

function ok(frame: Frame): DecodeResult {
  return { ok: true, frame };
}

function fail(code: ErrorCode, message: string, streamId?: string): DecodeResult {
  return { ok: false, error: streamId === undefined ? { code, message } : { code, message, stream_id: streamId } };
}

// ---------------------------------------------------------------------------------------------
// zod schemas for the control frames. Messages name the field and say what was expected, never
// the value received (a hello carries a token).

type Issue = { input?: unknown };
const expected = (what: string) => (iss: Issue) => (iss.input === undefined ? `missing; expected ${what}` : `expected ${what}`);

function text(min: number, max: number) {
  const e = expected(`a string of ${min}-${max} characters`);
  return z.string({ error: e }).min(min, { error: e }).max(max, { error: e });
}
function int(min: number, max: number) {
  const e = expected(`an integer ${min}-${max}`);
  return z.number({ error: e }).int({ error: e }).min(min, { error: e }).max(max, { error: e });
}
const anyText = z.string({ error: expected("a string") });
const streamId = z
  .string({ error: expected(STREAM_ID_RULE) })
  .regex(/^[A-Za-z0-9._:-]{1,64}$/, { error: expected(STREAM_ID_RULE) });
const code = text(1, 64);
// Hostnames, IPv4 and bare IPv6 literals; whitespace and control characters could smuggle
// a second line into a log or a dialer's request.
const host = z
  .string({ error: expected("a host of 1-255 characters") })
  .regex(/^[^\s\u0000-\u001f\u007f-\u009f]{1,255}$/, {
    error: expected("a host of 1-255 characters without whitespace or control characters"),
  });
// Unknown feature names are dropped rather than rejected so a newer peer can offer more.
const features = z
  .array(text(1, 32), { error: expected("an array of feature names") })
  .max(32, { error: expected("at most 32 feature names") })
  .transform((list) => FEATURES.filter((f) => list.includes(f)) as Feature[]);
const maxInt = 2 ** 31 - 1;

const helloSchema = z.object({
  type: z.literal("hello"),
  device_id: text(1, 128),
  token: text(1, 4096),
  client_version: text(1, 64),
  features: features.optional(),
  window: int(MIN_WINDOW, MAX_WINDOW).optional(),
  protocol: int(1, 65535).optional(),
});

const limitsSchema = z.object(
  {
    max_frame_bytes: int(1, maxInt),
    max_data_bytes: int(1, maxInt),
    max_streams: int(1, maxInt),
    idle_timeout_ms: int(1, maxInt),
    ping_interval_ms: int(1, maxInt),
    max_datagram_bytes: int(1, maxInt).optional(),
    udp_idle_timeout_ms: int(1, maxInt).optional(),
  },
  { error: expected("an object") },
);

const authOkSchema = z.object({
  type: z.literal("auth_result"),
  ok: z.literal(true),
  session_id: text(1, 128),
  features,
  window: int(MIN_WINDOW, MAX_WINDOW).optional(),
  limits: limitsSchema,
  protocol: int(1, 65535).optional(),
});

const authFailSchema = z.object({
  type: z.literal("auth_result"),
  ok: z.literal(false),
  code,
  message: anyText,
});

const streamOpenSchema = z.object({
  type: z.literal("stream_open"),
  stream_id: streamId,
  target: z.object({ host, port: int(1, 65535) }, { error: expected("an object {host, port}") }).optional(),
  network: z.enum(["tcp", "udp"], { error: expected('"tcp" or "udp"') }).optional(),
  data: z.string({ error: expected("a base64 string") }).optional(),
});

const streamCloseSchema = z.object({
  type: z.literal("stream_close"),
  stream_id: streamId,
  code: code.optional(),
  message: anyText.optional(),
});

const pingId = text(0, 64).optional();
const pingSchema = z.object({ type: z.literal("ping"), id: pingId });
const pongSchema = z.object({ type: z.literal("pong"), id: pingId });

const errorSchema = z.object({
  type: z.literal("error"),
  code,
  message: anyText,
  stream_id: streamId.optional(),
});

const goawaySchema = z.object({
  type: z.literal("goaway"),
  code,
  message: anyText.optional(),
  drain_ms: int(0, maxInt).optional(),
});

function viaZod<T>(schema: z.ZodType<T>, type: string, v: Record<string, unknown>): { ok: true; value: T } | DecodeResult {
  const r = schema.safeParse(v);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0];
  const path = issue ? issue.path.map(String).join(".") : "";
  const message = `${type}${path ? "." + path : ""}: ${issue?.message ?? "invalid"}`;
  return fail("bad_frame", message, isStreamId(v.stream_id) ? v.stream_id : undefined);
}

// ---------------------------------------------------------------------------------------------
// Text (JSON) frames.

const SD_HEAD = '{"type":"stream_data","stream_id":"';
const SD_MID = '","data":"';

/** The exact shape encodeStreamDataText writes, without JSON.parse; undefined means "use the general path". */
function decodeStreamDataFast(text: string, maxData: number): DecodeResult | undefined {
  if (!text.startsWith(SD_HEAD)) return undefined;
  const idStart = SD_HEAD.length;
  const idLimit = Math.min(text.length, idStart + MAX_STREAM_ID_LENGTH + 1);
  let i = idStart;
  while (i < idLimit) {
    const c = text.charCodeAt(i);
    if (c > 127 || ID_CHAR[c] === 0) break;
    i++;
  }
  if (i === idStart || i - idStart > MAX_STREAM_ID_LENGTH || !text.startsWith(SD_MID, i)) return undefined;
  const dataStart = i + SD_MID.length;
  const n = text.length;
  if (n - 2 < dataStart || text.charCodeAt(n - 2) !== 34 /* " */ || text.charCodeAt(n - 1) !== 125 /* } */) return undefined;
  const b64 = text.slice(dataStart, n - 2);
  if (base64DecodedLength(b64) > maxData) return undefined;
  // Success implies the slice holds only base64 characters (no quote, backslash or control
  // character), so the text is valid JSON meaning exactly this frame.
  const data = decodeBase64(b64);
  if (data === undefined) return undefined;
  return ok({ type: "stream_data", stream_id: text.slice(idStart, i), data });
}

/** The stream id of an oversized canonical stream_data, so the receiver can reset just that stream. */
function streamIdHint(text: string): string | undefined {
  if (!text.startsWith(SD_HEAD)) return undefined;
  const end = text.indexOf('"', SD_HEAD.length);
  if (end < 0 || end - SD_HEAD.length > MAX_STREAM_ID_LENGTH) return undefined;
  const id = text.slice(SD_HEAD.length, end);
  return isStreamId(id) ? id : undefined;
}

export function decodeText(text: string, limits?: DecodeLimits): DecodeResult {
  const maxFrame = limits?.maxFrameBytes ?? MAX_FRAME_BYTES;
  const maxData = limits?.maxDataBytes ?? MAX_DATA_BYTES;
  if (typeof text !== "string") return fail("bad_frame", "expected a text message");
  if (text.length > maxFrame) {
    return fail(
      "frame_too_large",
      `message of ${text.length} characters exceeds max_frame_bytes ${maxFrame}`,
      streamIdHint(text),
    );
  }
  const fast = decodeStreamDataFast(text, maxData);
  if (fast !== undefined) return fast;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return fail("bad_frame", "not valid JSON");
  }
  return decodeValue(v, maxData);
}

/** Validate an already-parsed JSON value as a frame. */
export function decodeValue(v: unknown, maxData: number = MAX_DATA_BYTES): DecodeResult {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return fail("bad_frame", "expected a JSON object");
  const o = v as Record<string, unknown>;
  const type = o.type;
  if (typeof type !== "string") return fail("bad_frame", `type: ${type === undefined ? "missing; " : ""}expected a string`);
  switch (type) {
    case "stream_data":
      return decodeStreamDataObject(o, maxData);
    case "window_update": {
      if (!isStreamId(o.stream_id)) return fail("bad_frame", `window_update.stream_id: expected ${STREAM_ID_RULE}`);
      if (!isIncrement(o.increment)) {
        return fail("bad_frame", `window_update.increment: expected an integer 1-${MAX_WINDOW}`, o.stream_id);
      }
      return ok({ type: "window_update", stream_id: o.stream_id, increment: o.increment });
    }
    case "stream_end":
      if (!isStreamId(o.stream_id)) return fail("bad_frame", `stream_end.stream_id: expected ${STREAM_ID_RULE}`);
      return ok({ type: "stream_end", stream_id: o.stream_id });
    case "hello": {
      const r = viaZod(helloSchema, type, o);
      return "value" in r ? ok(r.value as Hello) : r;
    }
    case "auth_result": {
      if (typeof o.ok !== "boolean") return fail("bad_frame", "auth_result.ok: expected true or false");
      const r = o.ok ? viaZod(authOkSchema, type, o) : viaZod(authFailSchema, type, o);
      return "value" in r ? ok(r.value as AuthResult) : r;
    }
    case "stream_open":
      return decodeStreamOpen(o, maxData);
    case "stream_close": {
      const r = viaZod(streamCloseSchema, type, o);
      return "value" in r ? ok(r.value as StreamClose) : r;
    }
    case "ping": {
      const r = viaZod(pingSchema, type, o);
      return "value" in r ? ok(r.value as Ping) : r;
    }
    case "pong": {
      const r = viaZod(pongSchema, type, o);
      return "value" in r ? ok(r.value as Pong) : r;
    }
    case "error": {
      const r = viaZod(errorSchema, type, o);
      return "value" in r ? ok(r.value as ErrorFrame) : r;
    }
    case "goaway": {
      const r = viaZod(goawaySchema, type, o);
      return "value" in r ? ok(r.value as GoAway) : r;
    }
    default:
      return fail("unknown_type", `unknown frame type ${JSON.stringify(type.slice(0, 32))}`);
  }
}

function decodeStreamDataObject(o: Record<string, unknown>, maxData: number): DecodeResult {
  const id = o.stream_id;
  if (!isStreamId(id)) {
    return fail("bad_frame", `stream_data.stream_id: ${id === undefined ? "missing; " : ""}expected ${STREAM_ID_RULE}`);
  }
  const data = decodePayload("stream_data", o.data, maxData, id);
  return data instanceof Uint8Array ? ok({ type: "stream_data", stream_id: id, data }) : data;
}

function decodeStreamOpen(o: Record<string, unknown>, maxData: number): DecodeResult {
  const r = viaZod(streamOpenSchema, "stream_open", o);
  if (!("value" in r)) return r;
  const { data: b64, ...rest } = r.value;
  if (b64 === undefined) return ok(rest as StreamOpen);
  const data = decodePayload("stream_open", b64, maxData, rest.stream_id);
  return data instanceof Uint8Array ? ok({ ...rest, data } as StreamOpen) : data;
}

function decodePayload(type: string, b64: unknown, maxData: number, id: string): Uint8Array | DecodeResult {
  if (typeof b64 !== "string") {
    return fail("bad_frame", `${type}.data: ${b64 === undefined ? "missing; " : ""}expected a base64 string`, id);
  }
  const size = base64DecodedLength(b64);
  if (size > maxData) return fail("frame_too_large", `${type}.data: ${size} bytes exceeds max_data_bytes ${maxData}`, id);
  const data = decodeBase64(b64);
  if (data === undefined) return fail("bad_data", `${type}.data: expected padded standard base64`, id);
  return data;
}

/** stream_data as JSON text. The id is JSON-quoted, so even an invalid id cannot break the framing. */
export function encodeStreamDataText(streamId: string, payload: Uint8Array): string {
  return '{"type":"stream_data","stream_id":' + JSON.stringify(streamId) + ',"data":"' + encodeBase64(payload) + '"}';
}

export function encodeText(frame: Frame): string {
  switch (frame.type) {
    case "stream_data":
      return encodeStreamDataText(frame.stream_id, frame.data);
    case "stream_open":
      // Spread keeps the key order; data is replaced in place.
      return JSON.stringify(frame.data === undefined ? frame : { ...frame, data: encodeBase64(frame.data) });
    default:
      return JSON.stringify(frame);
  }
}

// ---------------------------------------------------------------------------------------------
// Binary frames: one WebSocket binary message = one frame; byte 0 is the kind (BinaryKind).
//   0x00 JSON:          UTF-8 JSON text of any frame
//   0x01 stream_data:   u8 idLen, id (ASCII), payload to the end of the message
//   0x02 window_update: u8 idLen, id, u32 big-endian increment
//   0x03 stream_end:    u8 idLen, id
//   0x04 padded:        u16 big-endian padLen, padLen bytes of padding, then one frame of another kind
//                       (written only with the "padding" feature; protocol/padding.ts)

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();
const KIND_NAME: Record<number, FrameType> = { 1: "stream_data", 2: "window_update", 3: "stream_end" };

/** The stream id after a binary header, or a reason it is not one. */
function readBinaryId(bytes: Uint8Array, name: string): string | DecodeResult {
  if (bytes.length < 2) return fail("bad_frame", `${name}: truncated before the stream id length`);
  const len = bytes[1]!;
  if (len < 1 || len > MAX_STREAM_ID_LENGTH) {
    return fail("bad_frame", `${name}.stream_id: length ${len}, expected 1-${MAX_STREAM_ID_LENGTH}`);
  }
  if (bytes.length < 2 + len) return fail("bad_frame", `${name}: truncated inside the stream id`);
  let id = "";
  for (let i = 2; i < 2 + len; i++) {
    const c = bytes[i]!;
    if (c > 127 || ID_CHAR[c] === 0) return fail("bad_frame", `${name}.stream_id: expected ${STREAM_ID_RULE}`);
    id += String.fromCharCode(c);
  }
  return id;
}

export function decodeBinary(bytes: Uint8Array, limits?: DecodeLimits): DecodeResult {
  if (!(bytes instanceof Uint8Array)) return fail("bad_frame", "expected a binary message");
  const n = bytes.length;
  if (n === 0) return fail("bad_frame", "empty binary message");
  const maxFrame = limits?.maxFrameBytes ?? MAX_FRAME_BYTES;
  const kind = bytes[0]!;
  const name = KIND_NAME[kind];
  if (n > maxFrame) {
    const id = name === undefined ? undefined : readBinaryId(bytes, name);
    return fail(
      "frame_too_large",
      `message of ${n} bytes exceeds max_frame_bytes ${maxFrame}`,
      typeof id === "string" ? id : undefined,
    );
  }
  if (kind === BinaryKind.padded) return decodePadded(bytes, limits);
  if (kind === BinaryKind.json) {
    let text: string;
    try {
      text = utf8Decoder.decode(bytes.subarray(1));
    } catch {
      return fail("bad_frame", "binary JSON frame: not valid UTF-8");
    }
    return decodeText(text, limits);
  }
  if (name === undefined) return fail("unknown_type", `unknown binary frame kind 0x${kind.toString(16).padStart(2, "0")}`);
  const id = readBinaryId(bytes, name);
  if (typeof id !== "string") return id;
  const at = 2 + id.length;
  const rest = n - at;
  if (kind === BinaryKind.stream_data) {
    const maxData = limits?.maxDataBytes ?? MAX_DATA_BYTES;
    if (rest > maxData) return fail("frame_too_large", `stream_data.data: ${rest} bytes exceeds max_data_bytes ${maxData}`, id);
    // A view into the message, not a copy; a plain Uint8Array even when the input is a Buffer.
    return ok({ type: "stream_data", stream_id: id, data: new Uint8Array(bytes.buffer, bytes.byteOffset + at, rest) });
  }
  if (kind === BinaryKind.window_update) {
    if (rest !== 4) return fail("bad_frame", `window_update.increment: expected 4 bytes, got ${rest}`, id);
    const increment = ((bytes[at]! << 24) >>> 0) + (bytes[at + 1]! << 16) + (bytes[at + 2]! << 8) + bytes[at + 3]!;
    if (!isIncrement(increment)) return fail("bad_frame", `window_update.increment: expected an integer 1-${MAX_WINDOW}`, id);
    return ok({ type: "window_update", stream_id: id, increment });
  }
  if (rest !== 0) return fail("bad_frame", `stream_end: ${rest} unexpected bytes after the stream id`, id);
  return ok({ type: "stream_end", stream_id: id });
}

/** 0x04: the padding is skipped and the frame behind it decoded in place (a view, no copy). */
function decodePadded(bytes: Uint8Array, limits?: DecodeLimits): DecodeResult {
  const n = bytes.length;
  if (n < 3) return fail("bad_frame", "padded frame: truncated before the padding length");
  const at = 3 + ((bytes[1]! << 8) | bytes[2]!);
  if (n <= at) return fail("bad_frame", "padded frame: no frame after the padding");
  if (bytes[at] === BinaryKind.padded) return fail("bad_frame", "padded frame: padding inside padding");
  return decodeBinary(new Uint8Array(bytes.buffer, bytes.byteOffset + at, n - at), limits);
}

function binaryJson(frame: Frame): Uint8Array {
  const body = utf8Encoder.encode(encodeText(frame));
  const out = new Uint8Array(1 + body.length);
  out[0] = BinaryKind.json;
  out.set(body, 1);
  return out;
}

/** Kind byte, id length and id written at the start of `out`; returns the offset after them. */
function writeHeader(out: Uint8Array, kind: number, streamId: string): number {
  out[0] = kind;
  out[1] = streamId.length;
  for (let i = 0; i < streamId.length; i++) out[2 + i] = streamId.charCodeAt(i);
  return 2 + streamId.length;
}

/**
 * The head of a compact stream_data message (kind, id length, id) without its payload, for a
 * socket that writes head and payload into its own frame (SessionSocket.sendParts) instead of
 * joining them here first; undefined for an id the compact layout cannot carry.
 */
export function streamDataHead(streamId: string): Uint8Array | undefined {
  if (!isStreamId(streamId)) return undefined;
  const out = new Uint8Array(2 + streamId.length);
  writeHeader(out, BinaryKind.stream_data, streamId);
  return out;
}

/** stream_data as one binary message, in a single allocation. */
export function encodeStreamDataBinary(streamId: string, payload: Uint8Array): Uint8Array {
  // An id the compact layout cannot carry goes as JSON, so the receiver reports it instead of misframing.
  if (!isStreamId(streamId)) return binaryJson({ type: "stream_data", stream_id: streamId, data: payload });
  const out = new Uint8Array(2 + streamId.length + payload.length);
  out.set(payload, writeHeader(out, BinaryKind.stream_data, streamId));
  return out;
}

export function encodeBinary(frame: Frame): Uint8Array {
  switch (frame.type) {
    case "stream_data":
      return encodeStreamDataBinary(frame.stream_id, frame.data);
    case "window_update": {
      if (!isStreamId(frame.stream_id) || !isIncrement(frame.increment)) break;
      const out = new Uint8Array(2 + frame.stream_id.length + 4);
      const at = writeHeader(out, BinaryKind.window_update, frame.stream_id);
      new DataView(out.buffer).setUint32(at, frame.increment);
      return out;
    }
    case "stream_end": {
      if (!isStreamId(frame.stream_id)) break;
      const out = new Uint8Array(2 + frame.stream_id.length);
      writeHeader(out, BinaryKind.stream_end, frame.stream_id);
      return out;
    }
  }
  return binaryJson(frame);
}
