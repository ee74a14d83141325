// The time range of a chart's series: the query's from/to, or the default (hour buckets: the
// last 24 hours; day buckets: the last 30 days, today included), bounded so that one request
// never reads more than a month of hours or ten years of days.
import type { Queryable } from "../db/database.ts";
import { ApiError } from "../errors.ts";
import { bucketCeil, bucketFloor, type BucketSize, type UsageKind, usageSeries } from "../store/usage.ts";

const STEP = { hour: 3_600_000, day: 86_400_000 } as const;
const DEFAULT_BUCKETS = { hour: 24, day: 30 } as const;
const MAX_BUCKETS = { hour: 31 * 24, day: 3660 } as const;

export function seriesRange(size: BucketSize, now: Date, from?: string, to?: string): { from: Date; to: Date } {
  const end = to ? bucketCeil(size, new Date(to)) : new Date(bucketFloor(size, now).getTime() + STEP[size]);
  const start = from ? bucketFloor(size, new Date(from)) : new Date(end.getTime() - DEFAULT_BUCKETS[size] * STEP[size]);
  if (start >= end) throw new ApiError(400, "validation_failed", "from: must be before to");
  if ((end.getTime() - start.getTime()) / STEP[size] > MAX_BUCKETS[size]) {
    throw new ApiError(400, "range_too_large", `at most ${MAX_BUCKETS[size]} ${size} buckets per request`);
  }
  return { from: start, to: end };
}

/** A series as the API answers it, with its totals. */
export async function seriesJson(
  db: Queryable,
  kind: UsageKind,
  subjectId: string,
  size: BucketSize,
  range: { from: Date; to: Date },
) {
  const points = await usageSeries(db, kind, subjectId, size, range.from, range.to);
  return {
    bucket: size,
    from: range.from.toISOString(),
    to: range.to.toISOString(),
    points,
    bytes_up: points.reduce((n, p) => n + p.bytes_up, 0),
    bytes_down: points.reduce((n, p) => n + p.bytes_down, 0),
  };
}
