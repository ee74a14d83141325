#!/usr/bin/env node
// validate-device throughput and latency: the backend as a real server process (each
// runtime), PostgreSQL and PGlite, loaded by wrk from another process over loopback.
//   node bench/validate-device.mjs [--runtimes bun,node,deno] [--databases postgres,pglite]
//     [--seconds 10] [--connections 32] [--out FILE]
// (`npm run bench -- --only validate` runs it after the rounds, PostgreSQL only, and puts its
// result in the targets table.)
// Needs wrk (apt-get install wrk) and the PostgreSQL at BENCH_DATABASE_URL
// (default postgres://postgres@127.0.0.1:5432/postgres, used to create a scratch database).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { httvpsCommand } from "./lib/httvps.mjs";
import { argValue } from "./lib/options.mjs";
import { treeCpu } from "./lib/procs.mjs";
import { GOALS } from "./lib/targets.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const runtimes = argValue("runtimes", "bun,node,deno").split(",");
const databases = argValue("databases", "postgres,pglite").split(",");
const seconds = Number(argValue("seconds", "10"));
const connections = Number(argValue("connections", "32"));
// --cpu-prof DIR: Node and Bun write the backend's CPU profile there when it stops.
const cpuProf = argValue("cpu-prof", "");
const adminUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const ADMIN = "bench-admin-token-0123456789abcdef";
const GW = "bench-gateway-key-0123456789abcdef";

if (spawnSync("wrk", ["--version"]).error) {
  console.error("wrk is missing: apt-get install wrk");
  process.exit(1);
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });

async function startBackend(rt, env) {
  const [cmd, argv] = httvpsCommand(
    root,
    rt,
    ["backend"],
    cpuProf && rt !== "deno" ? [`--cpu-prof`, `--cpu-prof-dir=${cpuProf}`] : [],
  );
  const child = spawn(cmd, argv, {
    cwd: root,
    env: { ...process.env, ...env, LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const url = `http://127.0.0.1:${env.BACKEND_PORT}`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`backend exited: ${out}`);
    try {
      if ((await fetch(url + "/readyz")).ok) return { child, url };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`backend not ready: ${out}`);
}

/** The backend being measured: stopped if this script is interrupted (the bench's bound sends SIGINT). */
let current = null;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    current?.kill("SIGKILL");
    process.exit(130);
  });
}

async function stop(child) {
  child.kill("SIGTERM");
  await new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)));
}

function wrk(url, device, dir) {
  const script = join(dir, "validate.lua");
  writeFileSync(
    script,
    `wrk.method = "POST"
wrk.body = '${JSON.stringify({ device_id: device.device_id, token: device.token, client_version: "bench" })}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${GW}"
`,
  );
  const r = spawnSync("wrk", [
    "-t1",
    `-c${connections}`,
    `-d${seconds}s`,
    "--latency",
    "-s",
    script,
    `${url}/api/v1/auth/validate-device`,
  ], { encoding: "utf8" });
  const text = r.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const ms = (label) => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(text);
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
  };
  const errors = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? "0";
  return { rps, p50: ms("50"), p99: ms("99"), non2xx: Number(errors), raw: text };
}

