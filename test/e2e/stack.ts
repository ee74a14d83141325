// One end-to-end stack for the e2e and stress tests: a dev certificate in a temporary
// directory, a control plane, and gateways (in this process, or as `httvps` processes on the
// runtime under test) started from one set of variables, plus `httvps connect` clients with
// their access keys. close() stops all of it, in order, and removes the directory.
//
//   const stack = await startStack({ upstream: "direct", env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" } });
//   const gw = await stack.gateway();
//   const key = stack.accessKey(await stack.backend.device(), gw.port);
//
// The test credentials live here too, once: every backend and gateway the tests start shares them.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { type BackendApp, type BackendOptions, createBackendApp } from "../../backend/app.ts";
import type { Database } from "../../backend/db/database.ts";
import { testDatabases, testDatabaseUrl } from "../../backend/db/testing.ts";
import { type Env, loadConfig } from "../../config/config.ts";
import type { Assignment, BackendClient } from "../../gateway/auth.ts";
import { createDevCertificate, type DevCertificate, pemToDer } from "../../gateway/certs.ts";
import { type GatewayDeps, type RunningGateway, startGateway } from "../../gateway/gateway.ts";
import { type Level, memoryLogger } from "../../logging/logger.ts";
import { formatAccessKey, type TransportKind } from "../../protocol/access-key.ts";
import { serveHttp } from "../../runtime/index.ts";
import { freePort } from "../../shadowsocks/ss-server.testing.ts";
import { runHttvps, startHttvps } from "../cli.ts";

// ---- the test credentials ----

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";
export const GATEWAY_API_KEY = "test-gateway-key-0123456789abcdef";
/** The Outline nodes' (ss-servers') password. */
export const NODE_PASSWORD = "test-node-Pa55word";
/** The one device a stub backend knows. */
export const TEST_DEVICE: Device = { device_id: "test-device", token: "test-device-token" };

export type Device = { device_id: string; token: string };
/** A device's app path ("/" and 22 characters) and Shadowsocks key (docs/08-clients.md). */
export interface AppIdentity {
  path: string;
  cipher: string;
  secret: string;
}
/** A device of the real backend: its app identity too. */
export type AppDevice = Device & { name: string; app: AppIdentity };

/** What `httvps gateway` logs once it listens; group 1 is its port. */
export const GATEWAY_READY = /"gateway listening".*"address":"127\.0\.0\.1:(\d+)"/;
export const BACKEND_READY = /"backend listening"/;

/**
 * A backend client in place of the control plane, for tests of the data path: it knows
 * TEST_DEVICE (a wrong token is bad_token) and assigns it `assignment`; it knows no app path;
 * reports are accepted.
 */
export function stubBackend(assignment: Assignment | null = null): BackendClient {
  return {
    validateDevice(req) {
      if (req.device_id !== TEST_DEVICE.device_id) return Promise.resolve({ ok: false, code: "unknown_device", message: "no" });
      if (req.token !== TEST_DEVICE.token) return Promise.resolve({ ok: false, code: "bad_token", message: "no" });
      return Promise.resolve({
        ok: true,
        device: { id: req.device_id, name: "d", max_sessions: null, data_quota_bytes: null, expires_at: null },
        assignment,
      });
    },
    validateApp: () => Promise.resolve({ ok: false, code: "unknown_device", message: "no" }),
    report: (body) => Promise.resolve(body.events.length),
  };
}

// ---- the control plane ----

/**
 * A fresh database on TEST_DATABASE_URL's server, for backends run as processes (they take a
 * URL, where backend/db/testing.ts gives a schema); drop() removes it, connections and all.
 */
export async function scratchDatabase(prefix = "httvps_e2e"): Promise<{ url: string; drop(): Promise<void> }> {
  if (!testDatabaseUrl) throw new Error("scratchDatabase needs TEST_DATABASE_URL");
  const server = testDatabaseUrl;
  const name = `${prefix}_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
  const admin = postgres(server, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: server.replace(/\/[^/?]*(\?.*)?$/, `/${name}`),
    async drop() {
      const a = postgres(server, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** The admin API of a backend, whichever way it runs. Answers are `any`: tests read them field by field. */
export interface AdminApi {
  url: string;
  /** One request; the answer's JSON (its text when it is not JSON). */
  // deno-lint-ignore no-explicit-any
  api(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: any }>;
  /** One request that must succeed (status < 300); its JSON. */
  // deno-lint-ignore no-explicit-any
  admin(method: string, path: string, body?: unknown): Promise<any>;
  /** A new device (201 Created), with its token and app identity. */
  device(fields?: object): Promise<AppDevice>;
}

function adminApi(url: string, send: (path: string, init: RequestInit) => Promise<Response>): AdminApi {
  const api: AdminApi["api"] = async (method, path, body, token = ADMIN_TOKEN) => {
    const res = await send(path, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    try {
      return { status: res.status, json: JSON.parse(text) };
    } catch {
      return { status: res.status, json: text };
    }
  };
  return {
    url,
    api,
    async admin(method, path, body) {
      const r = await api(method, path, body);
      assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json;
    },
    async device(fields = {}) {
      const r = await api("POST", "/api/v1/devices", { name: "e2e", ...fields });
      assert.equal(r.status, 201, `POST /api/v1/devices: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json as AppDevice;
    },
  };
}

