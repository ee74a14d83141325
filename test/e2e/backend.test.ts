// The backend as a user meets it: `httvps backend`, then the CLI and curl-like HTTP calls,
// on the embedded default and on PostgreSQL, on whichever runtime runs this file.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { freePort } from "../../shadowsocks/ss-server.testing.ts";
import { runHttvps, runtime, startHttvps } from "../cli.ts";
import { ADMIN_TOKEN, BACKEND_READY, GATEWAY_API_KEY, scratchDatabase } from "./stack.ts";
import { testDatabaseUrl } from "../../backend/db/testing.ts";
import { readMigrations } from "../../backend/db/migrate.ts";
import { scanTerminalCodes } from "../../protocol/app-links/qr.testing.ts";
import { appLinks } from "../../protocol/app-links/subscription.ts";

const variants: { name: string; database: () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> }[] = [
  { name: "embedded PGlite", database: async () => ({ env: {}, cleanup: async () => {} }) },
];
if (testDatabaseUrl) {
  variants.push({
    name: "PostgreSQL",
    database: async () => {
      const db = await scratchDatabase();
      return {
        env: {
          DATABASE_URL: db.url,
          ADMIN_TOKEN,
          GATEWAY_API_KEY,
          MIGRATE_ON_START: "0",
        },
        cleanup: db.drop,
      };
    },
  });
}

