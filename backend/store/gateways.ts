// Per-gateway API keys, issued by the admin API. Stored as sha256 digests, looked up by digest.
import { type Queryable, sql } from "../db/database.ts";
import { hashToken, newToken } from "../secrets.ts";
import { isUuid } from "./devices.ts";

export interface GatewayRow {
  id: string;
  name: string;
  created_at: Date;
  revoked_at: Date | null;
}

export const gatewayJson = (g: GatewayRow) => ({
  id: g.id,
  name: g.name,
  created_at: new Date(g.created_at).toISOString(),
  revoked_at: g.revoked_at ? new Date(g.revoked_at).toISOString() : null,
});

export async function createGateway(db: Queryable, name: string): Promise<{ gateway: GatewayRow; apiKey: string } | undefined> {
  const apiKey = "gw_" + newToken();
  const rows = await db.query<GatewayRow>(
    sql`insert into gateways (name, key_hash) values (${name}, ${
      hashToken(apiKey)
    }) on conflict (name) do nothing returning id, name, created_at, revoked_at`,
  );
  return rows[0] ? { gateway: rows[0], apiKey } : undefined;
}

export async function listGateways(db: Queryable): Promise<GatewayRow[]> {
  return db.query<GatewayRow>(sql`select id, name, created_at, revoked_at from gateways order by created_at, id`);
}

export async function revokeGateway(db: Queryable, id: string): Promise<GatewayRow | undefined> {
  if (!isUuid(id)) return undefined;
  const rows = await db.query<GatewayRow>(
    sql`update gateways set revoked_at = coalesce(revoked_at, now()) where id = ${id} returning id, name, created_at, revoked_at`,
  );
  return rows[0];
}

/** The gateway a per-gateway key belongs to, if the key is live. The digest is the index key. */
export async function gatewayByKey(db: Queryable, apiKey: string): Promise<GatewayRow | undefined> {
  const rows = await db.query<GatewayRow>(
    sql`select id, name, created_at, revoked_at from gateways where key_hash = ${hashToken(apiKey)} and revoked_at is null`,
  );
  return rows[0];
}

export interface GatewayStatusRow {
  name: string;
  key_id: string | null;
  key_created_at: Date | null;
  key_revoked_at: Date | null;
  version: string | null;
  runtime: string | null;
  first_report_at: Date | null;
  last_report_at: Date | null;
  sessions_active: number;
}

/**
 * Every gateway the backend knows: those with a key of their own (by name) and those that
 * report (by the id in their reports), one row per name, the most recently reporting first.
 */
export async function gatewayStatus(db: Queryable, staleAfterSec: number): Promise<GatewayStatusRow[]> {
  return db.query<GatewayStatusRow>({
    text: `select coalesce(g.name, r.gateway_id) as name, g.id as key_id, g.created_at as key_created_at,
                  g.revoked_at as key_revoked_at, r.version, r.runtime, r.first_report_at, r.last_report_at,
                  (select count(*)::int from sessions s
                    where s.gateway_id = coalesce(g.name, r.gateway_id) and s.closed_at is null
                      and s.last_seen_at > now() - make_interval(secs => $1::float8)) as sessions_active
             from gateways g full join gateway_reports r on r.gateway_id = g.name
            order by r.last_report_at desc nulls last, coalesce(g.name, r.gateway_id)`,
    params: [staleAfterSec],
  });
}
