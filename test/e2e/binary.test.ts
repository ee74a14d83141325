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
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import postgres from "postgres";
import { readMigrations } from "../../backend/db/migrate.ts";
import { testDatabaseUrl } from "../../backend/db/testing.ts";
import { generateDecoySite, readDecoyInputs } from "../../gateway/decoy-site.ts";
import { childEnv, repoRoot, runtime } from "../cli.ts";

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

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

interface Running {
  child: ChildProcess;
  match: RegExpMatchArray;
  output: () => string;
  stop: () => Promise<number | null>;
}

/** Start the binary in `cwd` and wait until its output matches `ready`. */
function startBinary(
  bin: string,
  cwd: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  timeoutMs = 60_000,
): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let settled = false;
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    };
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const onData = (d: Buffer) => {
      out += d;
      const m = out.match(ready);
      if (m) settle(() => resolve({ child, match: m, output: () => out, stop }));
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on(
      "exit",
      (code) => settle(() => reject(new Error(`httvps ${args.join(" ")} exited with ${code} before it was ready:\n${out}`))),
    );
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      settle(() => reject(new Error(`httvps ${args.join(" ")} not ready in ${timeoutMs} ms:\n${out}`)));
    }, timeoutMs);
  });
}

/** Run the binary to completion. */
function runBinary(bin: string, cwd: string, args: string[], env: Record<string, string>, timeoutMs = 60_000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(bin, args, { cwd, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`httvps ${args.join(" ")} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** curl; the body (written to a file, then hashed) and the status, Server and X-Sha256 headers. */
let curlSeq = 0;
async function curl(
  args: string[],
): Promise<{ code: number | null; status: string; server: string; header: string; sha: string; size: number; stderr: string }> {
  const out = join(tmpdir(), `httvps-binary-curl-${process.pid}-${++curlSeq}`);
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn("curl", [
      "-sS",
      "--max-time",
      "30",
      "-o",
      out,
      "-w",
      "%{http_code} %header{server} %header{x-sha256}",
      ...args,
    ], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  const body = existsSync(out) ? readFileSync(out) : new Uint8Array(0);
  rmSync(out, { force: true });
  const [status = "", server = "", header = ""] = r.stdout.split(" ");
  return { code: r.code, status, server, header, sha: sha(body), size: body.length, stderr: r.stderr };
}

describe("the compiled binary (dist/httvps) from an empty directory", () => {
  let dir: string;
  let bin: string;
  let target: http.Server;
  let tport: number;
  const children: Running[] = [];

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
    target = http.createServer((req, res) => {
      const m = /^\/bytes\/(\d+)$/.exec(req.url ?? "");
      if (req.method === "GET" && m) {
        const body = randomBytes(Number(m[1]));
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length, "x-sha256": sha(body) });
        res.end(body);
      } else res.writeHead(404).end("not found");
    });
    await new Promise<void>((r) => target.listen(0, "127.0.0.1", () => r()));
    tport = (target.address() as AddressInfo).port;
  });

  after(async () => {
    for (const c of children.reverse()) await c.stop();
    if (target) await new Promise<void>((r) => target.close(() => r()));
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
    const name = `httvps_bin_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
    const admin = postgres(testDatabaseUrl!, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    try {
      const env = { DATABASE_URL: testDatabaseUrl!.replace(/\/[^/?]*(\?.*)?$/, `/${name}`), LOG_LEVEL: "warn" };
      const ran = await runBinary(bin, dir, ["migrate"], env);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout.trim(), `applied ${readMigrations().map((f) => f.name).join(", ")}`);
      const status = await runBinary(bin, dir, ["migrate", "status"], env);
      assert.equal(status.code, 0, status.stderr);
      // Same names and the same sha256 as the repository's sql/: the status would say "changed" otherwise.
      for (const f of readMigrations()) assert.match(status.stdout, new RegExp(`^applied\\s+${f.name.replace(".", "\\.")}`, "m"));
    } finally {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });
});
