// Signed-in admin sessions (sql/0005_admins.sql). The token is a 256-bit random value the
// client holds (as a bearer token, or in the console's cookie); only its sha256 is stored, so a
// database dump opens no session. A session ends ADMIN_SESSION_IDLE after its last use or
// ADMIN_SESSION_MAX after sign-in, when it signs out, or when its account is disabled or
// changes its password.
import { type Queryable, sql } from "../db/database.ts";
import { hashToken, newToken } from "../secrets.ts";
import type { AdminRole } from "./admins.ts";

export interface SessionTimes {
  idleMs: number;
  maxMs: number;
}

/** Recording each use moves the idle expiry; doing it at most this often keeps requests from each writing a row. */
const TOUCH_EVERY_MS = 60_000;

export async function openSession(
  db: Queryable,
  adminId: string | null,
  o: SessionTimes & { now: Date; address?: string; userAgent?: string },
): Promise<{ token: string; expiresAt: Date }> {
  const token = newToken();
  const expiresAt = new Date(o.now.getTime() + o.maxMs);
  await db.query({
    text: `insert into admin_sessions (token_hash, admin_id, created_at, last_used_at, expires_at, address, user_agent)
           values ($1, $2::uuid, $3::timestamptz, $3::timestamptz, $4::timestamptz, $5, $6)`,
    params: [hashToken(token), adminId, o.now.toISOString(), expiresAt.toISOString(), o.address ?? null, o.userAgent ?? null],
  });
  return { token, expiresAt };
}

export interface SessionPrincipal {
  tokenHash: string;
  adminId: string | null;
  name: string | null;
  role: AdminRole | null;
  ownDevicesOnly: boolean;
  maxDevices: number | null;
  expiresAt: Date;
}

/**
 * The live session a token opens, with its account; undefined when there is none (unknown,
 * expired, idle too long, or its account disabled). A use moves the idle expiry.
 */
export async function sessionByToken(
  db: Queryable,
  token: string,
  o: SessionTimes & { now: Date },
): Promise<SessionPrincipal | undefined> {
  const tokenHash = hashToken(token);
  const rows = await db.query<{
    admin_id: string | null;
    name: string | null;
    role: AdminRole | null;
    own_devices_only: boolean | null;
    max_devices: number | null;
    expires_at: Date;
    last_used_at: Date;
    disabled: boolean;
  }>({
    text: `select s.admin_id, a.name, a.role, a.own_devices_only, a.max_devices, s.expires_at, s.last_used_at,
                  (s.admin_id is not null and (a.id is null or a.disabled_at is not null)) as disabled
             from admin_sessions s left join admins a on a.id = s.admin_id
            where s.token_hash = $1`,
    params: [tokenHash],
  });
  const r = rows[0];
  if (!r || r.disabled) return undefined;
  const now = o.now.getTime();
  const lastUsed = new Date(r.last_used_at).getTime();
  if (new Date(r.expires_at).getTime() <= now || lastUsed + o.idleMs <= now) return undefined;
  if (now - lastUsed >= TOUCH_EVERY_MS) {
    await db.query(
      sql`update admin_sessions set last_used_at = ${o.now.toISOString()}::timestamptz where token_hash = ${tokenHash}`,
    );
  }
  return {
    tokenHash,
    adminId: r.admin_id,
    name: r.name,
    role: r.role,
    ownDevicesOnly: r.own_devices_only ?? false,
    maxDevices: r.max_devices,
    expiresAt: new Date(r.expires_at),
  };
}

export async function closeSession(db: Queryable, tokenHash: string): Promise<void> {
  await db.query(sql`delete from admin_sessions where token_hash = ${tokenHash}`);
}

/** End every session of an account (disabled, or its password changed), except `keep`. */
export async function closeAdminSessions(db: Queryable, adminId: string, keep?: string): Promise<void> {
  await db.query(sql`delete from admin_sessions where admin_id = ${adminId}::uuid and token_hash <> ${keep ?? ""}`);
}

/** Delete at most `limit` sessions that can no longer be used; returns how many went. */
export async function pruneAdminSessions(db: Queryable, now: Date, idleMs: number, limit: number): Promise<number> {
  const rows = await db.query<{ n: number }>({
    text: `with gone as (
             delete from admin_sessions where token_hash in (
               select token_hash from admin_sessions
                where expires_at <= $1::timestamptz or last_used_at <= $1::timestamptz - make_interval(secs => $2::float8)
                limit $3::int)
             returning 1)
           select count(*)::int as n from gone`,
    params: [now.toISOString(), idleMs / 1000, limit],
  });
  return rows[0]!.n;
}
