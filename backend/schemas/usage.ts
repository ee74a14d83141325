// Usage: a device's totals, time series for the charts, and the overview's figures.
import { z } from "zod";
import { count, isoDate, rangeQuery, uuid } from "./fields.ts";
import { QUOTA_PERIODS } from "../quota-period.ts";

export const BucketSize = z.enum(["hour", "day"]);

export const UsageQuery = z.object({
  bucket: BucketSize.optional().describe(
    "with a bucket, the answer carries a series (hour: last 24 h, day: last 30 days by default)",
  ),
  ...rangeQuery,
});

export const UsagePoint = z.object({
  t: isoDate.describe("the bucket's start (UTC)"),
  bytes_up: count,
  bytes_down: count,
});

export const UsageSeries = z.object({
  bucket: BucketSize,
  from: isoDate,
  to: isoDate,
  points: z.array(UsagePoint).describe("every bucket in [from, to), empty ones as zeros"),
  bytes_up: count.describe("the points' sum"),
  bytes_down: count,
});

export const Usage = z.object({
  device_id: uuid,
  bytes_up: count.describe("ever reported"),
  bytes_down: count,
  bytes_total: count,
  sessions_total: count,
  sessions_active: count,
  last_seen_at: isoDate.nullable(),
  data_quota_bytes: count.nullable(),
  quota_period: z.enum(QUOTA_PERIODS),
  quota_used_bytes: count.describe("in the current period (since the last reset)"),
  quota_remaining_bytes: count.nullable(),
  quota_period_start: isoDate.nullable(),
  quota_resets_at: isoDate.nullable(),
  series: UsageSeries.optional(),
});

const GatewayBrief = z.object({
  name: z.string(),
  version: z.string().nullable(),
  runtime: z.string().nullable(),
  last_report_at: isoDate.nullable(),
  sessions_active: count,
});

export const Overview = z.object({
  now: isoDate,
  sessions_online: count,
  devices: z.object({
    total: count.describe("not revoked"),
    active_today: count.describe("reported by a gateway since 00:00 UTC"),
    online: count,
  }),
  traffic_24h: UsageSeries.describe("all traffic, hour buckets"),
  traffic_30d: UsageSeries.describe("all traffic, day buckets"),
  nodes: z.object({ total: count, up: count, down: count, unknown: count, disabled: count }),
  gateways: z.array(GatewayBrief).describe("the most recently reporting first"),
});
