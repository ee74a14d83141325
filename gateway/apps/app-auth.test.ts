import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AppAuthOutcome, ValidateAppRequest } from "../auth.ts";
import { AppAuth } from "./app-auth.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PATH = "/AbCdEfGhIjKlMnOpQrStUv";

function countingValidator(answer: (req: ValidateAppRequest) => AppAuthOutcome, delayMs = 5) {
  const calls: ValidateAppRequest[] = [];
  return {
    calls,
    validate: async (req: ValidateAppRequest) => {
      calls.push(req);
      await sleep(delayMs);
      return answer(req);
    },
  };
}

const device = (maxSessions: number | null) => ({
  id: "dev1",
  name: "phone",
  max_sessions: maxSessions,
  data_quota_bytes: null,
  expires_at: null,
});
const assignment = { node_id: "n1", host: "10.0.0.1", port: 8388, method: "aes-256-gcm", password: "pw", prefix: null };
const okFor = (maxSessions: number | null) => (req: ValidateAppRequest): AppAuthOutcome => ({
  ok: true,
  device: device(maxSessions),
  assignment: req.purpose === "connect" ? assignment : null,
  app: { cipher: "chacha20-ietf-poly1305", secret: "the-app-secret" },
  usage: { bytes_up: 1, bytes_down: 2 },
});
const cacheKeys = (auth: AppAuth) => [...(auth as unknown as { cache: { keys(): Iterable<string> } }).cache.keys()];

