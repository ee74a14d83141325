import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createBackendApp } from "./app.ts";
import { type Database, sql } from "./db/database.ts";
import { testDatabases } from "./db/testing.ts";
import { memoryLogger } from "../logging/logger.ts";
import { formatSsUrl } from "../protocol/ss-url.ts";
import { ADMIN, GW, openTestBackend, type TestBackend } from "./app.testing.ts";

for (const tdb of testDatabases()) {
  describe(`backend API on ${tdb.name}`, () => {
    let tb: TestBackend;
    let db: Database;
    before(async () => {
      // These tests judge expiry against the wall clock.
      tb = await openTestBackend(tdb, { now: () => new Date() });
      db = tb.db;
    });
    after(() => tb.close());
    const call = (method: string, path: string, body?: unknown, key: string | null = ADMIN) => tb.call(method, path, body, key);
    const validate = (device_id: string, token: string, extra: object = {}) => tb.validate(device_id, token, extra);
    const newDevice = (fields: object = {}) => tb.newDevice(fields);

    test("create a device, validate it, reject a wrong token and an unknown device", async () => {
      const d = await newDevice();
      assert.match(d.device_id, /^[0-9a-f-]{36}$/);
      assert.ok(d.token.length >= 40);
      const ok = await validate(d.device_id, d.token);
      assert.equal(ok.status, 200);
      assert.equal(ok.json.valid, true);
      assert.equal(ok.json.device.id, d.device_id);
      assert.equal(ok.json.assignment, null, "no nodes yet");
      assert.deepEqual((await validate(d.device_id, d.token + "x")).json, { valid: false, reason: "bad_token" });
      assert.deepEqual((await validate("00000000-0000-0000-0000-000000000000", d.token)).json, {
        valid: false,
        reason: "unknown_device",
      });
      assert.deepEqual((await validate("not-a-uuid", d.token)).json, { valid: false, reason: "unknown_device" });
    });

    test("the token is stored only as its sha256 digest", async () => {
      const d = await newDevice();
      const rows = await db.query<{ token_hash: string }>(sql`select token_hash from devices where id = ${d.device_id}`);
      const { createHash } = await import("node:crypto");
      assert.equal(rows[0]!.token_hash, createHash("sha256").update(d.token).digest("hex"));
      const dump = JSON.stringify(await db.query(sql`select * from devices`));
      assert.ok(!dump.includes(d.token), "raw token must not be in the table");
      const got = await call("GET", `/api/v1/devices/${d.device_id}`);
      assert.equal(got.json.token, undefined);
      assert.equal(got.json.token_hash, undefined);
    });

    test("revoked, disabled and expired devices are refused with their reason", async () => {
      const a = await newDevice();
      assert.equal((await call("DELETE", `/api/v1/devices/${a.device_id}`)).json.status, "revoked");
      assert.deepEqual((await validate(a.device_id, a.token)).json, { valid: false, reason: "revoked" });

      const b = await newDevice();
      assert.equal((await call("PATCH", `/api/v1/devices/${b.device_id}`, { disabled: true })).status, 200);
      assert.deepEqual((await validate(b.device_id, b.token)).json, { valid: false, reason: "disabled" });
      await call("PATCH", `/api/v1/devices/${b.device_id}`, { disabled: false });
      assert.equal((await validate(b.device_id, b.token)).json.valid, true);

      const c = await newDevice({ expires_at: new Date(Date.now() - 1000).toISOString() });
      assert.deepEqual((await validate(c.device_id, c.token)).json, { valid: false, reason: "expired" });
      const patched = await call("PATCH", `/api/v1/devices/${c.device_id}`, { expires_at: null });
      assert.equal(patched.json.expires_at, null);
      assert.equal((await validate(c.device_id, c.token)).json.valid, true);
    });

    test("rotate-token: the old token stops working, the new one works", async () => {
      const d = await newDevice();
      const r = await call("POST", `/api/v1/devices/${d.device_id}/rotate-token`);
      assert.equal(r.status, 200);
      assert.notEqual(r.json.token, d.token);
      assert.equal((await validate(d.device_id, d.token)).json.reason, "bad_token");
      assert.equal((await validate(d.device_id, r.json.token)).json.valid, true);
    });

    test("usage reports count bytes and sessions; quota and session limits are enforced at validation", async () => {
      const d = await newDevice({ data_quota_bytes: 1000, max_sessions: 2 });
      const report = (events: object[]) => call("POST", "/api/v1/gateway/report", { gateway_id: "gw-a", events }, GW);
      assert.equal((await validate(d.device_id, d.token)).json.valid, true);
      let r = await report([
        { type: "session_open", session_id: "s-1", device_id: d.device_id, node_id: null },
        { type: "session_open", session_id: "s-2", device_id: d.device_id, node_id: null },
      ]);
      assert.deepEqual(r.json, { accepted: 2, ignored: 0 });
      assert.deepEqual((await validate(d.device_id, d.token)).json, { valid: false, reason: "session_limit" });
      // re-validating a live session does not count that session against the limit
      assert.equal((await validate(d.device_id, d.token, { session_id: "s-1" })).json.valid, true);
      r = await report([{
        type: "session_close",
        session_id: "s-2",
        device_id: d.device_id,
        reason: "client_closed",
        bytes_up: 100,
        bytes_down: 300,
      }]);
      assert.equal(r.json.accepted, 1);
      assert.equal((await validate(d.device_id, d.token)).json.valid, true, "one session left open of two allowed");
      await report([{ type: "session_usage", session_id: "s-1", device_id: d.device_id, bytes_up: 250, bytes_down: 350 }]);
      const u = await call("GET", `/api/v1/devices/${d.device_id}/usage`);
      assert.equal(u.status, 200);
      assert.equal(u.json.bytes_up, 350);
      assert.equal(u.json.bytes_down, 650);
      assert.equal(u.json.bytes_total, 1000);
      assert.equal(u.json.sessions_total, 2);
      assert.equal(u.json.sessions_active, 1);
      assert.equal(u.json.quota_remaining_bytes, 0);
      assert.deepEqual((await validate(d.device_id, d.token)).json, { valid: false, reason: "quota_exceeded" });
      await call("PATCH", `/api/v1/devices/${d.device_id}`, { data_quota_bytes: null });
      assert.equal((await validate(d.device_id, d.token)).json.valid, true);
      // an event for an unknown device is ignored, not an error
      r = await report([{
        type: "session_usage",
        session_id: "s-x",
        device_id: "00000000-0000-0000-0000-000000000000",
        bytes_up: 1,
        bytes_down: 1,
      }]);
      assert.deepEqual(r.json, { accepted: 0, ignored: 1 });
    });

    test("racing hellos cannot both take a device's last session slot", async () => {
      const d = await newDevice({ max_sessions: 1 });
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => validate(d.device_id, d.token, { session_id: `race-${i}` })),
      );
      const admitted = results.filter((r) => r.json.valid === true);
      assert.equal(admitted.length, 1, JSON.stringify(results.map((r) => r.json.reason ?? "valid")));
      assert.ok(results.filter((r) => r.json.valid === false).every((r) => r.json.reason === "session_limit"));
      const winner = results.findIndex((r) => r.json.valid === true);
      // the admitted session re-validates fine; once it closes, the slot is free again
      assert.equal((await validate(d.device_id, d.token, { session_id: `race-${winner}` })).json.valid, true);
      await call("POST", "/api/v1/gateway/report", {
        events: [{
          type: "session_close",
          session_id: `race-${winner}`,
          device_id: d.device_id,
          reason: "done",
          bytes_up: 0,
          bytes_down: 0,
        }],
      }, GW);
      assert.equal((await validate(d.device_id, d.token, { session_id: "race-next" })).json.valid, true);
    });

    test("assignment: sticky, least sessions per weight, away from disabled, down and excluded nodes", async () => {
      const mk = async (name: string, weight: number) => {
        const r = await call("POST", "/api/v1/nodes", {
          name,
          host: "127.0.0.1",
          port: 8388,
          method: "aes-256-gcm",
          password: "pw-" + name,
          weight,
        });
        assert.equal(r.status, 201, JSON.stringify(r.json));
        assert.equal(r.json.password, undefined, "password is write-only");
        return r.json.id as string;
      };
      // fresh pool for this test
      await db.query(sql`delete from nodes`);
      const heavy = await mk("heavy", 10);
      const light = await mk("light", 1);
      const filler = await newDevice({ name: "filler" });
      const open = (node: string, n: number, tag: string) =>
        call("POST", "/api/v1/gateway/report", {
          events: Array.from(
            { length: n },
            (_, i) => ({ type: "session_open", session_id: `${tag}-${i}`, device_id: filler.device_id, node_id: node }),
          ),
        }, GW);
      await open(heavy, 5, "h"); // 5 / 10 = 0.5
      await open(light, 1, "l"); // 1 / 1 = 1.0
      const assigned = async (d: { device_id: string; token: string }, extra: object = {}) => {
        const v = await validate(d.device_id, d.token, extra);
        assert.equal(v.json.valid, true, JSON.stringify(v.json));
        return v.json.assignment?.node_id as string | undefined;
      };
      const d1 = await newDevice();
      const v1 = await validate(d1.device_id, d1.token);
      assert.equal(v1.json.assignment.node_id, heavy, "fewest sessions per weight");
      assert.deepEqual(Object.keys(v1.json.assignment).sort(), ["host", "method", "node_id", "password", "port", "prefix"]);
      assert.equal(v1.json.assignment.password, "pw-heavy");
      await open(heavy, 20, "h2"); // 25 / 10 = 2.5 > 1.0
      assert.equal(await assigned(d1), heavy, "sticky while the node is usable");
      const d2 = await newDevice();
      assert.equal(await assigned(d2), light);
      await call("PATCH", `/api/v1/nodes/${heavy}`, { enabled: false });
      assert.equal(await assigned(d1), light, "moved off a disabled node");
      await call("PATCH", `/api/v1/nodes/${heavy}`, { enabled: true });
      assert.equal(await assigned(d1), light, "re-pinned to its new node");
      assert.equal(await assigned(d1, { exclude_node_ids: [light] }), heavy, "failover excludes the failed node");
      assert.equal(await assigned(d1), heavy, "and the device is re-pinned there");
      const rep = await call("POST", "/api/v1/gateway/report", {
        events: [{ type: "node_failure", node_id: heavy, error: "dial timeout" }],
      }, GW);
      assert.equal(rep.json.accepted, 1);
      assert.equal(await assigned(d1), light, "a node reported down is avoided");
      const list = await call("GET", "/api/v1/nodes");
      const h = list.json.nodes.find((n: { id: string }) => n.id === heavy);
      assert.equal(h.health.status, "down");
      assert.match(h.health.last_error, /dial timeout/);
      assert.equal(h.sessions_active, 25);
      assert.ok(!JSON.stringify(list.json).includes("pw-"), "no password in the listing");
      await call("PATCH", `/api/v1/nodes/${light}`, { enabled: false });
      const none = await validate(d1.device_id, d1.token);
      assert.equal(none.json.valid, true);
      assert.equal(none.json.assignment, null, "no usable node: valid, but no assignment");
    });

    test("import a node from an ss:// access key (Outline's SIP002 form with a prefix)", async () => {
      const url = formatSsUrl({
        method: "chacha20-ietf-poly1305",
        password: "s3cr/t:pw",
        host: "127.0.0.1",
        port: 8399,
        tag: "Tokyo 1",
        outline: true,
        prefix: new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xa8]),
      });
      const r = await call("POST", "/api/v1/nodes/import", { ss_url: url, region: "jp" });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      assert.equal(r.json.name, "Tokyo 1");
      assert.equal(r.json.host, "127.0.0.1");
      assert.equal(r.json.port, 8399);
      assert.equal(r.json.method, "chacha20-ietf-poly1305");
      assert.equal(r.json.prefix, "\u0016\u0003\u0001\u0000\u00a8", "a TLS-looking prefix, NUL byte included");
      assert.equal((await call("GET", `/api/v1/nodes/${r.json.id}`)).json.prefix, "\u0016\u0003\u0001\u0000\u00a8");
      await db.query(sql`update nodes set enabled = false where id <> ${r.json.id}`);
      const dev = await newDevice();
      const v = await validate(dev.device_id, dev.token);
      assert.equal(v.json.assignment.node_id, r.json.id);
      assert.equal(v.json.assignment.prefix, "\u0016\u0003\u0001\u0000\u00a8", "the gateway gets the prefix bytes back");
      assert.equal(r.json.region, "jp");
      const stored = await db.query<{ password: string }>(sql`select password from nodes where id = ${r.json.id}`);
      assert.equal(stored[0]!.password, "s3cr/t:pw");
      const bad = await call("POST", "/api/v1/nodes/import", { ss_url: "ss://nonsense" });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.code, "bad_ss_url");
      assert.ok(!bad.json.error.message.includes("nonsense"), "the URL (it carries a password) is not echoed");
      const rc4 = await call("POST", "/api/v1/nodes/import", {
        ss_url: formatSsUrl({ method: "rc4-md5", password: "x", host: "h", port: 1 }),
      });
      assert.equal(rc4.status, 400);
      assert.equal(rc4.json.error.code, "unsupported_method");
      await call("DELETE", `/api/v1/nodes/${r.json.id}`);
    });

    test("an IPv6 node host given in brackets is stored and assigned without them", async () => {
      const fields = { name: "v6", port: 8388, method: "aes-256-gcm", password: "p", enabled: false };
      const r = await call("POST", "/api/v1/nodes", { ...fields, host: "[2001:db8::7]" });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      assert.equal(r.json.host, "2001:db8::7");
      const patched = await call("PATCH", `/api/v1/nodes/${r.json.id}`, { host: "[2001:db8::8]" });
      assert.equal(patched.json.host, "2001:db8::8");
      await call("DELETE", `/api/v1/nodes/${r.json.id}`);
    });

    test("malformed input is a 4xx in the error shape, never a 500", async () => {
      const cases: [string, string, unknown, number, string][] = [
        ["POST", "/api/v1/devices", "{not json", 400, "bad_json"],
        ["POST", "/api/v1/devices", "", 400, "bad_json"],
        ["POST", "/api/v1/devices", [], 400, "validation_failed"],
        ["POST", "/api/v1/devices", { name: "" }, 400, "validation_failed"],
        ["POST", "/api/v1/devices", { name: "x".repeat(5000) }, 400, "validation_failed"],
        ["POST", "/api/v1/devices", { name: "a", max_sessions: -1 }, 400, "validation_failed"],
        ["POST", "/api/v1/devices", { name: "a", expires_at: "tomorrow" }, 400, "validation_failed"],
        ["POST", "/api/v1/devices", { name: "a", surprise: 1 }, 400, "validation_failed"],
        ["POST", "/api/v1/devices", { name: "a'); drop table devices; --" }, 201, ""],
        ["GET", "/api/v1/devices/not-a-uuid", undefined, 404, "not_found"],
        ["GET", "/api/v1/devices/00000000-0000-0000-0000-000000000000", undefined, 404, "not_found"],
        ["GET", "/api/v1/devices?limit=0", undefined, 400, "validation_failed"],
        ["GET", "/api/v1/devices?cursor=garbage", undefined, 400, "validation_failed"],
        ["PATCH", "/api/v1/devices/00000000-0000-0000-0000-000000000000", { name: "x" }, 404, "not_found"],
        [
          "POST",
          "/api/v1/nodes",
          { name: "n", host: "h", port: 70000, method: "aes-256-gcm", password: "p" },
          400,
          "validation_failed",
        ],
        ["POST", "/api/v1/nodes", { name: "n", host: "h", port: 1, method: "rc4-md5", password: "p" }, 400, "validation_failed"],
        [
          "POST",
          "/api/v1/nodes",
          { name: "n", host: "bad host", port: 1, method: "aes-256-gcm", password: "p" },
          400,
          "validation_failed",
        ],
        ["DELETE", "/api/v1/nodes/nope", undefined, 404, "not_found"],
        ["GET", "/api/v1/no-such-thing", undefined, 404, "not_found"],
      ];
      for (const [method, path, body, status, code] of cases) {
        const r = await call(method, path, body);
        assert.equal(
          r.status,
          status,
          `${method} ${path} ${JSON.stringify(body)?.slice(0, 60)} → ${JSON.stringify(r.json).slice(0, 200)}`,
        );
        if (code) assert.equal(r.json.error.code, code);
        if (status >= 400) assert.equal(typeof r.json.error.message, "string");
      }
      const gwCases: unknown[] = ["{", {}, { device_id: 1, token: "t", client_version: "1" }, {
        device_id: "x".repeat(200),
        token: "t",
        client_version: "1",
      }];
      for (const body of gwCases) {
        const r = await call("POST", "/api/v1/auth/validate-device", body, GW);
        assert.equal(r.status, 400, JSON.stringify(body));
      }
      const tables = await db.query<{ n: number }>(sql`select count(*)::int as n from devices`);
      assert.ok(tables[0]!.n > 0, "the devices table survived the injection attempt");
    });

    test("pagination walks every device exactly once", async () => {
      const all = new Set<string>();
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r: { json: { devices: { id: string }[]; next_cursor: string | null } } = await call(
          "GET",
          `/api/v1/devices?limit=3${cursor ? `&cursor=${cursor}` : ""}`,
        );
        for (const d of r.json.devices) {
          assert.ok(!all.has(d.id), "no device twice");
          all.add(d.id);
        }
        cursor = r.json.next_cursor;
        pages++;
      } while (cursor && pages < 100);
      const n = await db.query<{ n: number }>(sql`select count(*)::int as n from devices`);
      assert.equal(all.size, n[0]!.n);
      assert.ok(pages > 1);
    });

    test("health, readiness, metrics and the generated OpenAPI document", async () => {
      assert.deepEqual((await call("GET", "/healthz", undefined, null)).json, { ok: true });
      assert.equal((await call("GET", "/readyz", undefined, null)).json.ok, true);
      const m = await tb.app.request("/metrics");
      const text = await m.text();
      assert.match(text, /httvps_backend_http_requests_total\{/);
      assert.match(text, /httvps_backend_validations_total\{result="bad_token"\}/);
      const spec = (await call("GET", "/api/v1/openapi.json", undefined, null)).json;
      assert.equal(spec.openapi, "3.1.0");
      const v = spec.paths["/api/v1/auth/validate-device"].post;
      assert.deepEqual(v.requestBody.content["application/json"].schema.required.sort(), [
        "client_version",
        "device_id",
        "token",
      ]);
      assert.ok(spec.paths["/api/v1/devices/{id}"].patch);
      assert.ok(!JSON.stringify(tb.log.lines).includes(ADMIN), "no admin token in logs");
    });
  });
}

