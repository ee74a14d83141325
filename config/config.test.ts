import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { ConfigError, envSchema, loadConfig, metricsListenAddr, parseDuration, parseHostPort } from "./config.ts";
import { loadEnv, parseDotenv } from "./dotenv.ts";
import { repoRoot, runHttvps } from "../test/cli.ts";

test("defaults give a working embedded configuration", () => {
  const c = loadConfig({});
  assert.equal(c.BACKEND_PORT, 8080);
  assert.equal(c.DATABASE_URL, undefined);
  assert.equal(c.DATA_DIR, "./data");
  assert.equal(c.MIGRATE_ON_START, false);
  assert.deepEqual(c.GATEWAY_LISTEN_ADDR, { host: "0.0.0.0", port: 8443 });
  assert.equal(c.GATEWAY_UPSTREAM_MODE, "fake");
  assert.equal(c.GATEWAY_AUTH_CACHE_TTL, 30_000);
  assert.equal(c.GATEWAY_BACKEND_TIMEOUT, 2_000);
});

test("values are parsed into types", () => {
  const c = loadConfig({
    BACKEND_PORT: "9000",
    MIGRATE_ON_START: "1",
    GATEWAY_IDLE_TIMEOUT: "2m",
    GATEWAY_LISTEN_ADDR: "[::1]:443",
    GATEWAY_METRICS: "true",
  });
  assert.equal(c.BACKEND_PORT, 9000);
  assert.equal(c.MIGRATE_ON_START, true);
  assert.equal(c.GATEWAY_IDLE_TIMEOUT, 120_000);
  assert.deepEqual(c.GATEWAY_LISTEN_ADDR, { host: "::1", port: 443 });
  assert.equal(c.GATEWAY_METRICS, true);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("soon"), undefined);
  assert.equal(parseHostPort("localhost:99999"), undefined);
});

test("the operator endpoints listen on loopback by default, on GATEWAY_METRICS_ADDR when given, nowhere when off", () => {
  assert.equal(metricsListenAddr(loadConfig({})), undefined);
  assert.deepEqual(metricsListenAddr(loadConfig({ GATEWAY_METRICS: "1" })), { host: "127.0.0.1", port: 9100 });
  assert.deepEqual(metricsListenAddr(loadConfig({ GATEWAY_METRICS_ADDR: "[::1]:9200" })), { host: "::1", port: 9200 });
  assert.deepEqual(metricsListenAddr(loadConfig({ GATEWAY_METRICS: "1", GATEWAY_METRICS_ADDR: "0.0.0.0:9100" })), {
    host: "0.0.0.0",
    port: 9100,
  });
});

test("GATEWAY_WORKERS: the number of cores by default, 1-256, a clear error otherwise", () => {
  assert.equal(loadConfig({}).GATEWAY_WORKERS, availableParallelism());
  assert.equal(loadConfig({ GATEWAY_WORKERS: "1" }).GATEWAY_WORKERS, 1);
  for (const bad of ["0", "1.5", "many", "257"]) {
    assert.throws(() => loadConfig({ GATEWAY_WORKERS: bad }), (e: ConfigError) => e.variable === "GATEWAY_WORKERS");
  }
  assert.deepEqual(loadConfig({ HTTVPS_GATEWAY_WORKER: "1:join" }).HTTVPS_GATEWAY_WORKER, "1:join");
  assert.throws(() => loadConfig({ HTTVPS_GATEWAY_WORKER: "x" }), (e: ConfigError) => e.variable === "HTTVPS_GATEWAY_WORKER");
});

test("ACME and the plain-HTTP listener", () => {
  const off = loadConfig({});
  assert.equal(off.GATEWAY_ACME_DOMAINS, undefined);
  assert.equal(off.GATEWAY_ACME_DIRECTORY, "https://acme-v02.api.letsencrypt.org/directory");
  assert.equal(off.GATEWAY_HTTP_ADDR, undefined);
  assert.equal(off.GATEWAY_TLS_RELOAD_INTERVAL, 60_000);
  const on = loadConfig({
    GATEWAY_ACME_DOMAINS: " VPN.example.com, www.example.com ,vpn.example.com",
    GATEWAY_ACME_EMAIL: "ops@example.com",
    GATEWAY_HTTP_ADDR: ":80",
    GATEWAY_TLS_RELOAD_INTERVAL: "0",
  });
  assert.deepEqual(on.GATEWAY_ACME_DOMAINS, ["vpn.example.com", "www.example.com"]);
  assert.deepEqual(on.GATEWAY_HTTP_ADDR, { host: "0.0.0.0", port: 80 });
  assert.equal(on.GATEWAY_TLS_RELOAD_INTERVAL, 0);
  assert.deepEqual(loadConfig({ GATEWAY_HTTP_ADDR: "[::]:8080" }).GATEWAY_HTTP_ADDR, { host: "::", port: 8080 });
});

