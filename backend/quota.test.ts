// Quota periods and expiry modes as validation enforces them and the API shows them, at the
// periods' boundaries, on a clock the test moves.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { testDatabases } from "./db/testing.ts";
import { GW, openTestBackend, type TestBackend } from "./app.testing.ts";
import { keyDataLimit } from "./outline-keys.ts";

let sessionNo = 0;

for (const tdb of testDatabases()) {
  describe(`quota periods and expiry on ${tdb.name}`, () => {
    let tb: TestBackend;
    before(async () => {
      tb = await openTestBackend(tdb);
    });
    after(() => tb.close());

    /** `bytes` more for the device, reported now (on the test's clock). */
    const use = async (deviceId: string, bytes: number) => {
      const r = await tb.report([{
        type: "session_close",
        session_id: `q-${++sessionNo}`,
        device_id: deviceId,
        reason: "done",
        bytes_up: Math.floor(bytes / 4),
        bytes_down: bytes - Math.floor(bytes / 4),
      }]);
      assert.equal(r.json.accepted, 1);
    };
    const device = async (id: string) => (await tb.call("GET", `/api/v1/devices/${id}`)).json;
    const reason = async (d: { device_id: string; token: string }) => {
      const v = (await tb.validate(d.device_id, d.token)).json;
      return v.valid ? "valid" : v.reason;
    };

    const boundaries: [string, string, string, string][] = [
      // period, the last moment of one period, the first of the next, the next period's start
      ["day", "2025-03-09T23:59:59.999Z", "2025-03-10T00:00:00.000Z", "2025-03-10T00:00:00.000Z"],
      ["week", "2025-03-09T23:59:59.999Z", "2025-03-10T00:00:00.000Z", "2025-03-10T00:00:00.000Z"], // Sunday → Monday
      ["month", "2024-02-29T23:59:59.999Z", "2024-03-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"], // a leap day
    ];
    for (const [period, last, first, resets] of boundaries) {
      test(`a ${period} quota: exhausted up to the period's last millisecond, whole again at its end`, async () => {
        tb.clock.set(new Date(new Date(last).getTime() - 3_600_000).toISOString());
        const d = await tb.newDevice({ data_quota_bytes: 1000, quota_period: period });
        assert.equal(await reason(d), "valid");
        await use(d.device_id, 1000);
        assert.equal(await reason(d), "quota_exceeded");
        tb.clock.set(last);
        assert.equal(await reason(d), "quota_exceeded");
        let shown = await device(d.device_id);
        assert.equal(shown.status, "over_quota");
        assert.equal(shown.quota_used_bytes, 1000);
        assert.equal(shown.quota_remaining_bytes, 0);
        assert.equal(shown.quota_resets_at, resets);
        tb.clock.set(first);
        assert.equal(await reason(d), "valid");
        shown = await device(d.device_id);
        assert.equal(shown.status, "active");
        assert.equal(shown.quota_used_bytes, 0);
        assert.equal(shown.quota_period_start, resets);
        assert.equal(shown.bytes_up + shown.bytes_down, 1000, "the lifetime totals stay");
        await use(d.device_id, 400);
        assert.equal((await device(d.device_id)).quota_used_bytes, 400, "the new period counts from its start");
        const usage = (await tb.call("GET", `/api/v1/devices/${d.device_id}/usage`)).json;
        assert.equal(usage.bytes_total, 1400);
        assert.equal(usage.quota_used_bytes, 400);
        assert.equal(usage.quota_period, period);
      });
    }

    test("no period: usage counts until a reset; the reset keeps the history; validate-app's usage is the period's", async () => {
      tb.clock.set("2025-03-09T12:00:00Z");
      const d = await tb.newDevice({ data_quota_bytes: 1000 });
      await use(d.device_id, 600);
      tb.clock.set("2025-05-01T00:00:00Z");
      await use(d.device_id, 600);
      assert.equal(await reason(d), "quota_exceeded", "no period: nothing resets by itself");
      let shown = await device(d.device_id);
      assert.equal(shown.quota_resets_at, null);
      assert.equal(shown.quota_period_start, null);
      const app = (await tb.call(
        "POST",
        "/api/v1/auth/validate-app",
        { app_path: d.app.path, purpose: "config" },
        GW,
      )).json;
      assert.equal(app.reason, "quota_exceeded");
      assert.equal(app.usage.bytes_up + app.usage.bytes_down, 1200);
      const reset = await tb.call("POST", `/api/v1/devices/${d.device_id}/reset-usage`);
      assert.equal(reset.status, 200);
      assert.equal(reset.json.quota_used_bytes, 0);
      assert.equal(reset.json.usage_reset_at, "2025-05-01T00:00:00.000Z");
      assert.equal(reset.json.bytes_up + reset.json.bytes_down, 1200, "the history stays");
      assert.equal(await reason(d), "valid");
      await use(d.device_id, 100);
      shown = await device(d.device_id);
      assert.equal(shown.quota_used_bytes, 100);
      const again = (await tb.call("POST", "/api/v1/auth/validate-app", { app_path: d.app.path, purpose: "config" }, GW)).json;
      assert.equal(again.usage.bytes_up + again.usage.bytes_down, 100, "apps see the period's usage against the quota");
    });

    test("changing the period recounts its usage from the buckets", async () => {
      tb.clock.set("2025-03-08T10:00:00Z");
      const d = await tb.newDevice({ data_quota_bytes: 10_000 });
      await use(d.device_id, 700); // yesterday
      tb.clock.set("2025-03-09T10:30:00Z");
      await use(d.device_id, 300); // today
      assert.equal((await device(d.device_id)).quota_used_bytes, 1000);
      const day = await tb.call("PATCH", `/api/v1/devices/${d.device_id}`, { quota_period: "day" });
      assert.equal(day.status, 200);
      assert.equal(day.json.quota_used_bytes, 300, "only today's");
      await use(d.device_id, 50);
      assert.equal((await device(d.device_id)).quota_used_bytes, 350, "the counter carries on from the recount");
      const week = await tb.call("PATCH", `/api/v1/devices/${d.device_id}`, { quota_period: "week" });
      assert.equal(week.json.quota_used_bytes, 1050, "Saturday and Sunday are both in the week of Monday 3 March");
      const none = await tb.call("PATCH", `/api/v1/devices/${d.device_id}`, { quota_period: "none" });
      assert.equal(none.json.quota_used_bytes, 1050, "no period and no reset: everything ever");
    });

    test("N days from the first connection: on hold until a successful validation, then a date", async () => {
      tb.clock.set("2025-03-09T12:00:00Z");
      const d = await tb.newDevice({ expire_after_days: 30, disabled: true });
      let shown = await device(d.device_id);
      assert.equal(shown.expiry_mode, "first_connection");
      assert.equal(shown.expires_at, null);
      assert.equal(shown.first_connected_at, null);
      assert.equal(await reason(d), "disabled");
      assert.equal((await device(d.device_id)).first_connected_at, null, "a refused validation is no connection");
      await tb.call("PATCH", `/api/v1/devices/${d.device_id}`, { disabled: false });
      assert.equal((await device(d.device_id)).status, "on_hold");
      tb.clock.set("2025-04-01T08:00:00Z");
      const v = (await tb.validate(d.device_id, d.token)).json;
      assert.equal(v.valid, true);
      assert.equal(v.device.expires_at, "2025-05-01T08:00:00.000Z", "the gateway learns the expiry at once");
      shown = await device(d.device_id);
      assert.equal(shown.status, "active");
      assert.equal(shown.first_connected_at, "2025-04-01T08:00:00.000Z");
      assert.equal(shown.expires_at, "2025-05-01T08:00:00.000Z");
      assert.equal(shown.expiry_mode, "first_connection");
      tb.clock.set("2025-05-01T07:59:59.999Z");
      assert.equal(await reason(d), "valid");
      tb.clock.set("2025-05-01T08:00:00.000Z");
      assert.equal(await reason(d), "expired");
      assert.equal((await device(d.device_id)).status, "expired");
      // another N counts from the same first connection; a date replaces the mode
      const longer = await tb.call("PATCH", `/api/v1/devices/${d.device_id}`, { expire_after_days: 60 });
      assert.equal(longer.json.expires_at, "2025-05-31T08:00:00.000Z");
      assert.equal(await reason(d), "valid");
      const dated = await tb.call("PATCH", `/api/v1/devices/${d.device_id}`, { expires_at: "2026-01-01T00:00:00Z" });
      assert.equal(dated.json.expiry_mode, "date");
      assert.equal(dated.json.expire_after_days, null);
      assert.equal(dated.json.first_connected_at, "2025-04-01T08:00:00.000Z", "the first connection stays on record");
      const none = await tb.call("PATCH", `/api/v1/devices/${d.device_id}`, { expires_at: null });
      assert.equal(none.json.expiry_mode, "none");
      const both = await tb.call("PATCH", `/api/v1/devices/${d.device_id}`, {
        expires_at: "2026-01-01T00:00:00Z",
        expire_after_days: 5,
      });
      assert.equal(both.status, 400);
      assert.equal(both.json.error.code, "validation_failed");
      assert.match(both.json.error.message, /^expire_after_days: /);
    });

    test("an on-hold device's app connection starts its time too; a config fetch does not", async () => {
      tb.clock.set("2025-03-09T12:00:00Z");
      const d = await tb.newDevice({ expire_after_days: 1 });
      const config = (await tb.call("POST", "/api/v1/auth/validate-app", { app_path: d.app.path, purpose: "config" }, GW)).json;
      assert.equal(config.valid, true);
      assert.equal((await device(d.device_id)).status, "on_hold");
      const connect = (await tb.call(
        "POST",
        "/api/v1/auth/validate-app",
        { app_path: d.app.path, purpose: "connect", session_id: "app-1" },
        GW,
      )).json;
      assert.equal(connect.valid, true);
      assert.equal(connect.device.expires_at, "2025-03-10T12:00:00.000Z");
    });

    test("Outline keys carry the quota as their data limit only while it never resets", () => {
      const base = { id: "d", data_quota_bytes: 5000, quota_period: "none", usage_reset_at: null };
      assert.equal(keyDataLimit(base), 5000);
      assert.equal(keyDataLimit({ ...base, quota_period: "month" }), null);
      assert.equal(keyDataLimit({ ...base, usage_reset_at: new Date() }), null);
    });
  });
}