/** The real backend app on PGlite in this process; requests from the tests go to it in process. */
export interface AppBackend extends AdminApi {
  app: BackendApp;
  db: Database;
}

/** `httvps backend` as a process; stop() and start() again keep its port, database and data directory. */
export interface BackendProcess extends AdminApi {
  port: number;
  /** The current process (a new one after start()). */
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
  start(): Promise<void>;
}

export interface GatewayProcess {
  port: number;
  child: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

/** A peer program (ss-local + ss-v2ray-plugin, v2ray) with its SOCKS5 port. */
export interface PeerProcess {
  socks: number;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** `httvps connect`; `http` is undefined when its HTTP proxy is off. */
export interface ClientProcess {
  socks: number;
  http: number | undefined;
  child: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

type BackendChoice = "app" | "fetch" | "none" | BackendClient;

export interface StackOptions<B extends BackendChoice> {
  /** GATEWAY_UPSTREAM_MODE of every gateway; unset, the configuration's default. */
  upstream?: "fake" | "direct" | "outline";
  /** More gateway variables, for every gateway of the stack (env(extra) adds per gateway). */
  env?: Record<string, string>;
  /** LOG_LEVEL, and the level of the in-process gateways' memory logger. Default warn. */
  logLevel?: Level;
  /**
   * The control plane:
   * - "app" (default): the real backend app (PGlite) served over HTTP on loopback;
   * - "fetch": the same app, called in process by the gateways (nothing listens);
   * - a BackendClient (stubBackend()): the gateways ask it, no backend at all;
   * - "none": none yet; backendProcess() starts `httvps backend`, and the gateways use the first.
   */
  backend?: B;
  /** More of the app's dependencies (createBackendApp). */
  app?: Partial<BackendOptions>;
  /** Sees every request to the served app before the app does (to count or read them). */
  observe?: (req: Request) => void | Promise<void>;
  /** "cli": the certificate is made by `httvps certs dev`, as an operator makes one. Default: in process. */
  certificate?: "process" | "cli";
}

export interface Stack<B extends BackendChoice> {
  /** The temporary directory: the certificate, key files, data directories; removed by close(). */
  dir: string;
  cert: DevCertificate;
  certFile: string;
  keyFile: string;
  backend: B extends "app" | "fetch" ? AppBackend : undefined;
  /** The gateway variables (for a process, or for config()); `extra` last. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** env(extra), parsed as a gateway in this process reads it. */
  config(extra?: Record<string, string>): Env;
  /** The deps an in-process gateway gets: the logger, the stub or in-process backend; `more` last. */
  deps(more?: GatewayDeps): GatewayDeps;
  /** A gateway in this process (listening on 127.0.0.1:0 unless `extra` says otherwise); closed by close(). */
  gateway(extra?: Record<string, string>, deps?: GatewayDeps): Promise<RunningGateway>;
  /** A gateway for the length of `fn`. */
  withGateway(extra: Record<string, string>, fn: (gw: RunningGateway) => Promise<void>, deps?: GatewayDeps): Promise<void>;
  /** `httvps gateway` on the runtime under test, with env(extra). */
  gatewayProcess(extra?: Record<string, string>): Promise<GatewayProcess>;
  /** `httvps backend` on the runtime under test (PGlite in its own data directory unless DATABASE_URL is given). */
  backendProcess(extra?: Record<string, string>): Promise<BackendProcess>;
  /** An access key for `device` at the gateway on 127.0.0.1:port, pinned to the stack's certificate. */
  accessKey(device: Device, port: number, transport?: TransportKind): string;
  /** One HTTPS GET to the gateway on 127.0.0.1:port (its own connection, the stack's certificate trusted). */
  get(port: number, path: string, headers?: Record<string, string>): Promise<HttpsAnswer>;
  /** One HTTPS GET of a whole URL, as an app fetches a link (its own connection, the stack's certificate trusted). */
  getUrl(url: string, headers?: Record<string, string>): Promise<HttpsAnswer>;
  /** `httvps connect` with the key in a file; resolves once its proxies listen. */
  client(key: string, opts?: { http?: boolean; flags?: string[]; logLevel?: Level }): Promise<ClientProcess>;
  /**
   * Debian's ss-local with ss-v2ray-plugin (`tls;host=localhost;path=<P>/tcp;cert=<stack cert>;mux=N`)
   * against the gateway on 127.0.0.1:port; resolves once its SOCKS5 port listens.
   */
  ssLocal(port: number, app: AppIdentity, mux: 0 | 1): Promise<PeerProcess>;
  /** Debian's ss-local with ss-v2ray-plugin against a server as a link names it; resolves once its SOCKS5 port listens. */
  ssLocalTo(server: SsPluginServer): Promise<PeerProcess>;
  /**
   * Debian's v2ray (4.34) with a shadowsocks outbound over ws + tls to the device's path
   * (v2ray-core v4.34 `infra/conf`), `mux.enabled` as given; resolves once its SOCKS5 port listens.
   */
  v2ray(port: number, app: AppIdentity, mux: boolean): Promise<PeerProcess>;
  /** Stop everything the stack started, newest first, and remove the directory. Idempotent. */
  close(): Promise<void>;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/** Start `cmd` (with `env` added to ours) and wait until it listens on 127.0.0.1:port (it must not exit first). */
export async function startPeer(
  cmd: string,
  args: string[],
  port: number,
  env: Record<string, string> = {},
  /** Also wait until a child of the peer listens (ss-local's SIP003 plugin, started after ss-local itself listens). */
  pluginChild = false,
): Promise<PeerProcess> {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  child.stdout!.on("data", (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on("data", (d) => (out = (out + d).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  const deadline = Date.now() + 15_000;
  while (!(await listening(port)) || (pluginChild && !(await childListens(child.pid!)))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`${cmd} did not listen on ${port} (exit ${child.exitCode}): ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { socks: port, child, output: () => out, stop };
}

/**
 * Whether a child process of `pid` holds a listening TCP socket (Linux /proc). ss-local listens
 * before its plugin does, and a connection in between is closed at once ("Empty reply from
 * server"): on a loaded machine the plugin, a Go program, may take a while to listen.
 */
async function childListens(pid: number): Promise<boolean> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "")).trim();
  if (!children) return false;
  const sockets = new Set<string>();
  for (const kid of children.split(/\s+/)) {
    for (const fd of await readdir(`/proc/${kid}/fd`).catch(() => [] as string[])) {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${kid}/fd/${fd}`).catch(() => ""));
      if (m?.[1]) sockets.add(m[1]);
    }
  }
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of (await readFile(table, "utf8").catch(() => "")).split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === "0A" && sockets.has(cols[9] ?? "")) return true; // 0A: LISTEN; column 9: the inode
    }
  }
  return false;
}

/** A Shadowsocks + v2ray-plugin server as a link or profile names it (SIP002, Clash, sing-box, Outline). */
export interface SsPluginServer {
  host: string;
  port: number;
  method: string;
  password: string;
  /**
   * The plugin's SIP003 options as the link carries them (`mode=websocket;tls;host=…;path=…;mux=N`,
   * SIP003-escaped); `cert=` with the stack's certificate is added, since the apps trust their
   * system's authorities and the stack's certificate is self-signed.
   */
  pluginOptions: string;
}

/** One HTTPS GET on its own connection, the body whole. */
function httpsGet(
  to: { host: string; port: number; path: string },
  ca: string,
  headers: Record<string, string>,
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    https
      .get({ ...to, headers, ca, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          const flat: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k] = String(v);
          resolve({ status: res.statusCode ?? 0, headers: flat, body, text: body.toString("utf8") });
        });
      })
      .on("error", reject);
  });
}