describe("backend API without its database", () => {
  /** A database whose server is gone: every query fails as postgres.js reports it. */
  const gone = (code: string): Database => {
    const fail = async (): Promise<never> => {
      throw Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });
    };
    return { kind: "postgres", query: fail, exec: fail, transaction: fail, withAdvisoryLock: fail, close: async () => {} };
  };

  for (const code of ["ECONNREFUSED", "CONNECTION_CLOSED", "57P01", "57P03", "08006"]) {
    test(`${code}: 503 database_unavailable on every route, a warning without a stack`, async () => {
      const log = memoryLogger();
      const app = createBackendApp({ db: gone(code), adminToken: ADMIN, gatewayApiKey: GW, logger: log });
      const auth = (key: string) => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });
      const event = {
        type: "session_usage",
        session_id: "s",
        device_id: "00000000-0000-4000-8000-000000000000",
        bytes_up: 1,
        bytes_down: 1,
      };
      const answers: Array<[string, Response]> = [
        ["devices", await app.request("/api/v1/devices", { headers: auth(ADMIN) })],
        [
          "validate",
          await app.request("/api/v1/auth/validate-device", {
            method: "POST",
            headers: auth(GW),
            body: JSON.stringify({ device_id: event.device_id, token: "t", client_version: "1" }),
          }),
        ],
        [
          "report",
          await app.request("/api/v1/gateway/report", {
            method: "POST",
            headers: auth(GW),
            body: JSON.stringify({ gateway_id: "g", events: [event] }),
          }),
        ],
        ["readyz", await app.request("/readyz")],
      ];
      for (const [what, res] of answers) {
        assert.equal(res.status, 503, what);
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, "database_unavailable");
      }
      assert.ok(log.lines.some((l) => l.includes('"database unavailable"') && l.includes(code)));
      assert.ok(!log.lines.some((l) => l.includes('"level":"error"')), "not logged as an error");
    });
  }

  test("a query that fails for another reason is still a 500", async () => {
    const app = createBackendApp({
      db: {
        kind: "postgres",
        query: async () => Promise.reject(Object.assign(new Error("syntax"), { code: "42601" })),
        exec: async () => {},
        transaction: async () => Promise.reject(new Error("x")),
        withAdvisoryLock: async () => Promise.reject(new Error("x")),
        close: async () => {},
      },
      adminToken: ADMIN,
      gatewayApiKey: GW,
      logger: memoryLogger(),
    });
    const res = await app.request("/api/v1/devices", { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(res.status, 500);
  });
});
