// Named admin accounts (sql/0005_admins.sql). Passwords are stored only as scrypt hashes
// (backend/passwords.ts); names are unique whatever their case.
import { type Queryable, sql } from "../db/database.ts";
import { isUuid } from "./devices.ts";

export type AdminRole = "owner" | "operator";

export interface AdminRow {
  id: string;
  name: string;
  role: AdminRole;
  password_hash: string;
  own_devices_only: boolean;
  max_devices: number | null;
  disabled_at: Date | null;
  created_at: Date;
  updated_at: Date;
  devices_created?: number;
}

const COLUMNS =
  `a.id, a.name, a.role, a.password_hash, a.own_devices_only, a.max_devices, a.disabled_at, a.created_at, a.updated_at,
  (select count(*)::int from devices d where d.created_by = a.id and d.revoked_at is null) as devices_created`;

export const adminJson = (a: AdminRow) => ({
  id: a.id,
  name: a.name,
  role: a.role,
  own_devices_only: a.own_devices_only,
  max_devices: a.max_devices,
  devices_created: a.devices_created ?? 0,
  disabled: a.disabled_at !== null,
  created_at: new Date(a.created_at).toISOString(),
  updated_at: new Date(a.updated_at).toISOString(),
});

export interface AdminFields {
  role?: AdminRole;
  own_devices_only?: boolean;
  max_devices?: number | null;
  disabled?: boolean;
}

/** Undefined when the name is taken (in any case). */
export async function createAdmin(
  db: Queryable,
  f: { name: string; role: AdminRole; password_hash: string; own_devices_only?: boolean; max_devices?: number | null },
): Promise<AdminRow | undefined> {
  const rows = await db.query<{ id: string }>({
    text: `insert into admins (name, role, password_hash, own_devices_only, max_devices)
           values ($1, $2, $3, $4, $5::int) on conflict (lower(name)) do nothing returning id`,
    params: [f.name, f.role, f.password_hash, f.own_devices_only ?? false, f.max_devices ?? null],
  });
  return rows[0] && getAdmin(db, rows[0].id);
}

export async function getAdmin(db: Queryable, id: string): Promise<AdminRow | undefined> {
  if (!isUuid(id)) return undefined;
  return (await db.query<AdminRow>({ text: `select ${COLUMNS} from admins a where a.id = $1`, params: [id] }))[0];
}

export async function adminByName(db: Queryable, name: string): Promise<AdminRow | undefined> {
  return (await db.query<AdminRow>({ text: `select ${COLUMNS} from admins a where lower(a.name) = lower($1)`, params: [name] }))[
    0
  ];
}

export async function listAdmins(db: Queryable): Promise<AdminRow[]> {
  return db.query<AdminRow>({ text: `select ${COLUMNS} from admins a order by a.created_at, a.id`, params: [] });
}

export async function updateAdmin(db: Queryable, id: string, f: AdminFields): Promise<AdminRow | undefined> {
  if (!isUuid(id)) return undefined;
  const has = (k: keyof AdminFields) => f[k] !== undefined;
  const rows = await db.query<{ id: string }>({
    text: `update admins set
             role = case when $2 then $3 else role end,
             own_devices_only = case when $4 then $5::boolean else own_devices_only end,
             max_devices = case when $6 then $7::int else max_devices end,
             disabled_at = case when not $8 then disabled_at when $9 then coalesce(disabled_at, now()) else null end,
             updated_at = now()
           where id = $1 returning id`,
    params: [
      id,
      has("role"),
      f.role ?? "operator",
      has("own_devices_only"),
      f.own_devices_only ?? false,
      has("max_devices"),
      f.max_devices ?? null,
      has("disabled"),
      f.disabled ?? false,
    ],
  });
  return rows[0] && getAdmin(db, id);
}

export async function setAdminPassword(db: Queryable, id: string, passwordHash: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const rows = await db.query(
    sql`update admins set password_hash = ${passwordHash}, updated_at = now() where id = ${id} returning id`,
  );
  return rows.length > 0;
}
