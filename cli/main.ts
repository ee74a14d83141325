// `httvps` — one command for every part: services, administration, the client.
import { ConfigError, type Env, loadConfig } from "../config/config.ts";
import { createLogger } from "../logging/logger.ts";
import { parseArgs, UsageError } from "./args.ts";
import { AdminApiError, deviceCommand, nodeCommand } from "./admin.ts";

const USAGE = `usage: httvps <command>

services
  backend                       control plane API (PGlite in DATA_DIR unless DATABASE_URL is set)
  gateway                       HTTPS + WebSocket tunnel gateway
  dev                           backend + gateway + a demo device in one process (npm start)
  migrate [status]              apply pending SQL migrations / show their state

administration (through the backend API: BACKEND_URL, ADMIN_TOKEN or DATA_DIR/admin-token)
  device create --name N [--json] [--max-sessions N] [--quota-bytes N] [--expires-at ISO]
  device list [--json] | device revoke ID | device usage ID
  node add --ss-url URL [--name N] [--region R] [--weight W]
  node add --host H --port P --password PW [--method M] [--name N]
  node add --outline-api '{"apiUrl":"https://…","certSha256":"…"}' [--host H] [--name N]
  node list [--json] | node remove ID
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

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, new Set(["json", "force", "insecure", "help"]));
  const cmd = args.positionals[0];
  if (!cmd || cmd === "help" || args.flags.has("help")) {
    print(USAGE);
    return cmd ? 0 : 2;
  }
  const env: Env = loadConfig();
  const log = createLogger(env.LOG_LEVEL, { service: cmd });
  switch (cmd) {
    case "backend": {
      const { startBackend } = await import("../backend/server.ts");
      await runService(() => startBackend(env, { logger: log }));
      return 0;
    }
    case "gateway": {
      const { startGateway } = await import("../gateway/gateway.ts");
      const { ensureDevCertificate } = await import("./dev.ts");
      const { readSecretFile, GATEWAY_KEY_FILE } = await import("../backend/secrets.ts");
      await ensureDevCertificate(env, log);
      // On one machine the backend's generated key is right there; a remote gateway sets GATEWAY_API_KEY.
      const gwEnv = { ...env, GATEWAY_API_KEY: env.GATEWAY_API_KEY ?? readSecretFile(env.DATA_DIR, GATEWAY_KEY_FILE) };
      await runService(async () => {
        const gw = await startGateway(gwEnv, { logger: log });
        return { close: () => gw.drain() };
      });
      return 0;
    }
    case "dev": {
      const { startDevStack } = await import("./dev.ts");
      const { loadEnv } = await import("../config/dotenv.ts");
      // A development stack stays on this machine: the gateway's default (0.0.0.0, a public
      // server's) becomes loopback unless GATEWAY_LISTEN_ADDR is set in the environment or .env.
      const devEnv: Env = loadEnv().GATEWAY_LISTEN_ADDR
        ? env
        : { ...env, GATEWAY_LISTEN_ADDR: { ...env.GATEWAY_LISTEN_ADDR, host: "127.0.0.1" } };
      await runService(() => startDevStack(devEnv, { logger: log, print }));
      return 0;
    }
    case "migrate": {
      const { openBackendDatabase } = await import("../backend/server.ts");
      const { migrate, migrationStatus } = await import("../backend/db/migrate.ts");
      const { db, release } = await openBackendDatabase(env, log, "migrate");
      try {
        if (args.positionals[1] === "status") {
          const states = await migrationStatus(db);
          for (const s of states) {
            print(`${s.state.padEnd(8)} ${s.name}${s.applied_at ? `  applied ${new Date(s.applied_at).toISOString()}` : ""}`);
          }
          return states.every((s) => s.state === "applied") ? 0 : 3;
        }
        if (args.positionals[1] !== undefined) throw new UsageError("migrate: expected nothing or `status`");
        const ran = await migrate(db);
        print(ran.length ? `applied ${ran.join(", ")}` : "nothing to apply: the database is up to date");
        return 0;
      } finally {
        await db.close();
        release();
      }
    }
    case "device": {
      const { accessKeyHook } = await import("./access-key-hook.ts");
      await deviceCommand(env, args, print, { accessKey: accessKeyHook(env) });
      return 0;
    }
    case "node":
      await nodeCommand(env, args, print);
      return 0;
    case "certs": {
      if (args.positionals[1] !== "dev") throw new UsageError("certs: expected `certs dev`");
      const { writeDevCertificate } = await import("../gateway/certs.ts");
      const dir = (args.flags.get("dir") as string | undefined) ?? "deploy/certs";
      const r = await writeDevCertificate(dir, { force: args.flags.has("force") });
      print(
        r.written
          ? `wrote ${r.certPath} and ${r.keyPath} (sha256 ${r.sha256})`
          : `kept existing ${r.certPath} (use --force to replace)`,
      );
      return 0;
    }
    case "connect": {
      const { connectCommand } = await import("../client/cli.ts");
      return connectCommand(env, args, log);
    }
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
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
