// The API's shapes, once. Request bodies are validated with these and
// /api/v1/openapi.json is generated from the same objects (zod 4's JSON Schema output).
import { z } from "zod";
import type * as ControlPlane from "../protocol/control-plane.ts";
import { INVALID_REASONS } from "../protocol/control-plane.ts";
import { SHADOWSOCKS_METHODS } from "../protocol/ss-methods.ts";
import { unbracketHost } from "../protocol/ip-address.ts";

/** Text that is stored: PostgreSQL text cannot hold U+0000, so it is refused here with a 400, not a 500 later. */
const NO_NUL = /^[^\u0000]*$/;
const NUL_MESSAGE = "must not contain NUL characters";
const stored = () => z.string().regex(NO_NUL, NUL_MESSAGE);
const name = z.string().trim().min(1).max(100).regex(NO_NUL, NUL_MESSAGE);
const isoDate = z.iso.datetime({ offset: true });
const uuid = z.uuid();
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
// A bracketed IPv6 address ("[2001:db8::1]", as in a URL) is stored without its brackets.
const host = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9.:_\-\[\]%]+$/, "expected a host name or an IP address")
  .transform(unbracketHost);

// ---- devices

export const DeviceCreate = z.strictObject({
  name,
  disabled: z.boolean().optional(),
  expires_at: isoDate.nullable().optional(),
  max_sessions: z.number().int().min(1).max(100_000).nullable().optional(),
  data_quota_bytes: count.nullable().optional(),
});

export const DevicePatch = z.strictObject({
  name: name.optional(),
  disabled: z.boolean().optional(),
  expires_at: isoDate.nullable().optional(),
  max_sessions: z.number().int().min(1).max(100_000).nullable().optional(),
  data_quota_bytes: count.nullable().optional(),
});

export const Device = z.object({
  id: uuid,
  name: z.string(),
  status: z.enum(["active", "disabled", "revoked", "expired"]),
  disabled: z.boolean(),
  revoked_at: isoDate.nullable(),
  expires_at: isoDate.nullable(),
  max_sessions: z.number().int().nullable(),
  data_quota_bytes: count.nullable(),
  node_id: uuid.nullable(),
  created_at: isoDate,
  updated_at: isoDate,
});

const appPath = z.string().regex(/^\/[A-Za-z0-9_-]{22}$/, "expected / and 22 base64url characters");
const appKeyFields = {
  cipher: z.enum(SHADOWSOCKS_METHODS),
  secret: z.string().describe("the device's Shadowsocks password at the gateway: a credential"),
};

/** A device's identity for the apps people already have (docs/08-clients.md). */
export const DeviceApp = z.object({
  path: appPath.describe("the device's secret path prefix at every gateway"),
  ...appKeyFields,
});

export const DeviceCreated = Device.extend({
  device_id: uuid,
  token: z.string().describe("shown once; only its sha256 is stored"),
  app: DeviceApp,
});

export const DeviceList = z.object({ devices: z.array(Device), next_cursor: z.string().nullable() });

export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});

export const TokenRotated = z.object({ device_id: uuid, token: z.string(), app: DeviceApp });

export const Usage = z.object({
  device_id: uuid,
  bytes_up: count,
  bytes_down: count,
  bytes_total: count,
  sessions_total: count,
  sessions_active: count,
  last_seen_at: isoDate.nullable(),
  data_quota_bytes: count.nullable(),
  quota_remaining_bytes: count.nullable(),
});

// ---- nodes

const nodeFields = {
  name,
  host,
  port: z.number().int().min(1).max(65535),
  method: z.enum(SHADOWSOCKS_METHODS),
  password: stored().min(1).max(1024),
  // Bytes as code points (0x00 included: real prefixes hold it); stored percent-encoded.
  prefix: z.string().max(64).regex(/^[\u0000-\u00ff]*$/, "expected bytes: code points up to U+00FF").nullable().optional(),
  region: stored().trim().max(64).nullable().optional(),
  weight: z.number().int().min(1).max(10_000).optional(),
  enabled: z.boolean().optional(),
  api_url: z.url({ protocol: /^https$/ }).max(2048).nullable().optional(),
  cert_sha256: z
    .string()
    .regex(/^[0-9A-Fa-f]{64}$/, "expected 64 hex digits")
    .nullable()
    .optional(),
};

// Only a pinned management API is ever called (backend/outline-api.ts): no pin, no API.
const pinnedApi = (b: { api_url?: string | null; cert_sha256?: string | null }) => !b.api_url || !!b.cert_sha256;
const pinnedApiError = {
  message: "required when api_url is set (the sha256 of the server's certificate)",
  path: ["cert_sha256"],
};

export const NodeCreate = z.strictObject(nodeFields).refine(pinnedApi, pinnedApiError);
export const NodePatch = z.strictObject({
  name: nodeFields.name.optional(),
  host: nodeFields.host.optional(),
  port: nodeFields.port.optional(),
  method: nodeFields.method.optional(),
  password: nodeFields.password.optional(),
  prefix: nodeFields.prefix,
  region: nodeFields.region,
  weight: nodeFields.weight,
  enabled: nodeFields.enabled,
  api_url: nodeFields.api_url,
  cert_sha256: nodeFields.cert_sha256,
});

export const NodeImport = z.strictObject({
  ss_url: stored().min(5).max(4096),
  name: name.optional(),
  region: nodeFields.region,
  weight: nodeFields.weight,
  enabled: nodeFields.enabled,
});

