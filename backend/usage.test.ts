// Usage buckets from gateway reports, the series the charts read, the roll-up of old hours into
// days, the maintenance job's pruning, the overview and the gateway list, on a clock the test moves.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Query, type Queryable, sql } from "./db/database.ts";
import { testDatabases } from "./db/testing.ts";
import { GW, openTestBackend, type TestBackend } from "./app.testing.ts";
import { runMaintenance, startMaintenance } from "./maintenance.ts";
import { applyReport } from "./store/sessions.ts";
import { recordNodeHealth } from "./store/nodes.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const RETENTION = {
  hourlyRetentionMs: 14 * DAY,
  sessionRetentionMs: 30 * DAY,
  nodeHealthRetentionMs: 2 * DAY,
  auditRetentionMs: 365 * DAY,
  adminSessionIdleMs: 30 * 60_000,
};

for (const tdb of testDatabases()) {
  describe(`usage buckets and maintenance on ${tdb.name}`, () => {
    let tb: TestBackend;
    let node: string;
    before(async () => {
      tb = await openTestBackend(tdb);
      const n = await tb.call("POST", "/api/v1/nodes", {
        name: "n1",
        host: "127.0.0.1",
        port: 8388,
        method: "aes-256-gcm",
        password: "p",
      });
      node = n.json.id;
    });
    after(() => tb.close());

    let no = 0;
    const session = () => `u-${++no}`;
    const usage = (session_id: string, device_id: string, up: number, down: number) =>
      tb.report([{ type: "session_usage", session_id, device_id, bytes_up: up, bytes_down: down }]);

    test("a report fills the device's, the node's and all traffic's hour; a series has every bucket", async () => {
      tb.clock.set("2025-03-09T12:30:00Z");
      const d = await tb.newDevice();
      const s = session();
      await tb.report([{ type: "session_open", session_id: s, device_id: d.device_id, node_id: node }]);
      await usage(s, d.device_id, 100, 1000);
      tb.clock.set("2025-03-09T13:10:00Z");
      await usage(s, d.device_id, 5, 50);
      await usage(s, d.device_id, 0, 0); // a heartbeat: no bucket row for nothing
      const q = "bucket=hour&from=2025-03-09T10:00:00Z&to=2025-03-09T14:00:00Z";
      const dev = (await tb.call("GET", `/api/v1/devices/${d.device_id}/usage?${q}`)).json;
      assert.deepEqual(dev.series.points, [
        { t: "2025-03-09T10:00:00.000Z", bytes_up: 0, bytes_down: 0 },
        { t: "2025-03-09T11:00:00.000Z", bytes_up: 0, bytes_down: 0 },
        { t: "2025-03-09T12:00:00.000Z", bytes_up: 100, bytes_down: 1000 },
        { t: "2025-03-09T13:00:00.000Z", bytes_up: 5, bytes_down: 50 },
      ]);
      assert.equal(dev.series.bytes_up, 105);
      assert.equal(dev.series.bytes_down, 1050);
      const n = (await tb.call("GET", `/api/v1/nodes/${node}/usage?${q}`)).json;
      assert.deepEqual(
        n.points.map((p: { bytes_down: number }) => p.bytes_down),
        [0, 0, 1000, 50],
        "the node of the session's open",
      );
      const byDay = (await tb.call(
        "GET",
        `/api/v1/devices/${d.device_id}/usage?bucket=day&from=2025-03-08T00:00:00Z&to=2025-03-10T00:00:00Z`,
      )).json;
      assert.deepEqual(byDay.series.points.map((p: { t: string; bytes_up: number }) => [p.t, p.bytes_up]), [
        ["2025-03-08T00:00:00.000Z", 0],
        ["2025-03-09T00:00:00.000Z", 105],
      ]);
      const overview = (await tb.call("GET", "/api/v1/stats/overview")).json;
      assert.equal(overview.traffic_24h.points.length, 24);
      assert.equal(overview.traffic_24h.points.at(-1).t, "2025-03-09T13:00:00.000Z", "the current hour last");
      assert.ok(overview.traffic_24h.bytes_down >= 1050);
      assert.equal(overview.traffic_30d.points.length, 30);
      assert.equal(overview.traffic_30d.points.at(-1).t, "2025-03-09T00:00:00.000Z");
      const hourly = await tb.db.query<{ kind: string }>(
        sql`select kind from usage_hourly where hour = '2025-03-09T13:00:00Z' and subject_id in (${d.device_id}, ${node}, '00000000-0000-0000-0000-000000000000') order by kind`,
      );
      assert.deepEqual(hourly.map((r) => r.kind), ["all", "device", "node"]);
    });

    test("a report costs the same few statements for one session and for thousands", async () => {
      const d = await tb.newDevice();
      const counted = (db: Queryable) => {
        let n = 0;
        return {
          get count() {
            return n;
          },
          q: {
            query<T>(q: Query) {
              n++;
              return db.query<T>(q);
            },
            exec: db.exec.bind(db),
          } as Queryable,
        };
      };
      const events = (k: number) =>
        Array.from(
          { length: k },
          (_, i) => ({
            type: "session_usage" as const,
            session_id: `cost-${i}`,
            device_id: d.device_id,
            bytes_up: 1,
            bytes_down: 2,
          }),
        );
      const statements = (k: number) =>
        tb.db.transaction(async (tx) => {
          const c = counted(tx);
          await applyReport(c.q, { gatewayId: "gw-cost", now: tb.clock.now() }, events(k));
          return c.count;
        });
      const one = await statements(1);
      const many = await statements(3000);
      assert.equal(one, 4, "gateway, devices, sessions + node buckets, totals + device and all buckets");
      assert.equal(many, one);
      const empty = counted(tb.db);
      await applyReport(empty.q, { gatewayId: "gw-cost", now: tb.clock.now() }, []);
      assert.equal(empty.count, 1, "an empty report (the heartbeat) is one statement");
    });

    test("roll-up moves whole days older than the retention into day buckets, at most a batch per run; the day series does not change", async () => {
      const d = await tb.newDevice();
      const s = session();
      // Three days, three hours each, three weeks ago; and one hour yesterday.
      for (const day of ["2025-02-15", "2025-02-16", "2025-02-17"]) {
        for (const h of ["01", "09", "23"]) {
          tb.clock.set(`${day}T${h}:15:00Z`);
          await usage(s, d.device_id, 10, 100);
        }
      }
      tb.clock.set("2025-03-08T05:00:00Z");
      await usage(s, d.device_id, 1, 1);
      tb.clock.set("2025-03-09T12:00:00Z");
      const dayQuery = `/api/v1/devices/${d.device_id}/usage?bucket=day&from=2025-02-14T00:00:00Z&to=2025-03-10T00:00:00Z`;
      const before = (await tb.call("GET", dayQuery)).json.series;
      assert.equal(before.bytes_up, 91);
      const rows = () =>
        tb.db.query<{ n: number }>(sql`select count(*)::int as n from usage_hourly where subject_id = ${d.device_id}`);
      assert.equal((await rows())[0]!.n, 10);
      let runs = 0;
      let moved = 0;
      for (;;) {
        const r = await runMaintenance(tb.db, { ...RETENTION, batch: 4 }, tb.clock.now());
        runs++;
        moved += r.hours_rolled_up;
        assert.ok(r.hours_rolled_up <= 4, "bounded per run");
        if (!r.more) break;
        assert.ok(runs < 50);
      }
      assert.ok(runs >= 2, "the backlog took several runs");
      assert.equal((await rows())[0]!.n, 1, "only yesterday's hour is left as an hour");
      assert.ok(moved >= 9);
      const daily = await tb.db.query<{ day: string; up: number }>(
        sql`select day::text as day, bytes_up as up from usage_daily where kind = 'device' and subject_id = ${d.device_id} order by day`,
      );
      assert.deepEqual(daily.map((r) => [r.day, r.up]), [["2025-02-15", 30], ["2025-02-16", 30], ["2025-02-17", 30]]);
      assert.deepEqual((await tb.call("GET", dayQuery)).json.series, before, "the same series, from days instead of hours");
      const hours = (await tb.call(
        "GET",
        `/api/v1/devices/${d.device_id}/usage?bucket=hour&from=2025-02-16T00:00:00Z&to=2025-02-17T00:00:00Z`,
      )).json.series;
      assert.equal(hours.bytes_up, 0, "hours past the retention are gone (their days keep the bytes)");
    });

    test("the maintenance job: a run that hit its bound runs again by itself until it has caught up; stop() waits for a run", async () => {
      const d = await tb.newDevice();
      for (const h of ["01", "02", "03"]) {
        tb.clock.set(`2025-01-10T${h}:00:00Z`);
        await usage(session(), d.device_id, 1, 1);
      }
      tb.clock.set("2025-03-09T12:00:00Z");
      const hours = async () =>
        (await tb.db.query<{ n: number }>(
          sql`select count(*)::int as n from usage_hourly where kind = 'device' and subject_id = ${d.device_id}`,
        ))[0]!.n;
      assert.equal(await hours(), 3);
      const job = startMaintenance(tb.db, { ...RETENTION, batch: 1, intervalMs: 3_600_000, now: tb.clock.now });
      const first = await job.runNow();
      assert.equal(first?.hours_rolled_up, 1);
      assert.equal(first?.more, true);
      const deadline = Date.now() + 10_000;
      while ((await hours()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await hours(), 0, "the catch-up runs moved the rest");
      await job.stop();
      assert.equal(await job.runNow(), undefined, "stopped: no more runs");
    });

    test("maintenance prunes old sessions (closed, or abandoned by a crashed gateway) and old node checks", async () => {
      tb.clock.set("2025-03-09T12:00:00Z");
      const d = await tb.newDevice();
      await tb.report([
        { type: "session_open", session_id: "old-closed", device_id: d.device_id, node_id: null },
        { type: "session_close", session_id: "old-closed", device_id: d.device_id, reason: "x", bytes_up: 0, bytes_down: 0 },
        { type: "session_open", session_id: "old-open", device_id: d.device_id, node_id: null },
      ]);
      await recordNodeHealth(tb.db, node, { status: "up", latency_ms: 5, last_error: null }, new Date("2025-03-01T00:00:00Z"));
      await recordNodeHealth(tb.db, node, { status: "down", latency_ms: null, last_error: "refused" }, tb.clock.now());
      const history = (await tb.call("GET", `/api/v1/nodes/${node}/health?from=2025-02-28T00:00:00Z`)).json;
      assert.deepEqual(history.checks.map((c: { status: string }) => c.status), ["up", "down"], "oldest first");
      assert.equal(history.checks[1].error, "refused");
      // Sessions are stamped by the database's own clock: judge them from far enough ahead.
      const later = new Date(Date.now() + RETENTION.sessionRetentionMs + DAY);
      const r = await runMaintenance(tb.db, RETENTION, later);
      assert.ok(r.sessions_pruned >= 2, JSON.stringify(r));
      const left = await tb.db.query(sql`select id from sessions where id in ('old-closed', 'old-open')`);
      assert.equal(left.length, 0);
      const checks = await tb.db.query(sql`select 1 from node_checks where node_id = ${node}`);
      assert.equal(checks.length, 0);
      assert.equal((await tb.call("GET", `/api/v1/devices/${d.device_id}`)).json.bytes_up, 0, "the device's totals stay");
    });

    test("gateways: by key and by report, with version, runtime, last report and live sessions; overview figures", async () => {
      tb.clock.set("2025-03-09T12:00:00Z");
      const key = await tb.call("POST", "/api/v1/gateways", { name: "edge-2" });
      assert.equal(key.status, 201);
      const d = await tb.newDevice();
      await tb.report([{ type: "session_open", session_id: "gw-live", device_id: d.device_id, node_id: node }], {
        gateway_id: "edge-1",
        gateway_version: "0.1.0",
        gateway_runtime: "deno",
      });
      tb.clock.set("2025-03-09T12:05:00Z");
      await tb.call("POST", "/api/v1/gateway/report", { gateway_id: "edge-1", events: [] }, GW); // heartbeat, no identity
      const list = (await tb.call("GET", "/api/v1/gateways")).json.gateways;
      const edge1 = list.find((g: { name: string }) => g.name === "edge-1");
      assert.deepEqual(
        { ...edge1 },
        {
          name: "edge-1",
          key: null,
          version: "0.1.0",
          runtime: "deno",
          first_report_at: "2025-03-09T12:00:00.000Z",
          last_report_at: "2025-03-09T12:05:00.000Z",
          sessions_active: 1,
        },
      );
      const edge2 = list.find((g: { name: string }) => g.name === "edge-2");
      assert.equal(edge2.key.id, key.json.id);
      assert.equal(edge2.last_report_at, null);
      const reported = list.filter((g: { last_report_at: string | null }) => g.last_report_at);
      assert.deepEqual(
        reported.map((g: { last_report_at: string }) => g.last_report_at),
        reported.map((g: { last_report_at: string }) => g.last_report_at).sort().reverse(),
        "the most recent report first",
      );
      assert.equal(list.at(-1).last_report_at, null, "keys that never reported last");
      const overview = (await tb.call("GET", "/api/v1/stats/overview")).json;
      assert.ok(overview.sessions_online >= 1);
      assert.ok(overview.devices.online >= 1);
      assert.ok(overview.devices.active_today >= 1);
      assert.equal(overview.nodes.total, 1);
      assert.equal(overview.gateways.find((g: { name: string }) => g.name === "edge-1").runtime, "deno");
    });

    test("a series' range is checked", async () => {
      const d = await tb.newDevice();
      const bad = async (q: string, code: string) => {
        const r = await tb.call("GET", `/api/v1/devices/${d.device_id}/usage?${q}`);
        assert.equal(r.status, 400, q);
        assert.equal(r.json.error.code, code, q);
      };
      await bad("bucket=hour&from=2025-01-01T00:00:00Z&to=2025-03-01T00:00:00Z", "range_too_large");
      await bad("bucket=day&from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", "validation_failed");
      await bad("bucket=minute", "validation_failed");
      await bad("bucket=hour&from=yesterday", "validation_failed");
      const plain = (await tb.call("GET", `/api/v1/devices/${d.device_id}/usage`)).json;
      assert.equal(plain.series, undefined, "no bucket, no series");
    });
  });
}