describe("AppAuth cache", () => {
  test("config answers are cached under sha256(path), never the path, for the TTL", async () => {
    let now = 0;
    const v = countingValidator(okFor(null));
    const auth = new AppAuth({ validate: v.validate, ttlMs: 1000, now: () => now });
    assert.ok((await auth.check(PATH, { purpose: "config", client_version: "x".repeat(100) })).ok);
    now = 999;
    assert.ok((await auth.check(PATH, { purpose: "config" })).ok);
    assert.equal(v.calls.length, 1);
    assert.deepEqual(v.calls[0], { app_path: PATH, purpose: "config", client_version: "x".repeat(64) });
    const keys = cacheKeys(auth);
    assert.equal(keys.length, 1);
    assert.ok(!keys[0]!.includes(PATH.slice(1)), "the path is not a key");
    now = 1000;
    await auth.check(PATH, { purpose: "config" });
    assert.equal(v.calls.length, 2, "expired");
  });

  test("a config answer never admits a connection; a connect answer also serves config", async () => {
    const v = countingValidator(okFor(null));
    const auth = new AppAuth({ validate: v.validate, ttlMs: 10_000 });
    await auth.check(PATH, { purpose: "config" });
    const c = await auth.check(PATH, { purpose: "connect", new_session_id: "s1" });
    assert.ok(c.ok);
    assert.deepEqual(c.assignment, assignment, "from the backend, with an assignment");
    assert.deepEqual(v.calls.map((r) => [r.purpose, r.session_id]), [["config", undefined], ["connect", "s1"]]);
    const other = new AppAuth({ validate: v.validate, ttlMs: 10_000 });
    await other.check(PATH, { purpose: "connect", new_session_id: "s2" });
    await other.check(PATH, { purpose: "config" });
    assert.equal(v.calls.length, 3, "the connect answer served the config fetch");
  });

  test("without max_sessions new app sessions may be admitted from the cache", async () => {
    const v = countingValidator(okFor(null));
    const auth = new AppAuth({ validate: v.validate, ttlMs: 10_000 });
    await auth.check(PATH, { purpose: "connect", new_session_id: "s1" });
    assert.ok((await auth.check(PATH, { purpose: "connect", new_session_id: "s2" })).ok);
    assert.equal(v.calls.length, 1);
  });

  test("with max_sessions a new app session is never admitted from the cache; a live one is re-validated from it", async () => {
    const v = countingValidator(okFor(2));
    const auth = new AppAuth({ validate: v.validate, ttlMs: 10_000 });
    await auth.check(PATH, { purpose: "connect", new_session_id: "s1" });
    await auth.check(PATH, { purpose: "connect", new_session_id: "s2" });
    assert.deepEqual(v.calls.map((r) => r.session_id), ["s1", "s2"], "each new session is counted by the backend");
    assert.ok((await auth.check(PATH, { purpose: "connect", session_id: "s1" })).ok);
    assert.equal(v.calls.length, 2, "re-validation of a live session may use the cache");
    await auth.check(PATH, { purpose: "connect", session_id: "s1", fresh: true });
    assert.deepEqual(v.calls[2], { app_path: PATH, purpose: "connect", session_id: "s1" });
  });

  test("exclude_node_ids always asks the backend and passes the nodes on", async () => {
    const v = countingValidator(okFor(null));
    const auth = new AppAuth({ validate: v.validate, ttlMs: 10_000 });
    await auth.check(PATH, { purpose: "connect", new_session_id: "s1" });
    await auth.check(PATH, { purpose: "connect", session_id: "s1", exclude_node_ids: ["n1"] });
    assert.deepEqual(v.calls[1]!.exclude_node_ids, ["n1"]);
  });

  test("a negative answer evicts both cached answers at once; unavailable is not cached and evicts nothing", async () => {
    let answer: "ok" | "revoked" | "down" = "ok";
    let now = 0;
    const v = countingValidator((req) =>
      answer === "ok"
        ? okFor(1)(req)
        : answer === "down"
        ? { ok: false, code: "unavailable", message: "down" }
        : { ok: false, code: "unknown_device", message: "no" }
    );
    const auth = new AppAuth({ validate: v.validate, ttlMs: 100, now: () => now });
    await auth.check(PATH, { purpose: "connect", new_session_id: "live" });
    assert.equal(auth.size, 2);
    answer = "down";
    assert.ok((await auth.check(PATH, { purpose: "connect", session_id: "live" })).ok, "cached while the backend is down");
    const fresh = await auth.check(PATH, { purpose: "connect", new_session_id: "s2" });
    assert.ok(!fresh.ok && fresh.code === "unavailable");
    assert.equal(auth.size, 2, "unavailable keeps the positives");
    answer = "revoked";
    const r = await auth.check(PATH, { purpose: "connect", new_session_id: "s3" });
    assert.ok(!r.ok && r.code === "unknown_device");
    assert.equal(auth.size, 0);
    const live = await auth.check(PATH, { purpose: "connect", session_id: "live" });
    assert.ok(!live.ok, "the live session no longer gets the cached positive");
    now = 1000;
    answer = "down";
    const down = await auth.check(PATH, { purpose: "config" });
    assert.ok(!down.ok && down.code === "unavailable");
    assert.equal(auth.size, 0);
  });

  test("refusals of a known device keep its description; nothing negative is cached", async () => {
    const refusal: AppAuthOutcome = {
      ok: false,
      code: "quota_exceeded",
      message: "q",
      device: device(null),
      usage: { bytes_up: 5, bytes_down: 6 },
    };
    const v = countingValidator(() => refusal);
    const auth = new AppAuth({ validate: v.validate, ttlMs: 10_000 });
    assert.deepEqual(await auth.check(PATH, { purpose: "config" }), refusal);
    await auth.check(PATH, { purpose: "config" });
    assert.equal(v.calls.length, 2);
  });

  test("a throwing validator is unavailable, not an exception", async () => {
    const auth = new AppAuth({ validate: () => Promise.reject(new Error("boom")), ttlMs: 100 });
    const r = await auth.check(PATH, { purpose: "config" });
    assert.ok(!r.ok && r.code === "unavailable");
  });

  test("concurrent fetches share one request, but counted new sessions ask on their own", async () => {
    const shared = countingValidator(okFor(null), 20);
    const a = new AppAuth({ validate: shared.validate, ttlMs: 1000 });
    await Promise.all([
      ...Array.from({ length: 5 }, () => a.check(PATH, { purpose: "config" })),
    ]);
    assert.equal(shared.calls.length, 1);
    await Promise.all(
      Array.from({ length: 5 }, (_, i) => a.check("/" + "B".repeat(22), { purpose: "connect", new_session_id: `s${i}` })),
    );
    assert.equal(shared.calls.length, 2, "without max_sessions one answer admits them all");

    const counted = countingValidator(okFor(3), 20);
    const b = new AppAuth({ validate: counted.validate, ttlMs: 1000 });
    await Promise.all(Array.from({ length: 5 }, (_, i) => b.check(PATH, { purpose: "connect", new_session_id: `s${i}` })));
    assert.equal(counted.calls.length, 5);
  });

  test("the cache is bounded", async () => {
    const v = countingValidator(okFor(null), 0);
    const auth = new AppAuth({ validate: v.validate, ttlMs: 60_000, maxEntries: 50 });
    for (let i = 0; i < 200; i++) await auth.check(`/${String(i).padStart(22, "p")}`, { purpose: "config" });
    assert.equal(auth.size, 50);
    await auth.check(`/${"199".padStart(22, "p")}`, { purpose: "config" });
    assert.equal(v.calls.length, 200, "the newest entries survive");
  });
});
