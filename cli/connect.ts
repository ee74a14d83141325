// `httvps connect <access-key>`: the tunnel plus the local SOCKS5 and HTTP proxies, a status
// line on stderr (on every change and every 30 s), structured logs, a graceful stop on
// SIGINT/SIGTERM, and a non-zero exit with advice when the gateway refuses the device for good.
import { readFileSync } from "node:fs";
import { startHttpProxy } from "../client/http-proxy.ts";
import type { ProxyServer } from "../client/proxy-server.ts";
import { startSocks5 } from "../client/socks5.ts";
import { connect, type TunnelStatus } from "../client/tunnel-dialer.ts";
import { type Env, parseHostPort } from "../config/config.ts";
import type { Logger } from "../logging/logger.ts";
import { parseAccessKey, redactAccessKey } from "../protocol/access-key.ts";
import { formatHostPort } from "../protocol/ip-address.ts";
import { onSignal } from "../runtime/index.ts";
import { parseOptions, UsageError } from "./args.ts";

export const DEFAULT_SOCKS = "127.0.0.1:1080";
export const DEFAULT_HTTP = "127.0.0.1:8118";
const STATUS_EVERY_MS = 30_000;

const CONNECT_OPTIONS = {
  socks: { type: "string" },
  http: { type: "string" },
  "socks-user": { type: "string" },
  "socks-pass": { type: "string" },
  transport: { type: "string" },
  ca: { type: "string" },
  insecure: { type: "boolean" },
  "key-file": { type: "string" },
  "no-padding": { type: "boolean" },
  "no-early-data": { type: "boolean" },
} as const;

export const USAGE = `usage: httvps connect <access-key> [options]
       httvps connect --key-file FILE [options]

  --socks HOST:PORT | off     SOCKS5 proxy address (default ${DEFAULT_SOCKS})
  --http HOST:PORT | off      HTTP proxy address (default ${DEFAULT_HTTP})
  --socks-user U --socks-pass P   require SOCKS5 username/password (RFC 1929)
  --transport ws | h2         try this transport first instead of the key's (the other is the fallback)
  --ca FILE                   trust this CA (PEM) instead of the system roots
  --insecure                  skip certificate checks, the key's pin included (development only)
  --key-file FILE             read the access key from FILE (keeps it out of the process list)
  --no-padding                neither ask for padding nor pad the hello and the session request
  --no-early-data             never open a stream before the gateway's auth_result`;

/** What to tell the user when the gateway refuses the device for good. */
export const FINAL_ADVICE: Record<string, string> = {
  auth_failed: "the gateway refused this access key (wrong, revoked, disabled or expired) — ask your operator",
  revoked: "device revoked — ask your operator for a new access key",
  bad_token: "the gateway rejected this access key's token (bad_token) — ask your operator for a new access key",
  unknown_device: "the gateway does not know this device (unknown_device) — ask your operator for a new access key",
  disabled: "device disabled — ask your operator to enable it again",
  expired: "device access expired — ask your operator to extend it or for a new access key",
};

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function formatStatus(s: TunnelStatus): string {
  const traffic = `streams ${s.streams} · up ${formatBytes(s.bytesUp)} · down ${formatBytes(s.bytesDown)}`;
  const why = s.error ? ` (${s.error.code}: ${s.error.message})` : "";
  switch (s.state) {
    case "connected":
      return `httvps: connected to ${s.gateway} over ${s.transport}${
        s.sessionId ? ` (session ${s.sessionId.slice(0, 8)})` : ""
      } · ${traffic}`;
    case "connecting":
    case "reconnecting": {
      const when = s.retryInMs !== undefined ? ` in ${(s.retryInMs / 1000).toFixed(1)} s` : "";
      return `httvps: ${s.state} to ${s.gateway}${when}${why} · ${traffic}`;
    }
    case "failed":
      return `httvps: failed${why}`;
    case "closed":
      return `httvps: closed · ${traffic}`;
  }
}

type Listen = { host: string; port: number } | "off";

function listenOption(value: string | undefined, name: string, fallback: string): Listen | string {
  const text = value ?? fallback;
  if (text === "off") return "off";
  const hp = parseHostPort(text);
  return hp ?? `--${name}: expected HOST:PORT (like ${fallback}) or off, got "${text}"`;
}

const isLoopback = (host: string) => host === "localhost" || host.startsWith("127.") || host === "::1";

export interface ConnectIo {
  /** Human-readable lines (status, errors); default stderr. */
  print(line: string): void;
}

