// `httvps` — one command for every part: services, administration, the client.
import type { ParseArgsOptionsConfig } from "node:util";
import { ConfigError, type Env, loadConfig } from "../config/config.ts";
import { createLogger, type Logger } from "../logging/logger.ts";
import { AdminApiError } from "./admin-api.ts";
import { ADMIN_OPTIONS, adminCommand } from "./admins.ts";
import { AUDIT_OPTIONS, auditCommand } from "./audit.ts";
import { DEVICE_OPTIONS, deviceCommand } from "./devices.ts";
import { NODE_OPTIONS, nodeCommand } from "./nodes.ts";
import { type ParsedOptions, parseOptions, UsageError } from "./args.ts";

const USAGE = `usage: httvps <command>

services
  backend                       control plane API (PGlite in DATA_DIR unless DATABASE_URL is set)
  gateway                       HTTPS + WebSocket tunnel gateway
  dev                           backend + gateway + a demo device in one process (npm start)
  migrate [status]              apply pending SQL migrations / show their state

administration (through the backend API: BACKEND_URL, ADMIN_TOKEN or DATA_DIR/admin-token);
every command takes --json
  device create --name N [--max-sessions N] [--quota-bytes N] [--quota-period none|day|week|month]
                [--expires-at ISO | --expire-after-days N]
  device update ID [--name N] [--max-sessions N|none] [--quota-bytes N|none] [--quota-period P]
                   [--expires-at ISO|none] [--expire-after-days N|none]
  device list [--search Q] [--status active|on_hold|disabled|revoked|expired|over_quota|online]
              [--created-by ADMIN_ID]
  device show ID | disable ID | enable ID | revoke ID | rotate ID | reset-usage ID
  device bulk disable|enable|revoke|reset-usage (--ids ID,ID,… | --search Q --status S --created-by A)
  device usage ID [--bucket hour|day] [--from ISO] [--to ISO] | device sessions ID [--open]
  device links ID [--qr]        the apps' links again: Outline key, ss:// link, subscription URL
  node add --ss-url URL [--name N] [--region R] [--weight W]
  node add --host H --port P --password PW [--method M] [--name N]
  node add --outline-api '{"apiUrl":"https://…","certSha256":"…"}' [--host H] [--name N]
  node update ID [--name N] [--host H] [--port P] [--method M] [--password PW] [--region R] [--weight W]
  node list | node enable ID | node disable ID | node remove ID
  admin create --name N --role owner|operator [--own-devices-only] [--max-devices N]
                                (the password: prompted for, or the first line of stdin)
  admin update NAME|ID [--role R] [--own-devices-only | --all-devices] [--max-devices N|none]
  admin list | admin disable NAME|ID | admin enable NAME|ID | admin password NAME|ID
  audit list [--limit N] [--action A | --action device.] [--actor ADMIN_ID] [--target ID]
  certs dev [--dir deploy/certs] [--force]   self-signed certificate for localhost

client
  connect <access-key> | --key-file FILE
          [--socks 127.0.0.1:1080] [--http 127.0.0.1:8118 | --http off]
          [--socks-user U --socks-pass P] [--ca FILE] [--insecure]

Configuration comes from the environment and .env (see .env.example).`;

const print = (line: string) => console.log(line);

async function runService(start: () => Promise<{ close(): Promise<void> }>): Promise<void> {
  const { onSignal } = await import("../runtime/index.ts");
  const svc = await start();
  await new Promise<void>((resolve) => {
    let stopping = false;
    onSignal(["SIGINT", "SIGTERM"], async () => {
      if (stopping) return;
      stopping = true;
      try {
        await svc.close();
      } finally {
        resolve();
      }
    });
  });
}

/** A command: its options, parsed before the configuration is read so `--help` and a bad option need none. */
interface Command {
  run(name: string, argv: string[]): Promise<number>;
}

function command<const O extends ParseArgsOptionsConfig>(
  options: O,
  body: (args: ParsedOptions<O>, env: Env, log: Logger) => Promise<number>,
): Command {
  return {
    async run(name, argv) {
      const args = parseOptions(argv, options);
      if ((args.values as { help?: boolean }).help) { // every command takes --help (cli/args.ts)
        print(USAGE);
        return 0;
      }
      const env = loadConfig();
      return await body(args, env, createLogger(env.LOG_LEVEL, { service: name }));
    },
  };
}

const noArguments = (name: string, args: { positionals: string[] }) => {
  if (args.positionals.length) throw new UsageError(`${name}: unexpected "${args.positionals[0]}"`);
};

