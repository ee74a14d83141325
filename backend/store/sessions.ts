// Sessions and usage as the gateways report them (batched), and the per-device totals
// that quota checks read in O(1).
import type { Queryable } from "../db/database.ts";
import type { ReportEventT } from "../schemas.ts";
import { isUuid } from "./devices.ts";

export async function applyReport(db: Queryable, gatewayId: string, events: ReportEventT[]): Promise<{ accepted: number; ignored: number }> {
  let accepted = 0;
  for (const e of events) {
    if (e.type === "node_failure") {
      if (!isUuid(e.node_id)) continue;
      const r = await db.query({
        text: `update nodes set status = 'down', last_error = $2, checked_at = now() where id = $1 returning id`,
        params: [e.node_id, `reported by gateway ${gatewayId}: ${e.error}`],
      });
      accepted += r.length;
      continue;
    }
    if (!isUuid(e.device_id)) continue;
    const nodeId = e.type === "session_open" && e.node_id && isUuid(e.node_id) ? e.node_id : null;
    const up = e.type === "session_open" ? 0 : e.bytes_up;
    const down = e.type === "session_open" ? 0 : e.bytes_down;
    // Upsert the session row: a usage or close for a session we never saw opened
    // (report lost, order changed) still counts its bytes.
    const r = await db.query({
      text: `insert into sessions (id, device_id, gateway_id, node_id, bytes_up, bytes_down, closed_at, close_reason)
             select $1, d.id, $3, $4::uuid, $5::bigint, $6::bigint,
                    case when $7 then now() end, $8
               from devices d where d.id = $2::uuid
             on conflict (id) do update set
               bytes_up = sessions.bytes_up + excluded.bytes_up,
               bytes_down = sessions.bytes_down + excluded.bytes_down,
               node_id = coalesce(excluded.node_id, sessions.node_id),
               last_seen_at = now(),
               closed_at = coalesce(sessions.closed_at, excluded.closed_at),
               close_reason = coalesce(sessions.close_reason, excluded.close_reason)
             returning id`,
      params: [e.session_id, e.device_id, gatewayId, nodeId, up, down, e.type === "session_close", e.type === "session_close" ? (e.reason ?? "closed") : null],
    });
    if (!r.length) continue; // unknown device: nothing to attach the bytes to
    await db.query({
      text: `insert into device_usage (device_id, bytes_up, bytes_down, sessions_total, last_seen_at)
             values ($1, $2::bigint, $3::bigint, $4::int, now())
             on conflict (device_id) do update set
               bytes_up = device_usage.bytes_up + excluded.bytes_up,
               bytes_down = device_usage.bytes_down + excluded.bytes_down,
               sessions_total = device_usage.sessions_total + excluded.sessions_total,
               last_seen_at = now()`,
      // A session counts once, at its open; its row may exist already (reserved at validation).
      params: [e.device_id, up, down, e.type === "session_open" ? 1 : 0],
    });
    accepted++;
  }
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
