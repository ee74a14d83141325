// A device as the admin API shows it: its row, its usage in the current quota period, its
// status and whether it is online, computed in SQL so that the list can filter on them and
// the JSON cannot disagree with the filter. The quota period's usage fragment is also what
// validation reads (store/validation.ts), so "over_quota" here and quota_exceeded there are
// one rule.
import type { Params } from "../db/database.ts";
import type { QuotaPeriod } from "../quota-period.ts";
import { periodEnd, periodStart, periodStarts } from "../quota-period.ts";

/**
 * `left join lateral` giving `used_up` and `used_down`: the bytes of `u` (device_usage) in the
 * period the device `d` is in now. The stored counter belongs to the period that started at
 * u.period_start; when the device's current period started at another time, nothing of it has
 * been used yet (the next report starts the counter again).
 */
export function periodUsageJoin(p: Params, now: Date): string {
  const s = periodStarts(now);
  const current = `case d.quota_period when 'day' then ${p.add(s.day)}::timestamptz
                                       when 'week' then ${p.add(s.week)}::timestamptz
                                       when 'month' then ${p.add(s.month)}::timestamptz end`;
  return `left join lateral (
    select case when u.period_start is not distinct from (${current}) then coalesce(u.period_bytes_up, 0) else 0 end as used_up,
           case when u.period_start is not distinct from (${current}) then coalesce(u.period_bytes_down, 0) else 0 end as used_down
  ) q on true`;
}

export const DEVICE_STATUSES = ["active", "on_hold", "disabled", "revoked", "expired", "over_quota"] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

/** The status, first match wins: revoked, disabled, expired, over quota, on hold, active. */
function statusSql(nowParam: string): string {
  return `case when d.revoked_at is not null then 'revoked'
               when d.disabled then 'disabled'
               when d.expires_at is not null and d.expires_at <= ${nowParam}::timestamptz then 'expired'
               when d.data_quota_bytes is not null and q.used_up + q.used_down >= d.data_quota_bytes then 'over_quota'
               when d.expire_after_days is not null and d.expires_at is null then 'on_hold'
               else 'active' end`;
}

export interface DeviceRow {
  id: string;
  name: string;
  status: DeviceStatus;
  disabled: boolean;
  revoked_at: Date | null;
  expires_at: Date | null;
  expire_after_days: number | null;
  first_connected_at: Date | null;
  max_sessions: number | null;
  data_quota_bytes: number | null;
  quota_period: QuotaPeriod;
  used_up: number;
  used_down: number;
  usage_reset_at: Date | null;
  bytes_up: number;
  bytes_down: number;
  last_seen_at: Date | null;
  sessions_active: number;
  node_id: string | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/**
 * `select … from devices d …` with every DeviceRow column; `where` and what follows are the
 * caller's. `staleAfterSec`: sessions reported within it are online.
 */
export function deviceSelect(p: Params, now: Date, staleAfterSec: number): string {
  const nowParam = p.add(now.toISOString());
  const usage = periodUsageJoin(p, now);
  const stale = p.add(staleAfterSec);
  return `select d.id, d.name, d.disabled, d.revoked_at, d.expires_at, d.expire_after_days, d.first_connected_at,
       d.max_sessions, d.data_quota_bytes, d.quota_period, d.usage_reset_at, d.node_id, d.created_by,
       d.created_at, d.updated_at, q.used_up, q.used_down,
       coalesce(u.bytes_up, 0) as bytes_up, coalesce(u.bytes_down, 0) as bytes_down, u.last_seen_at,
       a.sessions_active, ${statusSql(nowParam)} as status
  from devices d
  left join device_usage u on u.device_id = d.id
  ${usage}
  left join lateral (
    select count(*)::int as sessions_active from sessions s
     where s.device_id = d.id and s.closed_at is null
       and s.last_seen_at > now() - make_interval(secs => ${stale}::float8)
  ) a on true`;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function expiryMode(d: Pick<DeviceRow, "expires_at" | "expire_after_days">): "none" | "date" | "first_connection" {
  if (d.expire_after_days !== null) return "first_connection";
  return d.expires_at ? "date" : "none";
}

export function deviceJson(d: DeviceRow, now: Date) {
  const used = d.used_up + d.used_down;
  return {
    id: d.id,
    name: d.name,
    status: d.status,
    disabled: d.disabled,
    revoked_at: iso(d.revoked_at),
    expires_at: iso(d.expires_at),
    expiry_mode: expiryMode(d),
    expire_after_days: d.expire_after_days,
    first_connected_at: iso(d.first_connected_at),
    max_sessions: d.max_sessions,
    data_quota_bytes: d.data_quota_bytes,
    quota_period: d.quota_period,
    quota_used_bytes: used,
    quota_remaining_bytes: d.data_quota_bytes === null ? null : Math.max(0, d.data_quota_bytes - used),
    quota_period_start: iso(periodStart(d.quota_period, now)),
    quota_resets_at: iso(periodEnd(d.quota_period, now)),
    usage_reset_at: iso(d.usage_reset_at),
    bytes_up: d.bytes_up,
    bytes_down: d.bytes_down,
    last_seen_at: iso(d.last_seen_at),
    sessions_active: d.sessions_active,
    online: d.sessions_active > 0,
    node_id: d.node_id,
    created_by: d.created_by,
    created_at: iso(d.created_at)!,
    updated_at: iso(d.updated_at)!,
  };
}
