// /api/v1/stats/overview: the console's first page in one request, owners only. Every figure
// is one indexed read: traffic from the all-traffic buckets, devices from their usage rows.
import * as S from "../schemas.ts";
import { dayStart } from "../quota-period.ts";
import { gatewayStatus } from "../store/gateways.ts";
import { ALL_TRAFFIC } from "../store/usage.ts";
import type { RouteContext } from "./context.ts";
import { gatewayStatusJson } from "./gateways.ts";
import { seriesJson, seriesRange } from "./series.ts";

export function statsRoutes(ctx: RouteContext): void {
  const { r, db } = ctx;
  r.add({
    method: "get",
    path: "/api/v1/stats/overview",
    auth: "owner",
    summary: "Sessions online, devices active today, traffic over 24 hours and 30 days, nodes by health, gateways by last report",
    response: S.Overview,
    handler: async () => {
      const now = ctx.now();
      const [counts] = await db.query<{
        sessions_online: number;
        devices_total: number;
        devices_online: number;
        active_today: number;
        nodes_total: number;
        up: number;
        down: number;
        unknown: number;
        disabled: number;
      }>({
        text: `with live as (
                 select device_id from sessions
                  where closed_at is null and last_seen_at > now() - make_interval(secs => $1::float8))
               select (select count(*)::int from live) as sessions_online,
                      (select count(distinct device_id)::int from live) as devices_online,
                      (select count(*)::int from devices where revoked_at is null) as devices_total,
                      (select count(*)::int from device_usage u join devices d on d.id = u.device_id
                        where d.revoked_at is null and u.last_seen_at >= $2::timestamptz) as active_today,
                      (select count(*)::int from nodes) as nodes_total,
                      (select count(*)::int from nodes where enabled and status = 'up') as up,
                      (select count(*)::int from nodes where enabled and status = 'down') as down,
                      (select count(*)::int from nodes where enabled and status = 'unknown') as unknown,
                      (select count(*)::int from nodes where not enabled) as disabled`,
        params: [ctx.staleSec, dayStart(now).toISOString()],
      });
      const c = counts!;
      return {
        now: now.toISOString(),
        sessions_online: c.sessions_online,
        devices: { total: c.devices_total, active_today: c.active_today, online: c.devices_online },
        traffic_24h: await seriesJson(db, "all", ALL_TRAFFIC, "hour", seriesRange("hour", now)),
        traffic_30d: await seriesJson(db, "all", ALL_TRAFFIC, "day", seriesRange("day", now)),
        nodes: { total: c.nodes_total, up: c.up, down: c.down, unknown: c.unknown, disabled: c.disabled },
        gateways: (await gatewayStatus(db, ctx.staleSec)).map(gatewayStatusJson).map((g) => ({
          name: g.name,
          version: g.version,
          runtime: g.runtime,
          last_report_at: g.last_report_at,
          sessions_active: g.sessions_active,
        })),
      };
    },
  });
}
