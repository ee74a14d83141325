// The Outline node pool. Passwords are stored (the gateway needs them to dial) but are
// never part of any JSON the admin API returns.
import { type Queryable, sql } from "../db/database.ts";
import { isUuid } from "./devices.ts";

export interface NodeRow {
  id: string;
  name: string;
  host: string;
  port: number;
  method: string;
  password: string;
  prefix: string | null;
  region: string | null;
  weight: number;
  enabled: boolean;
  api_url: string | null;
  cert_sha256: string | null;
  status: "unknown" | "up" | "down";
  latency_ms: number | null;
  last_error: string | null;
  checked_at: Date | null;
  created_at: Date;
  updated_at: Date;
  sessions_active?: number;
  devices_assigned?: number;
}

export interface NodeFields {
  name?: string;
  host?: string;
  port?: number;
  method?: string;
  password?: string;
  prefix?: string | null;
  region?: string | null;
  weight?: number;
  enabled?: boolean;
  api_url?: string | null;
  cert_sha256?: string | null;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function nodeJson(n: NodeRow) {
  return {
    id: n.id,
    name: n.name,
    host: n.host,
    port: n.port,
    method: n.method,
    prefix: n.prefix,
    region: n.region,
    weight: n.weight,
    enabled: n.enabled,
    api_url: n.api_url,
    cert_sha256: n.cert_sha256,
    health: { status: n.status, latency_ms: n.latency_ms, last_error: n.last_error, checked_at: iso(n.checked_at) },
    sessions_active: n.sessions_active ?? 0,
    devices_assigned: n.devices_assigned ?? 0,
    created_at: iso(n.created_at)!,
    updated_at: iso(n.updated_at)!,
  };
}

/**
 * The salt prefix is bytes (one per code point of the decoded `prefix=` text), and real ones
 * hold 0x00 (a TLS record header: 16 03 01 00 …), which PostgreSQL text cannot store. The
 * column therefore keeps it percent-encoded; the API and the gateway see the decoded text.
 */
export const encodePrefix = (
  p: string | null | undefined,
): string | null => (p === null || p === undefined ? null : encodeURIComponent(p));
export const decodePrefix = (p: string | null): string | null => {
  if (p === null) return null;
  try {
    return decodeURIComponent(p);
  } catch {
    return p; // written before it was encoded: it held no NUL and no '%'-escape, so it is the text itself
  }
};
const decoded = (n: NodeRow): NodeRow => ({ ...n, prefix: decodePrefix(n.prefix) });

/** Open sessions per node, counting only sessions a gateway reported recently, and the devices pinned to it. */
const SELECT = `select n.*, (select count(*)::int from sessions s
    where s.node_id = n.id and s.closed_at is null and s.last_seen_at > now() - make_interval(secs => $1::float8)) as sessions_active,
    (select count(*)::int from devices d where d.node_id = n.id and d.revoked_at is null) as devices_assigned
  from nodes n`;

export async function createNode(
  db: Queryable,
  f: Required<Pick<NodeFields, "name" | "host" | "port" | "method" | "password">> & NodeFields,
): Promise<NodeRow> {
  const rows = await db.query<NodeRow>({
    text: `insert into nodes (name, host, port, method, password, prefix, region, weight, enabled, api_url, cert_sha256)
           values ($1, $2, $3::int, $4, $5, $6, $7, $8::int, $9, $10, $11) returning *, 0 as sessions_active, 0 as devices_assigned`,
    params: [
      f.name,
      f.host,
      f.port,
      f.method,
      f.password,
      encodePrefix(f.prefix),
      f.region ?? null,
      f.weight ?? 1,
      f.enabled ?? true,
      f.api_url ?? null,
      f.cert_sha256?.toLowerCase() ?? null,
    ],
  });
  return decoded(rows[0]!);
}

export async function listNodes(db: Queryable, staleAfterSec: number): Promise<NodeRow[]> {
  return (await db.query<NodeRow>({ text: `${SELECT} order by n.created_at, n.id`, params: [staleAfterSec] })).map(decoded);
}

export async function getNode(db: Queryable, id: string, staleAfterSec: number): Promise<NodeRow | undefined> {
  if (!isUuid(id)) return undefined;
  const row = (await db.query<NodeRow>({ text: `${SELECT} where n.id = $2`, params: [staleAfterSec, id] }))[0];
  return row && decoded(row);
}

export async function updateNode(db: Queryable, id: string, f: NodeFields): Promise<boolean> {
  if (!isUuid(id)) return false;
  const has = (k: keyof NodeFields) => f[k] !== undefined;
  const rows = await db.query({
    text: `update nodes set
        name = case when $2 then $3 else name end,
        host = case when $4 then $5 else host end,
        port = case when $6 then $7::int else port end,
        method = case when $8 then $9 else method end,
        password = case when $10 then $11 else password end,
        prefix = case when $12 then $13 else prefix end,
        region = case when $14 then $15 else region end,
        weight = case when $16 then $17::int else weight end,
        enabled = case when $18 then $19 else enabled end,
        api_url = case when $20 then $21 else api_url end,
        cert_sha256 = case when $22 then $23 else cert_sha256 end,
        -- a node whose address or key changed has not been checked yet
        status = case when $4 or $6 or $8 or $10 then 'unknown' else status end,
        updated_at = now()
      where id = $1 returning id`,
    params: [
      id,
      has("name"),
      f.name ?? "",
      has("host"),
      f.host ?? "",
      has("port"),
      f.port ?? 0,
      has("method"),
      f.method ?? "",
      has("password"),
      f.password ?? "",
      has("prefix"),
      encodePrefix(f.prefix),
      has("region"),
      f.region ?? null,
      has("weight"),
      f.weight ?? 1,
      has("enabled"),
      f.enabled ?? true,
      has("api_url"),
      f.api_url ?? null,
      has("cert_sha256"),
      f.cert_sha256?.toLowerCase() ?? null,
    ],
  });
  return rows.length > 0;
}

export async function deleteNode(db: Queryable, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  return (await db.query(sql`delete from nodes where id = ${id} returning id`)).length > 0;
}

/** A health check's result: the node's current health, and one more point of its history. */
export async function recordNodeHealth(
  db: Queryable,
  id: string,
  h: { status: "up" | "down"; latency_ms: number | null; last_error: string | null },
  at: Date = new Date(),
): Promise<void> {
  await db.query({
    text: `with n as (
             update nodes set status = $2, latency_ms = $3::int, last_error = $4, checked_at = $5::timestamptz
              where id = $1 returning id)
           insert into node_checks (node_id, checked_at, status, latency_ms, error)
           select id, $5::timestamptz, $2, $3::int, $4 from n
           on conflict (node_id, checked_at) do nothing`,
    params: [id, h.status, h.latency_ms, h.last_error, at.toISOString()],
  });
}

export interface NodeCheckRow {
  checked_at: Date;
  status: "up" | "down";
  latency_ms: number | null;
  error: string | null;
}

/** A node's health checks from `from` to `to` (both included), oldest first, at most `limit` (the newest ones). */
export async function nodeChecks(db: Queryable, id: string, from: Date, to: Date, limit: number): Promise<NodeCheckRow[]> {
  const rows = await db.query<NodeCheckRow>({
    text: `select checked_at, status, latency_ms, error from node_checks
            where node_id = $1::uuid and checked_at >= $2::timestamptz and checked_at <= $3::timestamptz
            order by checked_at desc limit $4::int`,
    params: [id, from.toISOString(), to.toISOString(), limit],
  });
  return rows.reverse();
}

/** Delete at most `limit` checks older than `before`; returns how many went. */
export async function pruneNodeChecks(db: Queryable, before: Date, limit: number): Promise<number> {
  const rows = await db.query<{ n: number }>({
    text: `with gone as (
             delete from node_checks where (node_id, checked_at) in (
               select node_id, checked_at from node_checks where checked_at < $1::timestamptz order by checked_at limit $2::int)
             returning 1)
           select count(*)::int as n from gone`,
    params: [before.toISOString(), limit],
  });
  return rows[0]!.n;
}