export const NodeOutlineRegister = z.strictObject({
  api_url: z.url({ protocol: /^https$/ }).max(2048).describe("the installer's apiUrl: https://HOST:PORT/SECRET"),
  cert_sha256: z.string().regex(/^[0-9A-Fa-f]{64}$/, "expected 64 hex digits").describe("the installer's certSha256"),
  name: name.optional(),
  host: host.optional().describe("address the gateway dials; default: the server's hostnameForAccessKeys"),
  region: nodeFields.region,
  weight: nodeFields.weight,
  enabled: nodeFields.enabled,
});

export const Node = z.object({
  id: uuid,
  name: z.string(),
  host: z.string(),
  port: z.number().int(),
  method: z.enum(SHADOWSOCKS_METHODS),
  prefix: z.string().nullable(),
  region: z.string().nullable(),
  weight: z.number().int(),
  enabled: z.boolean(),
  api_url: z.string().nullable().describe("origin only (https://host:port/…): the secret path is write-only"),
  cert_sha256: z.string().nullable(),
  health: z.object({
    status: z.enum(["unknown", "up", "down"]),
    latency_ms: z.number().int().nullable(),
    last_error: z.string().nullable(),
    checked_at: isoDate.nullable(),
  }),
  sessions_active: count,
  created_at: isoDate,
  updated_at: isoDate,
});
export const NodeList = z.object({ nodes: z.array(Node) });

// ---- gateways' own credentials

export const GatewayCreate = z.strictObject({ name: z.string().trim().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/) });
export const Gateway = z.object({ id: uuid, name: z.string(), created_at: isoDate, revoked_at: isoDate.nullable() });
export const GatewayCreated = Gateway.extend({ api_key: z.string().describe("shown once; only its sha256 is stored") });
export const GatewayList = z.object({ gateways: z.array(Gateway) });

// ---- the gateway-facing API

const sessionId = stored().min(1).max(128);
const usageCounters = z.object({ bytes_up: count, bytes_down: count });
const validDevice = z.object({
  id: uuid,
  name: z.string(),
  max_sessions: z.number().int().nullable(),
  data_quota_bytes: count.nullable(),
  expires_at: isoDate.nullable(),
});

export const ValidateRequest = z.object({
  device_id: z.string().max(100),
  token: z.string().max(1024),
  client_version: z.string().max(64),
  session_id: stored().max(128).optional(),
  exclude_node_ids: z.array(z.string().max(100)).max(64).optional(),
});

export const Assignment = z.object({
  node_id: uuid,
  host: z.string(),
  port: z.number().int(),
  method: z.enum(SHADOWSOCKS_METHODS),
  password: z.string(),
  prefix: z.string().nullable(),
});

export const ValidateResponse = z.union([
  z.object({ valid: z.literal(true), device: validDevice, assignment: Assignment.nullable() }),
  z.object({ valid: z.literal(false), reason: z.enum(INVALID_REASONS) }),
]);

export const ValidateAppRequest = z
  .object({
    app_path: appPath,
    purpose: z.enum(["connect", "config"]),
    session_id: sessionId.optional(),
    exclude_node_ids: z.array(z.string().max(100)).max(64).optional(),
    client_version: z.string().max(64).optional(),
  })
  .refine((r) => r.purpose !== "connect" || r.session_id !== undefined, {
    message: "required when purpose is connect (the app session being admitted)",
    path: ["session_id"],
  });

export const ValidateAppResponse = z.union([
  z.object({
    valid: z.literal(true),
    device: validDevice,
    assignment: Assignment.nullable(),
    app: z.object(appKeyFields),
    usage: usageCounters,
  }),
  z.object({
    valid: z.literal(false),
    reason: z.enum(INVALID_REASONS),
    device: validDevice.optional(),
    usage: usageCounters.optional(),
  }),
]);

export const ReportEvent = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("session_open"),
    session_id: sessionId,
    device_id: z.string().max(100),
    node_id: z.string().max(100).nullable().optional(),
  }),
  z.object({
    type: z.literal("session_usage"),
    session_id: sessionId,
    device_id: z.string().max(100),
    bytes_up: count,
    bytes_down: count,
  }),
  z.object({
    type: z.literal("session_close"),
    session_id: sessionId,
    device_id: z.string().max(100),
    reason: stored().max(64).optional(),
    bytes_up: count,
    bytes_down: count,
  }),
  z.object({ type: z.literal("node_failure"), node_id: z.string().max(100), error: stored().max(200) }),
]);
export const Report = z.object({
  gateway_id: stored().min(1).max(64).optional(),
  events: z.array(ReportEvent).max(1000),
});
export const ReportAccepted = z.object({ accepted: count, ignored: count });

export type ReportEventT = z.infer<typeof ReportEvent>;

// The gateway API's shapes are declared in protocol/control-plane.ts; these schemas must agree
// with them: every request a gateway sends parses here, and every answer is what a gateway reads.
type Agrees<T extends true> = T;
export type GatewayApiAgrees = [
  Agrees<ControlPlane.ValidateRequest extends z.input<typeof ValidateRequest> ? true : false>,
  Agrees<z.output<typeof ValidateResponse> extends ControlPlane.ValidateResponse ? true : false>,
  Agrees<ControlPlane.ValidateAppRequest extends z.input<typeof ValidateAppRequest> ? true : false>,
  Agrees<z.output<typeof ValidateAppResponse> extends ControlPlane.ValidateAppResponse ? true : false>,
  Agrees<ControlPlane.ReportBody extends z.input<typeof Report> ? true : false>,
  Agrees<z.output<typeof ReportAccepted> extends ControlPlane.ReportAccepted ? true : false>,
];
