import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createBackendApp } from "../backend/app.ts";
import type { Database } from "../backend/db/database.ts";
import { testDatabases } from "../backend/db/testing.ts";
import { memoryLogger } from "../logging/logger.ts";
import { type AuthOutcome, createBackendClient, DeviceAuth, type ValidateRequest } from "./auth.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function countingValidator(answer: (req: ValidateRequest) => AuthOutcome, delayMs = 5) {
  const calls: ValidateRequest[] = [];
  return {
    calls,
    validate: async (req: ValidateRequest) => {
      calls.push(req);
      await sleep(delayMs);
      return answer(req);
    },
  };
}

const okFor = (maxSessions: number | null) => (req: ValidateRequest): AuthOutcome => ({
  ok: true,
  device: { id: req.device_id, name: "d", max_sessions: maxSessions, data_quota_bytes: null, expires_at: null },
  assignment: null,
});

const creds = { device_id: "dev1", token: "the-raw-token-value", client_version: "1" };
const cacheKeys = (auth: DeviceAuth) => [...(auth as unknown as { cache: Map<string, unknown> }).cache.keys()];

describe("DeviceAuth cache", () => {
  test("positive answers are cached per device + sha256(token); the raw token is never a key", async () => {
    const v = countingValidator(okFor(null));
    const auth = new DeviceAuth({ validate: v.validate, ttlMs: 1000 });
    assert.ok((await auth.check(creds)).ok);
    assert.ok((await auth.check(creds)).ok);
    assert.equal(v.calls.length, 1);
    const keys = cacheKeys(auth);
    assert.equal(keys.length, 1);
    assert.ok(!keys[0]!.includes(creds.token));
    assert.ok(keys[0]!.includes("dev1"));
    // A different token for the same device is a different entry (and a backend call).
    await auth.check({ ...creds, token: "another-token" });
    assert.equal(v.calls.length, 2);
  });

  test("entries expire after the TTL", async () => {
    let now = 0;
    const v = countingValidator(okFor(null));
    const auth = new DeviceAuth({ validate: v.validate, ttlMs: 1000, now: () => now });
    await auth.check(creds);
    now = 999;
    await auth.check(creds);
    assert.equal(v.calls.length, 1);
    now = 1000;
    await auth.check(creds);
    assert.equal(v.calls.length, 2);
  });

  test("a device with max_sessions is never admitted from the cache; its live sessions are re-validated from it", async () => {
    const v = countingValidator(okFor(2));
    const auth = new DeviceAuth({ validate: v.validate, ttlMs: 10_000 });
    await auth.check(creds);
    await auth.check(creds);
    assert.equal(v.calls.length, 2, "each new session is counted by the backend");
    assert.ok((await auth.check(creds, { session_id: "s1" })).ok);
    assert.equal(v.calls.length, 2, "re-validation of a live session may use the cache");
  });

  test("re-validation after expiry sends the session id", async () => {
    let now = 0;
    const v = countingValidator(okFor(null));
    const auth = new DeviceAuth({ validate: v.validate, ttlMs: 100, now: () => now });
    await auth.check(creds);
    now = 200;
    await auth.check(creds, { session_id: "abc" });
    assert.equal(v.calls[1]!.session_id, "abc");
    assert.equal(v.calls[0]!.session_id, undefined);
  });

  test("a negative answer evicts the cached positive at once", async () => {
    let revoked = false;
    const v = countingValidator((req) => (revoked ? { ok: false, code: "revoked", message: "r" } : okFor(1)(req)));
    const auth = new DeviceAuth({ validate: v.validate, ttlMs: 60_000 });
    await auth.check(creds);
    assert.ok((await auth.check(creds, { session_id: "live" })).ok, "from the cache");
    revoked = true;
    const r = await auth.check(creds); // a new session (max_sessions) goes to the backend and learns it
    assert.ok(!r.ok && r.code === "revoked");
    const live = await auth.check(creds, { session_id: "live" });
    assert.ok(!live.ok && live.code === "revoked", "the live session no longer gets the cached positive");
  });

  test("unavailable is not cached and keeps an existing positive", async () => {
    let down = false;
    let now = 0;
    const v = countingValidator((req) => (down ? { ok: false, code: "unavailable", message: "down" } : okFor(null)(req)));
    const auth = new DeviceAuth({ validate: v.validate, ttlMs: 100, now: () => now });
    await auth.check(creds);
    down = true;
    assert.ok((await auth.check(creds)).ok, "cached positive still served");
    now = 150;
    const r = await auth.check(creds);
    assert.ok(!r.ok && r.code === "unavailable");
    assert.equal(cacheKeys(auth).length, 0);
    down = false;
    assert.ok((await auth.check(creds)).ok);
  });

  test("a throwing validator is unavailable, not an exception", async () => {
    const auth = new DeviceAuth({ validate: () => Promise.reject(new Error("boom")), ttlMs: 100 });
    const r = await auth.check(creds);
    assert.ok(!r.ok && r.code === "unavailable");
  });

  test("concurrent hellos for one device share one request", async () => {
    const v = countingValidator(okFor(null), 20);
    const auth = new DeviceAuth({ validate: v.validate, ttlMs: 1000 });
    const rs = await Promise.all(Array.from({ length: 10 }, () => auth.check(creds)));
    assert.ok(rs.every((r) => r.ok));
    assert.equal(v.calls.length, 1);
  });

  test("…but not when the backend must count them (max_sessions): each follower asks on its own", async () => {
    const v = countingValidator(okFor(3), 20);
    const auth = new DeviceAuth({ validate: v.validate, ttlMs: 1000 });
    await Promise.all(Array.from({ length: 5 }, () => auth.check(creds)));
    assert.equal(v.calls.length, 5);
  });

  test("concurrent hellos with a bad token share the refusal", async () => {
    const v = countingValidator(() => ({ ok: false, code: "bad_token", message: "no" }), 20);
    const auth = new DeviceAuth({ validate: v.validate, ttlMs: 1000 });
    const rs = await Promise.all(Array.from({ length: 4 }, () => auth.check(creds)));
    assert.ok(rs.every((r) => !r.ok && r.code === "bad_token"));
    assert.equal(v.calls.length, 1);
  });

  test("the cache is bounded", async () => {
    const v = countingValidator(okFor(null), 0);
    const auth = new DeviceAuth({ validate: v.validate, ttlMs: 60_000, maxEntries: 50 });
    for (let i = 0; i < 200; i++) await auth.check({ ...creds, device_id: `d${i}` });
    assert.equal(auth.size, 50);
    await auth.check({ ...creds, device_id: "d199" });
    assert.equal(v.calls.length, 200, "the newest entries survive");
  });
});

