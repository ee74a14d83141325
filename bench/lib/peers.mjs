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

/** ss-local → ss-server, optionally with ss-v2ray-plugin on both sides (WSS, `mux` 0 or 1). */
export async function startSs({ method, plugin, mux, certs }) {
  const serverPort = await freePort();
  const socksPort = await freePort();
  const serverArgs = ["-s", "127.0.0.1", "-p", String(serverPort), "-k", PASSWORD, "-m", method];
  const localArgs = [
    "-s",
    "127.0.0.1",
    "-p",
    String(serverPort),
    "-l",
    String(socksPort),
    "-b",
    "127.0.0.1",
    "-k",
    PASSWORD,
    "-m",
    method,
  ];
  if (plugin) {
    // mux must match on both sides, or the server logs "common/mux: invalid metalen" and the stream hangs.
    serverArgs.push(
      "--plugin",
      "ss-v2ray-plugin",
      "--plugin-opts",
      `server;tls;host=localhost;cert=${certs.cert};key=${certs.key};mux=${mux};loglevel=none`,
    );
    localArgs.push(
      "--plugin",
      "ss-v2ray-plugin",
      "--plugin-opts",
      `tls;host=localhost;cert=${certs.cert};mux=${mux};loglevel=none`,
    );
  }
  const server = await start("ss-server", "ss-server", serverArgs, { ready: listening(serverPort), timeoutMs: 10_000 });
  const local = await start("ss-local", "ss-local", localArgs, { ready: listening(socksPort), timeoutMs: 10_000 });
  return { socksPort, chain: [local, server] };
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
