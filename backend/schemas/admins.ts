// Admin accounts, signing in, and the audit log.
import { z } from "zod";
import { count, isoDate, pageQuery, rangeQuery, stored, uuid } from "./fields.ts";

export const ADMIN_ROLES = ["owner", "operator"] as const;

export const adminName = z.string().trim().min(1).max(64)
  .regex(/^[A-Za-z0-9._@-]+$/, "expected letters, digits and . _ @ -");
/** Long enough to resist guessing once hashed; the upper bound keeps one sign-in's work bounded. */
export const password = z.string().min(12, "at least 12 characters").max(1024).regex(
  /^[^\u0000]*$/,
  "must not contain NUL characters",
);
const maxDevices = z.number().int().min(0).max(1_000_000);

export const AdminCreate = z.strictObject({
  name: adminName,
  role: z.enum(ADMIN_ROLES),
  password,
  own_devices_only: z.boolean().optional().describe("operator: sees and manages only the devices it created"),
  max_devices: maxDevices.nullable().optional().describe("the most devices (not revoked) it may have created at once"),
});

export const AdminPatch = z.strictObject({
  role: z.enum(ADMIN_ROLES).optional(),
  own_devices_only: z.boolean().optional(),
  max_devices: maxDevices.nullable().optional(),
  disabled: z.boolean().optional().describe("a disabled account cannot sign in; its sessions end at once"),
});

export const AdminPassword = z.strictObject({ password });

export const Admin = z.object({
  id: uuid,
  name: z.string(),
  role: z.enum(ADMIN_ROLES),
  own_devices_only: z.boolean(),
  max_devices: z.number().int().nullable(),
  devices_created: count.describe("devices it created that are not revoked"),
  disabled: z.boolean(),
  created_at: isoDate,
  updated_at: isoDate,
});
export const AdminList = z.object({ admins: z.array(Admin) });

export const SignIn = z.union([
  z.strictObject({ name: adminName, password: z.string().min(1).max(1024) }),
  z.strictObject({ token: z.string().min(1).max(1024).describe("ADMIN_TOKEN: a session for the owner's token") }),
]);

/** Who is calling: the admin token, or a signed-in account. */
export const Me = z.object({
  kind: z.enum(["token", "session"]),
  id: uuid.nullable().describe("the admin account; null for the admin token"),
  name: z.string(),
  role: z.enum(ADMIN_ROLES),
  own_devices_only: z.boolean(),
  max_devices: z.number().int().nullable(),
  session: z.object({ expires_at: isoDate, idle_timeout_seconds: count }).nullable()
    .describe("the session the request came with, when it came with one"),
});

export const SignedIn = z.object({
  token: z.string().describe("the session's bearer token (shown once; only its sha256 is stored)"),
  expires_at: isoDate.describe("the latest it ends, however it is used"),
  idle_timeout_seconds: count.describe("it ends after this long without a request"),
  admin: Me,
});

export const OwnPassword = z.strictObject({ current_password: z.string().min(1).max(1024), new_password: password });

export const AuditQuery = z.object({
  ...pageQuery,
  ...rangeQuery,
  actor_id: uuid.optional(),
  action: stored().max(64).optional().describe('an action ("device.update") or a prefix ending in a dot ("device.")'),
  target_id: stored().max(128).optional(),
});

export const AuditEntry = z.object({
  id: count,
  at: isoDate,
  actor: z.object({
    type: z.enum(["token", "admin", "anonymous"]),
    id: uuid.nullable(),
    name: z.string(),
  }),
  action: z.string(),
  target_type: z.string().nullable(),
  target_id: z.string().nullable(),
  address: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()).nullable(),
});
export const AuditList = z.object({ entries: z.array(AuditEntry), next_cursor: z.string().nullable() });

export const SignedOut = z.object({ signed_out: z.literal(true) });