export async function connectCommand(
  env: Env,
  /** The words after `connect`. */
  argv: string[],
  log: Logger,
  io: ConnectIo = { print: (l) => void process.stderr.write(l + "\n") },
): Promise<number> {
  void env; // the client has no environment settings of its own yet; LOG_LEVEL already shaped `log`
  const usage = (msg: string) => {
    io.print(`httvps connect: ${msg}\n\n${USAGE}`);
    return 2;
  };
  let options;
  try {
    options = parseOptions(argv, CONNECT_OPTIONS);
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message);
    throw e;
  }
  const { values, positionals } = options;
  if (values.help) {
    io.print(USAGE);
    return 0;
  }

  // ---- the access key ----
  const keyFile = values["key-file"];
  let keyText = positionals[0];
  if (positionals.length > 1) return usage("expected one access key");
  if (keyFile !== undefined) {
    if (keyText !== undefined) return usage("give the access key or --key-file, not both");
    try {
      keyText = readFileSync(keyFile, "utf8").trim();
    } catch (e) {
      return usage(`--key-file: cannot read ${keyFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (keyText === undefined) return usage("missing the access key (httvps://…)");
  const parsed = parseAccessKey(keyText);
  if (!parsed.ok) {
    io.print(`httvps connect: bad access key: ${parsed.error.message}`);
    return 2;
  }
  const key = parsed.key;

  // ---- options ----
  const socks = listenOption(values.socks, "socks", DEFAULT_SOCKS);
  const http = listenOption(values.http, "http", DEFAULT_HTTP);
  if (typeof socks === "string" && socks !== "off") return usage(socks);
  if (typeof http === "string" && http !== "off") return usage(http);
  if (socks === "off" && http === "off") return usage("--socks off and --http off leave nothing to do");
  const user = values["socks-user"];
  const pass = values["socks-pass"];
  if ((user === undefined) !== (pass === undefined)) return usage("give both --socks-user and --socks-pass");
  if (user !== undefined && (user.length > 255 || pass!.length > 255 || user.length === 0 || pass!.length === 0)) {
    return usage("--socks-user and --socks-pass: 1-255 characters each");
  }
  const caFile = values.ca;
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, "utf8");
    } catch (e) {
      return usage(`--ca: cannot read ${caFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) return usage(`--ca: ${caFile} holds no PEM certificate`);
  }
  const insecure = values.insecure === true;
  const transport = values.transport;
  if (transport !== undefined && transport !== "ws" && transport !== "h2") {
    return usage(`--transport: expected ws or h2, got "${transport}"`);
  }

  // ---- run ----
  const tlog = log.child({ component: "client" });
  const tunnel = connect(key, {
    tls: { ca, insecure },
    logger: tlog,
    transport,
    padding: values["no-padding"] !== true,
    earlyData: values["no-early-data"] !== true,
  });
  const servers: ProxyServer[] = [];
  const stopAll = async () => {
    await Promise.allSettled(servers.map((s) => s.close()));
    await tunnel.close();
  };
  try {
    if (socks !== "off") {
      const s = await startSocks5({
        host: socks.host,
        port: socks.port,
        dialer: tunnel,
        packetDialer: tunnel.packets,
        logger: tlog,
        auth: user !== undefined ? { username: user, password: pass as string } : undefined,
      });
      servers.push(s);
      io.print(`httvps: SOCKS5 proxy on ${formatHostPort(s.host, s.port)}${user !== undefined ? " (username/password)" : ""}`);
      if (!isLoopback(s.host) && user === undefined) {
        io.print(`httvps: warning: the SOCKS5 proxy on ${s.host} has no password; anyone who can reach it can use your tunnel`);
      }
    }
    if (http !== "off") {
      const s = await startHttpProxy({ host: http.host, port: http.port, dialer: tunnel, logger: tlog });
      servers.push(s);
      io.print(`httvps: HTTP proxy on ${formatHostPort(s.host, s.port)}`);
      if (!isLoopback(s.host)) {
        io.print(`httvps: warning: the HTTP proxy on ${s.host} has no password; anyone who can reach it can use your tunnel`);
      }
    }
  } catch (e) {
    io.print(`httvps connect: ${(e as Error).message}`);
    await stopAll();
    return 1;
  }
  if (insecure) io.print("httvps: warning: --insecure: the gateway's certificate is NOT checked");
  tlog.info("client started", {
    access_key: redactAccessKey(key),
    socks: socks === "off" ? "off" : formatHostPort(socks.host, socks.port),
    http: http === "off" ? "off" : formatHostPort(http.host, http.port),
  });

  let lastLine = "";
  const show = (s: TunnelStatus) => {
    const line = formatStatus(s);
    if (line !== lastLine) io.print(line);
    lastLine = line;
  };
  show(tunnel.status);
  const code = await new Promise<number>((resolve) => {
    const unsubscribe = tunnel.onStatus((s) => {
      show(s);
      if (s.state === "failed") finish(1, s);
    });
    const timer = setInterval(() => show(tunnel.status), STATUS_EVERY_MS);
    const offSignal = onSignal(["SIGINT", "SIGTERM"], (sig) => {
      tlog.info("stopping", { signal: sig });
      finish(0);
    });
    let done = false;
    // The first attempt may have been refused for good before we subscribed.
    if (tunnel.status.state === "failed") queueMicrotask(() => finish(1, tunnel.status));
    function finish(exit: number, s?: TunnelStatus) {
      if (done) return;
      done = true;
      unsubscribe();
      clearInterval(timer);
      offSignal();
      if (s?.error) {
        io.print(
          `httvps: ${FINAL_ADVICE[s.error.code] ?? `the gateway refused this device (${s.error.code}: ${s.error.message})`}`,
        );
      }
      resolve(exit);
    }
  });
  await stopAll();
  // The last word: totals for this run (or the failure, already explained above).
  if (code === 0) show(tunnel.status);
  return code;
}
