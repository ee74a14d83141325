#!/usr/bin/env node
// Holds many idle HTTVPS sessions open against one gateway, for bench/run.mjs to read the
// gateway's RSS per session. A separate process, so the sockets' memory is not ours to count.
//   bun bench/idle-sessions.mjs PORT CA_FILE DEVICE_ID TOKEN_FILE     (or node)
// Reads commands on stdin, one per line, answers one JSON line each on stdout:
//   open N   → open N more sessions (hello → auth_result ok), {"open":total,"failed":n,"ms":t}
//   close    → close them all and exit
// Both WebSocket clients answer the gateway's pings by themselves, so the sessions stay up.
// On Bun its native client: about a quarter of the CPU per session of Node's `ws`; the loader
// shares the two cores with the gateway it measures.
import { readFileSync } from "node:fs";
import { WebSocket as WsWebSocket } from "ws";
import { pool, serveCommands } from "./lib/loader.mjs";

const [port, caFile, deviceId, tokenFile] = process.argv.slice(2);
const ca = readFileSync(caFile, "utf8");
const token = readFileSync(tokenFile, "utf8").trim();
const IN_FLIGHT = 64; // handshakes at once: enough to keep both cores busy, few enough to not time out
const HELLO = JSON.stringify({ type: "hello", device_id: deviceId, token, client_version: "bench-idle" });

const sockets = [];
let failed = 0;
let lastError = "";

const OPEN = 1;

/** A WebSocket to the gateway, trusting our certificate; same event API on both clients. */
function dial() {
  const url = `wss://127.0.0.1:${port}/ws`;
  if ("Bun" in globalThis) return new WebSocket(url, { tls: { ca, serverName: "localhost" } });
  return new WsWebSocket(url, { ca, servername: "localhost", perMessageDeflate: false, handshakeTimeout: 30_000 });
}

function openOne() {
  return new Promise((resolve) => {
    const ws = dial();
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (ok) sockets.push(ws);
      else {
        failed++;
        lastError = why;
        try {
          ws.close();
        } catch { /* already closed */ }
      }
      resolve();
    };
    const timer = setTimeout(() => finish(false, "auth_result timeout"), 30_000);
    ws.addEventListener("open", () => ws.send(HELLO));
    ws.addEventListener("message", (ev) => {
      if (done) return;
      let f;
      try {
        f = JSON.parse(String(ev.data));
      } catch {
        return finish(false, "not JSON");
      }
      if (f.type === "auth_result") finish(f.ok === true, `auth_result ${f.code ?? ""}`);
    });
    ws.addEventListener("error", (e) => finish(false, e.message ?? "error"));
    ws.addEventListener("close", () => finish(false, "closed"));
  });
}

async function open(n) {
  const start = Date.now();
  await pool(n, IN_FLIGHT, openOne);
  return {
    open: sockets.filter((s) => s.readyState === OPEN).length,
    failed,
    error: lastError || undefined,
    ms: Date.now() - start,
  };
}

await serveCommands({ open: (n) => open(Number(n)) });
for (const s of sockets) {
  try {
    s.close();
  } catch { /* already closed */ }
}
process.exit(0);
