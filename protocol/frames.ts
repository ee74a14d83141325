// The HTTVPS session protocol's frames as TypeScript types: the contract between the
// gateway, the client and docs/03-httvps-protocol.md. Codecs live in codec.ts.
// Stream ids are strings on the wire in JSON ("s1", as the spec's wscat check sends);
// in binary frames they are the same ASCII bytes, length-prefixed.

export const PROTOCOL_VERSION = 1;

/** Features a client may ask for in `hello.features`; the gateway answers with the subset it grants. */
export type Feature =
  | "flow" //  per-stream credit with window_update
  | "binary" // binary WebSocket frames for stream data (JSON stays for control frames)
  | "half_close" // stream_end (FIN) separate from stream_close
  | "udp" // datagram streams: stream_open with network "udp", one stream_data per datagram
  | "padding" // the first frames of each stream (and the handshake) carry random padding (docs/03 §12)
  | "early_data"; // the gateway holds a stream opened right behind hello until auth_result (docs/03 §13)

/** Every feature this protocol version knows; unknown names in a peer's list are ignored. */
export const FEATURES: readonly Feature[] = ["flow", "binary", "half_close", "udp", "padding", "early_data"];

export interface Hello {
  type: "hello";
  device_id: string;
  token: string;
  client_version: string;
  features?: Feature[];
  /** With "flow": bytes the client is ready to receive per stream before it sends window_update. */
  window?: number;
  /** Protocol version the client speaks; absent means 1. */
  protocol?: number;
}

export interface SessionLimits {
  max_frame_bytes: number;
  max_data_bytes: number;
  max_streams: number;
  idle_timeout_ms: number;
  ping_interval_ms: number;
  /** With "udp": the largest datagram (stream_data payload) on a UDP stream. */
  max_datagram_bytes?: number;
  /** With "udp": a UDP stream with no datagram either way for this long is closed (idle_timeout). */
  udp_idle_timeout_ms?: number;
}

export type AuthResult =
  | {
    type: "auth_result";
    ok: true;
    session_id: string;
    features: Feature[];
    /** With "flow": bytes the gateway accepts per stream before the client must wait for window_update. */
    window?: number;
    limits: SessionLimits;
    /** Protocol version the gateway speaks in this session (PROTOCOL_VERSION); absent means 1. */
    protocol?: number;
  }
  | { type: "auth_result"; ok: false; code: string; message: string };

/** Where a stream goes. `host` is a DNS name, an IPv4 or an IPv6 address, never in brackets. */
export interface Target {
  host: string;
  port: number;
}

export interface StreamOpen {
  type: "stream_open";
  stream_id: string;
  /** Optional in fake mode; required for outline and direct. */
  target?: Target;
  /** "udp" (with the udp feature): a datagram stream, each stream_data one datagram. Absent means "tcp". */
  network?: "tcp" | "udp";
  /** Initial bytes to send with the open (saves a round trip). */
  data?: Uint8Array;
}

export interface StreamData {
  type: "stream_data";
  stream_id: string;
  data: Uint8Array;
}

/** Half-close: the sender will send no more data on this stream. */
export interface StreamEnd {
  type: "stream_end";
  stream_id: string;
}

/** The stream is over in both directions. `code` when it ended abnormally. */
export interface StreamClose {
  type: "stream_close";
  stream_id: string;
  code?: string;
  message?: string;
}

export interface WindowUpdate {
  type: "window_update";
  stream_id: string;
  increment: number;
}

export interface Ping {
  type: "ping";
  id?: string;
}
export interface Pong {
  type: "pong";
  id?: string;
}

export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
  stream_id?: string;
}

/** The gateway is going away: open no new streams; existing ones may finish until the socket closes. */
export interface GoAway {
  type: "goaway";
  code: string;
  message?: string;
  /** How long existing streams may still run before the gateway closes the socket. */
  drain_ms?: number;
}

export type Frame =
  | Hello
  | AuthResult
  | StreamOpen
  | StreamData
  | StreamEnd
  | StreamClose
  | WindowUpdate
  | Ping
  | Pong
  | ErrorFrame
  | GoAway;

export type FrameType = Frame["type"];