test("behind a proxy: GATEWAY_TLS=off listens on loopback unless told otherwise; GATEWAY_TRUSTED_PROXIES is a CIDR list", () => {
  const tls = loadConfig({});
  assert.equal(tls.GATEWAY_TLS, true);
  assert.deepEqual(tls.GATEWAY_TRUSTED_PROXIES, []);
  const plain = loadConfig({ GATEWAY_TLS: "off", GATEWAY_TRUSTED_PROXIES: "127.0.0.1/32, ::1, 10.0.0.0/8" });
  assert.equal(plain.GATEWAY_TLS, false);
  assert.deepEqual(plain.GATEWAY_LISTEN_ADDR, { host: "127.0.0.1", port: 8443 });
  assert.deepEqual(plain.GATEWAY_TRUSTED_PROXIES.map((c) => [c.text, c.bits]), [["127.0.0.1/32", 32], ["::1", 128], [
    "10.0.0.0/8",
    8,
  ]]);
  assert.deepEqual(loadConfig({ GATEWAY_TLS: "0", GATEWAY_LISTEN_ADDR: "10.1.2.3:8080" }).GATEWAY_LISTEN_ADDR, {
    host: "10.1.2.3",
    port: 8080,
  });
  const bad: [Record<string, string>, string, RegExp][] = [
    [{ GATEWAY_TRUSTED_PROXIES: "127.0.0.1/33" }, "GATEWAY_TRUSTED_PROXIES", /prefix length must be 0-32.*expected IP ranges/],
    [{ GATEWAY_TRUSTED_PROXIES: "10.0.0.0/8, proxy.example.com" }, "GATEWAY_TRUSTED_PROXIES", /"proxy.example.com" is not/],
    [{ GATEWAY_TLS: "maybe" }, "GATEWAY_TLS", /1 or 0/],
    [{ GATEWAY_TLS: "off", GATEWAY_ACME_DOMAINS: "vpn.example.com" }, "GATEWAY_ACME_DOMAINS", /not with GATEWAY_TLS=off/],
    [{ GATEWAY_TLS: "off", GATEWAY_HTTP_ADDR: ":80" }, "GATEWAY_HTTP_ADDR", /not with GATEWAY_TLS=off/],
  ];
  for (const [env, variable, expected] of bad) {
    assert.throws(
      () => loadConfig(env),
      (e: unknown) => e instanceof ConfigError && e.variable === variable && expected.test(e.message),
    );
  }
});

