// HTTVPS as a user runs it: `httvps backend` (PGlite in a temp DATA_DIR), `httvps gateway`,
// `httvps connect`, each a process of its own on the runtime under test, devices and nodes
// made through the admin API.
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, start } from "./procs.mjs";

export const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";
export const GATEWAY_API_KEY = "bench-gateway-key-0123456789abcdef";

/** `httvps …args` on a runtime; `nodeFlags` go to node itself (--cpu-prof). */
export function httvpsCommand(root, rt, args, nodeFlags = []) {
  const main = join(root, "cli/main.ts");
  if (rt === "bun") return [join(root, "node_modules/.bin/bun"), [...nodeFlags, main, ...args]];
  if (rt === "deno") return [join(root, "node_modules/.bin/deno"), ["run", "-A", main, ...args]];
  return [process.execPath, [...nodeFlags, join(root, "bin/httvps.mjs"), ...args]];
}

/** Only what we set: nothing of a developer's .env or HTTVPS_* settings leaks into a row. */
function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(BACKEND_|GATEWAY_|DATABASE_URL|DATA_DIR|ADMIN_TOKEN|MIGRATE_ON_START|LOG_LEVEL|NODE_|SESSION_|npm_)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** `httvps backend` on PGlite in `dir`/data, on `rt` (Node unless told). */
export async function startBackend(root, dir, rt = "node") {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const [cmd, argv] = httvpsCommand(root, rt, ["backend"]);
  const env = cleanEnv({
    BACKEND_HOST: "127.0.0.1",
    BACKEND_PORT: String(port),
    DATA_DIR: join(dir, "data"),
    ADMIN_TOKEN,
    GATEWAY_API_KEY,
    LOG_LEVEL: "warn",
  });
  // cwd = the temp dir: no .env of the work tree is read.
  const proc = await start("backend", cmd, argv, {
    env,
    cwd: dir,
    timeoutMs: 120_000,
    ready: async () => (await fetch(url + "/readyz")).ok,
  });
  const admin = async (method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  };
  return { proc, url, admin };
}

/**
 * `httvps gateway` on `rt` in `mode` (direct: loopback allowed; outline: the device's node).
 * LOG_LEVEL=info as in production: one line per session, none per stream.
 */
export async function startGateway(root, rt, { mode, backendUrl, certs, dir, nodeFlags = [], ulimit, env: extra = {} }) {
  const [cmd, argv] = httvpsCommand(root, rt, ["gateway"], nodeFlags);
  const env = cleanEnv({
    LOG_LEVEL: "info",
    DATA_DIR: join(dir, "data"),
    GATEWAY_LISTEN_ADDR: "127.0.0.1:0",
    GATEWAY_TLS_CERT: certs.cert,
    GATEWAY_TLS_KEY: certs.key,
    GATEWAY_BACKEND_URL: backendUrl,
    GATEWAY_API_KEY,
    GATEWAY_UPSTREAM_MODE: mode,
    GATEWAY_DIRECT_ALLOW: "127.0.0.0/8",
    GATEWAY_DRAIN_TIMEOUT: "1s",
    GATEWAY_METRICS: "0",
    ...extra,
  });
  const proc = await start(`gateway ${rt} ${mode}`, cmd, argv, {
    env,
    cwd: dir,
    ready: /"gateway listening"[^\n]*"address":"127\.0\.0\.1:(\d+)"/,
    timeoutMs: 60_000,
    ulimit,
  });
  return { proc, port: Number(proc.match[1]) };
}

/** The sha256 pin of the self-signed certificate, as access keys carry it. */
export function certPin(certFile) {
  return createHash("sha256").update(new X509Certificate(readFileSync(certFile)).raw).digest("hex");
}

/**
 * `httvps connect` with the device's key (in a file, off the process list) over `transport`;
 * resolves once connected over that transport (a fallback to the other one would not match).
 */
export async function startClient(root, rt, { gatewayPort, device, certs, dir, nodeFlags = [], transport = "ws" }) {
  const key = `httvps://${device.device_id}:${encodeURIComponent(device.token)}@127.0.0.1:${gatewayPort}/ws?pin=sha256:${
    certPin(certs.cert)
  }&transport=${transport}#bench`;
  const keyFile = join(dir, `key-${rt}-${gatewayPort}-${transport}`);
  writeFileSync(keyFile, key, { mode: 0o600 });
  const [cmd, argv] = httvpsCommand(
    root,
    rt,
    ["connect", "--key-file", keyFile, "--socks", "127.0.0.1:0", "--http", "off"],
    nodeFlags,
  );
  const proc = await start(`client ${rt}`, cmd, argv, {
    env: cleanEnv({ LOG_LEVEL: "warn" }),
    cwd: dir,
    ready: new RegExp(`SOCKS5 proxy on 127\\.0\\.0\\.1:(\\d+)[\\s\\S]*httvps: connected to \\S+ over ${transport}`),
    timeoutMs: 60_000,
  });
  return { proc, socksPort: Number(proc.match[1]) };
}
