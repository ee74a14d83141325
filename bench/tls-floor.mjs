#!/usr/bin/env node
// The floor under a tunnel row: how fast this runtime's node:tls moves bytes at all, with no
// WebSocket, no framing and no crypto of ours. The HTTVPS client speaks TLS through node:tls on
// every runtime (client/gateway-socket.ts: the one path that can pin a certificate), and the
// Node gateway serves through node:https, so a row cannot beat this by much.
// One process holds both ends (the same on every runtime, so the runtimes compare fairly).
//   node bench/tls-floor.mjs CERT KEY [MiB=256] | bun … | deno run -A …
// Prints one JSON line: {"runtime","mbps","cpuSPerGiB","cipher"}. MB = 10^6 B.
import { readFileSync } from "node:fs";
import tls from "node:tls";

const [certFile, keyFile, mib = "256"] = process.argv.slice(2);
const cert = readFileSync(certFile, "utf8");
const key = readFileSync(keyFile, "utf8");
const TOTAL = Number(mib) * 1024 * 1024;
const WRITE = 64 * 1024; // what the gateway writes per frame at most
const block = new Uint8Array(WRITE).fill(0x5a);
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

const server = tls.createServer({ cert, key }, (sock) => {
  let sent = 0;
  const pump = () => {
    while (sent < TOTAL) {
      sent += WRITE;
      if (!sock.write(block)) return void sock.once("drain", pump);
    }
    sock.end();
  };
  pump();
});
server.listen(0, "127.0.0.1", () => {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let got = 0;
  const c = tls.connect({ host: "127.0.0.1", port: server.address().port, ca: cert, servername: "localhost" });
  c.on("data", (d) => (got += d.length));
  c.on("end", () => {
    const s = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    console.log(
      JSON.stringify({ runtime, mbps: got / 1e6 / s, cpuSPerGiB: cpuS / (got / 2 ** 30), cipher: c.getCipher()?.name }),
    );
    process.exit(got === TOTAL ? 0 : 1);
  });
  c.on("error", (e) => {
    console.error(e.message);
    process.exit(1);
  });
});
