// The device list (search, status filters, order, keyset pages), bulk actions by ids and by
// filter, a device's sessions and the devices on a node.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { testDatabases } from "./db/testing.ts";
import { openTestBackend, type TestBackend } from "./app.testing.ts";

for (const tdb of testDatabases()) {
  describe(`device list and bulk actions on ${tdb.name}`, () => {
    let tb: TestBackend;
    type Made = { device_id: string; token: string };
    const made = {} as Record<"active" | "disabled" | "expired" | "over" | "hold" | "revoked" | "online", Made>;
    before(async () => {
      tb = await openTestBackend(tdb);
      tb.clock.set("2025-03-09T12:00:00Z");
      made.active = await tb.newDevice({ name: "Alice 100% phone" });
      made.disabled = await tb.newDevice({ name: "bob_laptop", disabled: true });
      made.expired = await tb.newDevice({ name: "carol", expires_at: "2025-01-01T00:00:00Z" });
      made.over = await tb.newDevice({ name: "dave", data_quota_bytes: 10 });
      made.hold = await tb.newDevice({ name: "erin", expire_after_days: 7 });
      made.revoked = await tb.newDevice({ name: "frank" });
      made.online = await tb.newDevice({ name: "grace" });
      await tb.call("DELETE", `/api/v1/devices/${made.revoked.device_id}`);
      await tb.report([
        { type: "session_close", session_id: "over-1", device_id: made.over.device_id, reason: "x", bytes_up: 5, bytes_down: 5 },
        { type: "session_open", session_id: "live-1", device_id: made.online.device_id, node_id: null },
      ]);
    });
    after(() => tb.close());

    const list = async (q: string) => {
      const r = await tb.call("GET", `/api/v1/devices?${q}`);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return r.json as { devices: { id: string; name: string; status: string; online: boolean }[]; next_cursor: string | null };
    };
    const names = async (q: string) => (await list(q)).devices.map((d) => d.name);

    test("every status is a filter, and online is one too; the JSON agrees with the filter", async () => {
      const expect: Record<string, string[]> = {
        active: ["Alice 100% phone", "grace"],
        disabled: ["bob_laptop"],
        expired: ["carol"],
        over_quota: ["dave"],
        on_hold: ["erin"],
        revoked: ["frank"],
        online: ["grace"],
      };
      for (const [status, want] of Object.entries(expect)) {
        const got = await list(`status=${status}&limit=500`);
        assert.deepEqual(got.devices.map((d) => d.name), want, status);
        if (status !== "online") assert.ok(got.devices.every((d) => d.status === status));
        else assert.ok(got.devices.every((d) => d.online));
      }
      assert.equal((await tb.call("GET", "/api/v1/devices?status=sleepy")).status, 400);
    });

    test("search by part of the name (any case, % and _ as themselves) or by the start of the id", async () => {
      assert.deepEqual(await names("q=ALICE"), ["Alice 100% phone"]);
      assert.deepEqual(await names("q=100%25"), ["Alice 100% phone"], "% is a character, not a wildcard");
      assert.deepEqual(await names("q=_"), ["bob_laptop"], "_ is a character, not a wildcard");
      assert.deepEqual(await names(`q=${made.expired.device_id.slice(0, 8)}`), ["carol"]);
      assert.deepEqual(await names("q=nobody-by-that-name"), []);
      assert.deepEqual(await names("q=a&status=active"), ["Alice 100% phone", "grace"]);
    });

    test("keyset pages in either order walk every match once", async () => {
      for (const order of ["asc", "desc"]) {
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const page = await list(`limit=2&order=${order}${cursor ? `&cursor=${cursor}` : ""}`);
          seen.push(...page.devices.map((d) => d.name));
          cursor = page.next_cursor;
        } while (cursor);
        assert.equal(seen.length, 7, order);
        assert.equal(new Set(seen).size, 7);
        if (order === "desc") assert.equal(seen[0], "grace");
        else assert.equal(seen[0], "Alice 100% phone");
      }
    });

    test("bulk by ids: each action, ids outside the list ignored; reset_usage brings an over-quota device back", async () => {
      const off = await tb.call("POST", "/api/v1/devices/bulk", {
        action: "disable",
        ids: [made.active.device_id, made.revoked.device_id, "00000000-0000-0000-0000-000000000000"],
      });
      assert.deepEqual(off.json, { action: "disable", ids: [made.active.device_id], affected: 1, more: false });
      assert.equal((await tb.validate(made.active.device_id, made.active.token)).json.reason, "disabled");
      const on = await tb.call("POST", "/api/v1/devices/bulk", { action: "enable", ids: [made.active.device_id] });
      assert.equal(on.json.affected, 1);
      assert.equal((await tb.validate(made.active.device_id, made.active.token)).json.valid, true);
      const reset = await tb.call("POST", "/api/v1/devices/bulk", { action: "reset_usage", filter: { status: "over_quota" } });
      assert.deepEqual(reset.json.ids, [made.over.device_id]);
      assert.equal((await tb.validate(made.over.device_id, made.over.token)).json.valid, true);
      const bad = [
        { action: "disable" },
        { action: "disable", ids: [made.active.device_id], filter: {} },
        { action: "explode", ids: [made.active.device_id] },
        { action: "disable", ids: Array.from({ length: 1001 }, () => made.active.device_id) },
      ];
      for (const body of bad) {
        assert.equal((await tb.call("POST", "/api/v1/devices/bulk", body)).status, 400, JSON.stringify(body).slice(0, 80));
      }
    });

    test("bulk by filter: at most `limit` per request, oldest first, `more` until none match", async () => {
      for (let i = 0; i < 5; i++) await tb.newDevice({ name: `batch-${i}` });
      const rounds: string[][] = [];
      for (;;) {
        const r = await tb.call("POST", "/api/v1/devices/bulk", { action: "revoke", filter: { q: "batch-" }, limit: 2 });
        assert.equal(r.status, 200);
        rounds.push(r.json.ids);
        if (!r.json.more) break;
        assert.ok(rounds.length < 10);
      }
      assert.deepEqual(rounds.map((ids) => ids.length), [2, 2, 1]);
      assert.deepEqual(await names("q=batch-&status=revoked"), ["batch-0", "batch-1", "batch-2", "batch-3", "batch-4"]);
    });

    test("a device's sessions, newest first, open ones alone on request; the devices on a node", async () => {
      const node = (await tb.call("POST", "/api/v1/nodes", {
        name: "n",
        host: "127.0.0.1",
        port: 8388,
        method: "aes-256-gcm",
        password: "p",
      })).json.id;
      const d = await tb.newDevice({ name: "sessions" });
      await tb.report([
        { type: "session_open", session_id: "s-old", device_id: d.device_id, node_id: node },
        {
          type: "session_close",
          session_id: "s-old",
          device_id: d.device_id,
          reason: "client_closed",
          bytes_up: 3,
          bytes_down: 4,
        },
      ]);
      await tb.report([{ type: "session_open", session_id: "s-new", device_id: d.device_id, node_id: node }]);
      const all = (await tb.call("GET", `/api/v1/devices/${d.device_id}/sessions`)).json.sessions;
      assert.deepEqual(all.map((s: { id: string }) => s.id).sort(), ["s-new", "s-old"]);
      const old = all.find((s: { id: string }) => s.id === "s-old");
      assert.deepEqual(
        { gateway: old.gateway_id, node: old.node_id, reason: old.close_reason, up: old.bytes_up, online: old.online },
        { gateway: "gw-a", node, reason: "client_closed", up: 3, online: false },
      );
      const open = (await tb.call("GET", `/api/v1/devices/${d.device_id}/sessions?state=open`)).json.sessions;
      assert.deepEqual(open.map((s: { id: string }) => s.id), ["s-new"]);
      // validation pins the device to the node
      assert.equal((await tb.validate(d.device_id, d.token)).json.assignment.node_id, node);
      const onNode = (await tb.call("GET", `/api/v1/nodes/${node}/devices`)).json.devices;
      assert.ok(onNode.some((x: { id: string }) => x.id === d.device_id));
      assert.ok(onNode.every((x: { node_id: string }) => x.node_id === node));
      const n = (await tb.call("GET", `/api/v1/nodes/${node}`)).json;
      assert.ok(n.devices_assigned >= 1);
      assert.equal((await tb.call("GET", "/api/v1/nodes/00000000-0000-0000-0000-000000000000/devices")).status, 404);
    });

    test("the device JSON carries its limits, usage and state", async () => {
      const d = (await tb.call("GET", `/api/v1/devices/${made.online.device_id}`)).json;
      for (
        const k of [
          "quota_period",
          "quota_used_bytes",
          "quota_resets_at",
          "expiry_mode",
          "expire_after_days",
          "first_connected_at",
          "last_seen_at",
          "sessions_active",
          "online",
          "created_by",
          "usage_reset_at",
        ]
      ) assert.ok(k in d, k);
      assert.equal(d.online, true);
      assert.equal(d.sessions_active, 1);
      assert.equal(d.last_seen_at, "2025-03-09T12:00:00.000Z");
    });
  });
}