for (const v of variants) {
  describe(`backend from the command line on ${v.name}`, () => {
    let dir: string;
    let env: Record<string, string>;
    let cleanup: () => Promise<void>;
    let backend: Awaited<ReturnType<typeof startHttvps>> | undefined;
    let base: string;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "httvps-e2e-"));
      const port = await freePort();
      const db = await v.database();
      cleanup = db.cleanup;
      env = { ...db.env, DATA_DIR: join(dir, "data"), BACKEND_PORT: String(port), LOG_LEVEL: "info" };
      base = `http://127.0.0.1:${port}`;
    });
    after(async () => {
      await backend?.stop();
      await cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    if (v.name === "PostgreSQL") {
      test("two `httvps migrate` at once both exit 0 and apply each migration once; the backend refuses an unmigrated database", async () => {
        const refused = await runHttvps(["backend"], env, { timeoutMs: 60_000 });
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /^config: MIGRATE_ON_START: the database is not migrated/m);
        const [a, b] = await Promise.all([runHttvps(["migrate"], env), runHttvps(["migrate"], env)]);
        assert.equal(a.code, 0, a.stderr);
        assert.equal(b.code, 0, b.stderr);
        const names = readMigrations().map((f) => f.name);
        const outputs = [a.stdout.trim(), b.stdout.trim()].sort();
        // The advisory lock serialises them: one applies everything, the other finds nothing to do.
        assert.deepEqual(outputs, [`applied ${names.join(", ")}`, "nothing to apply: the database is up to date"]);
        const rows = await (async () => {
          const s = postgres(env.DATABASE_URL!, { max: 1, onnotice: () => {} });
          try {
            return await s.unsafe("select name from schema_migrations");
          } finally {
            await s.end();
          }
        })();
        assert.deepEqual(rows.map((r) => r.name).sort(), names);
        const status = await runHttvps(["migrate", "status"], env);
        assert.equal(status.code, 0);
        assert.match(status.stdout, /^applied\s+0001_init\.sql/m);
      });
    }

    test("start, create a device, validate it over HTTP, revoke it", async () => {
      backend = await startHttvps(["backend"], env, BACKEND_READY, { timeoutMs: 120_000 });
      if (!env.DATABASE_URL) {
        const st = statSync(join(env.DATA_DIR!, "admin-token"));
        assert.equal(st.mode & 0o777, 0o600, "generated secrets are private");
      }
      const created = await runHttvps(["device", "create", "--name", "laptop", "--json"], env);
      assert.equal(created.code, 0, created.stderr);
      const device = JSON.parse(created.stdout);
      assert.match(device.device_id, /^[0-9a-f-]{36}$/);
      assert.ok(device.token.length >= 40);
      assert.match(device.access_key, /^httvps:\/\//);

      const gatewayKey = env.GATEWAY_API_KEY ??
        (await import("node:fs")).readFileSync(join(env.DATA_DIR!, "gateway-api-key"), "utf8").trim();
      const validate = (body: string, key: string | null = gatewayKey) =>
        fetch(`${base}/api/v1/auth/validate-device`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
          body,
        });
      const good = JSON.stringify({ device_id: device.device_id, token: device.token, client_version: "1.0" });
      let r = await validate(good);
      assert.equal(r.status, 200);
      assert.equal((await r.json()).valid, true);
      r = await validate(JSON.stringify({ device_id: device.device_id, token: "nope", client_version: "1.0" }));
      assert.deepEqual(await r.json(), { valid: false, reason: "bad_token" });
      r = await validate(good, null);
      assert.equal(r.status, 401);
      assert.equal((await r.json()).error.code, "unauthorized");
      r = await validate("{broken");
      assert.equal(r.status, 400);
      assert.equal((await r.json()).error.code, "bad_json");

      const list = await runHttvps(["device", "list"], env);
      assert.match(list.stdout, new RegExp(`${device.device_id}\\s+laptop\\s+active`));
      const revoked = await runHttvps(["device", "revoke", device.device_id], env);
      assert.equal(revoked.code, 0, revoked.stderr);
      r = await validate(good);
      assert.deepEqual(await r.json(), { valid: false, reason: "revoked" });

      const added = await runHttvps([
        "node",
        "add",
        "--ss-url",
        "ss://YWVzLTI1Ni1nY206cGFzc3dvcmQ@127.0.0.1:9/?outline=1#Probe",
        "--json",
      ], env);
      assert.equal(added.code, 0, added.stderr);
      assert.equal(JSON.parse(added.stdout).method, "aes-256-gcm");
      const nodes = await runHttvps(["node", "list", "--json"], env);
      assert.ok(!nodes.stdout.includes("password"), "node list never shows a password");
      assert.equal((await (await fetch(`${base}/readyz`)).json()).ok, true);
      assert.ok(!backend.output().includes(device.token), "the device token is not in the backend's logs");
    });

    test("device create and device links: the apps' links as JSON, as text and as QR codes", async () => {
      assert.ok(backend);
      const at = { ...env, GATEWAY_PUBLIC_URL: "wss://vpn.example.com:8443/ws" };
      const created = await runHttvps(["device", "create", "--name", "Alice's phone", "--json"], at);
      assert.equal(created.code, 0, created.stderr);
      const d = JSON.parse(created.stdout);
      const expected = appLinks({ name: "Alice's phone", host: "vpn.example.com", port: 8443, ...d.app });
      assert.equal(d.ssconf, `ssconf://vpn.example.com:8443${d.app.path}/outline#Alice's%20phone`);
      assert.equal(d.subscription_url, `https://vpn.example.com:8443${d.app.path}/sub`);
      assert.match(d.ss_url, /^ss:\/\/[A-Za-z0-9_-]+@vpn\.example\.com:8443\/\?plugin=v2ray-plugin%3Bmode%3Dwebsocket%3Btls%3B/);
      assert.ok(d.ss_url.includes(`path%3D${encodeURIComponent(d.app.path)}%2Ftcp%3Bmux%3D0#`));
      assert.deepEqual({ ssconf: d.ssconf, ss_url: d.ss_url, subscription_url: d.subscription_url }, expected);

      const json = await runHttvps(["device", "links", d.device_id, "--json"], at);
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), { device_id: d.device_id, name: "Alice's phone", ...expected });
      const text = await runHttvps(["device", "links", d.device_id], at);
      assert.equal(text.code, 0, text.stderr);
      for (const link of Object.values(expected)) assert.ok(text.stdout.split("\n").includes(`  ${link}`), link);
      const qr = await runHttvps(["device", "links", d.device_id, "--qr"], at);
      assert.equal(qr.code, 0, qr.stderr);
      assert.deepEqual(scanTerminalCodes(qr.stdout), Object.values(expected), "each QR code scans to its link");

      const both = await runHttvps(["device", "links", d.device_id, "--json", "--qr"], at);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /--json or --qr/);
      assert.equal((await runHttvps(["device", "revoke", d.device_id], at)).code, 0);
      const gone = await runHttvps(["device", "links", d.device_id], at);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /revoked: the device is revoked/);
      assert.ok(!backend.output().includes(d.app.secret), "the app key is not in the backend's logs");
    });

    test("SIGTERM stops the backend cleanly", async () => {
      assert.ok(backend);
      const code = await backend.stop();
      assert.match(backend.output(), /"backend stopped"/, "closed its listener and database before exiting");
      // Deno's node:child_process reports any child that got SIGTERM as killed by it (code null),
      // even when the child handled the signal and exited 0; the log line above is the proof there.
      if (runtime !== "deno") assert.equal(code, 0, backend.output().slice(-2000));
      backend = undefined;
    });
  });
}
