// The single-file build end to end: `npm run build`'s script compiles dist/httvps-like binary
// into an empty temporary directory, and from there — no repository, no node_modules — it runs
// `httvps backend` (embedded PGlite), `httvps device create`, `httvps gateway` (direct upstream)
// and `httvps connect`, and the real curl goes through the client's SOCKS5 and HTTP proxies to
// a local HTTP target. With TEST_DATABASE_URL, `httvps migrate` applies the embedded SQL to
// PostgreSQL too.
//
// The binary is always built by Bun, whichever runtime runs the tests, so one run per
// `npm test` is enough: it runs in the Node pass (HTTVPS_TEST_RUNTIME=node, or a plain
// `node --test`) and is skipped, saying so, in the Bun and Deno passes. HTTVPS_BINARY_TEST=1
// forces it on any runtime, HTTVPS_BINARY_TEST=0 skips it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { readMigrations } from "../../backend/db/migrate.ts";
import { testDatabaseUrl } from "../../backend/db/testing.ts";
import { freePort, type HttpTarget, startHttpTarget } from "../../shadowsocks/ss-server.testing.ts";
import { repoRoot, runCommand, runtime, startCommand, type Started } from "../cli.ts";
import { curl } from "../curl.ts";
import { scratchDatabase } from "./stack.ts";
import { generateDecoySite, readDecoyInputs } from "../../gateway/decoy-site.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function skipReason(): string | undefined {
  const forced = process.env.HTTVPS_BINARY_TEST;
  if (forced === "0") return "HTTVPS_BINARY_TEST=0";
  if (forced === "1") return undefined;
  const rt = process.env.HTTVPS_TEST_RUNTIME ?? runtime;
  if (rt !== "node") {
    return `the binary is Bun-built whatever runs the tests: checked once per npm test, in the node pass (HTTVPS_BINARY_TEST=1 forces it on ${rt})`;
  }
  if (process.platform !== "linux" && process.platform !== "darwin") return `no compiled-binary test on ${process.platform}`;
  return undefined;
}
const skip = skipReason();

/** Start the binary in `cwd` and wait until its output matches `ready`. */
const startBinary = (
  bin: string,
  cwd: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  timeoutMs = 60_000,
): Promise<Started> => startCommand(`httvps ${args.join(" ")}`, bin, args, env, ready, { cwd, timeoutMs });

/** Run the binary to completion. */
const runBinary = (bin: string, cwd: string, args: string[], env: Record<string, string>, timeoutMs = 60_000) =>
  runCommand(`httvps ${args.join(" ")}`, bin, args, env, { cwd, timeoutMs });

