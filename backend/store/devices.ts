// Devices, their tokens and their app identities. The SQL is the schema: sql/0001_init.sql,
// sql/0003_device_apps.sql (app identity), sql/0004_usage_buckets.sql (quota periods, expiry
// modes) and sql/0005_admins.sql (created_by). Reads return the API's view (store/device-view.ts).
import { type Database, Params, type Queryable, sql } from "../db/database.ts";
import { hashToken, newToken } from "../secrets.ts";
import { type DeviceAppIdentity, deviceAppIdentity, newAppColumns } from "../app-identity.ts";
import type { QuotaPeriod } from "../quota-period.ts";
import { type DeviceRow, deviceSelect } from "./device-view.ts";
import { recountPeriodUsage } from "./usage.ts";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string) => UUID_RE.test(s);

/**
 * Which devices an admin may see and change: all of them, or (an operator with
 * own_devices_only) only those it created. A device outside the scope is "not found".
 */
export interface DeviceScope {
  createdBy?: string;
}

/** SQL condition on `d` for the scope (true when it has none). */
export function scopeSql(p: Params, scope: DeviceScope): string {
  return scope.createdBy ? `d.created_by = ${p.add(scope.createdBy)}::uuid` : "true";
}

export interface DeviceFields {
  name?: string;
  disabled?: boolean;
  expires_at?: string | null;
  expire_after_days?: number | null;
  max_sessions?: number | null;
  data_quota_bytes?: number | null;
  quota_period?: QuotaPeriod;
}

/** Its columns beside a DeviceRow's: read only where the app identity is handed out. */
type AppColumns = { app_secret: string; app_cipher: string };

export interface ReadOptions {
  now: Date;
  staleAfterSec: number;
}

/** One device in the API's view, if it exists within the scope. */
export async function getDevice(
  db: Queryable,
  id: string,
  o: ReadOptions,
  scope: DeviceScope = {},
): Promise<DeviceRow | undefined> {
  if (!isUuid(id)) return undefined;
  const p = new Params();
  const text = `${deviceSelect(p, o.now, o.staleAfterSec)} where d.id = ${p.add(id)} and ${scopeSql(p, scope)}`;
  return (await db.query<DeviceRow>({ text, params: p.values }))[0];
}

export async function createDevice(
  db: Queryable,
  f: DeviceFields & { name: string },
  createdBy: string | null,
): Promise<{ id: string; token: string; app: DeviceAppIdentity }> {
  const token = newToken();
  const app = newAppColumns();
  const rows = await db.query<{ id: string } & AppColumns>({
    text: `insert into devices (name, token_hash, disabled, expires_at, expire_after_days, max_sessions, data_quota_bytes,
                                quota_period, app_secret, app_path_hash, created_by)
           values ($1, $2, $3, $4::timestamptz, $5::int, $6::int, $7::bigint, $8, $9, $10, $11::uuid)
           returning id, app_secret, app_cipher`,
    params: [
      f.name,
      hashToken(token),
      f.disabled ?? false,
      // "N days from the first connection" starts on hold: no date until then.
      f.expire_after_days ? null : f.expires_at ?? null,
      f.expire_after_days ?? null,
      f.max_sessions ?? null,
      f.data_quota_bytes ?? null,
      f.quota_period ?? "none",
      app.app_secret,
      app.app_path_hash,
      createdBy,
    ],
  });
  const r = rows[0]!;
  return { id: r.id, token, app: deviceAppIdentity(r) };
}

/**
 * Create a device for an admin with a cap on how many (not revoked) devices it may have: the
 * count and the insert run under a per-admin lock, so two requests racing for the last slot
 * cannot both get it. Undefined when the cap is reached.
 */
export function createDeviceCapped(
  db: Database,
  f: DeviceFields & { name: string },
  adminId: string,
  maxDevices: number,
): Promise<{ id: string; token: string; app: DeviceAppIdentity } | undefined> {
  return db.transaction(async (tx) => {
    await tx.query({ text: `select pg_advisory_xact_lock(hashtext($1))`, params: [`device-cap:${adminId}`] });
    const n = await tx.query<{ n: number }>(
      sql`select count(*)::int as n from devices where created_by = ${adminId}::uuid and revoked_at is null`,
    );
    if (n[0]!.n >= maxDevices) return undefined;
    return createDevice(tx, f, adminId);
  });
}

