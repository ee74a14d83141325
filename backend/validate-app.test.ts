// validate-app and the device's app identity (issue 14): created with the device, rotated with
// its token, ended by revocation, found by its path; every reason code; "connect" admits like
// validate-device, "config" reserves nothing. On PGlite, and on PostgreSQL with TEST_DATABASE_URL.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type BackendApp, createBackendApp } from "./app.ts";
import { appPath, appPathHash } from "./app-identity.ts";
import { type Database, sql } from "./db/database.ts";
import { migrate, readMigrations } from "./db/migrate.ts";
import { testDatabases } from "./db/testing.ts";
import { APP_PATH_PATTERN, INVALID_REASONS } from "../protocol/control-plane.ts";
import { memoryLogger } from "../logging/logger.ts";

const ADMIN = "admin-token-for-tests-0123456789";
const GW = "gateway-key-for-tests-0123456789";

interface Created {
  device_id: string;
  token: string;
  app: { path: string; cipher: string; secret: string };
}

for (const tdb of testDatabases()) {
  describe(`validate-app on ${tdb.name}`, () => {
    let db: Database;
    let app: BackendApp;
    const log = memoryLogger();

    before(async () => {
      db = await tdb.open();
      app = createBackendApp({ db, adminToken: ADMIN, gatewayApiKey: GW, logger: log, sessionStaleAfterMs: 60_000 });
    });
    after(async () => {
      await db.close();
    });

    const call = async (method: string, path: string, body?: unknown, key = ADMIN) => {
      const res = await app.request(path, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      // deno-lint-ignore no-explicit-any -- an API answer read field by field
      return { status: res.status, json: (await res.json()) as any };
    };
    const newDevice = async (fields: object = {}): Promise<Created> => {
      const r = await call("POST", "/api/v1/devices", { name: "phone", ...fields });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      return r.json;
    };
    const validateApp = (app_path: string, purpose: "connect" | "config", extra: object = {}) =>
      call("POST", "/api/v1/auth/validate-app", {
        app_path,
        purpose,
        ...(purpose === "connect" ? { session_id: `s-${crypto.randomUUID()}` } : {}),
        client_version: "Outline (linux; amd64)",
        ...extra,
      }, GW);
    const report = (events: object[]) => call("POST", "/api/v1/gateway/report", { gateway_id: "gw-a", events }, GW);
    const openSessions = async (deviceId: string) =>
      (await db.query<{ n: number }>(
        sql`select count(*)::int as n from sessions where device_id = ${deviceId} and closed_at is null`,
      ))[0]!.n;

    test("a new device gets an app identity; the admin can read it again; validate-app hands the gateway its key", async () => {
      const d = await newDevice();
      assert.match(d.app.path + "/tcp", APP_PATH_PATTERN);
      assert.equal(d.app.cipher, "chacha20-ietf-poly1305");
      assert.match(d.app.secret, /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(d.app.secret, d.token);
      assert.deepEqual((await call("GET", `/api/v1/devices/${d.device_id}/app`)).json, d.app);

      const v = await validateApp(d.app.path, "config");
      assert.equal(v.status, 200, JSON.stringify(v.json));
      assert.deepEqual(v.json, {
        valid: true,
        device: { id: d.device_id, name: "phone", max_sessions: null, data_quota_bytes: null, expires_at: null },
        assignment: null,
        app: { cipher: d.app.cipher, secret: d.app.secret },
        usage: { bytes_up: 0, bytes_down: 0 },
      });
      const c = await validateApp(d.app.path, "connect");
      assert.equal(c.json.valid, true);
      assert.deepEqual(c.json.app, { cipher: d.app.cipher, secret: d.app.secret });

      // Stored: the secret and the path's hash, never the path or the Shadowsocks key.
      const row = JSON.stringify(await db.query(sql`select * from devices where id = ${d.device_id}`));
      assert.ok(row.includes(appPathHash(d.app.path)));
      assert.ok(!row.includes(d.app.path.slice(1)), "no path in the table");
      assert.ok(!row.includes(d.app.secret), "no Shadowsocks key in the table");
      assert.ok(!log.lines.some((l) => l.includes(d.app.secret) || l.includes(d.app.path.slice(1))), "nothing logged");
    });

    test("unknown and revoked paths are unknown_device and nothing else", async () => {
      const unknown = "/" + "A".repeat(22);
      for (const purpose of ["config", "connect"] as const) {
        assert.deepEqual((await validateApp(unknown, purpose)).json, { valid: false, reason: "unknown_device" });
      }
      const d = await newDevice({ max_sessions: 1 });
      assert.equal((await call("DELETE", `/api/v1/devices/${d.device_id}`)).status, 200);
      for (const purpose of ["config", "connect"] as const) {
        assert.deepEqual((await validateApp(d.app.path, purpose)).json, { valid: false, reason: "unknown_device" });
      }
      const links = await call("GET", `/api/v1/devices/${d.device_id}/app`);
      assert.equal(links.status, 409);
      assert.equal(links.json.error.code, "revoked");
      assert.equal((await call("GET", "/api/v1/devices/00000000-0000-0000-0000-000000000000/app")).status, 404);
    });

    test("disabled, expired and over-quota devices are described with their usage, in docs/02's order", async () => {
      const d = await newDevice({ data_quota_bytes: 1000 });
      const described = async (purpose: "config" | "connect", reason: string) => {
        const v = await validateApp(d.app.path, purpose);
        assert.equal(v.status, 200);
        assert.equal(v.json.valid, false);
        assert.equal(v.json.reason, reason, `${purpose}: ${JSON.stringify(v.json)}`);
        assert.equal(v.json.device.id, d.device_id);
        assert.equal(v.json.app, undefined, "no key for a device that may not connect");
        return v.json;
      };
      await report([
        { type: "session_close", session_id: "q-1", device_id: d.device_id, reason: "done", bytes_up: 400, bytes_down: 600 },
      ]);
      for (const purpose of ["config", "connect"] as const) {
        const q = await described(purpose, "quota_exceeded");
        assert.deepEqual(q.usage, { bytes_up: 400, bytes_down: 600 });
        assert.equal(q.device.data_quota_bytes, 1000);
      }
      const past = new Date(Date.now() - 60_000).toISOString();
      await call("PATCH", `/api/v1/devices/${d.device_id}`, { expires_at: past });
      for (const purpose of ["config", "connect"] as const) {
        assert.equal((await described(purpose, "expired")).device.expires_at, past);
      }
      await call("PATCH", `/api/v1/devices/${d.device_id}`, { disabled: true });
      for (const purpose of ["config", "connect"] as const) await described(purpose, "disabled");
      await call("PATCH", `/api/v1/devices/${d.device_id}`, { disabled: false, expires_at: null, data_quota_bytes: null });
      assert.equal((await validateApp(d.app.path, "connect")).json.valid, true);
      assert.equal(await openSessions(d.device_id), 0, "no max_sessions: no slot is reserved");
    });

    test("connect reserves a session slot like validate-device; config reserves nothing and counts none", async () => {
      const d = await newDevice({ max_sessions: 1 });
      for (let i = 0; i < 3; i++) assert.equal((await validateApp(d.app.path, "config")).json.valid, true);
      assert.equal(await openSessions(d.device_id), 0, "config fetches take no slot");

      const first = await validateApp(d.app.path, "connect", { session_id: "app-1" });
      assert.equal(first.json.valid, true, JSON.stringify(first.json));
      assert.equal(await openSessions(d.device_id), 1);
      const second = await validateApp(d.app.path, "connect", { session_id: "app-2" });
      assert.equal(second.json.reason, "session_limit");
      assert.equal(second.json.device.max_sessions, 1);
      assert.deepEqual(second.json.usage, { bytes_up: 0, bytes_down: 0 });
      assert.equal((await validateApp(d.app.path, "connect", { session_id: "app-1" })).json.valid, true, "re-validation");
      assert.equal((await validateApp(d.app.path, "config")).json.valid, true, "a full device still gets its config");
      // The same slots as validate-device: a native session cannot take the slot the app holds.
      assert.equal(
        (await call("POST", "/api/v1/auth/validate-device", {
          device_id: d.device_id,
          token: d.token,
          client_version: "1",
          session_id: "native-1",
        }, GW)).json.reason,
        "session_limit",
      );
      await report([
        { type: "session_close", session_id: "app-1", device_id: d.device_id, reason: "done", bytes_up: 1, bytes_down: 2 },
      ]);
      const third = await validateApp(d.app.path, "connect", { session_id: "app-3" });
      assert.equal(third.json.valid, true);
      assert.deepEqual(third.json.usage, { bytes_up: 1, bytes_down: 2 });
    });

    test("racing connects cannot both take a device's last slot", async () => {
      const d = await newDevice({ max_sessions: 1 });
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => validateApp(d.app.path, "connect", { session_id: `race-${i}` })),
      );
      const reasons = results.map((r) => (r.json.valid ? "valid" : r.json.reason));
      assert.equal(reasons.filter((r) => r === "valid").length, 1, reasons.join());
      assert.ok(reasons.every((r) => r === "valid" || r === "session_limit"), reasons.join());
    });

    test("connect assigns a node, fails over with exclude_node_ids; config assigns none", async () => {
      await db.query(sql`delete from nodes`);
      const node = async (name: string) => {
        const r = await call("POST", "/api/v1/nodes", {
          name,
          host: "127.0.0.1",
          port: 8388,
          method: "aes-256-gcm",
          password: `pw-${name}`,
        });
        assert.equal(r.status, 201);
        return r.json.id as string;
      };
      const [a, b] = [await node("a"), await node("b")];
      const d = await newDevice();
      const first = (await validateApp(d.app.path, "connect")).json.assignment.node_id;
      assert.ok([a, b].includes(first));
      assert.equal((await validateApp(d.app.path, "connect")).json.assignment.node_id, first, "sticky");
      const other = (await validateApp(d.app.path, "connect", { exclude_node_ids: [first] })).json.assignment;
      assert.equal(other.node_id, first === a ? b : a);
      assert.equal(other.password, first === a ? "pw-b" : "pw-a");
      assert.equal((await validateApp(d.app.path, "config")).json.assignment, null);
      await db.query(sql`delete from nodes`);
    });

    test("rotate-token rotates the app path and key: the old ones are unknown at once", async () => {
      const d = await newDevice();
      const r = await call("POST", `/api/v1/devices/${d.device_id}/rotate-token`);
      assert.equal(r.status, 200);
      const rotated: Created["app"] = r.json.app;
      assert.notEqual(rotated.path, d.app.path);
      assert.notEqual(rotated.secret, d.app.secret);
      assert.equal(rotated.cipher, d.app.cipher);
      assert.deepEqual((await validateApp(d.app.path, "connect")).json, { valid: false, reason: "unknown_device" });
      const v = await validateApp(rotated.path, "connect");
      assert.equal(v.json.valid, true);
      assert.equal(v.json.app.secret, rotated.secret);
      assert.deepEqual((await call("GET", `/api/v1/devices/${d.device_id}/app`)).json, rotated);
    });

    test("malformed requests are 400 validation_failed", async () => {
      const path = (await newDevice()).app.path;
      const bad: unknown[] = [
        {},
        { app_path: path },
        { app_path: path, purpose: "connect" }, // no session_id
        { app_path: path, purpose: "nap" },
        { app_path: path + "/tcp", purpose: "config" },
        { app_path: "/short", purpose: "config" },
        { app_path: "/" + "A".repeat(21) + "!", purpose: "config" },
        { app_path: path, purpose: "config", client_version: "x".repeat(65) },
        { app_path: path, purpose: "connect", session_id: "" },
      ];
      for (const body of bad) {
        const r = await call("POST", "/api/v1/auth/validate-app", body, GW);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.json.error.code, "validation_failed");
      }
      assert.equal((await call("POST", "/api/v1/auth/validate-app", { app_path: path, purpose: "config" }, ADMIN)).status, 401);
    });

    test("every reason validate-app gives is one of the contract's", async () => {
      const spec = (await call("GET", "/api/v1/openapi.json")).json;
      const op = spec.paths["/api/v1/auth/validate-app"].post;
      assert.deepEqual(op.security, [{ gatewayKey: [] }]);
      assert.deepEqual(op.requestBody.content["application/json"].schema.required.sort(), ["app_path", "purpose"]);
      const text = JSON.stringify(op.responses["200"]);
      for (const reason of INVALID_REASONS) assert.ok(text.includes(`"${reason}"`), reason);
      assert.ok(spec.paths["/api/v1/devices/{id}/app"].get);
    });
  });

  describe(`the app identity migration on ${tdb.name}`, () => {
    test("devices that existed before sql/0003 get a secret whose path the backend finds", async () => {
      const db = await tdb.open({ migrated: false });
      try {
        const files = readMigrations();
        const before = files.filter((f) => f.name < "0003");
        await migrate(db, before);
        for (const name of ["old-a", "old-b", "old-c"]) {
          await db.query(sql`insert into devices (name, token_hash) values (${name}, ${"0".repeat(64)})`);
        }
        await migrate(db, files);
        const rows = await db.query<{ id: string; app_secret: string; app_cipher: string; app_path_hash: string }>(
          sql`select id::text as id, app_secret, app_cipher, app_path_hash from devices order by name`,
        );
        assert.equal(rows.length, 3);
        assert.equal(new Set(rows.map((r) => r.app_secret)).size, 3, "each device its own secret");
        const app = createBackendApp({ db, adminToken: ADMIN, gatewayApiKey: GW });
        for (const r of rows) {
          assert.match(r.app_secret, /^[A-Za-z0-9_-]{43}$/);
          assert.equal(Buffer.from(r.app_secret, "base64url").length, 32);
          assert.equal(r.app_cipher, "chacha20-ietf-poly1305");
          // The SQL derivation agrees with backend/app-identity.ts.
          assert.equal(r.app_path_hash, appPathHash(appPath(r.app_secret)));
          const res = await app.request("/api/v1/auth/validate-app", {
            method: "POST",
            headers: { authorization: `Bearer ${GW}`, "content-type": "application/json" },
            body: JSON.stringify({ app_path: appPath(r.app_secret), purpose: "config" }),
          });
          const v = (await res.json()) as { valid: boolean; device: { id: string } };
          assert.equal(v.valid, true);
          assert.equal(v.device.id, r.id);
        }
        await assert.rejects(
          db.query(sql`update devices set app_path_hash = ${rows[0]!.app_path_hash} where id = ${rows[1]!.id}::uuid`),
          "the path hash is unique",
        );
      } finally {
        await db.close();
      }
    });
  });
}
