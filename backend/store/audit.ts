// The audit log (sql/0005_admins.sql): who did what to what, when, from where. Written after
// every state-changing admin request succeeds (backend/api.ts) and by sign-in itself, read
// newest first with a keyset on the id.
import { Params, type Queryable } from "../db/database.ts";

export interface Actor {
  type: "token" | "admin" | "anonymous";
  id: string | null;
  name: string;
}

export interface AuditRecord {
  actor: Actor;
  action: string;
  targetType?: string | null;
  targetId?: string | null;
  address?: string | null;
  detail?: Record<string, unknown> | null;
  at: Date;
}

export async function writeAudit(db: Queryable, r: AuditRecord): Promise<void> {
  await db.query({
    text: `insert into audit_log (at, actor_type, actor_id, actor_name, action, target_type, target_id, address, detail)
           values ($1::timestamptz, $2, $3::uuid, $4, $5, $6, $7, $8, $9::jsonb)`,
    params: [
      r.at.toISOString(),
      r.actor.type,
      r.actor.id,
      r.actor.name,
      r.action,
      r.targetType ?? null,
      r.targetId ?? null,
      r.address ?? null,
      r.detail ? JSON.stringify(r.detail) : null,
    ],
  });
}

export interface AuditRow {
  id: number;
  at: Date;
  actor_type: Actor["type"];
  actor_id: string | null;
  actor_name: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  address: string | null;
  detail: Record<string, unknown> | string | null;
}

export const auditJson = (r: AuditRow) => ({
  id: Number(r.id),
  at: new Date(r.at).toISOString(),
  actor: { type: r.actor_type, id: r.actor_id, name: r.actor_name },
  action: r.action,
  target_type: r.target_type,
  target_id: r.target_id,
  address: r.address,
  // postgres.js and PGlite both parse jsonb; a string is only ever a driver that did not.
  detail: typeof r.detail === "string" ? JSON.parse(r.detail) : r.detail,
});

export interface AuditFilter {
  beforeId?: number;
  actorId?: string;
  /** An action, or a prefix ending in "." ("device."). */
  action?: string;
  targetId?: string;
  from?: Date;
  to?: Date;
}

/** Newest first, `limit` entries with an id below `beforeId`. */
export async function listAudit(db: Queryable, f: AuditFilter, limit: number): Promise<AuditRow[]> {
  const p = new Params();
  const where: string[] = [];
  if (f.beforeId !== undefined) where.push(`id < ${p.add(f.beforeId)}::bigint`);
  if (f.actorId) where.push(`actor_id = ${p.add(f.actorId)}::uuid`);
  if (f.action?.endsWith(".")) where.push(`starts_with(action, ${p.add(f.action)})`);
  else if (f.action) where.push(`action = ${p.add(f.action)}`);
  if (f.targetId) where.push(`target_id = ${p.add(f.targetId)}`);
  if (f.from) where.push(`at >= ${p.add(f.from.toISOString())}::timestamptz`);
  if (f.to) where.push(`at < ${p.add(f.to.toISOString())}::timestamptz`);
  return db.query<AuditRow>({
    text: `select id, at, actor_type, actor_id, actor_name, action, target_type, target_id, address, detail
             from audit_log ${where.length ? `where ${where.join(" and ")}` : ""}
            order by id desc limit ${p.add(limit)}::int`,
    params: p.values,
  });
}

/** Failed sign-ins after `since` for the account `name` and from `address` (the sign-in rate limit). */
export async function failedSignIns(
  db: Queryable,
  name: string | null,
  address: string | null,
  since: Date,
): Promise<{ by_name: number; by_address: number }> {
  const rows = await db.query<{ by_name: number; by_address: number }>({
    text: `select (select count(*)::int from audit_log
                    where action = 'auth.sign_in_failed' and lower(target_id) = lower($1) and at > $3::timestamptz) as by_name,
                  (select count(*)::int from audit_log
                    where action = 'auth.sign_in_failed' and address = $2 and at > $3::timestamptz) as by_address`,
    params: [name ?? "", address ?? "", since.toISOString()],
  });
  return rows[0]!;
}

/** Delete at most `limit` entries older than `before`; returns how many went. */
export async function pruneAudit(db: Queryable, before: Date, limit: number): Promise<number> {
  const rows = await db.query<{ n: number }>({
    text: `with gone as (
             delete from audit_log where id in (
               select id from audit_log where at < $1::timestamptz order by id limit $2::int)
             returning 1)
           select count(*)::int as n from gone`,
    params: [before.toISOString(), limit],
  });
  return rows[0]!.n;
}