const COMMANDS: Record<string, Command> = {
  backend: command({}, async (args, env, log) => {
    noArguments("backend", args);
    const { startBackend } = await import("../backend/server.ts");
    const { accessKeyHook, appLinksHook } = await import("./access-key-hook.ts");
    await runService(() =>
      startBackend(env, { logger: log, deviceLinks: { accessKey: accessKeyHook(env), appLinks: appLinksHook(env) } })
    );
    return 0;
  }),
  gateway: command({}, async (args, env, log) => {
    noArguments("gateway", args);
    if (env.HTTVPS_GATEWAY_WORKER !== undefined) { // started by a primary (gateway/workers.ts)
      const { runGatewayWorker, workerRole } = await import("../gateway/worker.ts");
      await runGatewayWorker(env, log, workerRole(env.HTTVPS_GATEWAY_WORKER));
      return 0;
    }
    const { startGateway } = await import("../gateway/gateway.ts");
    const { ensureDevCertificate } = await import("./dev.ts");
    // ACME brings its own; behind a proxy (GATEWAY_TLS=off) the proxy has it.
    if (env.GATEWAY_TLS && !env.GATEWAY_ACME_DOMAINS) await ensureDevCertificate(env, log);
    // ACME has one issuer, and the CA's validation may reach any process: one process, then.
    const workers = env.GATEWAY_ACME_DOMAINS ? 1 : env.GATEWAY_WORKERS;
    if (workers < env.GATEWAY_WORKERS) {
      log.warn("GATEWAY_WORKERS is ignored with ACME certificates: one gateway process", { workers: env.GATEWAY_WORKERS });
    }
    await runService(async () => {
      if (workers > 1) {
        const { startGatewayWorkers } = await import("../gateway/workers.ts");
        const primary = await startGatewayWorkers(env, workers, log);
        return { close: () => primary.drain() };
      }
      const gw = await startGateway(env, { logger: log });
      return { close: () => gw.drain() };
    });
    return 0;
  }),
  dev: command({}, async (args, env, log) => {
    noArguments("dev", args);
    const { startDevStack } = await import("./dev.ts");
    const { loadEnv } = await import("../config/dotenv.ts");
    // A development stack stays on this machine: the gateway's default (0.0.0.0, a public
    // server's) becomes loopback unless GATEWAY_LISTEN_ADDR is set in the environment or .env.
    const devEnv: Env = loadEnv().GATEWAY_LISTEN_ADDR
      ? env
      : { ...env, GATEWAY_LISTEN_ADDR: { ...env.GATEWAY_LISTEN_ADDR, host: "127.0.0.1" } };
    await runService(() => startDevStack(devEnv, { logger: log, print }));
    return 0;
  }),
  migrate: command({}, async (args, env, log) => {
    const [what, ...more] = args.positionals;
    if ((what !== undefined && what !== "status") || more.length) throw new UsageError("migrate: expected nothing or `status`");
    const { openBackendDatabase } = await import("../backend/server.ts");
    const { migrate, migrationStatus } = await import("../backend/db/migrate.ts");
    const { db, release } = await openBackendDatabase(env, log, "migrate");
    try {
      if (what === "status") {
        const states = await migrationStatus(db);
        for (const s of states) {
          print(`${s.state.padEnd(8)} ${s.name}${s.applied_at ? `  applied ${new Date(s.applied_at).toISOString()}` : ""}`);
        }
        return states.every((s) => s.state === "applied") ? 0 : 3;
      }
      const ran = await migrate(db);
      print(ran.length ? `applied ${ran.join(", ")}` : "nothing to apply: the database is up to date");
      return 0;
    } finally {
      await db.close();
      release();
    }
  }),
  device: command(DEVICE_OPTIONS, async (args, env) => {
    const { accessKeyHook, appLinksHook } = await import("./access-key-hook.ts");
    await deviceCommand(env, args, print, {
      accessKey: accessKeyHook(env),
      appLinks: appLinksHook(env),
      colour: process.stdout.isTTY === true,
    });
    return 0;
  }),
  node: command(NODE_OPTIONS, async (args, env) => {
    await nodeCommand(env, args, print);
    return 0;
  }),
  admin: command(ADMIN_OPTIONS, async (args, env) => {
    await adminCommand(env, args, print);
    return 0;
  }),
  audit: command(AUDIT_OPTIONS, async (args, env) => {
    await auditCommand(env, args, print);
    return 0;
  }),
  certs: command({ dir: { type: "string" }, force: { type: "boolean" } }, async (args) => {
    if (args.positionals[0] !== "dev" || args.positionals.length > 1) throw new UsageError("certs: expected `certs dev`");
    const { writeDevCertificate } = await import("../gateway/certs.ts");
    const r = await writeDevCertificate(args.values.dir ?? "deploy/certs", { force: args.values.force === true });
    print(
      r.written
        ? `wrote ${r.certPath} and ${r.keyPath} (sha256 ${r.sha256})`
        : `kept existing ${r.certPath} (use --force to replace)`,
    );
    return 0;
  }),
  // Options and their mistakes are connect's own business: it answers with its own usage text.
  connect: {
    async run(name, argv) {
      const env = loadConfig();
      const { connectCommand } = await import("./connect.ts");
      return connectCommand(env, argv, createLogger(env.LOG_LEVEL, { service: name }));
    },
  },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    print(USAGE);
    return name === undefined ? 2 : 0;
  }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) throw new UsageError(`unknown command "${name}"`);
  return await cmd.run(name, rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(e.message);
    process.exitCode = 1;
  } else if (e instanceof UsageError) {
    console.error(`httvps: ${e.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else if (e instanceof AdminApiError || (e as { code?: string }).code) {
    console.error(`httvps: ${(e as { code?: string }).code}: ${(e as Error).message}`);
    process.exitCode = 1;
  } else {
    console.error(`httvps: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  }
}
// Services return only after a signal and a graceful close; whatever is still open then
// (a pool's idle timer, a keep-alive socket) must not keep the process alive.
setTimeout(() => process.exit(process.exitCode ?? 0), 50).unref?.();
