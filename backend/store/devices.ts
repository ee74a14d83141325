// Devices, their tokens and their app identities. The SQL is the schema: see sql/0001_init.sql
// and sql/0003_device_apps.sql.
import { type Queryable, sql } from "../db/database.ts";
import { hashToken, newToken } from "../secrets.ts";
import { type DeviceAppIdentity, deviceAppIdentity, newAppColumns } from "../app-identity.ts";

export interface DeviceRow {
  id: string;
  name: string;
  disabled: boolean;
  revoked_at: Date | null;
  expires_at: Date | null;
  max_sessions: number | null;
  data_quota_bytes: number | null;
  node_id: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `id, name, disabled, revoked_at, expires_at, max_sessions, data_quota_bytes, node_id, created_at, updated_at`;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string) => UUID_RE.test(s);

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function deviceStatus(d: DeviceRow, now = Date.now()): "active" | "disabled" | "revoked" | "expired" {
  if (d.revoked_at) return "revoked";
  if (d.disabled) return "disabled";
  if (d.expires_at && new Date(d.expires_at).getTime() <= now) return "expired";
  return "active";
}

export function deviceJson(d: DeviceRow) {
  return {
    id: d.id,
    name: d.name,
    status: deviceStatus(d),
    disabled: d.disabled,
    revoked_at: iso(d.revoked_at),
    expires_at: iso(d.expires_at),
    max_sessions: d.max_sessions,
    data_quota_bytes: d.data_quota_bytes,
    node_id: d.node_id,
    created_at: iso(d.created_at)!,
    updated_at: iso(d.updated_at)!,
  };
}

export interface DeviceFields {
  name?: string;
  disabled?: boolean;
  expires_at?: string | null;
  max_sessions?: number | null;
  data_quota_bytes?: number | null;
}

/** Its columns beside a DeviceRow's: read only where the app identity is handed out. */
type AppColumns = { app_secret: string; app_cipher: string };

export async function createDevice(
  db: Queryable,
  f: DeviceFields & { name: string },
): Promise<{ device: DeviceRow; token: string; app: DeviceAppIdentity }> {
  const token = newToken();
  const app = newAppColumns();
  const rows = await db.query<DeviceRow & AppColumns>({
    text: `insert into devices (name, token_hash, disabled, expires_at, max_sessions, data_quota_bytes, app_secret, app_path_hash)
           values ($1, $2, $3, $4::timestamptz, $5::int, $6::bigint, $7, $8) returning ${COLUMNS}, app_secret, app_cipher`,
    params: [
      f.name,
      hashToken(token),
      f.disabled ?? false,
      f.expires_at ?? null,
      f.max_sessions ?? null,
      f.data_quota_bytes ?? null,
      app.app_secret,
      app.app_path_hash,
    ],
  });
  const { app_secret, app_cipher, ...device } = rows[0]!;
  return { device, token, app: deviceAppIdentity({ app_secret, app_cipher }) };
}

/** The device's app identity, and whether it is revoked (its identity then opens nothing). */
export async function getDeviceApp(
  db: Queryable,
  id: string,
): Promise<{ revoked: boolean; app: DeviceAppIdentity } | undefined> {
  if (!isUuid(id)) return undefined;
  const rows = await db.query<AppColumns & { revoked: boolean }>({
    text: `select app_secret, app_cipher, revoked_at is not null as revoked from devices where id = $1`,
    params: [id],
  });
  const r = rows[0];
  return r && { revoked: r.revoked, app: deviceAppIdentity(r) };
}

export async function getDevice(db: Queryable, id: string): Promise<DeviceRow | undefined> {
  if (!isUuid(id)) return undefined;
  const rows = await db.query<DeviceRow>({ text: `select ${COLUMNS} from devices where id = $1`, params: [id] });
  return rows[0];
}

/**
 * Keyset pagination on (created_at, id), stable under concurrent inserts. The cursor is
 * the last id seen; its created_at is read back in SQL so no timestamp precision is lost
 * on the way through JSON (devices are revoked, never deleted, so the row stays).
 */
export async function listDevices(db: Queryable, limit: number, afterId?: string): Promise<DeviceRow[]> {
  if (afterId) {
    return db.query<DeviceRow>({
      text: `select ${COLUMNS} from devices
              where (created_at, id) > (select created_at, id from devices where id = $1::uuid)
              order by created_at, id limit $2::int`,
      params: [afterId, limit],
    });
  }
  return db.query<DeviceRow>({ text: `select ${COLUMNS} from devices order by created_at, id limit $1::int`, params: [limit] });
}

/** Only the fields present in `f` change; `null` clears a limit. */
export async function updateDevice(db: Queryable, id: string, f: DeviceFields): Promise<DeviceRow | undefined> {
  if (!isUuid(id)) return undefined;
  const has = (k: keyof DeviceFields) => f[k] !== undefined;
  const rows = await db.query<DeviceRow>({
    text: `update devices set
             name = case when $2 then $3 else name end,
             disabled = case when $4 then $5 else disabled end,
             expires_at = case when $6 then $7::timestamptz else expires_at end,
             max_sessions = case when $8 then $9::int else max_sessions end,
             data_quota_bytes = case when $10 then $11::bigint else data_quota_bytes end,
             updated_at = now()
           where id = $1 returning ${COLUMNS}`,
    params: [
      id,
      has("name"),
      f.name ?? "",
      has("disabled"),
      f.disabled ?? false,
      has("expires_at"),
      f.expires_at ?? null,
      has("max_sessions"),
      f.max_sessions ?? null,
      has("data_quota_bytes"),
      f.data_quota_bytes ?? null,
    ],
  });
  return rows[0];
}

export async function revokeDevice(db: Queryable, id: string): Promise<DeviceRow | undefined> {
  if (!isUuid(id)) return undefined;
  const rows = await db.query<DeviceRow>({
    text: `update devices set revoked_at = coalesce(revoked_at, now()), updated_at = now() where id = $1 returning ${COLUMNS}`,
    params: [id],
  });
  return rows[0];
}

/** A new token and a new app secret: the old token, app path and app key all stop working. */
export async function rotateDeviceToken(
  db: Queryable,
  id: string,
): Promise<{ token: string; app: DeviceAppIdentity } | undefined> {
  if (!isUuid(id)) return undefined;
  const token = newToken();
  const app = newAppColumns();
  const rows = await db.query<AppColumns>(
    sql`update devices set token_hash = ${hashToken(token)}, app_secret = ${app.app_secret},
               app_path_hash = ${app.app_path_hash}, updated_at = now()
         where id = ${id} returning app_secret, app_cipher`,
  );
  return rows[0] && { token, app: deviceAppIdentity(rows[0]) };
}