/** The device's app identity, and whether it is revoked (its identity then opens nothing). */
export async function getDeviceApp(
  db: Queryable,
  id: string,
  scope: DeviceScope = {},
): Promise<{ revoked: boolean; app: DeviceAppIdentity } | undefined> {
  if (!isUuid(id)) return undefined;
  const p = new Params();
  const rows = await db.query<AppColumns & { revoked: boolean }>({
    text: `select app_secret, app_cipher, revoked_at is not null as revoked from devices d
            where d.id = ${p.add(id)} and ${scopeSql(p, scope)}`,
    params: p.values,
  });
  const r = rows[0];
  return r && { revoked: r.revoked, app: deviceAppIdentity(r) };
}

/**
 * Only the fields present in `f` change; `null` clears a limit. The two expiry modes exclude
 * each other: a date clears "N days from the first connection", and N days sets the date to
 * the first connection + N days (none while the device has never connected: on hold).
 * A changed quota period recounts the period's usage from the buckets. False: no such device.
 */
export async function updateDevice(
  db: Database,
  id: string,
  f: DeviceFields,
  now: Date,
  scope: DeviceScope = {},
): Promise<boolean> {
  if (!isUuid(id)) return false;
  const has = (k: keyof DeviceFields) => f[k] !== undefined;
  const p = new Params();
  // Each parameter is added where the text uses it: PostgreSQL refuses a parameter it cannot type.
  const days = f.expire_after_days;
  const expiresAt = days !== undefined && days !== null
    ? `d.first_connected_at + make_interval(days => ${p.add(days)}::int)`
    : has("expires_at")
    ? `${p.add(f.expires_at)}::timestamptz`
    : days === null
    ? "null"
    : "d.expires_at";
  const afterDays = days !== undefined
    ? `${p.add(days)}::int`
    : has("expires_at") && f.expires_at !== null
    ? "null"
    : "d.expire_after_days";
  const set = (k: keyof DeviceFields, column: string, cast: string) => has(k) ? `${column} = ${p.add(f[k] ?? null)}${cast},` : "";
  const update = `update devices d set
               ${set("name", "name", "")}
               ${set("disabled", "disabled", "::boolean")}
               ${set("max_sessions", "max_sessions", "::int")}
               ${set("data_quota_bytes", "data_quota_bytes", "::bigint")}
               ${set("quota_period", "quota_period", "")}
               expires_at = ${expiresAt},
               expire_after_days = ${afterDays},
               updated_at = now()
             where d.id = ${p.add(id)}`;
  return db.transaction(async (tx) => {
    const q = new Params();
    const before = await tx.query<{ quota_period: QuotaPeriod }>({
      text: `select quota_period from devices d where d.id = ${q.add(id)} and ${scopeSql(q, scope)} for update`,
      params: q.values,
    });
    if (!before[0]) return false;
    await tx.query({ text: update, params: p.values });
    if (f.quota_period !== undefined && f.quota_period !== before[0].quota_period) {
      await recountPeriodUsage(tx, id, f.quota_period, now);
    }
    return true;
  });
}

/** Revoke the devices among `ids` (a no-op for those already revoked); returns those found. */
export async function revokeDevices(db: Queryable, ids: string[]): Promise<string[]> {
  const rows = await db.query<{ id: string }>({
    text: `update devices set revoked_at = coalesce(revoked_at, now()), updated_at = now()
            where id = any($1::uuid[]) returning id::text as id`,
    params: [ids.filter(isUuid)],
  });
  return rows.map((r) => r.id);
}

/** Disable or enable the devices among `ids` that are not revoked; returns those changed. */
export async function setDevicesDisabled(db: Queryable, ids: string[], disabled: boolean): Promise<string[]> {
  const rows = await db.query<{ id: string }>({
    text: `update devices set disabled = $2, updated_at = now()
            where id = any($1::uuid[]) and revoked_at is null returning id::text as id`,
    params: [ids.filter(isUuid), disabled],
  });
  return rows.map((r) => r.id);
}

/** A new token and a new app secret: the old token, app path and app key all stop working. */
export async function rotateDeviceToken(
  db: Queryable,
  id: string,
  scope: DeviceScope = {},
): Promise<{ token: string; app: DeviceAppIdentity } | undefined> {
  if (!isUuid(id)) return undefined;
  const token = newToken();
  const app = newAppColumns();
  const p = new Params();
  const rows = await db.query<AppColumns>({
    text: `update devices d set token_hash = ${p.add(hashToken(token))}, app_secret = ${p.add(app.app_secret)},
                  app_path_hash = ${p.add(app.app_path_hash)}, updated_at = now()
            where d.id = ${p.add(id)} and ${scopeSql(p, scope)} returning app_secret, app_cipher`,
    params: p.values,
  });
  return rows[0] && { token, app: deviceAppIdentity(rows[0]) };
}
