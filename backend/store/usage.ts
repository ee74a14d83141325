// Usage as time buckets (sql/0004_usage_buckets.sql): the series the charts draw, the roll-up
// of old hours into days, and the quota period's counter when it has to be set by hand (a reset,
// a changed period). Reports fill the buckets (store/sessions.ts).
import type { Queryable } from "../db/database.ts";
import { dayStart, hourStart, periodStart, type QuotaPeriod } from "../quota-period.ts";

export type UsageKind = "device" | "node" | "all";
/** The subject of the 'all' rows: all traffic has no device or node. */
export const ALL_TRAFFIC = "00000000-0000-0000-0000-000000000000";
export type BucketSize = "hour" | "day";

export interface UsagePoint {
  /** The bucket's start (ISO, UTC). */
  t: string;
  bytes_up: number;
  bytes_down: number;
}

const STEP = { hour: 3_600_000, day: 86_400_000 } as const;

/** The bucket `t` is in, and the first bucket boundary at or after `t`. */
export function bucketFloor(size: BucketSize, t: Date): Date {
  return size === "hour" ? hourStart(t) : dayStart(t);
}
export function bucketCeil(size: BucketSize, t: Date): Date {
  const f = bucketFloor(size, t);
  return f.getTime() === t.getTime() ? f : new Date(f.getTime() + STEP[size]);
}

/**
 * Bytes per bucket in [from, to) (both rounded out to whole buckets), every bucket present,
 * empty ones as zeros, so a chart needs no gap handling. Day buckets add the days already
 * rolled up to the hours not yet rolled up; hour buckets exist only for USAGE_HOURLY_RETENTION.
 */
export async function usageSeries(
  db: Queryable,
  kind: UsageKind,
  subjectId: string,
  size: BucketSize,
  from: Date,
  to: Date,
): Promise<UsagePoint[]> {
  const start = bucketFloor(size, from);
  const end = bucketCeil(size, to);
  const params = [kind, subjectId, start.toISOString(), end.toISOString()];
  const rows = await db.query<{ t: number; up: number; down: number }>({
    text: size === "hour"
      ? `select extract(epoch from hour)::float8 * 1000 as t, bytes_up as up, bytes_down as down
           from usage_hourly
          where kind = $1 and subject_id = $2::uuid and hour >= $3::timestamptz and hour < $4::timestamptz`
      : `select (day - date '1970-01-01')::float8 * 86400000 as t, sum(up)::bigint as up, sum(down)::bigint as down
           from (select day, bytes_up as up, bytes_down as down from usage_daily
                  where kind = $1 and subject_id = $2::uuid
                    and day >= ($3::timestamptz at time zone 'UTC')::date and day < ($4::timestamptz at time zone 'UTC')::date
                 union all
                 select (hour at time zone 'UTC')::date, bytes_up, bytes_down from usage_hourly
                  where kind = $1 and subject_id = $2::uuid and hour >= $3::timestamptz and hour < $4::timestamptz) x
          group by day`,
    params,
  });
  const byTime = new Map(rows.map((r) => [Number(r.t), r]));
  const out: UsagePoint[] = [];
  for (let t = start.getTime(); t < end.getTime(); t += STEP[size]) {
    const r = byTime.get(t);
    out.push({ t: new Date(t).toISOString(), bytes_up: r ? Number(r.up) : 0, bytes_down: r ? Number(r.down) : 0 });
  }
  return out;
}

/** Bytes in the buckets at or after `since` (a rolled-up day counts whole when `since` falls inside it). */
async function bucketSum(db: Queryable, deviceId: string, since: Date): Promise<{ up: number; down: number }> {
  const rows = await db.query<{ up: number; down: number }>({
    text: `select coalesce(sum(up), 0)::bigint as up, coalesce(sum(down), 0)::bigint as down
             from (select bytes_up as up, bytes_down as down from usage_daily
                    where kind = 'device' and subject_id = $1::uuid and day >= ($2::timestamptz at time zone 'UTC')::date
                   union all
                   select bytes_up, bytes_down from usage_hourly
                    where kind = 'device' and subject_id = $1::uuid and hour >= $2::timestamptz) x`,
    params: [deviceId, since.toISOString()],
  });
  return rows[0]!;
}