export interface HttpsAnswer {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: Uint8Array;
  text: string;
}

const CLIENT_READY = /SOCKS5 proxy on 127\.0\.0\.1:(\d+)[\s\S]*HTTP proxy on 127\.0\.0\.1:(\d+)/;
const CLIENT_READY_SOCKS = /SOCKS5 proxy on 127\.0\.0\.1:(\d+)/;

async function sha256Hex(der: Uint8Array<ArrayBuffer>): Promise<string> {
  return Buffer.from(await crypto.subtle.digest("SHA-256", der)).toString("hex");
}

export async function startStack<B extends BackendChoice = "app">(opts: StackOptions<B> = {}): Promise<Stack<B>> {
  const logLevel = opts.logLevel ?? "warn";
  const choice: BackendChoice = opts.backend ?? "app";
  const stops: Array<() => Promise<unknown>> = [];
  let seq = 0;
  const dir = await mkdtemp(join(tmpdir(), "httvps-e2e-"));
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      let failure: unknown;
      for (const stop of stops.reverse()) {
        try {
          await stop();
        } catch (e) {
          failure ??= e;
        }
      }
      await rm(dir, { recursive: true, force: true });
      if (failure) throw failure;
    })();
    return closing;
  };

  try {
    let cert: DevCertificate;
    let certFile = join(dir, "cert.pem");
    let keyFile = join(dir, "key.pem");
    if (opts.certificate === "cli") {
      const made = await runHttvps(["certs", "dev", "--dir", join(dir, "certs")], {});
      assert.equal(made.code, 0, made.stderr);
      [certFile, keyFile] = [join(dir, "certs", "cert.pem"), join(dir, "certs", "key.pem")];
      const [certPem, keyPem] = [await readFile(certFile, "utf8"), await readFile(keyFile, "utf8")];
      cert = { certPem, keyPem, sha256: await sha256Hex(pemToDer(certPem)!) };
    } else {
      cert = await createDevCertificate();
      await writeFile(certFile, cert.certPem);
      await writeFile(keyFile, cert.keyPem, { mode: 0o600 });
    }

    let backend: AppBackend | undefined;
    /** The URL the gateways are given (a process backend's, once started). */
    let backendUrl: string | undefined;
    if (choice === "app" || choice === "fetch") {
      const db = await testDatabases()[0]!.open();
      stops.push(() => db.close());
      const app = createBackendApp({
        db,
        adminToken: ADMIN_TOKEN,
        gatewayApiKey: GATEWAY_API_KEY,
        sessionStaleAfterMs: 60_000,
        ...opts.app,
      });
      if (choice === "app") {
        const observe = opts.observe;
        const server = await serveHttp({
          hostname: "127.0.0.1",
          port: 0,
          fetch: async (req) => {
            await observe?.(req);
            return app.fetch(req);
          },
        });
        stops.push(() => server.close());
        backendUrl = `http://127.0.0.1:${server.port}`;
      } else backendUrl = "http://backend.invalid";
      backend = { app, db, ...adminApi(backendUrl, async (path, init) => await app.request(path, init)) };
    }

    const env = (extra: Record<string, string> = {}): Record<string, string> => ({
      LOG_LEVEL: logLevel,
      GATEWAY_LISTEN_ADDR: "127.0.0.1:0",
      GATEWAY_TLS_CERT: certFile,
      GATEWAY_TLS_KEY: keyFile,
      // The in-process gateways' data directory: their decoy seed (and so their site) lives there.
      DATA_DIR: join(dir, "data"),
      ...(typeof choice === "object" ? {} : { GATEWAY_API_KEY }),
      ...(backendUrl ? { GATEWAY_BACKEND_URL: backendUrl } : {}),
      ...(opts.upstream ? { GATEWAY_UPSTREAM_MODE: opts.upstream } : {}),
      ...opts.env,
      ...extra,
    });
    const deps = (more: GatewayDeps = {}): GatewayDeps => ({
      logger: memoryLogger(logLevel),
      ...(typeof choice === "object" ? { backend: choice } : {}),
      ...(choice === "fetch" ? { backendFetch: async (req: Request) => await backend!.app.fetch(req) } : {}),
      ...more,
    });
    const gateway = async (extra: Record<string, string> = {}, more: GatewayDeps = {}) => {
      const gw = await startGateway(loadConfig(env(extra)), deps(more));
      stops.push(() => gw.close());
      return gw;
    };

    const stack: Stack<BackendChoice> = {
      dir,
      cert,
      certFile,
      keyFile,
      backend,
      env,
      config: (extra) => loadConfig(env(extra)),
      deps,
      gateway,
      async withGateway(extra, fn, more) {
        const gw = await gateway(extra, more);
        try {
          await fn(gw);
        } finally {
          await gw.close();
        }
      },

      async gatewayProcess(extra = {}) {
        const n = ++seq;
        const proc = await startHttvps(["gateway"], env({ DATA_DIR: join(dir, `data-gateway-${n}`), ...extra }), GATEWAY_READY, {
          timeoutMs: 60_000,
        });
        stops.push(() => proc.stop());
        return { port: Number(proc.match[1]), child: proc.child, output: proc.output, stop: proc.stop };
      },

      async backendProcess(extra = {}) {
        const port = extra.BACKEND_PORT ? Number(extra.BACKEND_PORT) : await freePort();
        const url = `http://127.0.0.1:${port}`;
        const vars = {
          ADMIN_TOKEN,
          GATEWAY_API_KEY,
          BACKEND_HOST: "127.0.0.1",
          BACKEND_PORT: String(port),
          DATA_DIR: join(dir, `data-backend-${++seq}`),
          LOG_LEVEL: logLevel,
          ...extra,
        };
        let proc = await startHttvps(["backend"], vars, BACKEND_READY, { timeoutMs: 120_000 });
        stops.push(() => proc.stop());
        backendUrl ??= url;
        const api = adminApi(url, (path, init) =>
          fetch(url + path, init).catch((e: Error) => {
            // A backend that died says why in its output: show its end with the failed request.
            const c = proc.child;
            throw new Error(
              `${init.method} ${path}: ${e.message} (${(e.cause as Error)?.message}); backend exit ${
                c.exitCode ?? c.signalCode
              }, its output ends:\n${proc.output().slice(-4000)}`,
            );
          }));
        return {
          ...api,
          port,
          get child() {
            return proc.child;
          },
          output: () => proc.output(),
          stop: () => proc.stop(),
          async start() {
            proc = await startHttvps(["backend"], vars, BACKEND_READY, { timeoutMs: 120_000 });
          },
        };
      },

      accessKey: (device, port, transport = "ws") =>
        formatAccessKey({
          host: "127.0.0.1",
          port,
          deviceId: device.device_id,
          token: device.token,
          pin: cert.sha256,
          name: "e2e",
          transport,
        }),

      get: (port, path, headers = {}) => httpsGet({ host: "127.0.0.1", port, path }, cert.certPem, headers),
      getUrl(url, headers = {}) {
        const u = new URL(url);
        assert.equal(u.protocol, "https:", url);
        return httpsGet({ host: u.hostname, port: Number(u.port || 443), path: u.pathname + u.search }, cert.certPem, headers);
      },

      async client(key, { http = true, flags = [], logLevel = "info" } = {}) {
        const file = join(dir, `key-${++seq}`);
        await writeFile(file, key + "\n", { mode: 0o600 });
        const proc = await startHttvps(
          ["connect", "--key-file", file, "--socks", "127.0.0.1:0", "--http", http ? "127.0.0.1:0" : "off", ...flags],
          { LOG_LEVEL: logLevel },
          http ? CLIENT_READY : CLIENT_READY_SOCKS,
          { timeoutMs: 30_000 },
        );
        stops.push(() => proc.stop());
        return {
          socks: Number(proc.match[1]),
          http: http ? Number(proc.match[2]) : undefined,
          child: proc.child,
          output: proc.output,
          stop: proc.stop,
        };
      },

      ssLocal: (port, app, mux) =>
        stack.ssLocalTo({
          host: "127.0.0.1",
          port,
          method: app.cipher,
          password: app.secret,
          pluginOptions: `tls;host=localhost;path=${app.path}/tcp;mux=${mux}`,
        }),

      async ssLocalTo(server) {
        const socks = await freePort();
        const peer = await startPeer(
          "ss-local",
          [
            ...["-s", server.host, "-p", String(server.port), "-b", "127.0.0.1", "-l", String(socks)],
            ...["-k", server.password, "-m", server.method],
            ...["--plugin", "ss-v2ray-plugin", "--plugin-opts", `${server.pluginOptions};cert=${certFile}`],
          ],
          socks,
          {},
          true,
        );
        stops.push(() => peer.stop());
        return peer;
      },

      async v2ray(port, app, mux) {
        const socks = await freePort();
        const config = {
          log: { loglevel: "warning" },
          inbounds: [{ listen: "127.0.0.1", port: socks, protocol: "socks", settings: { auth: "noauth", udp: true } }],
          outbounds: [{
            protocol: "shadowsocks",
            settings: { servers: [{ address: "127.0.0.1", port, method: app.cipher, password: app.secret }] },
            streamSettings: {
              network: "ws",
              security: "tls",
              wsSettings: { path: `${app.path}/tcp`, headers: { Host: "localhost" } },
              tlsSettings: { serverName: "localhost", certificates: [{ usage: "verify", certificateFile: certFile }] },
            },
            mux: { enabled: mux },
          }],
        };
        const file = join(dir, `v2ray-${++seq}.json`);
        await writeFile(file, JSON.stringify(config));
        const peer = await startPeer("v2ray", ["-config", file], socks);
        stops.push(() => peer.stop());
        return peer;
      },

      close,
    };
    return stack as Stack<B>;
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}
