// Finding devices: the admin list (search, status filter, keyset pagination) and the devices
// a bulk action applies to, with one definition of "which devices" for both.
import { Params, type Queryable } from "../db/database.ts";
import { type DeviceRow, deviceSelect, type DeviceStatus } from "./device-view.ts";
import { type DeviceScope, isUuid, type ReadOptions, scopeSql } from "./devices.ts";

export interface DeviceSelection {
  /** Part of the name (any case), or the start of the id. */
  q?: string;
  status?: DeviceStatus | "online";
  created_by?: string;
  node_id?: string;
  /** Only devices this bulk action would change (so repeating a filter's request ends). */
  changedBy?: "disable" | "enable" | "revoke" | "reset_usage";
}

const CHANGED_BY = {
  disable: "v.revoked_at is null and not v.disabled",
  enable: "v.revoked_at is null and v.disabled",
  revoke: "v.revoked_at is null",
  reset_usage: "v.revoked_at is null and v.used_up + v.used_down > 0",
} as const;

export interface Page {
  limit: number;
  /** The last id of the previous page. */
  afterId?: string;
  order: "asc" | "desc";
}

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => "\\" + c);

function selectionSql(p: Params, sel: DeviceSelection): string[] {
  const where: string[] = [];
  if (sel.q) {
    const q = sel.q.trim();
    where.push(
      `(v.name ilike ${p.add(`%${likeEscape(q)}%`)} escape '\\' or v.id::text like ${
        p.add(`${likeEscape(q.toLowerCase())}%`)
      } escape '\\')`,
    );
  }
  if (sel.status === "online") where.push("v.sessions_active > 0");
  else if (sel.status) where.push(`v.status = ${p.add(sel.status)}`);
  if (sel.created_by) where.push(`v.created_by = ${p.add(sel.created_by)}::uuid`);
  if (sel.node_id) where.push(`v.node_id = ${p.add(sel.node_id)}::uuid and v.revoked_at is null`);
  if (sel.changedBy) where.push(CHANGED_BY[sel.changedBy]);
  return where;
}

/**
 * Keyset pagination on (created_at, id), stable under concurrent inserts. The cursor is the
 * last id seen; its created_at is read back in SQL so no timestamp precision is lost on the
 * way through JSON (devices are revoked, never deleted, so the row stays).
 */
export async function listDevices(
  db: Queryable,
  sel: DeviceSelection,
  scope: DeviceScope,
  page: Page,
  o: ReadOptions,
): Promise<DeviceRow[]> {
  const p = new Params();
  const inner = `${deviceSelect(p, o.now, o.staleAfterSec)} where ${scopeSql(p, scope)}`;
  const where = selectionSql(p, sel);
  const cmp = page.order === "asc" ? ">" : "<";
  if (page.afterId) {
    where.push(`(v.created_at, v.id) ${cmp} (select created_at, id from devices where id = ${p.add(page.afterId)}::uuid)`);
  }
  const dir = page.order === "asc" ? "asc" : "desc";
  return db.query<DeviceRow>({
    text: `select v.* from (${inner}) v ${where.length ? `where ${where.join(" and ")}` : ""}
            order by v.created_at ${dir}, v.id ${dir} limit ${p.add(page.limit)}::int`,
    params: p.values,
  });
}

/** The devices among `ids` within the scope (others are not found, and not acted on). */
export async function devicesInScope(db: Queryable, ids: string[], scope: DeviceScope): Promise<string[]> {
  const p = new Params();
  const rows = await db.query<{ id: string }>({
    text: `select d.id::text as id from devices d where d.id = any(${p.add(ids.filter(isUuid))}::uuid[]) and ${
      scopeSql(p, scope)
    } order by d.created_at, d.id`,
    params: p.values,
  });
  return rows.map((r) => r.id);
}
