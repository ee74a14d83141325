// Sessions and usage as the gateways report them (batched), and the per-device totals
// that quota checks read in O(1).
import type { Queryable } from "../db/database.ts";
import type { ReportEventT } from "../schemas.ts";
import { isUuid } from "./devices.ts";

/**
 * A report's events in two statements, whatever its size (node failures aside, which are rare):
 * a gateway sends a `session_usage` heartbeat for every open session each flush, so at 10,000
 * sessions a statement per event kept the backend busy on a whole core (docs/07-security.md
 * "Load and soak"). Events are folded per session and per device first, in order: an
 * upsert may touch a row only once per statement.
 */
export async function applyReport(
  db: Queryable,
  gatewayId: string,
  events: ReportEventT[],
): Promise<{ accepted: number; ignored: number }> {
  let accepted = 0;
  const deviceIds = new Set<string>();
  for (const e of events) {
    if (e.type === "node_failure") {
      if (!isUuid(e.node_id)) continue;
      const r = await db.query({
        text: `update nodes set status = 'down', last_error = $2, checked_at = now() where id = $1 returning id`,
        params: [e.node_id, `reported by gateway ${gatewayId}: ${e.error}`],
      });
      accepted += r.length;
    } else if (isUuid(e.device_id)) deviceIds.add(e.device_id.toLowerCase());
  }
  if (deviceIds.size === 0) return { accepted, ignored: events.length - accepted };
  // Events of unknown devices are ignored: nothing to attach their bytes to.
  const known = new Set(
    (await db.query<{ id: string }>({
      text: `select id::text as id from devices where id = any($1::uuid[])`,
      params: [[...deviceIds]],
    })).map((r) => r.id),
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

  // Sorted, so that two gateways' reports lock rows in the same order.
  const ss = [...sessions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // Upsert the session rows: a usage or close for a session we never saw opened (report lost,
  // order changed) still counts its bytes. Arrays travel as text and are cast here.
  await db.query({
    text: `insert into sessions (id, device_id, gateway_id, node_id, bytes_up, bytes_down, closed_at, close_reason)
           select e.id, d.id, $8, nullif(e.node, '')::uuid, e.up::bigint, e.down::bigint,
                  case when e.closing = 't' then now() end, case when e.closing = 't' then e.reason end
             from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                    as e(id, device, node, up, down, closing, reason)
             join devices d on d.id = e.device::uuid
           on conflict (id) do update set
             bytes_up = sessions.bytes_up + excluded.bytes_up,
             bytes_down = sessions.bytes_down + excluded.bytes_down,
             node_id = coalesce(excluded.node_id, sessions.node_id),
             last_seen_at = now(),
             closed_at = coalesce(sessions.closed_at, excluded.closed_at),
             close_reason = coalesce(sessions.close_reason, excluded.close_reason)`,
    params: [
      ss.map(([id]) => id),
      ss.map(([, t]) => t.device),
      ss.map(([, t]) => t.node),
      ss.map(([, t]) => String(t.up)),
      ss.map(([, t]) => String(t.down)),
      ss.map(([, t]) => (t.closing ? "t" : "f")),
      ss.map(([, t]) => t.reason),
      gatewayId,
    ],
  });
  const ds = [...devices].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  await db.query({
    text: `insert into device_usage (device_id, bytes_up, bytes_down, sessions_total, last_seen_at)
           select d.id, u.up::bigint, u.down::bigint, u.opened::int, now()
             from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as u(device, up, down, opened)
             join devices d on d.id = u.device::uuid
           on conflict (device_id) do update set
             bytes_up = device_usage.bytes_up + excluded.bytes_up,
             bytes_down = device_usage.bytes_down + excluded.bytes_down,
             sessions_total = device_usage.sessions_total + excluded.sessions_total,
             last_seen_at = now()`,
    params: [
      ds.map(([id]) => id),
      ds.map(([, u]) => String(u.up)),
      ds.map(([, u]) => String(u.down)),
      ds.map(([, u]) => String(u.opened)),
    ],
  });
  return { accepted, ignored: events.length - accepted };
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
