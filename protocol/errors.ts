// The stable error codes of HTTVPS. One list shared by the codec, the gateway, the client,
// logs and metrics, so a code seen in a stream_close, an auth_result, a log line or a metric
// label always means the same thing. Codes are part of the wire protocol: never rename one;
// add new ones at the end of their group. Peers must accept codes they do not know (a newer
// gateway may send them) and treat them like `internal`.

export const ERROR_CODES = {
  // Frame decoding (protocol/codec.ts). After the handshake the session survives all of them.
  bad_frame: "the message is not JSON, not an object, or a field is missing, ill-typed or out of range",
  unknown_type: "the frame type (or binary frame kind) is not one this protocol version knows",
  bad_data: "a data field is not strict, padded, standard base64",
  frame_too_large: "the message exceeds max_frame_bytes, or its payload exceeds max_data_bytes",

  // Handshake.
  hello_required: "the first frame of a session was not hello",
  hello_timeout: "no hello arrived within the hello timeout",
  bad_hello: "a well-formed hello the gateway cannot accept (a malformed one gets the decoder's bad_frame)",

  // Session and stream state.
  unexpected_frame: "a well-formed frame that is not allowed in this direction or state (a second hello, data after stream_end)",
  unknown_stream: "a frame names a stream id that is not open",
  duplicate_stream: "stream_open names a stream id that is already open",
  too_many_streams: "stream_open beyond the session's max_streams",
  flow_violation: "stream data beyond the granted credit, or a window_update that overflows 2^31-1",
  idle_timeout: "nothing was received for the idle timeout; the peer is presumed dead",
  shutdown: "the gateway is going away (goaway); new streams are refused",
  cancelled: "the peer abandoned the stream (its local application went away)",
  session_closed: "the session ended while the stream was still open",
  too_many_errors: "the peer sent too many bad frames in a row; the session is closed",
  datagram_too_large: "a datagram on a UDP stream exceeds max_datagram_bytes; it was dropped, the stream goes on",
  udp_unsupported: "a UDP stream was asked for, but the udp feature was not granted on this session",

  // Authentication results (auth_result ok:false), decided by the control plane.
  unknown_device: "no device with this id",
  bad_token: "the token does not match the device",
  disabled: "the device or its account is disabled",
  expired: "the device's access has expired",
  revoked: "the device's token was revoked",
  session_limit: "the device already has as many sessions as it may",
  quota_exceeded: "the device has used up its traffic quota",
  unavailable: "the control plane cannot be reached or has no node to assign; retry later",
  rate_limited: "too many attempts; retry later",
  auth_failed:
    "the gateway refused the credentials: an unknown device, a wrong token, or a disabled, revoked or expired device, without saying which (docs/07)",

  // Upstream (the target side of a stream).
  upstream_unreachable: "the target could not be reached (DNS failure, no route)",
  upstream_timeout: "connecting to the target, or the target itself, timed out",
  upstream_refused: "the target refused the connection",
  upstream_reset: "the target reset the connection",
  upstream_protocol: "the upstream broke its protocol (for example a Shadowsocks authentication failure)",
  target_required: "this upstream mode needs stream_open.target",
  target_forbidden: "the target is not allowed by the gateway's policy",
  bad_target: "the target host or port is malformed",

  // Client side.
  bad_access_key: "the httvps:// access key is malformed",
  pin_mismatch: "the gateway's certificate does not match the access key's pin",

  // Anything else.
  internal: "an unexpected failure inside the gateway or client",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** `Code.bad_frame === "bad_frame"`: typo-proof spelling for code that emits codes. */
export const Code = Object.freeze(
  Object.fromEntries(Object.keys(ERROR_CODES).map((k) => [k, k])),
) as { readonly [K in ErrorCode]: K };

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === "string" && Object.hasOwn(ERROR_CODES, s);
}

/** A failure as a value: what the codec returns and what error / stream_close frames carry. */
export interface ProtocolError {
  code: ErrorCode;
  message: string;
  /** Set when the failure concerns one stream (and its id was itself valid). */
  stream_id?: string;
}

/** WebSocket close codes (RFC 6455 §7.4.1) used when a session ends. The close reason is the error code. */
export const WS_CLOSE = {
  normal: 1000,
  going_away: 1001,
  policy: 1008,
  too_big: 1009,
  internal: 1011,
} as const;

/** The close code for a session that ends because of `code`. */
export function closeCodeFor(code: string): number {
  switch (code) {
    case "shutdown":
    case "idle_timeout":
      return WS_CLOSE.going_away;
    case "frame_too_large":
      return WS_CLOSE.too_big;
    case "internal":
    case "unavailable":
      return WS_CLOSE.internal;
    default:
      // Handshake and auth failures, and anything a peer did wrong.
      return WS_CLOSE.policy;
  }
}

/**
 * A failure with a stable code that the protocol, logs, metrics and tests all use: what a
 * Duplex closes with and a Dialer rejects with (transport/stream.ts). Codes outside
 * ERROR_CODES (`ss_auth_failed`, `bad_address`, …) are internal detail; they are mapped to
 * one of ERROR_CODES before they reach the wire.
 */
export class StreamError extends Error {
  constructor(readonly code: string, message: string = code) {
    super(message);
    this.name = "StreamError";
  }
}
