// Start the control plane: secrets, database, migrations, the API, the HTTP listener.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, type Env } from "../config/config.ts";
import { HTTVPS_VERSION } from "../config/version.ts";
import { createLogger, type Logger } from "../logging/logger.ts";
import { formatHostPort } from "../protocol/ip-address.ts";
import { runtime, serveHttp } from "../runtime/index.ts";
import { createBackendApp } from "./app.ts";
import type { DeviceLinks } from "./console/page-types.ts";
import type { Database } from "./db/database.ts";
import { migrate, migrationStatus } from "./db/migrate.ts";
import { openDatabase } from "./db/open.ts";
import { ADMIN_TOKEN_FILE, ensureSecretFile, GATEWAY_KEY_FILE } from "../config/secret-files.ts";
import { startMaintenance } from "./maintenance.ts";
import { startNodeHealth } from "./node-health.ts";
import { createOutlineKeys } from "./outline-keys.ts";

export interface BackendSecrets {
  adminToken: string;
  gatewayApiKey: string;
}

/**
 * ADMIN_TOKEN and GATEWAY_API_KEY from the environment; on the embedded default, a
 * missing one is generated once into DATA_DIR. A real deployment (DATABASE_URL) must set both.
 */
export function resolveSecrets(env: Env, log?: Logger): BackendSecrets {
  const pick = (value: string | undefined, variable: string, file: string): string => {
    if (value) return value;
    if (env.DATABASE_URL) throw new ConfigError(variable, "required when DATABASE_URL is set (at least 16 characters)");
    const s = ensureSecretFile(env.DATA_DIR, file);
    if (s.created) log?.info(`generated ${variable}`, { path: s.path });
    return s.value;
  };
  return {
    adminToken: pick(env.ADMIN_TOKEN, "ADMIN_TOKEN", ADMIN_TOKEN_FILE),
    gatewayApiKey: pick(env.GATEWAY_API_KEY, "GATEWAY_API_KEY", GATEWAY_KEY_FILE),
  };
}

export class DataDirBusyError extends Error {
  readonly code = "data_dir_busy";
}

/** An embedded PGlite directory belongs to one process: a pid file says which. */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, "pglite.pid");
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, "utf8").trim());
    let alive = false;
    if (pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch {
        alive = false;
      }
    }
    if (alive) throw new DataDirBusyError(`${dataDir} is in use by process ${pid} (an embedded database belongs to one process)`);
  }
  writeFileSync(path, String(process.pid));
  return () => rmSync(path, { force: true });
}

export async function openBackendDatabase(
  env: Env,
  log: Logger,
  purpose: "serve" | "migrate",
): Promise<{ db: Database; release: () => void }> {
  const release = env.DATABASE_URL ? () => {} : lockDataDir(env.DATA_DIR);
  try {
    const db = await openDatabase({ databaseUrl: env.DATABASE_URL, dataDir: env.DATA_DIR });
    if (purpose === "serve") {
      if (!env.DATABASE_URL || env.MIGRATE_ON_START) {
        const ran = await migrate(db);
        if (ran.length) log.info("migrations applied", { migrations: ran });
      } else {
        const pending = (await migrationStatus(db)).filter((m) => m.state !== "applied");
        if (pending.length) {
          await db.close();
          throw new ConfigError(
            "MIGRATE_ON_START",
            `the database is not migrated (${
              pending.map((m) => `${m.name}: ${m.state}`).join(", ")
            }); run \`httvps migrate\` or set MIGRATE_ON_START=1`,
          );
        }
      }
    }
    return { db, release };
  } catch (e) {
    release();
    throw e;
  }
}

export interface RunningBackend {
  url: string;
  port: number;
  secrets: BackendSecrets;
  close(): Promise<void>;
}

export interface StartBackendOptions {
  logger?: Logger;
  /** The console's access keys and app links for new devices (the CLI builds them from the gateway variables). */
  deviceLinks?: DeviceLinks;
}

export async function startBackend(env: Env, opts: StartBackendOptions = {}): Promise<RunningBackend> {
  const log = opts.logger ?? createLogger(env.LOG_LEVEL, { service: "backend" });
  const secrets = resolveSecrets(env, log);
  const { db, release } = await openBackendDatabase(env, log, "serve");
  const health = startNodeHealth(db, {
    intervalMs: env.NODE_CHECK_INTERVAL,
    probeTarget: env.NODE_PROBE_TARGET,
    timeoutMs: env.GATEWAY_DIAL_TIMEOUT,
    staleAfterSec: env.SESSION_STALE_AFTER / 1000,
    logger: log,
  });
  const outlineKeys = createOutlineKeys(db, {
    logger: log,
    // validate-device must answer inside the gateway's own deadline, key or no key.
    createWaitMs: Math.max(250, Math.min(1500, env.GATEWAY_BACKEND_TIMEOUT - 500)),
  });
  // Changes an Outline server missed while it was away (data limits, deleted devices) are retried with the health checks' rhythm.
  const outlineSync = setInterval(() => void outlineKeys.sync(), env.NODE_CHECK_INTERVAL);
  (outlineSync as { unref?: () => void }).unref?.();
  const stopOutline = async () => {
    clearInterval(outlineSync);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([outlineKeys.settle(), new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
  };
  const maintenance = startMaintenance(db, {
    intervalMs: env.MAINTENANCE_INTERVAL,
    hourlyRetentionMs: env.USAGE_HOURLY_RETENTION,
    sessionRetentionMs: env.SESSION_RETENTION,
    nodeHealthRetentionMs: env.NODE_HEALTH_RETENTION,
    auditRetentionMs: env.AUDIT_RETENTION,
    adminSessionIdleMs: env.ADMIN_SESSION_IDLE,
    logger: log,
  });
  const app = createBackendApp({
    db,
    ...secrets,
    sessionStaleAfterMs: env.SESSION_STALE_AFTER,
    adminSessionIdleMs: env.ADMIN_SESSION_IDLE,
    adminSessionMaxMs: env.ADMIN_SESSION_MAX,
    logger: log,
    onNodesChanged: () => void health.checkAll(),
    outlineKeys,
    version: HTTVPS_VERSION,
    deviceLinks: opts.deviceLinks,
  });
  let server;
  try {
    // The client's address reaches the app as its env: the audit log and the sign-in rate limit read it.
    server = await serveHttp({
      hostname: env.BACKEND_HOST,
      port: env.BACKEND_PORT,
      fetch: (req, info) => app.fetch(req, { remoteAddress: info.remoteAddress }),
    });
  } catch (e) {
    await maintenance.stop();
    await stopOutline();
    await health.stop();
    await db.close();
    release();
    throw e;
  }
  const url = `http://${formatHostPort(env.BACKEND_HOST === "0.0.0.0" ? "127.0.0.1" : env.BACKEND_HOST, server.port)}`;
  log.info("backend listening", {
    url,
    console: `${url}/admin`,
    runtime,
    database: db.kind,
    data_dir: env.DATABASE_URL ? undefined : env.DATA_DIR,
  });
  return {
    url,
    port: server.port,
    secrets,
    async close() {
      await server.close();
      await maintenance.stop();
      await stopOutline();
      await health.stop();
      await db.close();
      release();
      log.info("backend stopped");
    },
  };
}
