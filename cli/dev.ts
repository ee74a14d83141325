// `npm start`: the whole system on one machine in one process — backend (PGlite unless
// DATABASE_URL), gateway (self-signed certificate created when missing), a demo device with
// its access key and its apps' links (docs/08) — and the spec's wscat check printed ready to paste.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Env } from "../config/config.ts";
import type { Logger } from "../logging/logger.ts";
import { startBackend } from "../backend/server.ts";
import { createDevCertificate } from "../gateway/certs.ts";
import { startGateway } from "../gateway/gateway.ts";
import { runtime } from "../runtime/index.ts";
import { accessKeyHook, appLinksHook, gatewayAddress } from "./access-key-hook.ts";

/** Create a self-signed localhost certificate at the configured paths when neither file exists. */
export async function ensureDevCertificate(env: Env, log: Logger): Promise<void> {
  const certExists = existsSync(env.GATEWAY_TLS_CERT);
  const keyExists = existsSync(env.GATEWAY_TLS_KEY);
  if (certExists || keyExists) return; // one present: leave it to the gateway to complain precisely
  const c = await createDevCertificate();
  mkdirSync(dirname(env.GATEWAY_TLS_KEY), { recursive: true });
  mkdirSync(dirname(env.GATEWAY_TLS_CERT), { recursive: true });
  writeFileSync(env.GATEWAY_TLS_KEY, c.keyPem, { mode: 0o600 });
  chmodSync(env.GATEWAY_TLS_KEY, 0o600);
  writeFileSync(env.GATEWAY_TLS_CERT, c.certPem);
  log.warn("created a self-signed certificate for localhost", { cert: env.GATEWAY_TLS_CERT, sha256: c.sha256 });
}

interface DemoDevice {
  device_id: string;
  token: string;
  /** The device's app identity (GET /api/v1/devices/{id}/app), for its apps' links. */
  app: { path: string; cipher: string; secret: string };
}

/** The demo device survives restarts: its token is kept in DATA_DIR (0600), as dev-only convenience. */
async function demoDevice(env: Env, backendUrl: string, adminToken: string): Promise<DemoDevice> {
  const file = join(env.DATA_DIR, "demo-device.json");
  const api = (method: string, path: string, body?: unknown) =>
    fetch(backendUrl + path, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  try {
    const saved = JSON.parse(readFileSync(file, "utf8")) as Omit<DemoDevice, "app">;
    const r = await api("GET", `/api/v1/devices/${saved.device_id}`);
    const app = await api("GET", `/api/v1/devices/${saved.device_id}/app`);
    if (r.ok && (await r.json()).status === "active" && app.ok) {
      return { device_id: saved.device_id, token: saved.token, app: await app.json() };
    }
  } catch {
    // none yet, or unreadable: make a new one
  }
  const r = await api("POST", "/api/v1/devices", { name: "demo" });
  if (!r.ok) throw new Error(`could not create the demo device: HTTP ${r.status}`);
  const d = (await r.json()) as DemoDevice;
  mkdirSync(env.DATA_DIR, { recursive: true });
  writeFileSync(file, JSON.stringify({ device_id: d.device_id, token: d.token }) + "\n", { mode: 0o600 });
  return { device_id: d.device_id, token: d.token, app: d.app };
}

export async function startDevStack(env: Env, opts: { logger: Logger; print: (line: string) => void }) {
  const log = opts.logger;
  await ensureDevCertificate(env, log);
  // The console's access keys point at the gateway, whose port is known once it listens.
  let linksEnv = env;
  const backend = await startBackend(env, {
    logger: log.child({ service: "backend" }),
    deviceLinks: { accessKey: (d) => accessKeyHook(linksEnv)(d), appLinks: (d) => appLinksHook(linksEnv)(d) },
  });
  let gateway;
  try {
    gateway = await startGateway(
      {
        ...env,
        GATEWAY_BACKEND_URL: env.GATEWAY_BACKEND_URL ?? backend.url,
        GATEWAY_API_KEY: env.GATEWAY_API_KEY ?? backend.secrets.gatewayApiKey,
      },
      { logger: log.child({ service: "gateway" }) },
    );
  } catch (e) {
    await backend.close();
    throw e;
  }
  const device = await demoDevice(env, backend.url, backend.secrets.adminToken);
  const { host, port, path } = gatewayAddress({
    ...env,
    GATEWAY_LISTEN_ADDR: { ...env.GATEWAY_LISTEN_ADDR, port: gateway.port },
  });
  const wsUrl = `wss://${host}:${port}${path}`;
  const listening: Env = { ...env, GATEWAY_LISTEN_ADDR: { ...env.GATEWAY_LISTEN_ADDR, port: gateway.port } };
  linksEnv = listening;
  const accessKey = accessKeyHook(listening)({ ...device, name: "demo" });
  const links = appLinksHook(listening)({ name: "demo", app: device.app });
  const p = opts.print;
  p("");
  p(`HTTVPS is up (runtime: ${runtime})`);
  p(`  backend   ${backend.url}   database: ${env.DATABASE_URL ? "PostgreSQL" : `PGlite in ${env.DATA_DIR}`}`);
  p(`  gateway   ${wsUrl}   upstream: ${env.GATEWAY_UPSTREAM_MODE}   website: https://${host}:${port}/`);
  p(`  console   ${backend.url}/admin   (sign in with ADMIN_TOKEN)`);
  p(`  admin     ADMIN_TOKEN ${env.ADMIN_TOKEN ? "from the environment" : `in ${join(env.DATA_DIR, "admin-token")}`}`);
  p("");
  p("demo device");
  p(`  device_id     ${device.device_id}`);
  p(`  token         ${device.token}`);
  p(`  access key    ${accessKey}`);
  p("  the apps' links (docs/08-clients.md; they need a certificate the app trusts):");
  p(`  ssconf        ${links.ssconf}`);
  p(`  ss_url        ${links.ss_url}`);
  p(`  subscription  ${links.subscription_url}`);
  p("");
  p("the spec's manual check — paste each line after the prompt:");
  p(`  npx wscat --no-check -c ${wsUrl}`);
  p(`  {"type":"hello","device_id":"${device.device_id}","token":"${device.token}","client_version":"1.0"}`);
  p(`  {"type":"stream_open","stream_id":"s1"}`);
  p(`  {"type":"stream_data","stream_id":"s1","data":"aGVsbG8="}`);
  p("");
  p("the client: npx httvps connect '<access key>'   then: curl --socks5-hostname 127.0.0.1:1080 …");
  p("Ctrl-C stops everything.");
  return {
    gatewayPort: gateway.port,
    backendUrl: backend.url,
    device,
    async close() {
      await gateway.drain();
      await backend.close();
    },
  };
}
