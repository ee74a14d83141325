// The peers of docs/06-performance.md ("The peers"), configured exactly as measured there: ss-libev alone,
// ss-libev + ss-v2ray-plugin (WebSocket + TLS, mux=0 / mux=1), v2ray VLESS over WebSocket + TLS.
// Each start() returns { socksPort, chain: [proc…] } — the processes whose CPU the row counts.
import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, start } from "./procs.mjs";

const PASSWORD = "bench-peer-password";

/** Resolves true once something accepts TCP connections on the port. */
export const listening = (port) => () =>
  new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });

/** A plain ss-server on a free port (also the Outline node of HTTVPS's outline rows). */
export async function startSsServer(method, name = `ss-server ${method}`) {
  const port = await freePort();
  const proc = await start(name, "ss-server", ["-s", "127.0.0.1", "-p", String(port), "-k", PASSWORD, "-m", method], {
    ready: listening(port),
    timeoutMs: 10_000,
  });
  return { proc, port, password: PASSWORD, method };
}

/**
 * ss-local in front of a server on 127.0.0.1:serverPort, with ss-v2ray-plugin when `pluginOpts`
 * are given (its SIP003 options); the plugin is ss-local's child, so its CPU counts in ss-local's tree.
 */
export async function startSsLocal({ serverPort, method, password, pluginOpts }) {
  const socksPort = await freePort();
  const args = [
    "-s",
    "127.0.0.1",
    "-p",
    String(serverPort),
    "-l",
    String(socksPort),
    "-b",
    "127.0.0.1",
    "-k",
    password,
    "-m",
    method,
  ];
  if (pluginOpts) args.push("--plugin", "ss-v2ray-plugin", "--plugin-opts", pluginOpts);
  const proc = await start("ss-local", "ss-local", args, { ready: listening(socksPort), timeoutMs: 10_000 });
  return { proc, socksPort };
}

/** The client half of the v2ray-plugin rows, peers and apps alike: WSS to `host` (the certificate's name), `mux` 0 or 1. */
export const pluginClientOptions = ({ certs, mux, path }) =>
  `tls;host=localhost;${path ? `path=${path};` : ""}cert=${certs.cert};mux=${mux};loglevel=none`;

/** ss-local → ss-server, optionally with ss-v2ray-plugin on both sides (WSS, `mux` 0 or 1). */
export async function startSs({ method, plugin, mux, certs }) {
  const serverPort = await freePort();
  const serverArgs = ["-s", "127.0.0.1", "-p", String(serverPort), "-k", PASSWORD, "-m", method];
  // mux must match on both sides, or the server logs "common/mux: invalid metalen" and the stream hangs.
  if (plugin) {
    serverArgs.push(
      "--plugin",
      "ss-v2ray-plugin",
      "--plugin-opts",
      `server;tls;host=localhost;cert=${certs.cert};key=${certs.key};mux=${mux};loglevel=none`,
    );
  }
  const server = await start("ss-server", "ss-server", serverArgs, { ready: listening(serverPort), timeoutMs: 10_000 });
  const local = await startSsLocal({
    serverPort,
    method,
    password: PASSWORD,
    pluginOpts: plugin ? pluginClientOptions({ certs, mux }) : undefined,
  });
  return { socksPort: local.socksPort, chain: [local.proc, server] };
}

/** v2ray client (SOCKS inbound) → v2ray server (VLESS over WSS on /ws, freedom outbound). */
export async function startVless({ certs, dir }) {
  const id = randomUUID();
  const serverPort = await freePort();
  const socksPort = await freePort();
  const stream = (tls) => ({ network: "ws", security: "tls", wsSettings: { path: "/ws" }, tlsSettings: tls });
  const server = {
    log: { loglevel: "none" },
    inbounds: [
      {
        listen: "127.0.0.1",
        port: serverPort,
        protocol: "vless",
        settings: { clients: [{ id }], decryption: "none" },
        streamSettings: stream({ certificates: [{ certificateFile: certs.cert, keyFile: certs.key }] }),
      },
    ],
    outbounds: [{ protocol: "freedom" }],
  };
  const client = {
    log: { loglevel: "none" },
    inbounds: [{ listen: "127.0.0.1", port: socksPort, protocol: "socks", settings: { auth: "noauth", udp: false } }],
    outbounds: [
      {
        protocol: "vless",
        settings: { vnext: [{ address: "127.0.0.1", port: serverPort, users: [{ id, encryption: "none" }] }] },
        streamSettings: stream({ serverName: "localhost", certificates: [{ usage: "verify", certificateFile: certs.cert }] }),
      },
    ],
  };
  const serverFile = join(dir, "vless-server.json");
  const clientFile = join(dir, "vless-client.json");
  writeFileSync(serverFile, JSON.stringify(server, null, 2));
  writeFileSync(clientFile, JSON.stringify(client, null, 2));
  const s = await start("v2ray server", "v2ray", ["-config", serverFile], { ready: listening(serverPort), timeoutMs: 15_000 });
  const c = await start("v2ray client", "v2ray", ["-config", clientFile], { ready: listening(socksPort), timeoutMs: 15_000 });
  return { socksPort, chain: [c, s] };
}
