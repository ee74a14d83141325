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
