#!/usr/bin/env node
// Holds many idle HTTVPS sessions open against one gateway, for bench/run.mjs to read the
// gateway's RSS per session, and for bench/reconnect-storm.mjs to reconnect thousands of
// devices at once. A separate process, so the sockets' memory is not ours to count.
//   bun bench/idle-sessions.mjs PORT CA_FILE DEVICE_ID TOKEN_FILE     (or node): one device
//   bun bench/idle-sessions.mjs PORT CA_FILE --devices FILE           a device per session, in
//                                                                     turn (FILE: JSON [{device_id, token}])
// Reads commands on stdin, one per line, answers one JSON line each on stdout:
//   open N [IN_FLIGHT [ATTEMPTS]] → open N more sessions (hello → auth_result ok), at most
//                        IN_FLIGHT handshakes at once (default 64), each tried up to ATTEMPTS
//                        times (default 1) with the client's backoff: {"open":total,"failed":n,"retries":n,"ms":t}
//   drop               → close every session, wait until closed, start the devices over: {"closed":n}
//   close              → close them all and exit
// Both WebSocket clients answer the gateway's pings by themselves, so the sessions stay up.
// On Bun its native client: about a quarter of the CPU per session of Node's `ws`; the loader
// shares the two cores with the gateway it measures.
import { readFileSync } from "node:fs";
import { WebSocket as WsWebSocket } from "ws";
import { pool, serveCommands } from "./lib/loader.mjs";

const [port, caFile, deviceArg, fileArg] = process.argv.slice(2);
const ca = readFileSync(caFile, "utf8");
const devices = deviceArg === "--devices"
  ? JSON.parse(readFileSync(fileArg, "utf8"))
  : [{ device_id: deviceArg, token: readFileSync(fileArg, "utf8").trim() }];
const IN_FLIGHT = 64; // handshakes at once: enough to keep both cores busy, few enough to not time out
const hello = (d) => JSON.stringify({ type: "hello", device_id: d.device_id, token: d.token, client_version: "bench-idle" });
let nextDevice = 0;

const sockets = [];
let failed = 0;
let retries = 0;
let lastError = "";

const OPEN = 1;

/** A WebSocket to the gateway, trusting our certificate; same event API on both clients. */
function dial() {
  const url = `wss://127.0.0.1:${port}/ws`;
  if ("Bun" in globalThis) return new WebSocket(url, { tls: { ca, serverName: "localhost" } });
  return new WsWebSocket(url, { ca, servername: "localhost", perMessageDeflate: false, handshakeTimeout: 30_000 });
}

/** One session attempt: resolves with "" once authenticated, else with why it failed. */
function tryOnce(device) {
  return new Promise((resolve) => {
    const ws = dial();
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (ok) sockets.push(ws);
      else {
        try {
          ws.close();
        } catch { /* already closed */ }
      }
      resolve(ok ? "" : why);
    };
    const timer = setTimeout(() => finish(false, "auth_result timeout"), 30_000);
    ws.addEventListener("open", () => ws.send(hello(device)));
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

/**
 * A session of the next device, tried up to `attempts` times with the client's own backoff
 * (client/tunnel-dialer.ts: 250 ms doubling, equal jitter), as devices cut off together retry.
 */
async function openOne(attempts) {
  const device = devices[nextDevice++ % devices.length];
  for (let a = 0; a < attempts; a++) {
    if (a > 0) {
      retries++;
      const base = 250 * 2 ** (a - 1);
      await new Promise((r) => setTimeout(r, base / 2 + Math.random() * (base / 2)));
    }
    const why = await tryOnce(device);
    if (!why) return;
    lastError = why;
  }
  failed++;
}

async function open(n, inFlight = IN_FLIGHT, attempts = 1) {
  const start = Date.now();
  await pool(n, inFlight, () => openOne(attempts));
  return {
    open: sockets.filter((s) => s.readyState === OPEN).length,
    failed,
    retries,
    error: lastError || undefined,
    ms: Date.now() - start,
  };
}

async function drop() {
  const closing = sockets.splice(0).filter((s) => s.readyState === OPEN);
  await Promise.all(closing.map((s) =>
    new Promise((resolve) => {
      s.addEventListener("close", resolve);
      s.close();
    })
  ));
  nextDevice = 0;
  failed = retries = 0;
  lastError = "";
  return { closed: closing.length };
}

await serveCommands({
  open: (n, inFlight, attempts) =>
    open(Number(n), inFlight ? Number(inFlight) : undefined, attempts ? Number(attempts) : undefined),
  drop,
});
for (const s of sockets) {
  try {
    s.close();
  } catch { /* already closed */ }
}
process.exit(0);
