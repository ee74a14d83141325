// The gateway API of the control plane (docs/02-backend-api.md), as both ends see it: what a
// gateway sends to /api/v1/auth/validate-device and /api/v1/gateway/report and what the
// backend answers. Declared once, here, as plain types: the backend's zod schemas
// (backend/schemas.ts, which also produce the OpenAPI document) are checked against them at
// compile time, and the gateway (gateway/auth.ts) parses the answers into them.
import type { ErrorCode } from "./errors.ts";

/**
 * Why validate-device says no (docs/02 gives the order of the checks). The gateway logs and counts
 * each; a client sees quota_exceeded and session_limit as they are and the other five as
 * auth_failed (gateway/auth-refusal.ts).
 */
export const INVALID_REASONS = [
  "unknown_device",
  "bad_token",
  "disabled",
  "expired",
  "revoked",
  "session_limit",
  "quota_exceeded",
] as const satisfies readonly ErrorCode[];
export type InvalidReason = (typeof INVALID_REASONS)[number];

export interface ValidateRequest {
  device_id: string;
  token: string;
  client_version: string;
  /** The session being admitted or re-validated: never counted against its own max_sessions. */
  session_id?: string;
  /** Nodes a dial just failed on (failover). */
  exclude_node_ids?: string[];
}

/** The device part of a valid answer. */
export interface ValidDevice {
  id: string;
  name: string;
  max_sessions: number | null;
  data_quota_bytes: number | null;
  expires_at: string | null;
}

/** The upstream node the backend assigned (outline mode). `password` is a secret: never log it. */
export interface Assignment {
  node_id: string;
  host: string;
  port: number;
  /** One of SHADOWSOCKS_METHODS (ss-methods.ts) when the backend wrote it; a gateway still checks before it dials. */
  method: string;
  password: string;
  /** The node's salt prefix (Outline `prefix=`), as stored; null when it has none. */
  prefix: string | null;
}

/**
 * The answer to validate-device. A gateway must accept a `reason` it does not know (a newer
 * backend may send one) and pass it on as the auth_result code, like any unknown error code.
 */
export type ValidateResponse =
  | { valid: true; device: ValidDevice; assignment: Assignment | null }
  | { valid: false; reason: InvalidReason };

export type UsageEvent =
  | { type: "session_open"; session_id: string; device_id: string; node_id: string | null }
  | { type: "session_usage"; session_id: string; device_id: string; bytes_up: number; bytes_down: number }
  | { type: "session_close"; session_id: string; device_id: string; reason: string; bytes_up: number; bytes_down: number }
  /** The gateway could not use a node (connect failed, or its key got no answer): the backend marks it down. */
  | { type: "node_failure"; node_id: string; error: string };

export interface ReportBody {
  gateway_id: string;
  /** What the gateway runs (its software version, and node, bun or deno): the console's gateway list. Older backends ignore them. */
  gateway_version?: string;
  gateway_runtime?: string;
  events: UsageEvent[];
}

export interface ReportAccepted {
  accepted: number;
  /** Events the backend dropped (an unknown session or device). */
  ignored: number;
}

// ---- The apps people already have (docs/08-clients.md) ----

/** The routes under a device's secret path (protocol/app-links/identity.ts `appPaths`). */
export const APP_PATH_PATTERN = /^\/([A-Za-z0-9_-]{22})(\/(?:tcp|udp|outline|sub))$/;

/**
 * validate-app: a connection or a config fetch from an app (Outline Client, v2ray-plugin,
 * mihomo, sing-box, v2ray), found by the device's secret path instead of id and token.
 */
export interface ValidateAppRequest {
  /** The device's path prefix the request came on: "/" and 22 base64url characters. */
  app_path: string;
  /**
   * "connect": admit an app session (session_id is then required and a slot is reserved
   * against max_sessions, as validate-device does); "config": look up only (a config or
   * subscription fetch): nothing reserved, no node assigned (`assignment` is null), sessions
   * not counted (no `session_limit`), and an over-limit device is still described.
   */
  purpose: "connect" | "config";
  session_id?: string;
  exclude_node_ids?: string[];
  /** What the app says it is (its User-Agent, cut to 64 characters), for logs only. */
  client_version?: string;
}

/** The device's own Shadowsocks key at the gateway. `secret` is a credential: never log it. */
export interface AppKey {
  /** One of SHADOWSOCKS_METHODS. */
  cipher: string;
  secret: string;
}

export interface AppUsageCounters {
  bytes_up: number;
  bytes_down: number;
}

/**
 * A path that names no device, or a revoked one, is `unknown_device` with nothing else, so the
 * gateway answers it with the decoy site. A known device that may not connect (disabled,
 * expired, over quota, session limit) is described, so a config fetch can say why.
 */
export type ValidateAppResponse =
  | { valid: true; device: ValidDevice; assignment: Assignment | null; app: AppKey; usage: AppUsageCounters }
  | { valid: false; reason: InvalidReason; device?: ValidDevice; usage?: AppUsageCounters };
