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
//   bulk N BYTES PORT  → open N more sessions as `httvps connect` does (flow, binary, half_close),
//                        one at a time; each downloads (BYTES 0: nothing) BYTES through one stream from the bench
//                        target (127.0.0.1:PORT, GET /bytes/BYTES), ends and closes that stream,
//                        then stays open and idle: {"open":total,"failed":n,"bytes":moved,"ms":t}
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
const hello = (d, features) =>
  JSON.stringify({ type: "hello", device_id: d.device_id, token: d.token, client_version: "bench-idle", features });
// What `httvps connect` asks for that shapes a bulk download (client/session.ts REQUESTED).
const BULK_FEATURES = ["flow", "binary", "half_close"];
const WINDOW = 262144; // the credit the client grants (the protocol's default, §5)
let nextDevice = 0;

const sockets = [];
let failed = 0;
let retries = 0;
let lastError = "";

const OPEN = 1;

/** A WebSocket to the gateway, trusting our certificate; same event API on both clients. */
function dial() {
  const url = `wss://127.0.0.1:${port}/ws`;
  const ws = "Bun" in globalThis
    ? new WebSocket(url, { tls: { ca, serverName: "localhost" } })
    : new WsWebSocket(url, { ca, servername: "localhost", perMessageDeflate: false, handshakeTimeout: 30_000 });
  ws.binaryType = "arraybuffer"; // the same message data on both clients
  return ws;
}

/** One session attempt: resolves with "" once authenticated, else with why it failed. */
function tryOnce(device, features, onOpen) {
  return new Promise((resolve) => {
    const ws = dial();
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (ok) {
        sockets.push(ws);
        onOpen?.(ws);
      } else {
        try {
          ws.close();
        } catch { /* already closed */ }
      }
      resolve(ok ? "" : why);
    };
    const timer = setTimeout(() => finish(false, "auth_result timeout"), 30_000);
    ws.addEventListener("open", () => ws.send(hello(device, features)));
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

/** A binary frame of §6 without payload: kind, idLen, id, then `tail`. */
function binaryFrame(kind, id, tail = []) {
  const idBytes = new TextEncoder().encode(id);
  return new Uint8Array([kind, idBytes.length, ...idBytes, ...tail]);
}

/**
 * One bulk download on a fresh session `ws`: stream "1" to the target, GET /bytes/BYTES with
 * the request as the open's first bytes, credit returned every quarter window as the client
 * does, our stream_end once the gateway's came, done at its stream_close. Resolves with the
 * bytes received (headers included) or rejects with why it failed.
 */
function download(ws, bytes, targetPort) {
  return new Promise((resolve, reject) => {
    const id = "1";
    let received = 0;
    let unacked = 0;
    const timer = setTimeout(() => reject(new Error(`bulk: stalled after ${received} bytes`)), 120_000);
    const request = `GET /bytes/${bytes} HTTP/1.1\r\nHost: target\r\nConnection: close\r\n\r\n`;
    const onMessage = (ev) => {
      if (typeof ev.data === "string") {
        const f = JSON.parse(ev.data);
        if (f.type === "stream_close" && f.stream_id === id) {
          clearTimeout(timer);
          ws.removeEventListener("message", onMessage);
          if (f.code) reject(new Error(`bulk: stream_close ${f.code}`));
          else resolve(received);
        }
        return;
      }
      const m = new Uint8Array(ev.data);
      if (m[0] === 0x01) {
        const n = m.length - 2 - m[1];
        received += n;
        unacked += n;
        if (unacked >= WINDOW / 4) {
          ws.send(binaryFrame(0x02, id, [unacked >>> 24, (unacked >>> 16) & 255, (unacked >>> 8) & 255, unacked & 255]));
          unacked = 0;
        }
      } else if (m[0] === 0x03) ws.send(binaryFrame(0x03, id)); // the target is done: so are we
    };
    ws.addEventListener("message", onMessage);
    ws.send(JSON.stringify({
      type: "stream_open",
      stream_id: id,
      target: { host: "127.0.0.1", port: Number(targetPort) },
      data: Buffer.from(request).toString("base64"),
    }));
  });
}

/**
 * N more sessions that each move one bulk download and then sit idle. One at a time: what
 * is measured is what a session keeps after its transfer, not the peak of many at once.
 */
async function bulk(n, bytes, targetPort) {
  const start = Date.now();
  let moved = 0;
  for (let i = 0; i < n; i++) {
    const device = devices[nextDevice++ % devices.length];
    let ws;
    const why = await tryOnce(device, BULK_FEATURES, (s) => (ws = s));
    if (why) {
      failed++;
      lastError = why;
      continue;
    }
    if (bytes === 0) continue; // the same session, idle from the start
    try {
      moved += await download(ws, bytes, targetPort);
    } catch (e) {
      failed++;
      lastError = e.message;
    }
  }
  return {
    open: sockets.filter((s) => s.readyState === OPEN).length,
    failed,
    bytes: moved,
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
  bulk: (n, bytes, targetPort) => bulk(Number(n), Number(bytes), Number(targetPort)),
  drop,
});
for (const s of sockets) {
  try {
    s.close();
  } catch { /* already closed */ }
}
process.exit(0);