describe("the compiled binary (dist/httvps) from an empty directory", () => {
  let dir: string;
  let bin: string;
  let target: HttpTarget;
  let tport: number;
  const children: Started[] = [];

  before(async () => {
    if (skip) return;
    dir = mkdtempSync(join(tmpdir(), "httvps-binary-"));
    bin = join(dir, "httvps");
    // The same script as `npm run build`, writing straight into the empty directory.
    const built = spawnSync(runtime === "node" ? process.execPath : "node", [join(repoRoot, "scripts", "build.mjs")], {
      cwd: repoRoot,
      env: { ...process.env, HTTVPS_BUILD_OUT: bin },
      encoding: "utf8",
      timeout: 240_000,
    });
    assert.equal(built.status, 0, `build failed:\n${built.stdout}\n${built.stderr}\n${built.error ?? ""}`);
    target = await startHttpTarget(new Uint8Array(randomBytes(3_000_001)), { keepAlive: true });
    tport = target.port;
  });

  after(async () => {
    for (const c of children.reverse()) await c.stop();
    await target?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("one executable file, nothing beside it, that knows every command", { skip }, async () => {
    assert.deepEqual(readdirSync(dir), ["httvps"]);
    assert.ok(!existsSync(join(dir, "..", "node_modules")), "no node_modules above the temp directory either");
    const st = statSync(bin);
    assert.ok(st.mode & 0o100, "executable");
    const help = await runBinary(bin, dir, ["help"], {});
    assert.equal(help.code, 0, help.stderr);
    for (const cmd of ["backend", "gateway", "dev", "migrate", "device create", "node add", "certs dev", "connect"]) {
      assert.ok(help.stdout.includes(cmd), `usage lists ${cmd}`);
    }
    const bad = await runBinary(bin, dir, ["nonsense"], {});
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "nonsense"/);
  });

  test("backend (embedded PGlite) + gateway (direct) + connect: curl through SOCKS5 and the HTTP proxy", { skip }, async () => {
    const backendPort = await freePort();
    const env = { BACKEND_PORT: String(backendPort), LOG_LEVEL: "info" };
    const backend = await startBinary(bin, dir, ["backend"], env, /"backend listening"/, 180_000);
    children.push(backend);
    assert.match(backend.output(), /"database":"pglite"/);
    assert.match(backend.output(), /"migrations applied".*0001_init\.sql/, "the embedded migrations ran");

    const gwEnv = {
      ...env,
      GATEWAY_LISTEN_ADDR: "127.0.0.1:0",
      GATEWAY_UPSTREAM_MODE: "direct",
      GATEWAY_DIRECT_ALLOW: "127.0.0.0/8",
    };
    const gateway = await startBinary(
      bin,
      dir,
      ["gateway"],
      gwEnv,
      /"gateway listening".*"address":"127\.0\.0\.1:(\d+)"/,
      60_000,
    );
    children.push(gateway);
    const gport = Number(gateway.match[1]);
    assert.ok(existsSync(join(dir, "deploy", "certs", "cert.pem")), "a self-signed certificate was created beside the binary");

    // The decoy's templates are inside the binary: every other path is the site generated from
    // the seed it made in ./data, the same one the repository's generator makes from that seed.
    const site = await curl(["-k", `https://127.0.0.1:${gport}/`]);
    assert.equal(site.status, "200", `curl ${site.code}: ${site.stderr}`);
    const seedFile = join(dir, "data", "decoy-seed");
    const expected = generateDecoySite(
      new TextEncoder().encode(readFileSync(seedFile, "utf8").trim()),
      readDecoyInputs(),
      statSync(seedFile).mtime,
    );
    assert.equal(site.sha, sha(expected.find((f) => f.path === "index.html")!.body));
    assert.equal(site.server, "nginx");

    const created = await runBinary(bin, dir, ["device", "create", "--name", "binary", "--json"], {
      ...env,
      GATEWAY_LISTEN_ADDR: `127.0.0.1:${gport}`,
    });
    assert.equal(created.code, 0, created.stderr);
    const device = JSON.parse(created.stdout) as { device_id: string; token: string; access_key: string };
    assert.match(device.access_key, /^httvps:\/\//);

    const client = await startBinary(
      bin,
      dir,
      ["connect", device.access_key, "--socks", "127.0.0.1:0", "--http", "127.0.0.1:0"],
      { LOG_LEVEL: "info" },
      /SOCKS5 proxy on 127\.0\.0\.1:(\d+)[\s\S]*HTTP proxy on 127\.0\.0\.1:(\d+)/,
      30_000,
    );
    children.push(client);
    const [socks, httpProxy] = [Number(client.match[1]), Number(client.match[2])];
    for (
      const [name, proxy] of [
        ["socks5", ["--socks5-hostname", `127.0.0.1:${socks}`]],
        ["http proxy", ["-x", `http://127.0.0.1:${httpProxy}`]],
      ] as const
    ) {
      for (const n of [0, 100_000, 3_000_001]) {
        const r = await curl([...proxy, `http://localhost:${tport}/bytes/${n}`]);
        assert.equal(r.code, 0, `${name} ${n}: curl ${r.code} ${r.stderr}`);
        assert.equal(r.status, "200");
        assert.equal(r.size, n);
        assert.equal(r.sha, r.header, `${name} ${n}: the body arrived intact`);
      }
    }
    assert.ok(!client.output().includes(device.token), "the token never appears in the client's output");
    assert.match(client.output(), /connected to /);
  });

  test("migrate on PostgreSQL with the SQL carried inside the binary", {
    skip: skip ?? (testDatabaseUrl ? false : "TEST_DATABASE_URL is not set"),
  }, async () => {
    const database = await scratchDatabase("httvps_bin");
    try {
      const env = { DATABASE_URL: database.url, LOG_LEVEL: "warn" };
      const ran = await runBinary(bin, dir, ["migrate"], env);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout.trim(), `applied ${readMigrations().map((f) => f.name).join(", ")}`);
      const status = await runBinary(bin, dir, ["migrate", "status"], env);
      assert.equal(status.code, 0, status.stderr);
      // Same names and the same sha256 as the repository's sql/: the status would say "changed" otherwise.
      for (const f of readMigrations()) assert.match(status.stdout, new RegExp(`^applied\\s+${f.name.replace(".", "\\.")}`, "m"));
    } finally {
      await database.drop();
    }
  });
});
