// The Outline node pool: what an admin adds and changes, and a node with its health and load.
import { z } from "zod";
import { SHADOWSOCKS_METHODS } from "../../protocol/ss-methods.ts";
import { count, host, isoDate, name, rangeQuery, stored, uuid } from "./fields.ts";

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
  devices_assigned: count.describe("devices (not revoked) pinned to it"),
  created_at: isoDate,
  updated_at: isoDate,
});
export const NodeList = z.object({ nodes: z.array(Node) });

export const NodeHealthQuery = z.object({
  ...rangeQuery,
  limit: z.coerce.number().int().min(1).max(5000).default(2000),
});
export const NodeCheck = z.object({
  checked_at: isoDate,
  status: z.enum(["up", "down"]),
  latency_ms: z.number().int().nullable(),
  error: z.string().nullable(),
});
export const NodeHealthHistory = z.object({
  node_id: uuid,
  from: isoDate,
  to: isoDate,
  checks: z.array(NodeCheck).describe("oldest first; at most `limit`, the newest"),
});
