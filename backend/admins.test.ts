// Admin accounts: signing in and its sessions (idle and absolute expiry, sign-out), the
// rate limit on failed sign-ins, disabling and passwords, operators' device scope and cap,
// and the audit log of it all.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "./db/database.ts";
import { testDatabases } from "./db/testing.ts";
import { ADMIN, openTestBackend, PASSWORD, type TestBackend } from "./app.testing.ts";
import { runMaintenance } from "./maintenance.ts";

const MIN = 60_000;

for (const tdb of testDatabases()) {
  describe(`admin accounts on ${tdb.name}`, () => {
    let tb: TestBackend;
    before(async () => {
      tb = await openTestBackend(tdb, { signInLimits: { perAccount: 3, perAddress: 5, windowMs: 15 * MIN } });
    });
    after(() => tb.close());

    const signIn = (name: string, password: string, address = "192.0.2.10") =>
      tb.call("POST", "/api/v1/auth/sign-in", { name, password }, null, address);
    const me = (token: string) => tb.call("GET", "/api/v1/auth/me", undefined, token);

    test("sign in for a session token; it ends after ADMIN_SESSION_IDLE unused, after ADMIN_SESSION_MAX whatever, or at sign-out", async () => {
      tb.clock.set("2025-03-09T08:00:00Z");
      const a = await tb.newAdmin({ name: "Ada", role: "owner" });
      const s = await signIn("ada", PASSWORD); // names are matched whatever their case
      assert.equal(s.status, 201);
      assert.equal(s.json.expires_at, "2025-03-09T20:00:00.000Z");
      assert.equal(s.json.idle_timeout_seconds, 1800);
      assert.deepEqual(
        { ...s.json.admin, session: undefined },
        { kind: "session", id: a.id, name: "Ada", role: "owner", own_devices_only: false, max_devices: null, session: undefined },
      );
      const rows = await tb.db.query(sql`select * from admin_sessions`);
      assert.ok(!JSON.stringify(rows).includes(s.json.token), "only the token's digest is stored");
      const token = s.json.token;
      // used every 20 minutes it lives on; the twelfth hour ends it anyway
      for (let i = 0; i < 35; i++) {
        tb.clock.advance(20 * MIN);
        assert.equal((await me(token)).status, 200, `use ${i}`);
      }
      tb.clock.set("2025-03-09T20:00:00Z");
      assert.equal((await me(token)).status, 401, "past ADMIN_SESSION_MAX");
      const t2 = (await signIn("Ada", PASSWORD)).json.token;
      tb.clock.advance(29 * MIN);
      assert.equal((await me(t2)).status, 200);
      tb.clock.advance(30 * MIN);
      assert.equal((await me(t2)).status, 401, "30 minutes unused");
      const t3 = (await signIn("Ada", PASSWORD)).json.token;
      const out = await tb.call("POST", "/api/v1/auth/sign-out", undefined, t3);
      assert.deepEqual(out.json, { signed_out: true });
      assert.equal((await me(t3)).status, 401);
      const notSession = await tb.call("POST", "/api/v1/auth/sign-out", undefined, ADMIN);
      assert.equal(notSession.json.error.code, "not_a_session");
      // ADMIN_TOKEN signs in too (a console keeps a session, not the token)
      const owner = await tb.call("POST", "/api/v1/auth/sign-in", { token: ADMIN }, null);
      assert.equal(owner.status, 201);
      const who = (await me(owner.json.token)).json;
      assert.equal(who.kind, "session");
      assert.equal(who.role, "owner");
      assert.equal(who.id, null);
      assert.equal(who.name, "admin-token");
      assert.equal((await me(ADMIN)).json.kind, "token");
    });

    test("failed sign-ins: 401 and an audit entry each; past the limit per account or per address, 429 without checking", async () => {
      tb.clock.set("2025-03-10T08:00:00Z");
      await tb.newAdmin({ name: "bob", role: "operator" });
      for (let i = 0; i < 3; i++) {
        const r = await signIn("bob", "wrong password!!", `198.51.100.${i}`);
        assert.equal(r.status, 401);
        assert.equal(r.json.error.code, "bad_credentials");
      }
      const limited = await signIn("bob", PASSWORD, "198.51.100.99");
      assert.equal(limited.status, 429, "the right password too, from any address");
      assert.equal(limited.json.error.code, "too_many_attempts");
      assert.equal(limited.headers.get("retry-after"), "900");
      const audit = (await tb.call("GET", "/api/v1/audit?action=auth.sign_in_failed&target_id=bob")).json.entries;
      assert.equal(audit.length, 3, "the refused attempt is not logged");
      assert.deepEqual(audit[0].actor, { type: "anonymous", id: null, name: "anonymous" });
      assert.equal(audit[0].detail.reason, "wrong_password");
      assert.equal(audit[0].address, "198.51.100.2");
      // per address: unknown names and wrong tokens count there too
      await tb.newAdmin({ name: "carol", role: "operator" });
      for (let i = 0; i < 5; i++) {
        const r = i % 2
          ? await tb.call("POST", "/api/v1/auth/sign-in", { token: "not the admin token" }, null, "203.0.113.5")
          : await signIn(`nobody${i}`, "whatever whatever", "203.0.113.5");
        assert.equal(r.status, 401);
      }
      assert.equal((await signIn("carol", PASSWORD, "203.0.113.5")).status, 429);
      assert.equal((await signIn("carol", PASSWORD, "203.0.113.6")).status, 201, "another address is not limited");
      tb.clock.advance(15 * MIN);
      assert.equal((await signIn("bob", PASSWORD)).status, 201, "the window passed");
      assert.equal((await signIn("carol", PASSWORD, "203.0.113.5")).status, 201);
    });

    test("disabling an account ends its sessions and its sign-ins; a new password ends its sessions; its own change keeps this one", async () => {
      tb.clock.set("2025-03-11T08:00:00Z");
      const d = await tb.newAdmin({ name: "dave", role: "operator" });
      const other = (await signIn("dave", PASSWORD)).json.token;
      const off = await tb.call("PATCH", `/api/v1/admins/${d.id}`, { disabled: true });
      assert.equal(off.json.disabled, true);
      assert.equal((await me(d.token)).status, 401);
      assert.equal((await me(other)).status, 401);
      const refused = await signIn("dave", PASSWORD);
      assert.equal(refused.status, 401);
      await tb.call("PATCH", `/api/v1/admins/${d.id}`, { disabled: false });
      const t1 = (await signIn("dave", PASSWORD)).json.token;
      const t2 = (await signIn("dave", PASSWORD)).json.token;
      const wrong = await tb.call("POST", "/api/v1/auth/password", {
        current_password: "not it at all",
        new_password: "a new password here",
      }, t1);
      assert.equal(wrong.status, 403);
      const short = await tb.call("POST", "/api/v1/auth/password", { current_password: PASSWORD, new_password: "short" }, t1);
      assert.equal(short.status, 400);
      const changed = await tb.call("POST", "/api/v1/auth/password", {
        current_password: PASSWORD,
        new_password: "a new password here",
      }, t1);
      assert.equal(changed.status, 200, JSON.stringify(changed.json));
      assert.equal((await me(t1)).status, 200, "the session that changed it goes on");
      assert.equal((await me(t2)).status, 401, "the others end");
      assert.equal((await signIn("dave", PASSWORD)).status, 401);
      assert.equal((await signIn("dave", "a new password here")).status, 201);
      const set = await tb.call("POST", `/api/v1/admins/${d.id}/password`, { password: "set by the owner!" });
      assert.equal(set.status, 200);
      assert.equal((await me(t1)).status, 401, "an owner's reset ends them all");
      const noAccount = await tb.call("POST", "/api/v1/auth/password", {
        current_password: "x",
        new_password: "a new password here",
      }, ADMIN);
      assert.equal(noAccount.json.error.code, "not_a_session");
    });

    test("accounts: names unique whatever their case, passwords of 12 characters or more, listed with their device counts", async () => {
      const dup = await tb.call("POST", "/api/v1/admins", { name: "ADA", role: "operator", password: PASSWORD });
      assert.equal(dup.status, 409);
      const weak = await tb.call("POST", "/api/v1/admins", { name: "eve", role: "operator", password: "123456" });
      assert.equal(weak.status, 400);
      assert.match(weak.json.error.message, /^password: /);
      const badName = await tb.call("POST", "/api/v1/admins", { name: "<b>eve</b>", role: "operator", password: PASSWORD });
      assert.equal(badName.status, 400);
      const list = (await tb.call("GET", "/api/v1/admins")).json.admins;
      assert.ok(list.some((a: { name: string }) => a.name === "Ada"));
      assert.ok(!JSON.stringify(list).includes("scrypt"), "no hash in any answer");
      assert.ok(list.every((a: { devices_created: number }) => typeof a.devices_created === "number"));
    });

    test("an operator with own_devices_only sees and changes only its devices; one without sees all", async () => {
      const mine = await tb.newAdmin({ name: "reseller1", role: "operator", own_devices_only: true });
      const theirs = await tb.newAdmin({ name: "reseller2", role: "operator", own_devices_only: true });
      const helpdesk = await tb.newAdmin({ name: "helpdesk", role: "operator" });
      const a = await tb.newDevice({ name: "a's phone" }, mine.token);
      const b = await tb.newDevice({ name: "b's phone" }, theirs.token);
      const byOwner = await tb.newDevice({ name: "owner's laptop" });
      const ids = async (token: string) =>
        new Set(
          ((await tb.call("GET", "/api/v1/devices?limit=500", undefined, token)).json.devices as { id: string }[]).map((d) =>
            d.id
          ),
        );
      const seen = await ids(mine.token);
      assert.ok(seen.has(a.device_id));
      assert.ok(!seen.has(b.device_id) && !seen.has(byOwner.device_id));
      const all = await ids(helpdesk.token);
      assert.ok(all.has(a.device_id) && all.has(b.device_id) && all.has(byOwner.device_id));
      assert.equal((await tb.call("GET", `/api/v1/devices/${a.device_id}`, undefined, mine.token)).json.created_by, mine.id);
      for (
        const [method, path, body] of [
          ["GET", "", undefined],
          ["PATCH", "", { name: "taken over" }],
          ["DELETE", "", undefined],
          ["POST", "/rotate-token", undefined],
          ["POST", "/reset-usage", undefined],
          ["GET", "/usage", undefined],
          ["GET", "/sessions", undefined],
          ["GET", "/app", undefined],
        ] as const
      ) {
        const r = await tb.call(method, `/api/v1/devices/${b.device_id}${path}`, body, mine.token);
        assert.equal(r.status, 404, `${method} ${path}: another operator's device is not found`);
      }
      const bulk = await tb.call("POST", "/api/v1/devices/bulk", {
        action: "disable",
        ids: [a.device_id, b.device_id, byOwner.device_id],
      }, mine.token);
      assert.deepEqual(bulk.json.ids, [a.device_id]);
      const byFilter = await tb.call("POST", "/api/v1/devices/bulk", { action: "revoke", filter: {} }, mine.token);
      assert.deepEqual(byFilter.json.ids, [a.device_id]);
      assert.equal((await tb.call("GET", `/api/v1/devices/${b.device_id}`)).json.status, "active", "untouched");
      const asked = await tb.call("GET", `/api/v1/devices?created_by=${theirs.id}`, undefined, mine.token);
      assert.deepEqual(asked.json.devices, [], "a filter cannot widen the scope");
    });

    test("an operator's cap counts its devices that are not revoked, also when two creations race", async () => {
      const capped = await tb.newAdmin({ name: "capped", role: "operator", own_devices_only: true, max_devices: 2 });
      const first = await tb.newDevice({ name: "1" }, capped.token);
      await tb.newDevice({ name: "2" }, capped.token);
      const third = await tb.call("POST", "/api/v1/devices", { name: "3" }, capped.token);
      assert.equal(third.status, 403);
      assert.equal(third.json.error.code, "device_cap_reached");
      await tb.call("DELETE", `/api/v1/devices/${first.device_id}`, undefined, capped.token);
      const racing = await Promise.all(
        [1, 2, 3, 4].map((i) => tb.call("POST", "/api/v1/devices", { name: `r${i}` }, capped.token)),
      );
      assert.deepEqual(racing.map((r) => r.status).sort(), [201, 403, 403, 403]);
      const me = (await tb.call("GET", `/api/v1/admins/${capped.id}`)).json;
      assert.equal(me.devices_created, 2);
      // the cap is the account's, not the owner's: the owner creates as many as it likes
      assert.equal((await tb.call("POST", "/api/v1/devices", { name: "owner's" })).status, 201);
    });

    test("the audit log: every change with who, what, target and address, secrets left out; filters and pages", async () => {
      tb.clock.set("2025-03-12T08:00:00Z");
      const op = await tb.newAdmin({ name: "auditee", role: "operator" });
      const d = await tb.newDevice({ name: "audited" }, op.token);
      await tb.call(
        "PATCH",
        `/api/v1/devices/${d.device_id}`,
        { data_quota_bytes: 1000, quota_period: "month" },
        op.token,
        "192.0.2.77",
      );
      await tb.call("POST", `/api/v1/devices/${d.device_id}/rotate-token`, undefined, op.token);
      const mine = (await tb.call("GET", `/api/v1/audit?actor_id=${op.id}`)).json.entries;
      assert.deepEqual(mine.map((e: { action: string }) => e.action), [
        "device.rotate_token",
        "device.update",
        "device.create",
        "auth.sign_in",
      ]);
      const update = mine[1];
      assert.deepEqual(update.actor, { type: "admin", id: op.id, name: "auditee" });
      assert.equal(update.target_type, "device");
      assert.equal(update.target_id, d.device_id);
      assert.equal(update.address, "192.0.2.77");
      assert.deepEqual(update.detail, { data_quota_bytes: 1000, quota_period: "month" });
      assert.equal(update.at, "2025-03-12T08:00:00.000Z");
      assert.equal(mine[2].target_id, d.device_id, "a creation names what it created");
      const created = (await tb.call("GET", `/api/v1/audit?action=admin.create&target_id=${op.id}`)).json.entries[0];
      assert.equal(created.detail.password, "(secret)");
      assert.equal(created.actor.name, "admin-token");
      const dump = JSON.stringify(await tb.db.query(sql`select * from audit_log`));
      assert.ok(!dump.includes(PASSWORD), "no password in the log");
      assert.ok(!dump.includes(d.token), "no token in the log");
      const devicesOnly = (await tb.call("GET", "/api/v1/audit?action=device.&limit=2")).json;
      assert.equal(devicesOnly.entries.length, 2);
      assert.ok(devicesOnly.entries.every((e: { action: string }) => e.action.startsWith("device.")));
      const next = (await tb.call("GET", `/api/v1/audit?action=device.&limit=2&cursor=${devicesOnly.next_cursor}`)).json;
      assert.ok(next.entries[0].id < devicesOnly.entries[1].id, "the next page is older");
      assert.equal((await tb.call("GET", "/api/v1/audit?cursor=bm9wZQ")).status, 400);
    });

    test("maintenance deletes admin sessions that can no longer be used and audit entries past AUDIT_RETENTION", async () => {
      tb.clock.set("2025-03-13T08:00:00Z");
      await tb.newAdmin({ name: "leaver", role: "operator" });
      const before = await tb.db.query<{ n: number }>(sql`select count(*)::int as n from admin_sessions`);
      assert.ok(before[0]!.n > 0);
      const r = await runMaintenance(tb.db, {
        hourlyRetentionMs: 14 * 24 * 60 * MIN,
        sessionRetentionMs: 30 * 24 * 60 * MIN,
        nodeHealthRetentionMs: 2 * 24 * 60 * MIN,
        auditRetentionMs: 24 * 60 * MIN,
        adminSessionIdleMs: 30 * MIN,
      }, new Date("2025-03-14T09:00:00Z"));
      assert.equal(r.admin_sessions_pruned, before[0]!.n, JSON.stringify(r));
      assert.equal((await tb.db.query<{ n: number }>(sql`select count(*)::int as n from admin_sessions`))[0]!.n, 0);
      const old = await tb.db.query<{ n: number }>(
        sql`select count(*)::int as n from audit_log where at < '2025-03-13T09:00:00Z'`,
      );
      assert.equal(old[0]!.n, 0);
      assert.ok(r.audit_pruned > 0);
    });
  });
}
