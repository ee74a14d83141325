import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { type BackendApp, createBackendApp } from "./app.ts";
import { type Database, sql } from "./db/database.ts";
import { testDatabases } from "./db/testing.ts";
import { memoryLogger } from "../logging/logger.ts";
import { createOutlineKeys, type OutlineKeys } from "./outline-keys.ts";
import { type FakeOutline, startFakeOutline } from "./outline-fake.testing.ts";
import type { Assignment } from "../protocol/control-plane.ts";

const ADMIN = "admin-token-for-tests-0123456789";
const GW = "gateway-key-for-tests-0123456789";

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

for (const tdb of testDatabases()) {
  describe(`per-device Outline keys on ${tdb.name}`, () => {
    let db: Database;
    let app: BackendApp;
    let fake: FakeOutline;
    let outline: OutlineKeys;
    const log = memoryLogger();

    before(async () => {
      db = await tdb.open();
      fake = await startFakeOutline({ portForNewAccessKeys: 23456 });
      // backoffMs 0: each test decides when the server fails; the back-off has its own test.
      outline = createOutlineKeys(db, { logger: log, timeoutMs: 2000, createWaitMs: 5000, backoffMs: 0 });
      app = createBackendApp({
        db,
        adminToken: ADMIN,
        gatewayApiKey: GW,
        logger: log,
        sessionStaleAfterMs: 60_000,
        outlineKeys: outline,
      });
    });
    after(async () => {
      await outline.settle();
      await fake.close();
      await db.close();
    });
    beforeEach(async () => {
      fake.failWith = undefined;
      fake.delayMs = 0;
      fake.portForNewAccessKeys = 23456;
      await db.query(sql`delete from nodes`);
    });

    const call = async (method: string, path: string, body?: unknown, key = ADMIN) => {
      const headers: Record<string, string> = { authorization: `Bearer ${key}` };
      if (body !== undefined) headers["content-type"] = "application/json";
      const res = await app.request(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      // deno-lint-ignore no-explicit-any -- an API answer read field by field
      return { status: res.status, json: (await res.json()) as any };
    };
    const validate = async (d: { device_id: string; token: string }) => {
      const r = await call("POST", "/api/v1/auth/validate-device", {
        device_id: d.device_id,
        token: d.token,
        client_version: "1.0",
      }, GW);
      assert.equal(r.status, 200);
      assert.equal(r.json.valid, true, JSON.stringify(r.json));
      return r.json.assignment as Assignment | null;
    };
    const newDevice = async (fields: object = {}) => {
      const r = await call("POST", "/api/v1/devices", { name: "phone", ...fields });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      return r.json as { device_id: string; token: string };
    };
    const register = async (extra: object = {}) => {
      const r = await call("POST", "/api/v1/nodes/outline", { api_url: fake.apiUrl, cert_sha256: fake.certSha256, ...extra });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      return r.json as { id: string; host: string; port: number; method: string; api_url: string };
    };
    const keyOf = (deviceId: string) => [...fake.keys.values()].find((k) => k.name === `httvps device ${deviceId}`);
    const nodePassword = async (id: string) =>
      (await db.query<{ password: string }>(sql`select password from nodes where id = ${id}`))[0]!.password;
    const secretPath = () => new URL(fake.apiUrl).pathname.slice(1);

    test("POST /api/v1/nodes/outline registers a server: its own key, host and port from the API", async () => {
      const before = fake.keys.size;
      const n = await register({ region: "eu", name: "Frankfurt" });
      assert.equal(n.host, "127.0.0.1", "hostnameForAccessKeys");
      assert.equal(n.port, 23456, "the node key's port");
      assert.equal(n.method, "chacha20-ietf-poly1305");
      assert.equal(n.api_url, `${new URL(fake.apiUrl).origin}/…`, "the secret path is write-only");
      assert.equal(fake.keys.size, before + 1);
      const row = (await db.query<{ outline_key_id: string; password: string; cert_sha256: string }>(
        sql`select outline_key_id, password, cert_sha256 from nodes where id = ${n.id}`,
      ))[0]!;
      const nodeKey = fake.keys.get(row.outline_key_id)!;
      assert.equal(nodeKey.password, row.password);
      assert.equal(row.cert_sha256, fake.certSha256.toLowerCase());
      assert.deepEqual(fake.requests.slice(-2).map((r) => `${r.method} ${r.path}`), ["GET /server", "POST /access-keys"]);

      const again = await call("POST", "/api/v1/nodes/outline", { api_url: fake.apiUrl, cert_sha256: fake.certSha256 });
      assert.equal(again.status, 409);
      const listed = await call("GET", "/api/v1/nodes");
      assert.ok(!JSON.stringify(listed.json).includes(secretPath()), "no secret path in the listing");

      const seen = fake.requests.length;
      const wrong = await call("POST", "/api/v1/nodes/outline", { api_url: fake.wrongSecretUrl, cert_sha256: "00".repeat(32) });
      assert.equal(wrong.status, 502);
      assert.equal(wrong.json.error.code, "outline_api_pin_mismatch");
      assert.equal(fake.requests.length, seen, "a wrong pin sends nothing");
      const gone = await call("POST", "/api/v1/nodes/outline", {
        api_url: `https://127.0.0.1:${await closedPort()}/x`,
        cert_sha256: fake.certSha256,
      });
      assert.equal(gone.status, 502);
      assert.equal(gone.json.error.code, "outline_api_unreachable");
      const unpinned = await call("POST", "/api/v1/nodes", {
        name: "n",
        host: "h",
        port: 1,
        method: "aes-256-gcm",
        password: "p",
        api_url: fake.apiUrl,
      });
      assert.equal(unpinned.status, 400, "an api_url without its pin is refused");
      assert.equal((await call("GET", "/api/v1/nodes")).json.nodes.length, 1, "failed registrations add no node");
    });

    test("a device's first assignment creates its key with the quota as data limit; the assignment carries that key", async () => {
      const node = await register();
      fake.portForNewAccessKeys = 34567; // the device's key differs from the node's in every field
      const d = await newDevice({ data_quota_bytes: 5000 });
      const a = (await validate(d))!;
      const k = keyOf(d.device_id);
      assert.ok(k, "a key named after the device exists on the server");
      assert.deepEqual(k.dataLimit, { bytes: 5000 });
      assert.deepEqual(a, {
        node_id: node.id,
        host: "127.0.0.1",
        port: 34567,
        method: k.method,
        password: k.password,
        prefix: null,
      });
      assert.notEqual(a.password, await nodePassword(node.id));
      const seen = fake.requests.length;
      assert.deepEqual(await validate(d), a, "the stored key is reused");
      assert.equal(fake.requests.length, seen, "no API call once the key exists");
      const rows = await db.query<{ key_id: string; data_limit_bytes: number }>(
        sql`select key_id, data_limit_bytes from outline_keys where device_id = ${d.device_id}`,
      );
      assert.deepEqual([...rows], [{ key_id: k.id, data_limit_bytes: 5000 }]);
    });

    test("concurrent first validations of one device create one key", async () => {
      await register();
      const d = await newDevice();
      const all = await Promise.all([validate(d), validate(d), validate(d)]);
      assert.equal(new Set(all.map((a) => a!.password)).size, 1);
      assert.equal([...fake.keys.values()].filter((k) => k.name === `httvps device ${d.device_id}`).length, 1);
      assert.equal(all[0]!.password, keyOf(d.device_id)!.password);
    });

    test("PATCH data_quota_bytes sets the key's data limit; null removes it; revoking deletes the key", async () => {
      await register();
      const d = await newDevice();
      await validate(d);
      const id = keyOf(d.device_id)!.id;
      assert.equal(fake.keys.get(id)!.dataLimit, undefined, "no quota, no limit");
      assert.equal((await call("PATCH", `/api/v1/devices/${d.device_id}`, { data_quota_bytes: 9000 })).status, 200);
      assert.deepEqual(fake.keys.get(id)!.dataLimit, { bytes: 9000 });
      const seen = fake.requests.length;
      await call("PATCH", `/api/v1/devices/${d.device_id}`, { name: "renamed" });
      assert.equal(fake.requests.length, seen, "a change that is not the quota calls nothing");
      await call("PATCH", `/api/v1/devices/${d.device_id}`, { data_quota_bytes: null });
      assert.equal(fake.keys.get(id)!.dataLimit, undefined);
      assert.deepEqual(fake.requests.at(-1), { method: "DELETE", path: `/access-keys/${id}/data-limit`, body: undefined });

      assert.equal((await call("DELETE", `/api/v1/devices/${d.device_id}`)).json.status, "revoked");
      assert.equal(fake.keys.has(id), false, "the key is deleted on the server");
      assert.equal((await db.query(sql`select 1 from outline_keys where device_id = ${d.device_id}`)).length, 0);
    });

    test("changes an unreachable server missed are applied by sync()", async () => {
      await register();
      const d = await newDevice({ data_quota_bytes: 100 });
      await validate(d);
      const id = keyOf(d.device_id)!.id;
      fake.failWith = 503;
      await call("PATCH", `/api/v1/devices/${d.device_id}`, { data_quota_bytes: 200 });
      assert.deepEqual(fake.keys.get(id)!.dataLimit, { bytes: 100 }, "not applied while failing");
      await call("DELETE", `/api/v1/devices/${d.device_id}`);
      assert.equal(fake.keys.has(id), true, "not deleted while failing");
      fake.failWith = undefined;
      await outline.sync();
      assert.equal(fake.keys.has(id), false, "deleted by the sync");
      assert.equal((await db.query(sql`select 1 from outline_keys where device_id = ${d.device_id}`)).length, 0);
    });

    test("the API down, failing or pinned wrong: validation still answers, with the node's own credentials", async () => {
      const node = await register();
      const pw = await nodePassword(node.id);
      const d = await newDevice();
      fake.failWith = 500;
      let a = (await validate(d))!;
      assert.equal(a.node_id, node.id);
      assert.equal(a.password, pw, "fallback: the node's own key");
      assert.equal(keyOf(d.device_id), undefined);
      fake.failWith = undefined;
      a = (await validate(d))!;
      assert.equal(a.password, keyOf(d.device_id)!.password, "the next validation creates the key");

      await db.query(sql`delete from nodes`);
      const down = await call("POST", "/api/v1/nodes", {
        name: "down-api",
        host: "127.0.0.1",
        port: 8388,
        method: "aes-256-gcm",
        password: "pw-node-own",
        api_url: `https://127.0.0.1:${await closedPort()}/s3cretpath`,
        cert_sha256: fake.certSha256,
      });
      assert.equal(down.status, 201, JSON.stringify(down.json));
      const d2 = await newDevice();
      a = (await validate(d2))!;
      assert.equal(a.password, "pw-node-own");
      assert.equal(a.port, 8388);

      await db.query(sql`delete from nodes`);
      const seen = fake.requests.length;
      const pinned = await call("POST", "/api/v1/nodes", {
        name: "bad-pin",
        host: "127.0.0.1",
        port: 8388,
        method: "aes-256-gcm",
        password: "pw-node-own",
        api_url: fake.apiUrl,
        cert_sha256: "ab".repeat(32),
      });
      assert.equal(pinned.status, 201);
      a = (await validate(await newDevice()))!;
      assert.equal(a.password, "pw-node-own");
      assert.equal(fake.requests.length, seen, "a wrong pin: the fake recorded nothing");

      const text = log.lines.join("\n");
      assert.match(text, /outline_api_pin_mismatch/);
      assert.match(text, /outline_api_unreachable/);
      assert.ok(!text.includes(secretPath()) && !text.includes("s3cretpath"), "no secret path in the logs");
      for (const k of fake.keys.values()) assert.ok(!text.includes(k.password), "no key password in the logs");
    });

    test("a slow server: validation answers in time with the node's key; the device's key is used once it exists", async () => {
      const slow = createOutlineKeys(db, { logger: log, timeoutMs: 5000, createWaitMs: 50, backoffMs: 0 });
      const slowApp = createBackendApp({
        db,
        adminToken: ADMIN,
        gatewayApiKey: GW,
        sessionStaleAfterMs: 60_000,
        outlineKeys: slow,
      });
      const node = await register();
      const d = await newDevice();
      fake.delayMs = 1000;
      const v = async () =>
        (await (await slowApp.request("/api/v1/auth/validate-device", {
          method: "POST",
          headers: { authorization: `Bearer ${GW}`, "content-type": "application/json" },
          body: JSON.stringify({ device_id: d.device_id, token: d.token, client_version: "1" }),
          // deno-lint-ignore no-explicit-any -- an API answer read field by field
        })).json() as any).assignment;
      assert.equal((await v()).password, await nodePassword(node.id));
      await slow.settle();
      fake.delayMs = 0;
      assert.equal((await v()).password, keyOf(d.device_id)!.password);
    });

    test("after a failure a node's API is left alone for backoffMs", async () => {
      const unlimited = (id: string) => ({ id, data_quota_bytes: null, quota_period: "none", usage_reset_at: null });
      const node = await register();
      const keys = createOutlineKeys(db, { logger: log, timeoutMs: 2000, createWaitMs: 5000, backoffMs: 60_000 });
      const n = { id: node.id, api_url: fake.apiUrl, cert_sha256: fake.certSha256 };
      fake.failWith = 500;
      const seen = fake.requests.length;
      assert.equal(
        await keys.deviceKey(unlimited((await newDevice()).device_id), n),
        null,
      );
      fake.failWith = undefined;
      assert.equal(
        await keys.deviceKey(unlimited((await newDevice()).device_id), n),
        null,
      );
      assert.equal(fake.requests.length, seen + 1, "one attempt, then back-off");
    });

    test("removing a node deletes its keys (its own and the devices') on the server", async () => {
      const node = await register();
      const devs = [await newDevice(), await newDevice()];
      for (const d of devs) await validate(d);
      const nodeKeyId =
        (await db.query<{ outline_key_id: string }>(sql`select outline_key_id from nodes where id = ${node.id}`))[0]!
          .outline_key_id;
      const ids = [nodeKeyId, ...devs.map((d) => keyOf(d.device_id)!.id)];
      assert.ok(ids.every((id) => fake.keys.has(id)));
      assert.equal((await call("DELETE", `/api/v1/nodes/${node.id}`)).status, 200);
      await outline.settle();
      assert.ok(ids.every((id) => !fake.keys.has(id)), "all three keys deleted");
    });

    test("pointing a node at another management API forgets the old server's per-device keys", async () => {
      const node = await register();
      const d = await newDevice();
      const first = (await validate(d))!;
      const other = await startFakeOutline({ portForNewAccessKeys: 45678 });
      try {
        const r = await call("PATCH", `/api/v1/nodes/${node.id}`, { api_url: other.apiUrl, cert_sha256: other.certSha256 });
        assert.equal(r.status, 200, JSON.stringify(r.json));
        await outline.settle();
        assert.equal(keyOf(d.device_id), undefined, "the old server's key is deleted");
        const a = (await validate(d))!;
        assert.notEqual(a.password, first.password);
        assert.equal(a.port, 45678, "a new key on the new server");
        await outline.settle();
      } finally {
        await other.close();
      }
    });
  });
}
