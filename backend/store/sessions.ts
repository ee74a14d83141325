// Sessions and usage as the gateways report them (batched): the sessions, the per-device totals
// and quota counters that validation reads in O(1), and the hourly buckets the charts read.
import type { Queryable } from "../db/database.ts";
import { hourStart, periodStart, type QuotaPeriod } from "../quota-period.ts";
import type { ReportEventT } from "../schemas.ts";
import { isUuid } from "./devices.ts";
import { ALL_TRAFFIC } from "./usage.ts";

export interface ReportContext {
  gatewayId: string;
  /** What the gateway says it runs (optional in reports; older gateways send neither). */
  version?: string;
  runtime?: string;
  /** The report's time: the hour its bytes go into and the quota period they count in. */
  now: Date;
}

/**
 * A report's events in four statements whatever its size (node failures aside, which are rare):
 * a gateway sends a `session_usage` heartbeat for every open session each flush, so at 10,000
 * sessions a statement per event kept the backend busy on a whole core (docs/07-security.md
 * "Load and soak"). Events are folded per session and per device first, in order: an
 * upsert may touch a row only once per statement. The statements: which devices exist; the
 * sessions and the nodes' hourly buckets; the devices' totals, quota counters and hourly
 * buckets with the all-traffic bucket; the gateway's last report.
 */