/**
 * Set the quota counter of a device whose period changed: its usage since the new period's
 * start (or since its last reset, when that is later or the period is "none"), summed from
 * the buckets to the hour. "none" without any reset counts everything ever reported.
 */
export async function recountPeriodUsage(db: Queryable, deviceId: string, period: QuotaPeriod, now: Date): Promise<void> {
  const row = await db.query<{ usage_reset_at: Date | null }>({
    text: `select usage_reset_at from devices where id = $1`,
    params: [deviceId],
  });
  const resetAt = row[0]?.usage_reset_at ? hourStart(new Date(row[0].usage_reset_at)) : null;
  const start = periodStart(period, now);
  const since = start && resetAt ? (start > resetAt ? start : resetAt) : start ?? resetAt;
  const used = since ? await bucketSum(db, deviceId, since) : (await db.query<{ up: number; down: number }>({
    text: `select coalesce(sum(bytes_up), 0)::bigint as up, coalesce(sum(bytes_down), 0)::bigint as down
               from device_usage where device_id = $1`,
    params: [deviceId],
  }))[0]!;
  await db.query({
    text: `insert into device_usage (device_id, period_start, period_bytes_up, period_bytes_down)
           values ($1, $2::timestamptz, $3::bigint, $4::bigint)
           on conflict (device_id) do update set period_start = excluded.period_start,
             period_bytes_up = excluded.period_bytes_up, period_bytes_down = excluded.period_bytes_down`,
    params: [deviceId, start?.toISOString() ?? null, used.up, used.down],
  });
}

/** "Reset usage": the quota counts from zero again (in the current period); the history stays. Returns the ids reset. */
export async function resetUsage(db: Queryable, deviceIds: string[], now: Date): Promise<string[]> {
  if (!deviceIds.length) return [];
  const starts = {
    day: periodStart("day", now)!.toISOString(),
    week: periodStart("week", now)!.toISOString(),
    month: periodStart("month", now)!.toISOString(),
  };
  const rows = await db.query<{ id: string }>({
    text: `with d as (
             update devices set usage_reset_at = $2::timestamptz, updated_at = now()
              where id = any($1::uuid[]) returning id, quota_period)
           insert into device_usage (device_id, period_start, period_bytes_up, period_bytes_down)
           select id, case quota_period when 'day' then $3::timestamptz when 'week' then $4::timestamptz
                                        when 'month' then $5::timestamptz end, 0, 0
             from d
           on conflict (device_id) do update set period_start = excluded.period_start, period_bytes_up = 0, period_bytes_down = 0
           returning device_id::text as id`,
    params: [deviceIds, now.toISOString(), starts.day, starts.week, starts.month],
  });
  return rows.map((r) => r.id);
}

/**
 * Move at most `limit` hourly rows from before `before` into their days, oldest first, in one
 * statement (so a crash cannot count a byte twice or lose it). Returns how many moved; fewer
 * than `limit` means nothing older is left.
 */
export async function rollUpHours(db: Queryable, before: Date, limit: number): Promise<number> {
  const rows = await db.query<{ moved: number }>({
    text: `with picked as (
             select kind, subject_id, hour from usage_hourly where hour < $1::timestamptz order by hour limit $2::int),
           moved as (
             delete from usage_hourly h using picked p
              where h.kind = p.kind and h.subject_id = p.subject_id and h.hour = p.hour
             returning h.kind, h.subject_id, h.hour, h.bytes_up, h.bytes_down),
           added as (
             insert into usage_daily (kind, subject_id, day, bytes_up, bytes_down)
             select kind, subject_id, (hour at time zone 'UTC')::date, sum(bytes_up), sum(bytes_down)
               from moved group by 1, 2, 3
             on conflict (kind, subject_id, day) do update set
               bytes_up = usage_daily.bytes_up + excluded.bytes_up,
               bytes_down = usage_daily.bytes_down + excluded.bytes_down
             returning 1)
           select (select count(*) from moved)::int as moved`,
    params: [before.toISOString(), limit],
  });
  return rows[0]!.moved;
}