test("a bad value names the variable and what is expected, and hides secrets", () => {
  const bad: [Record<string, string>, string, RegExp][] = [
    [{ BACKEND_PORT: "abc" }, "BACKEND_PORT", /port number/],
    [{ BACKEND_PORT: "70000" }, "BACKEND_PORT", /port number/],
    [{ MIGRATE_ON_START: "maybe" }, "MIGRATE_ON_START", /1 or 0/],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL", /debug, info/],
    [{ GATEWAY_UPSTREAM_MODE: "socks" }, "GATEWAY_UPSTREAM_MODE", /fake, outline or direct/],
    [{ GATEWAY_IDLE_TIMEOUT: "forever" }, "GATEWAY_IDLE_TIMEOUT", /duration/],
    [{ GATEWAY_LISTEN_ADDR: "8443" }, "GATEWAY_LISTEN_ADDR", /host:port/],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL", /postgres:\/\//],
    [{ ADMIN_TOKEN: "short-secret" }, "ADMIN_TOKEN", /16 characters/],
    [{ GATEWAY_DECOY_UPSTREAM: "ftp://example.com" }, "GATEWAY_DECOY_UPSTREAM", /http\(s\):\/\/host/],
    [{ GATEWAY_DECOY_UPSTREAM: "https://example.com/?q=1" }, "GATEWAY_DECOY_UPSTREAM", /http\(s\):\/\/host/],
    [{ GATEWAY_AUTH_FAIL_DELAY: "soon" }, "GATEWAY_AUTH_FAIL_DELAY", /duration/],
    [{ GATEWAY_ACME_DOMAINS: "*.example.com" }, "GATEWAY_ACME_DOMAINS", /no wildcards/],
    [{ GATEWAY_ACME_DOMAINS: "localhost" }, "GATEWAY_ACME_DOMAINS", /DNS names/],
    [{ GATEWAY_ACME_DOMAINS: "192.0.2.1" }, "GATEWAY_ACME_DOMAINS", /no addresses/],
    [{ GATEWAY_ACME_DOMAINS: "a.example.com,bad_name.example.com" }, "GATEWAY_ACME_DOMAINS", /DNS names/],
    [{ GATEWAY_ACME_EMAIL: "nobody" }, "GATEWAY_ACME_EMAIL", /e-mail/],
    [{ GATEWAY_ACME_DIRECTORY: "not a url" }, "GATEWAY_ACME_DIRECTORY", /URL/],
    [{ GATEWAY_HTTP_ADDR: "80" }, "GATEWAY_HTTP_ADDR", /:port/],
    [{ GATEWAY_TLS_RELOAD_INTERVAL: "often" }, "GATEWAY_TLS_RELOAD_INTERVAL", /duration/],
  ];
  for (const [env, variable, expected] of bad) {
    assert.throws(() => loadConfig(env), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.variable, variable);
      assert.match(e.message, expected);
      assert.match(e.message, new RegExp(`^config: ${variable}: `));
      assert.ok(!e.message.includes("\n"));
      assert.ok(!e.message.includes("short-secret"), "a secret value is never echoed");
      return true;
    });
  }
});

test(".env.example documents every variable the config reads", () => {
  const example = readFileSync(`${repoRoot}/.env.example`, "utf8");
  const documented = new Set(example.split("\n").map((l) => /^#?\s*([A-Z][A-Z0-9_]+)=/.exec(l)?.[1]).filter(Boolean));
  for (const key of Object.keys(envSchema.shape)) assert.ok(documented.has(key), `${key} is missing from .env.example`);
  for (
    const k of [
      "BACKEND_PORT",
      "POSTGRES_PORT",
      "DATABASE_URL",
      "DATA_DIR",
      "ADMIN_TOKEN",
      "GATEWAY_API_KEY",
      "MIGRATE_ON_START",
      "LOG_LEVEL",
    ]
  ) {
    assert.ok(documented.has(k), k);
  }
});

test("loadEnv: the file sits under the real environment; HTTVPS_ENV_FILE=none reads no file", async () => {
  const { mkdtempSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const file = `${mkdtempSync(`${tmpdir()}/httvps-env-`)}/.env`;
  writeFileSync(file, "BACKEND_PORT=9999\nLOG_LEVEL=debug\n");
  const merged = loadEnv(file, { LOG_LEVEL: "warn" });
  assert.equal(merged.BACKEND_PORT, "9999");
  assert.equal(merged.LOG_LEVEL, "warn", "the environment wins");
  assert.equal(loadEnv("none", { LOG_LEVEL: "warn" }).BACKEND_PORT, undefined);
});

test("dotenv: comments, quotes, export", () => {
  assert.deepEqual(parseDotenv("# c\nA=1\nexport B=\"two words\"\nC=x # trailing\nD='q'\nbad line\n"), {
    A: "1",
    B: "two words",
    C: "x",
    D: "q",
  });
});

test("the CLI exits 1 with one line naming a bad variable", async () => {
  const r = await runHttvps(["migrate", "status"], { BACKEND_PORT: "not-a-port" });
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^config: BACKEND_PORT: expected a port number/);
});

test("HTTVPS_VERSION is package.json's version", async () => {
  const { HTTVPS_VERSION } = await import("./version.ts");
  assert.equal(HTTVPS_VERSION, JSON.parse(readFileSync(`${repoRoot}/package.json`, "utf8")).version);
});
