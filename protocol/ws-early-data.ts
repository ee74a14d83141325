// WebSocket "early data": the first bytes of the stream sent in the upgrade request's
// Sec-WebSocket-Protocol header, base64url without padding, to save a round trip. mihomo
// (`?ed=N` in a v2ray-plugin or vmess path; transport/vmess/websocket.go) and Xray (`?ed=N`;
// transport/internet/websocket/dialer.go) put them there; Xray's server (hub.go) decodes them
// after translating `+`, `/` and `=`, and echoes the header in its 101 response, which the
// clients expect. The decoded bytes come before the first WebSocket message. Pure: no I/O.
import { StreamError } from "./errors.ts";
import { encodeBase64 } from "./base64.ts";

/**
 * The most early data accepted. Shared client configs use `ed=2048`; the first write of a
 * Shadowsocks client (salt, address, a TLS ClientHello) fits in that. The bytes arrive before
 * any authentication, so the bound is per-connection memory a prober can make us hold, and
 * Node's default 16 KiB limit for all request headers stops much more anyway: 8 KiB is
 * 10,923 base64 characters.
 */
export const EARLY_DATA_MAX_BYTES = 8 * 1024;

/**
 * The early data in a Sec-WebSocket-Protocol value: the bytes; undefined when the value is no
 * early data (absent, empty, a list of subprotocols, a token with characters base64 lacks or
 * of an impossible length); StreamError `ws_early_data_too_large` over `maxBytes`, checked before
 * decoding. Like Xray, any single base64url token is taken as early data. Never throws.
 * When it returns bytes, the 101 response must carry the same header value back.
 */
export function decodeEarlyData(
  headerValue: string | null | undefined,
  maxBytes: number = EARLY_DATA_MAX_BYTES,
): Uint8Array | StreamError | undefined {
  if (!headerValue) return undefined;
  const text = headerValue.trim().replace(/={1,2}$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  if (text === "" || !/^[A-Za-z0-9_-]+$/.test(text) || text.length % 4 === 1) return undefined;
  const size = Math.floor((text.length * 3) / 4);
  if (size > maxBytes) {
    return new StreamError("ws_early_data_too_large", `early data of ${size} bytes exceeds ${maxBytes}`);
  }
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** base64url without padding: what the clients send (Go's RawURLEncoding), for tests and a client. */
export function encodeEarlyData(bytes: Uint8Array): string {
  return encodeBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
