// Devices: what an admin creates, changes, lists and acts on in bulk.
import { z } from "zod";
import { SHADOWSOCKS_METHODS } from "../../protocol/ss-methods.ts";
import { QUOTA_PERIODS } from "../quota-period.ts";
import { DEVICE_STATUSES } from "../store/device-view.ts";
import { count, isoDate, name, pageQuery, stored, uuid } from "./fields.ts";

const maxSessions = z.number().int().min(1).max(100_000);
const expireAfterDays = z.number().int().min(1).max(36_500)
  .describe("expiry N days after the first connection; on hold (no expiry yet) until then");

const deviceFields = {
  name,
  disabled: z.boolean().optional(),
  expires_at: isoDate.nullable().optional().describe("expiry at a date; clears expire_after_days"),
  expire_after_days: expireAfterDays.nullable().optional(),
  max_sessions: maxSessions.nullable().optional(),
  data_quota_bytes: count.nullable().optional(),
  quota_period: z.enum(QUOTA_PERIODS).optional().describe(
    "when the quota's count starts again: UTC day, ISO week, month; none: never",
  ),
};

// The two expiry modes exclude each other.
const oneExpiry = (b: { expires_at?: string | null; expire_after_days?: number | null }) =>
  b.expires_at === undefined || b.expires_at === null || b.expire_after_days === undefined || b.expire_after_days === null;
const oneExpiryError = { message: "set expires_at or expire_after_days, not both", path: ["expire_after_days"] };

export const DeviceCreate = z.strictObject(deviceFields).refine(oneExpiry, oneExpiryError);
export const DevicePatch = z.strictObject({ ...deviceFields, name: name.optional() }).refine(oneExpiry, oneExpiryError);

export const Device = z.object({
  id: uuid,
  name: z.string(),
  status: z.enum(DEVICE_STATUSES),
  disabled: z.boolean(),
  revoked_at: isoDate.nullable(),
  expires_at: isoDate.nullable().describe("when it expires (for expire_after_days: once it has connected)"),
  expiry_mode: z.enum(["none", "date", "first_connection"]),
  expire_after_days: z.number().int().nullable(),
  first_connected_at: isoDate.nullable(),
  max_sessions: z.number().int().nullable(),
  data_quota_bytes: count.nullable(),
  quota_period: z.enum(QUOTA_PERIODS),
  quota_used_bytes: count.describe("bytes in the current period (for none: since the last reset)"),
  quota_remaining_bytes: count.nullable(),
  quota_period_start: isoDate.nullable(),
  quota_resets_at: isoDate.nullable(),
  usage_reset_at: isoDate.nullable(),
  bytes_up: count.describe("ever reported"),
  bytes_down: count,
  last_seen_at: isoDate.nullable(),
  sessions_active: count,
  online: z.boolean(),
  node_id: uuid.nullable(),
  created_by: uuid.nullable().describe("the admin account that created it; null: ADMIN_TOKEN"),
  created_at: isoDate,
  updated_at: isoDate,
});

const appPath = z.string().regex(/^\/[A-Za-z0-9_-]{22}$/, "expected / and 22 base64url characters");
const appKeyFields = {
  cipher: z.enum(SHADOWSOCKS_METHODS),
  secret: z.string().describe("the device's Shadowsocks password at the gateway: a credential"),
};
export { appKeyFields, appPath };

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

export const DEVICE_FILTERS = [...DEVICE_STATUSES, "online"] as const;

/** Which devices: a search, a status, who created them. Used by the list and by bulk actions. */
const selection = {
  q: stored().trim().min(1).max(100).optional().describe("part of the name (any case), or the start of the id"),
  status: z.enum(DEVICE_FILTERS).optional().describe("a status, or online (a session reported within SESSION_STALE_AFTER)"),
  created_by: uuid.optional().describe("created by this admin account"),
};

export const DeviceListQuery = z.object({
  ...pageQuery,
  ...selection,
  order: z.enum(["asc", "desc"]).default("asc").describe("by creation time"),
});

export const BULK_MAX = 1000;
export const BULK_ACTIONS = ["disable", "enable", "revoke", "reset_usage"] as const;

export const DeviceBulk = z
  .strictObject({
    action: z.enum(BULK_ACTIONS),
    ids: z.array(uuid).min(1).max(BULK_MAX).optional(),
    filter: z.strictObject(selection).optional(),
    limit: z.number().int().min(1).max(BULK_MAX).default(BULK_MAX)
      .describe("with a filter: act on at most this many (oldest first); `more` says whether others matched"),
  })
  .refine((b) => (b.ids === undefined) !== (b.filter === undefined), {
    message: "give either ids or filter",
    path: ["ids"],
  });

export const DeviceBulkResult = z.object({
  action: z.enum(BULK_ACTIONS),
  ids: z.array(uuid).describe("the devices acted on"),
  affected: count,
  more: z.boolean().describe("a filter matched more devices than were acted on: send it again"),
});

export const TokenRotated = z.object({ device_id: uuid, token: z.string(), app: DeviceApp });

export const DeviceSessionsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  state: z.enum(["open", "all"]).default("all"),
});

export const DeviceSession = z.object({
  id: z.string(),
  gateway_id: z.string(),
  node_id: uuid.nullable(),
  opened_at: isoDate,
  last_seen_at: isoDate,
  closed_at: isoDate.nullable(),
  close_reason: z.string().nullable(),
  bytes_up: count,
  bytes_down: count,
  online: z.boolean(),
});
export const DeviceSessions = z.object({ device_id: uuid, sessions: z.array(DeviceSession) });