const results = [];
for (const database of databases) {
  for (const rt of runtimes) {
    const dir = mkdtempSync(join(tmpdir(), "httvps-bench-"));
    const port = await freePort();
    const env = {
      BACKEND_PORT: String(port),
      BACKEND_HOST: "127.0.0.1",
      ADMIN_TOKEN: ADMIN,
      GATEWAY_API_KEY: GW,
      DATA_DIR: join(dir, "data"),
    };
    let sql;
    if (database === "postgres") {
      const dbName = `httvps_bench_${process.pid}`;
      sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await sql.unsafe(`drop database if exists ${dbName}`);
      await sql.unsafe(`create database ${dbName}`);
      env.DATABASE_URL = adminUrl.replace(/\/[^/]*$/, `/${dbName}`);
      env.MIGRATE_ON_START = "1";
      sql.dbName = dbName;
    }
    let child;
    try {
      const started = await startBackend(rt, env);
      child = current = started.child;
      const url = started.url;
      // A node in the pool, as in outline mode: the device is pinned to it and every validation
      // takes the one-query path. Its address is the backend's own port so the health check finds it up.
      await fetch(url + "/api/v1/nodes", {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "bench", host: "127.0.0.1", port, method: "chacha20-ietf-poly1305", password: "bench" }),
      });
      const device = await (await fetch(url + "/api/v1/devices", {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "bench" }),
      })).json();
      const check = await (await fetch(url + "/api/v1/auth/validate-device", {
        method: "POST",
        headers: { authorization: `Bearer ${GW}`, "content-type": "application/json" },
        body: JSON.stringify({ device_id: device.device_id, token: device.token, client_version: "bench" }),
      })).json();
      if (check.valid !== true || !check.assignment) {
        throw new Error("validation did not succeed with an assignment: " + JSON.stringify(check));
      }
      wrk(url, device, dir); // warm-up (JIT, connection pool)
      // The backend's own CPU per request: unlike requests/s, it barely moves when other work shares the cores.
      const cpu0 = treeCpu(child.pid);
      const r = wrk(url, device, dir);
      const cpuMsPerReq = ((treeCpu(child.pid) - cpu0) * 1000) / (r.rps * seconds);
      results.push({ database, runtime: rt, ...r, cpuMsPerReq, raw: undefined });
      console.error(
        `${database}/${rt}: ${r.rps.toFixed(0)} req/s p50 ${r.p50} ms p99 ${r.p99} ms, backend CPU ${
          cpuMsPerReq.toFixed(3)
        } ms/req, non-2xx ${r.non2xx}`,
      );
    } catch (e) {
      // One runtime that fails is a finding of its own; the others are still measured.
      results.push({ database, runtime: rt, error: e.message.split("\n")[0].slice(0, 300) });
      console.error(`${database}/${rt}: FAILED ${e.message.split("\n").slice(0, 6).join("\n")}`);
    } finally {
      if (child) await stop(child);
      rmSync(dir, { recursive: true, force: true });
      if (sql) {
        await sql.unsafe(`drop database if exists ${sql.dbName} with (force)`);
        await sql.end();
      }
    }
  }
}

const date = new Date().toISOString();
const md = [
  `validate-device, ${seconds} s per row after a warm-up, wrk -t1 -c${connections}, ${cpus().length} cores (${
    cpus()[0]?.model ?? "?"
  }), ${date}`,
  "",
  "| database | runtime | requests/s | p50 ms | p99 ms | backend CPU ms/req | non-2xx |",
  "|---|---|---:|---:|---:|---:|---:|",
];
for (const r of results) {
  if (r.error) {
    md.push(`| ${r.database} | ${r.runtime} | failed: ${r.error.slice(0, 120).replace(/\|/g, "/")} | | | | |`);
    continue;
  }
  md.push(
    `| ${r.database} | ${r.runtime} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${
      r.cpuMsPerReq.toFixed(3)
    } | ${r.non2xx} |`,
  );
}
// Issue 17's target for the control plane: Node on PostgreSQL (Bun and Deno were already past it).
const nodePg = results.find((r) => r.database === "postgres" && r.runtime === "node" && !r.error);
if (nodePg) {
  const met = nodePg.rps >= GOALS.validateRps && nodePg.p99 < GOALS.validateP99Ms;
  md.push(
    "",
    `target: Node on PostgreSQL ≥ 5,000 validate-device/s with p99 < 10 ms: ${nodePg.rps.toFixed(0)}/s, p99 ${
      nodePg.p99.toFixed(2)
    } ms: ${met ? "met" : "**missed**"}`,
  );
}
console.log("\n" + md.join("\n"));
mkdirSync(join(root, "bench/results"), { recursive: true });
const file = argValue("out", join(root, "bench/results", `validate-device-${date.slice(0, 10)}.json`));
writeFileSync(
  file,
  JSON.stringify({ date, seconds, connections, cores: cpus().length, results, markdown: md.join("\n") }, null, 2) + "\n",
);
console.log(`\nwritten ${file}`);
process.exit(results.some((r) => r.error) ? 1 : 0);
