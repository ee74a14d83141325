#!/usr/bin/env node
// The floor under the gateway's memory per idle session: the runtime's own TLS + WebSocket
// stack holding connections and nothing else. Each runtime the way our adapters use it —
// Node: node:https + `ws` (runtime/node.ts), Bun: Bun.serve, Deno: Deno.serve. It answers
// any text message with an ok auth_result, so bench/idle-sessions.mjs loads it exactly as it
// loads a gateway, and bench/run.mjs reports both side by side (rows floor/<runtime>).
//   node bench/ws-floor-server.mjs CERT KEY | bun … | deno run -A …
// Prints `listening <port>` on 127.0.0.1.
import { readFileSync } from "node:fs";

const [certFile, keyFile] = process.argv.slice(2);
const cert = readFileSync(certFile, "utf8");
const key = readFileSync(keyFile, "utf8");
const OK = JSON.stringify({ type: "auth_result", ok: true, session_id: "floor" });

if ("Bun" in globalThis) {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert, key },
    fetch: (req, srv) => (srv.upgrade(req) ? undefined : new Response("not a WebSocket\n", { status: 400 })),
    websocket: { message: (ws) => ws.send(OK) },
  });
  console.log(`listening ${server.port}`);
} else if ("Deno" in globalThis) {
  Deno.serve({ hostname: "127.0.0.1", port: 0, cert, key, onListen: ({ port }) => console.log(`listening ${port}`) }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = () => socket.send(OK);
    return response;
  });
} else {
  const { createServer } = await import("node:https");
  const { WebSocketServer } = await import("ws");
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const server = createServer({ cert, key }, (_req, res) => res.writeHead(400).end("not a WebSocket\n"));
  server.on("upgrade", (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", () => ws.send(OK))));
  server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
}
