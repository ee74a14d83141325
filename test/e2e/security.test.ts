// Security checks that run in the normal suite (docs/07-security.md "Security checks"):
// tokens at rest, constant-time comparison, failed-hello rate limits and session limits
// through a real gateway, no secret in any log line of a full flow at LOG_LEVEL=debug,
// hostile strings through every API body field, and the direct-mode address guard end to end.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { z } from "zod";
import type { BackendApp } from "../../backend/app.ts";
import { type Database, sql } from "../../backend/db/database.ts";
import { hashToken } from "../../backend/secrets.ts";
import type { DevCertificate } from "../../gateway/certs.ts";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { formatSsUrl } from "../../protocol/ss-url.ts";
import { runtime } from "../../runtime/index.ts";
import { startHttpTarget, startSsServer } from "../../shadowsocks/ss-server.testing.ts";
import { repoRoot } from "../cli.ts";
import { curl } from "../curl.ts";
import { ADMIN_TOKEN, GATEWAY_API_KEY, type Stack, startStack } from "./stack.ts";
import { TunnelClient } from "./tunnel-client.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`security checks on ${runtime}`, () => {
  let stack: Stack<"app">;
  let db: Database;
  let app: BackendApp;
  let cert: DevCertificate;
  let validateCalls = 0;

  before(async () => {
    stack = await startStack({
      env: { GATEWAY_USAGE_FLUSH_INTERVAL: "200ms" },
      observe: (req) => {
        if (new URL(req.url).pathname === "/api/v1/auth/validate-device") validateCalls++;
      },
    });
    ({ db, app } = stack.backend);
    cert = stack.cert;
  });
  after(() => stack?.close());

  const withGateway = (extra: Record<string, string>, fn: (gw: RunningGateway) => Promise<void>) => stack.withGateway(extra, fn);
  const call = (method: string, path: string, body?: unknown, key?: string) => stack.backend.api(method, path, body, key);
  const newDevice = (fields: object = {}) => stack.backend.device({ name: "sec", ...fields });

  /** A fresh session's auth_result code ("ok" when accepted); the socket is closed afterwards. */
  async function helloCode(port: number, device_id: string, token: string): Promise<{ code: string; client: TunnelClient }> {
    const c = await TunnelClient.connect(port, cert.certPem);
    const r = await c.hello(device_id, token);
    assert.equal(r.type, "auth_result");
    return { code: r.type === "auth_result" ? (r.ok ? "ok" : r.code) : "?", client: c };
  }

  test("tokens are stored as sha256 digests only, and every comparison is constant-time", async () => {
    const d = await newDevice();
    const rows = await db.query<Record<string, unknown>>(sql`select * from devices where id = ${d.device_id}`);
    assert.equal(rows.length, 1);
    const cells = Object.values(rows[0]!).map((v) => String(v));
    assert.ok(!cells.some((v) => v.includes(d.token)), "the token itself is in no column");
    assert.equal(rows[0]!.token_hash, hashToken(d.token));
    assert.equal(hashToken(d.token), createHash("sha256").update(d.token).digest("hex"));
    // Rotating replaces the digest; the old token stops working.
    const rotated = await call("POST", `/api/v1/devices/${d.device_id}/rotate-token`);
    assert.equal(rotated.status, 200);
    const after = await db.query<{ token_hash: string }>(sql`select token_hash from devices where id = ${d.device_id}`);
    assert.equal(after[0]!.token_hash, hashToken(rotated.json.token));
    // Code review, made a test: secrets.ts compares with timingSafeEqual on equal-length digests,
    // and nothing in the backend or gateway compares a secret with === or !==.
    const secrets = readFileSync(join(repoRoot, "backend/secrets.ts"), "utf8");
    assert.match(secrets, /import \{[^}]*timingSafeEqual[^}]*\} from "node:crypto"/);
    assert.equal((secrets.match(/timingSafeEqual\(a, b\)/g) ?? []).length, 2, "tokenMatches and secretEquals");
    for (
      const f of [
        "backend/app.ts",
        "backend/routes/auth.ts",
        "backend/store/validation.ts",
        "backend/store/devices.ts",
        "backend/store/gateways.ts",
        "backend/auth.ts",
        "backend/sign-in.ts",
        "backend/passwords.ts",
        "backend/store/admin-sessions.ts",
        "gateway/auth.ts",
      ]
    ) {
      const src = readFileSync(join(repoRoot, f), "utf8");
      assert.doesNotMatch(
        src,
        /(token|api_?key|password|secret)\w*\s*[!=]==\s*\w*(token|key|hash)/i,
        `${f}: a secret compared with ===`,
      );
    }
  });

  test("failed hellos per address: after GATEWAY_HELLO_FAIL_LIMIT, rate_limited without asking the backend", async () => {
    const good = await newDevice();
    await withGateway(
      { GATEWAY_HELLO_FAIL_LIMIT: "3", GATEWAY_HELLO_FAIL_DEVICE_LIMIT: "0", GATEWAY_HELLO_FAIL_WINDOW: "1m" },
      async (gw) => {
        const before = validateCalls;
        for (let i = 0; i < 3; i++) {
          const { code, client } = await helloCode(gw.port, `guess-${i}`, "wrong-token");
          assert.equal(code, "auth_failed");
          await client.until(() => client.closed !== null, "close");
          assert.deepEqual(client.closed, { code: 1008, reason: "auth_failed" });
        }
        const { code, client } = await helloCode(gw.port, good.device_id, good.token);
        assert.equal(code, "rate_limited", "even the right token, from this address, for the window");
        await client.until(() => client.closed !== null, "close");
        assert.deepEqual(client.closed, { code: 1008, reason: "rate_limited" });
        assert.equal(validateCalls - before, 3, "the limited hello never reached the backend");
      },
    );
  });

  test("failed hellos per device id: that id is limited, others are not", async () => {
    const victim = await newDevice();
    const other = await newDevice();
    await withGateway({ GATEWAY_HELLO_FAIL_LIMIT: "0", GATEWAY_HELLO_FAIL_DEVICE_LIMIT: "2" }, async (gw) => {
      for (let i = 0; i < 2; i++) {
        const { code, client } = await helloCode(gw.port, victim.device_id, `wrong-${i}`);
        assert.equal(code, "auth_failed");
        await client.shut();
      }
      const limited = await helloCode(gw.port, victim.device_id, victim.token);
      assert.equal(limited.code, "rate_limited");
      await limited.client.shut();
      const fine = await helloCode(gw.port, other.device_id, other.token);
      assert.equal(fine.code, "ok");
      await fine.client.shut();
    });
  });

  test("max_sessions through the gateway: the third session is refused, a slot frees on close", async () => {
    const d = await newDevice({ max_sessions: 2 });
    await withGateway({}, async (gw) => {
      const a = await helloCode(gw.port, d.device_id, d.token);
      const b = await helloCode(gw.port, d.device_id, d.token);
      assert.deepEqual([a.code, b.code], ["ok", "ok"]);
      const c = await helloCode(gw.port, d.device_id, d.token);
      assert.equal(c.code, "session_limit");
      await c.client.until(() => c.client.closed !== null, "close");
      assert.equal(c.client.closed!.code, 1008);
      await a.client.shut();
      // The close is reported within a flush interval; the backend then frees the slot.
      let again = "";
      for (let i = 0; i < 50 && again !== "ok"; i++) {
        await sleep(100);
        const r = await helloCode(gw.port, d.device_id, d.token);
        again = r.code;
        await r.client.shut();
      }
      assert.equal(again, "ok");
      await b.client.shut();
    });
  });

  test("direct mode without an allow-list refuses loopback, IPv6 forms, link-local metadata and a name resolving to loopback", async () => {
    const d = await newDevice();
    // Something really listens on loopback, so a refusal cannot be a mere "connection refused".
    const listener = net.createServer((s) => s.end("you should not see this"));
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", () => r()));
    const port = (listener.address() as net.AddressInfo).port;
    try {
      await withGateway({ GATEWAY_UPSTREAM_MODE: "direct" }, async (gw) => {
        const c = await TunnelClient.session(gw.port, cert.certPem, d);
        const targets = [
          "127.0.0.1",
          "::1",
          "[::1]",
          "::ffff:127.0.0.1",
          "0:0:0:0:0:ffff:7f00:1",
          "169.254.169.254",
          "localhost",
          "0.0.0.0",
          "10.0.0.1",
          "127.1",
        ];
        const results: Record<string, string | undefined> = {};
        for (const host of targets) {
          const id = c.newId();
          const rx = c.open(id, { host, port: host === "169.254.169.254" ? 80 : port });
          await c.until(() => rx.close !== null, `stream_close for ${host}`, 15_000);
          assert.equal(rx.received, 0, `${host}: no byte came back`);
          results[host] = rx.close!.code;
        }
        for (const host of targets) {
          // "[::1]" is not a host the protocol allows (IPv6 goes without brackets); a refusal either way.
          const allowed = host === "[::1]" ? ["target_forbidden", "bad_target"] : ["target_forbidden"];
          assert.ok(allowed.includes(results[host]!), `${host}: ${results[host]}`);
        }
        await c.shut();
      });
    } finally {
      await new Promise<void>((r) => listener.close(() => r()));
    }
  });

  // -------------------------------------------------------------------------------------------
  // hostile strings through every API body field

  // "a\u0000b": PostgreSQL text cannot hold U+0000; this walk found it answered 500 until
  // backend/schemas.ts refused NUL in stored text (400 validation_failed).
  const HOSTILE = [
    "'; drop table devices; --",
    "x' or '1'='1",
    "a".repeat(10_240),
    "ünïcødé 🙂 \u202e\u200b",
    "a\u0000b",
    "\ud800",
    "$1 $$ \\x00 %s %n",
  ];

  type JsonSchema = {
    type?: string;
    properties?: Record<string, JsonSchema>;
    required?: string[];
    anyOf?: JsonSchema[];
    oneOf?: JsonSchema[];
    items?: JsonSchema;
    enum?: unknown[];
    const?: unknown;
    minimum?: number;
    minLength?: number;
    format?: string;
    pattern?: string;
  };

  /** A value the schema accepts (required fields only), so a hostile string in one field reaches the handler. */
  function sample(s: JsonSchema, name = ""): unknown {
    if (s.const !== undefined) return s.const;
    if (s.enum) return s.enum[0];
    if (s.anyOf) return sample(s.anyOf.find((v) => v.type !== "null") ?? s.anyOf[0]!, name);
    if (s.oneOf) return sample(s.oneOf[0]!, name);
    switch (s.type) {
      case "object": {
        const o: Record<string, unknown> = {};
        for (const k of s.required ?? []) o[k] = sample(s.properties![k]!, k);
        return o;
      }
      case "array":
        return s.items?.oneOf ? s.items.oneOf.map((v) => sample(v)) : [];
      case "integer":
      case "number":
        return s.minimum !== undefined && s.minimum > 0 ? s.minimum : 1;
      case "boolean":
        return false;
      case "string":
        if (name === "ss_url") return formatSsUrl({ method: "aes-256-gcm", password: "pw", host: "127.0.0.1", port: 9 });
        if (s.format === "date-time") return "2099-01-01T00:00:00Z";
        if (s.format === "uri") return "https://127.0.0.1:9/secret";
        if (s.pattern?.includes("0-9A-Fa-f]{64}")) return "a".repeat(64);
        return "x".repeat(Math.max(1, s.minLength ?? 1));
    }
    return null;
  }

  /** Every path to a string in the schema (optional ones too), through anyOf, and into each oneOf array variant. */
  function stringPaths(s: JsonSchema, at: (string | number)[] = []): (string | number)[][] {
    if (s.type === "string") return [at];
    const out: (string | number)[][] = [];
    for (const v of s.anyOf ?? []) out.push(...stringPaths(v, at));
    if (s.type === "object") { for (const [k, v] of Object.entries(s.properties ?? {})) out.push(...stringPaths(v, [...at, k])); }
    if (s.type === "array" && s.items?.oneOf) s.items.oneOf.forEach((v, i) => out.push(...stringPaths(v, [...at, i])));
    else if (s.type === "array" && s.items) out.push(...stringPaths(s.items, [...at, 0]));
    return out.filter((p, i, all) => all.findIndex((q) => q.join("\u0001") === p.join("\u0001")) === i);
  }

  /** Percent-encoding; a lone surrogate becomes the invalid UTF-8 it would be on the wire. */
  const enc = (h: string) => {
    try {
      return encodeURIComponent(h);
    } catch {
      return "%ED%A0%80";
    }
  };

  function setPath(base: unknown, path: (string | number)[], value: unknown): unknown {
    // deno-lint-ignore no-explicit-any -- an API answer read field by field
    const copy = structuredClone(base) as any;
    let o = copy;
    for (let i = 0; i < path.length - 1; i++) {
      const k = path[i]!;
      o[k] ??= typeof path[i + 1] === "number" ? [] : {};
      o = o[k];
    }
    o[path[path.length - 1]!] = value;
    return copy;
  }

  test("SQL metacharacters, 10 KB strings, unicode and NUL in every body field, query and path: never a 500, tables intact", async () => {
    const dev = await newDevice();
    const node = await call("POST", "/api/v1/nodes", {
      name: "n",
      host: "127.0.0.1",
      port: 9,
      method: "aes-256-gcm",
      password: "pw",
    });
    assert.equal(node.status, 201);
    const gw = await call("POST", "/api/v1/gateways", { name: "gw-sec" });
    assert.equal(gw.status, 201);
    const ids: Record<string, string> = { devices: dev.device_id, nodes: node.json.id, gateways: gw.json.id };
    let requests = 0;
    const failures: string[] = [];
    const check = async (method: string, path: string, body: unknown, what: string) => {
      const key =
        app.routeSpecs.find((r) => r.method === method && r.path === path.replace(/[0-9a-f-]{36}/, ":id"))?.auth === "gateway"
          ? GATEWAY_API_KEY
          : ADMIN_TOKEN;
      const r = await call(method.toUpperCase(), path, body, key);
      requests++;
      if (r.status >= 500 && r.status !== 502) {
        failures.push(`${method.toUpperCase()} ${path} ${what}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
      } else if (r.status >= 400) assert.equal(typeof r.json?.error?.code, "string", `${method} ${path} ${what}: error shape`);
    };
    for (const route of app.routeSpecs) {
      if (route.auth === "public") continue;
      const kind = route.path.split("/")[3]!;
      const path = route.path.replace(":id", ids[kind] ?? "00000000-0000-0000-0000-000000000000");
      // Destructive routes on the ids we reuse would only make later requests 404.
      if (route.method === "delete" || route.path.endsWith("rotate-token")) continue;
      if (route.body) {
        const schema = z.toJSONSchema(route.body, { io: "input", unrepresentable: "any" }) as JsonSchema;
        const base = sample(schema);
        for (const p of stringPaths(schema)) {
          for (const h of HOSTILE) {
            await check(route.method, path, setPath(base, p, h), `${p.join(".")}=${JSON.stringify(h.slice(0, 20))}`);
          }
        }
      }
      if (route.query) {
        const schema = z.toJSONSchema(route.query, { io: "input", unrepresentable: "any" }) as JsonSchema;
        for (const k of Object.keys(schema.properties ?? {})) {
          for (const h of HOSTILE) await check(route.method, `${path}?${k}=${enc(h)}`, undefined, `?${k}`);
        }
      }
      if (route.path.includes(":id")) {
        for (const h of HOSTILE) {
          await check(
            route.method,
            route.path.replace(":id", enc(h)),
            route.body ? sample(z.toJSONSchema(route.body, { io: "input", unrepresentable: "any" }) as JsonSchema) : undefined,
            `:id`,
          );
        }
      }
    }
    assert.deepEqual(failures, [], `${failures.length} of ${requests} requests answered 5xx`);
    assert.ok(requests > 300, `walked ${requests} requests`);
    // The tables are all there and still answer.
    const tables = await db.query<{ table_name: string }>(
      sql`select table_name from information_schema.tables where table_schema = current_schema() order by 1`,
    );
    for (const t of ["devices", "nodes", "gateways", "sessions"]) assert.ok(tables.some((r) => r.table_name === t), `table ${t}`);
    const stillThere = await db.query<{ id: string }>(sql`select id from devices where id = ${dev.device_id}`);
    assert.equal(stillThere.length, 1);
    console.log(`[${runtime}] hostile-string walk: ${requests} requests over ${app.routeSpecs.length} routes, no 5xx`);
  });

  // -------------------------------------------------------------------------------------------

  test("no secret in any log line: backend, gateway (outline mode) and client processes at LOG_LEVEL=debug through a full flow", async () => {
    const ssPassword = "node-password-" + Math.random().toString(36).slice(2) + "-secret";
    const ss = await startSsServer("chacha20-ietf-poly1305", ssPassword);
    const target = await startHttpTarget(new Uint8Array(100_000).map((_, i) => i & 255));
    const procs: Array<{ stop: () => Promise<number | null>; output: () => string }> = [];
    try {
      const common = { LOG_LEVEL: "debug", DATA_DIR: join(stack.dir, "data-logs"), NODE_CHECK_INTERVAL: "1s" };
      const be = await stack.backendProcess(common);
      procs.push(be);
      assert.equal(
        (await be.api("POST", "/api/v1/nodes", {
          name: "ss",
          host: "127.0.0.1",
          port: ss.port,
          method: "chacha20-ietf-poly1305",
          password: ssPassword,
        })).status,
        201,
      );
      const dev = await be.device({ name: "logs" });
      // The backend's variables too, the admin token among them: no secret in its environment may reach its logs.
      const gw = await stack.gatewayProcess({
        ...common,
        ADMIN_TOKEN,
        BACKEND_PORT: String(be.port),
        GATEWAY_BACKEND_URL: be.url,
        GATEWAY_UPSTREAM_MODE: "outline",
        GATEWAY_USAGE_FLUSH_INTERVAL: "300ms",
      });
      procs.push(gw);
      const cl = await stack.client(stack.accessKey(dev, gw.port), { logLevel: "debug" });
      procs.push(cl);
      const got = await curl(["--socks5-hostname", `127.0.0.1:${cl.socks}`, `http://127.0.0.1:${target.port}/bytes/100000`], 20);
      assert.equal(got.stderr, "");
      assert.equal(`${got.status} ${got.size}`, "200 100000");
      // A failure path too: a bad token and a bad admin token, so error logging runs.
      await be.api("GET", "/api/v1/devices", undefined, `${ADMIN_TOKEN}x`);
      const bad = await TunnelClient.connect(gw.port, cert.certPem);
      assert.equal(((await bad.hello(dev.device_id, dev.token + "x")) as { code?: string }).code, "auth_failed");
      await bad.shut();
      await sleep(800); // a usage flush and a health check
      for (const p of procs.reverse()) await p.stop();
      const all = procs.map((p) => p.output()).join("\n");
      assert.ok(all.split("\n").length > 20 && /"level":"debug"/.test(all), "debug logs were captured");
      for (
        const [name, secret] of Object.entries({
          device_token: dev.token,
          admin_token: ADMIN_TOKEN,
          gateway_key: GATEWAY_API_KEY,
          node_password: ssPassword,
        })
      ) {
        assert.ok(!all.includes(secret), `${name} appears in the logs`);
        // Also its common encodings: base64 and URL-encoding.
        assert.ok(!all.includes(Buffer.from(secret).toString("base64")), `${name} (base64) appears in the logs`);
        assert.ok(!all.includes(encodeURIComponent(secret)), `${name} (url-encoded) appears in the logs`);
      }
    } finally {
      for (const p of procs) await p.stop();
      await ss.stop();
      await target.close();
    }
  });
});