const ADMIN = "admin-token-for-gateway-tests-0123";
const GW_KEY = "gateway-key-for-gateway-tests-0123";

for (const tdb of testDatabases()) {
  describe(`backend client against the real backend app (${tdb.name})`, () => {
    let db: Database;
    let app: ReturnType<typeof createBackendApp>;
    const appFetch = (req: Request) => app.fetch(req) as Promise<Response>;

    before(async () => {
      db = await tdb.open();
      app = createBackendApp({ db, adminToken: ADMIN, gatewayApiKey: GW_KEY });
    });
    after(async () => {
      await db.close();
    });

    type Created = { device_id: string; token: string; app: { path: string; cipher: string; secret: string } };
    async function newDevice(fields: object = {}): Promise<Created> {
      const res = await app.request("/api/v1/devices", {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "phone", ...fields }),
      });
      assert.equal(res.status, 201);
      return (await res.json()) as Created;
    }
    const clientOf = (log = memoryLogger(), apiKey = GW_KEY) =>
      createBackendClient({ baseUrl: "http://backend.test", apiKey, timeoutMs: 5000, fetch: appFetch, logger: log });

    test("validate-device: valid, bad token, revoked; report is accepted", async () => {
      const log = memoryLogger();
      const backend = clientOf(log);
      const d = await newDevice({ max_sessions: 2 });
      const ok = await backend.validateDevice({ device_id: d.device_id, token: d.token, client_version: "1.0" });
      assert.ok(ok.ok);
      assert.equal(ok.device.id, d.device_id);
      assert.equal(ok.device.max_sessions, 2);
      const bad = await backend.validateDevice({ device_id: d.device_id, token: d.token + "x", client_version: "1.0" });
      assert.ok(!bad.ok && bad.code === "bad_token");
      const accepted = await backend.report({
        gateway_id: "gw-test",
        events: [
          { type: "session_open", session_id: "a".repeat(32), device_id: d.device_id, node_id: null },
          { type: "session_usage", session_id: "a".repeat(32), device_id: d.device_id, bytes_up: 10, bytes_down: 20 },
          {
            type: "session_close",
            session_id: "a".repeat(32),
            device_id: d.device_id,
            reason: "client_closed",
            bytes_up: 1,
            bytes_down: 2,
          },
        ],
      });
      assert.equal(accepted, 3);
      const rev = await app.request(`/api/v1/devices/${d.device_id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      assert.equal(rev.status, 200);
      const r = await backend.validateDevice({ device_id: d.device_id, token: d.token, client_version: "1.0" });
      assert.ok(!r.ok && r.code === "revoked");
      const usage = (await (
        await app.request(`/api/v1/devices/${d.device_id}/usage`, { headers: { authorization: `Bearer ${ADMIN}` } })
      ).json()) as Record<string, unknown>;
      assert.equal(usage.bytes_up, 11, "usage deltas add up in the backend");
      assert.equal(usage.bytes_down, 22);
      assert.ok(!log.lines.join("\n").includes(d.token));
    });

    test("validate-app: the device's key and usage; a refusal describes the device; revoked is unknown_device alone", async () => {
      const log = memoryLogger();
      const backend = clientOf(log);
      const d = await newDevice({ max_sessions: 1 });
      const ok = await backend.validateApp({ app_path: d.app.path, purpose: "connect", session_id: "app-s1" });
      assert.ok(ok.ok);
      assert.equal(ok.device.id, d.device_id);
      assert.deepEqual(ok.app, { cipher: d.app.cipher, secret: d.app.secret });
      assert.deepEqual(ok.usage, { bytes_up: 0, bytes_down: 0 });
      const full = await backend.validateApp({ app_path: d.app.path, purpose: "connect", session_id: "app-s2" });
      assert.ok(!full.ok && full.code === "session_limit");
      assert.equal(full.device?.id, d.device_id);
      assert.deepEqual(full.usage, { bytes_up: 0, bytes_down: 0 });
      assert.equal(full.message, "the device has reached its session limit");
      await app.request(`/api/v1/devices/${d.device_id}`, { method: "DELETE", headers: { authorization: `Bearer ${ADMIN}` } });
      assert.deepEqual(await backend.validateApp({ app_path: d.app.path, purpose: "config" }), {
        ok: false,
        code: "unknown_device",
        message: "device authentication failed",
      });
      assert.ok(!log.lines.join("\n").includes(d.app.secret));
    });

    test("a wrong API key is `unavailable` for the device and an error in the log, without the key", async () => {
      const log = memoryLogger();
      const backend = clientOf(log, "wrong-key-0123456789abcdef");
      const d = await newDevice();
      const r = await backend.validateDevice({ device_id: d.device_id, token: d.token, client_version: "1.0" });
      assert.ok(!r.ok && r.code === "unavailable");
      assert.match(log.lines.join("\n"), /"status":401/);
      assert.ok(!log.lines.join("\n").includes("wrong-key-0123456789abcdef"));
      await assert.rejects(backend.report({ gateway_id: "g", events: [] }), { code: "http_401" });
    });
  });
}

describe("backend client failures over the network", () => {
  let hang: Server;
  let hangPort = 0;
  let closedPort = 0;
  const held = new Set<import("node:http").ServerResponse>();

  before(async () => {
    hang = createServer((req, res) => {
      if (req.url?.includes("/boom")) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "internal", message: "x" } }));
        return;
      }
      if (req.url?.includes("/junk")) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{not json");
        return;
      }
      held.add(res); // never answered: the client's timeout must fire
    });
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    hangPort = (hang.address() as AddressInfo).port;
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, "127.0.0.1", r));
    closedPort = (tmp.address() as AddressInfo).port;
    await new Promise<void>((r) => tmp.close(() => r()));
  });
  after(async () => {
    for (const res of held) res.destroy();
    await new Promise<void>((r) => hang.close(() => r()));
  });

  const req = { device_id: "d", token: "t0k3n-never-logged", client_version: "1" };

  test("a backend that does not answer in time is unavailable (within the timeout)", async () => {
    const log = memoryLogger();
    const client = createBackendClient({ baseUrl: `http://127.0.0.1:${hangPort}`, apiKey: GW_KEY, timeoutMs: 150, logger: log });
    const t0 = Date.now();
    const r = await client.validateDevice(req);
    assert.ok(!r.ok && r.code === "unavailable");
    assert.ok(Date.now() - t0 < 3000);
    assert.match(log.lines.join("\n"), /"code":"timeout"/);
    assert.ok(!log.lines.join("\n").includes(req.token));
  });

  test("an unreachable backend is unavailable", async () => {
    const client = createBackendClient({ baseUrl: `http://127.0.0.1:${closedPort}`, timeoutMs: 2000 });
    const r = await client.validateDevice(req);
    assert.ok(!r.ok && r.code === "unavailable");
    const a = await client.validateApp({ app_path: "/" + "A".repeat(22), purpose: "config" });
    assert.ok(!a.ok && a.code === "unavailable");
    await assert.rejects(client.report({ gateway_id: "g", events: [] }), { code: "unreachable" });
  });

  test("5xx and a body that is not the contract are unavailable", async () => {
    const boom = createBackendClient({ baseUrl: `http://127.0.0.1:${hangPort}/boom`, timeoutMs: 2000 });
    const r1 = await boom.validateDevice(req);
    assert.ok(!r1.ok && r1.code === "unavailable");
    const junk = createBackendClient({ baseUrl: `http://127.0.0.1:${hangPort}/junk`, timeoutMs: 2000 });
    const r2 = await junk.validateDevice(req);
    assert.ok(!r2.ok && r2.code === "unavailable");
    for (const client of [boom, junk]) {
      const app = await client.validateApp({ app_path: "/" + "A".repeat(22), purpose: "config" });
      assert.deepEqual(app, { ok: false, code: "unavailable", message: app.ok ? "" : app.message });
    }
    await assert.rejects(junk.report({ gateway_id: "g", events: [] }), { code: "bad_response" });
  });
});