export async function applyReport(
  db: Queryable,
  ctx: ReportContext,
  events: ReportEventT[],
): Promise<{ accepted: number; ignored: number }> {
  let accepted = 0;
  const deviceIds = new Set<string>();
  for (const e of events) {
    if (e.type === "node_failure") {
      if (!isUuid(e.node_id)) continue;
      const r = await db.query({
        text: `update nodes set status = 'down', last_error = $2, checked_at = now() where id = $1 returning id`,
        params: [e.node_id, `reported by gateway ${ctx.gatewayId}: ${e.error}`],
      });
      accepted += r.length;
    } else if (isUuid(e.device_id)) deviceIds.add(e.device_id.toLowerCase());
  }
  await recordGatewayReport(db, ctx);
  if (deviceIds.size === 0) return { accepted, ignored: events.length - accepted };
  // Events of unknown devices are ignored: nothing to attach their bytes to.
  const known = new Map(
    (await db.query<{ id: string; quota_period: QuotaPeriod }>({
      text: `select id::text as id, quota_period from devices where id = any($1::uuid[])`,
      params: [[...deviceIds]],
    })).map((r) => [r.id, r.quota_period]),
  );

  const sessions = new Map<
    string,
    { device: string; node: string; up: number; down: number; closing: boolean; reason: string }
  >();
  const devices = new Map<string, { up: number; down: number; opened: number }>();
  for (const e of events) {
    if (e.type === "node_failure" || !isUuid(e.device_id) || !known.has(e.device_id.toLowerCase())) continue;
    const device = e.device_id.toLowerCase();
    accepted++;
    const up = e.type === "session_open" ? 0 : e.bytes_up;
    const down = e.type === "session_open" ? 0 : e.bytes_down;
    let t = sessions.get(e.session_id);
    if (!t) sessions.set(e.session_id, t = { device, node: "", up: 0, down: 0, closing: false, reason: "" });
    t.up += up;
    t.down += down;
    // The latest node wins; the first close (and its reason) wins, as with one event at a time.
    if (e.type === "session_open" && e.node_id && isUuid(e.node_id)) t.node = e.node_id;
    if (e.type === "session_close" && !t.closing) {
      t.closing = true;
      t.reason = e.reason ?? "closed";
    }
    let u = devices.get(device);
    if (!u) devices.set(device, u = { up: 0, down: 0, opened: 0 });
    u.up += up;
    u.down += down;
    // A session counts once, at its open; its row may exist already (reserved at validation).
    if (e.type === "session_open") u.opened++;
  }

  const hour = hourStart(ctx.now).toISOString();
  // Sorted, so that two gateways' reports lock rows in the same order.
  const ss = [...sessions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // Upsert the session rows: a usage or close for a session we never saw opened (report lost,
  // order changed) still counts its bytes. Arrays travel as text and are cast here. The node's
  // bytes go to the node the session row names after the upsert (this report's, or the one
  // an earlier open named).
  await db.query({
    text: `with e as (
             select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                      as e(id, device, node, up, down, closing, reason)),
           s as (
             insert into sessions (id, device_id, gateway_id, node_id, bytes_up, bytes_down, closed_at, close_reason)
             select e.id, d.id, $8, nullif(e.node, '')::uuid, e.up::bigint, e.down::bigint,
                    case when e.closing = 't' then now() end, case when e.closing = 't' then e.reason end
               from e join devices d on d.id = e.device::uuid
             on conflict (id) do update set
               -- the gateway that reports a session holds it (a slot reserved at validation names the key's gateway)
               gateway_id = excluded.gateway_id,
               bytes_up = sessions.bytes_up + excluded.bytes_up,
               bytes_down = sessions.bytes_down + excluded.bytes_down,
               node_id = coalesce(excluded.node_id, sessions.node_id),
               last_seen_at = now(),
               closed_at = coalesce(sessions.closed_at, excluded.closed_at),
               close_reason = coalesce(sessions.close_reason, excluded.close_reason)
             returning id, node_id)
           insert into usage_hourly (kind, subject_id, hour, bytes_up, bytes_down)
           select 'node', s.node_id, $9::timestamptz, sum(e.up::bigint), sum(e.down::bigint)
             from s join e on e.id = s.id
            where s.node_id is not null
            group by s.node_id
           having sum(e.up::bigint) + sum(e.down::bigint) > 0
           on conflict (kind, subject_id, hour) do update set
             bytes_up = usage_hourly.bytes_up + excluded.bytes_up,
             bytes_down = usage_hourly.bytes_down + excluded.bytes_down`,
    params: [
      ss.map(([id]) => id),
      ss.map(([, t]) => t.device),
      ss.map(([, t]) => t.node),
      ss.map(([, t]) => String(t.up)),
      ss.map(([, t]) => String(t.down)),
      ss.map(([, t]) => (t.closing ? "t" : "f")),
      ss.map(([, t]) => t.reason),
      ctx.gatewayId,
      hour,
    ],
  });
  const ds = [...devices].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // The quota counter belongs to the device's current period: a report in a new period starts it again.
  await db.query({
    text: `with u as (
             select u.device, u.up::bigint as up, u.down::bigint as down, u.opened::int as opened,
                    nullif(u.period, '')::timestamptz as period_start
               from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) as u(device, up, down, opened, period)),
           totals as (
             insert into device_usage (device_id, bytes_up, bytes_down, sessions_total, last_seen_at,
                                       period_start, period_bytes_up, period_bytes_down)
             select d.id, u.up, u.down, u.opened, $7::timestamptz, u.period_start, u.up, u.down
               from u join devices d on d.id = u.device::uuid
             on conflict (device_id) do update set
               bytes_up = device_usage.bytes_up + excluded.bytes_up,
               bytes_down = device_usage.bytes_down + excluded.bytes_down,
               sessions_total = device_usage.sessions_total + excluded.sessions_total,
               last_seen_at = excluded.last_seen_at,
               period_bytes_up = excluded.period_bytes_up + case when device_usage.period_start is not distinct from excluded.period_start
                                                                 then device_usage.period_bytes_up else 0 end,
               period_bytes_down = excluded.period_bytes_down + case when device_usage.period_start is not distinct from excluded.period_start
                                                                     then device_usage.period_bytes_down else 0 end,
               period_start = excluded.period_start
             returning 1)
           insert into usage_hourly (kind, subject_id, hour, bytes_up, bytes_down)
           select 'device', u.device::uuid, $6::timestamptz, u.up, u.down from u where u.up + u.down > 0
           union all
           select 'all', '${ALL_TRAFFIC}'::uuid, $6::timestamptz, sum(u.up), sum(u.down) from u having sum(u.up) + sum(u.down) > 0
           on conflict (kind, subject_id, hour) do update set
             bytes_up = usage_hourly.bytes_up + excluded.bytes_up,
             bytes_down = usage_hourly.bytes_down + excluded.bytes_down`,
    params: [
      ds.map(([id]) => id),
      ds.map(([, u]) => String(u.up)),
      ds.map(([, u]) => String(u.down)),
      ds.map(([, u]) => String(u.opened)),
      ds.map(([id]) => periodStart(known.get(id)!, ctx.now)?.toISOString() ?? ""),
      hour,
      ctx.now.toISOString(),
    ],
  });
  return { accepted, ignored: events.length - accepted };
}

/** Every report, even an empty one (a gateway with no sessions still heartbeats), says the gateway is alive. */
async function recordGatewayReport(db: Queryable, ctx: ReportContext): Promise<void> {
  await db.query({
    text: `insert into gateway_reports (gateway_id, version, runtime, first_report_at, last_report_at)
           values ($1, $2, $3, $4::timestamptz, $4::timestamptz)
           on conflict (gateway_id) do update set
             version = coalesce(excluded.version, gateway_reports.version),
             runtime = coalesce(excluded.runtime, gateway_reports.runtime),
             last_report_at = excluded.last_report_at`,
    params: [ctx.gatewayId, ctx.version ?? null, ctx.runtime ?? null, ctx.now.toISOString()],
  });
}

export interface UsageRow {
  bytes_up: number;
  bytes_down: number;
  sessions_total: number;
  sessions_active: number;
  last_seen_at: Date | null;
}

export async function deviceUsage(db: Queryable, deviceId: string, staleAfterSec: number): Promise<UsageRow> {
  const rows = await db.query<UsageRow>({
    text: `select coalesce(u.bytes_up, 0) as bytes_up, coalesce(u.bytes_down, 0) as bytes_down,
                  coalesce(u.sessions_total, 0) as sessions_total, u.last_seen_at,
                  (select count(*)::int from sessions s where s.device_id = $1 and s.closed_at is null
                     and s.last_seen_at > now() - make_interval(secs => $2::float8)) as sessions_active
             from (select $1::uuid as id) d left join device_usage u on u.device_id = d.id`,
    params: [deviceId, staleAfterSec],
  });
  return rows[0]!;
}

export interface SessionRow {
  id: string;
  gateway_id: string;
  node_id: string | null;
  opened_at: Date;
  last_seen_at: Date;
  closed_at: Date | null;
  close_reason: string | null;
  bytes_up: number;
  bytes_down: number;
  online: boolean;
}

/** A device's sessions, newest first; `open`: only those still open and reported within the stale age. */
export async function deviceSessions(
  db: Queryable,
  deviceId: string,
  o: { limit: number; open: boolean; staleAfterSec: number },
): Promise<SessionRow[]> {
  return db.query<SessionRow>({
    text: `select id, gateway_id, node_id, opened_at, last_seen_at, closed_at, close_reason, bytes_up, bytes_down,
                  (closed_at is null and last_seen_at > now() - make_interval(secs => $3::float8)) as online
             from sessions
            where device_id = $1::uuid
              and (not $4::boolean or (closed_at is null and last_seen_at > now() - make_interval(secs => $3::float8)))
            order by opened_at desc, id
            limit $2::int`,
    params: [deviceId, o.limit, o.staleAfterSec, o.open],
  });
}

/**
 * Delete at most `limit` sessions closed before `before`, and as many never closed whose
 * gateway last reported them before it (a gateway that crashed never sends their close).
 * Returns how many went.
 */
export async function pruneSessions(db: Queryable, before: Date, limit: number): Promise<number> {
  const rows = await db.query<{ n: number }>({
    text: `with closed as (
             delete from sessions where id in (
               select id from sessions where closed_at is not null and closed_at < $1::timestamptz order by closed_at limit $2::int)
             returning 1),
           abandoned as (
             delete from sessions where id in (
               select id from sessions where closed_at is null and last_seen_at < $1::timestamptz order by last_seen_at limit $2::int)
             returning 1)
           select ((select count(*) from closed) + (select count(*) from abandoned))::int as n`,
    params: [before.toISOString(), limit],
  });
  return rows[0]!.n;
}
