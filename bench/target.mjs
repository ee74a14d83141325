#!/usr/bin/env node
// The one HTTP target every row of bench/run.mjs downloads from and uploads to, so the tunnels
// are the only thing that differs between rows:
//   GET /bytes/N       N bytes, streamed from a pre-made random buffer (random: nothing on the
//                      way can compress it; pre-made: the target spends no CPU making bytes)
//   POST|PUT /upload   reads and discards the body, answers its byte count
// Prints `target listening on PORT` when ready. Plain node:http, like the curl it talks to.
import { randomFillSync } from "node:crypto";
import http from "node:http";

const POOL = randomFillSync(Buffer.allocUnsafe(16 * 1024 * 1024));
const CHUNK = 1024 * 1024;

function stream(res, n) {
  let sent = 0;
  const pump = () => {
    while (sent < n) {
      const off = sent % POOL.length;
      const len = Math.min(CHUNK, n - sent, POOL.length - off);
      sent += len;
      if (!res.write(POOL.subarray(off, off + len))) return void res.once("drain", pump);
    }
    res.end();
  };
  res.on("close", () => (sent = n)); // the client went away: stop pumping
  pump();
}

const server = http.createServer((req, res) => {
  const m = /^\/bytes\/(\d+)$/.exec(req.url ?? "");
  if (req.method === "GET" && m) {
    const n = Number(m[1]);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n });
    if (n === 0) return void res.end();
    return stream(res, n);
  }
  if ((req.method === "POST" || req.method === "PUT") && req.url === "/upload") {
    let count = 0;
    req.on("data", (d) => (count += d.length));
    req.on("end", () => res.end(`${count}\n`));
    return;
  }
  res.writeHead(404).end("not found\n");
});
server.keepAliveTimeout = 5000;
server.listen(0, "127.0.0.1", () => console.log(`target listening on ${server.address().port}`));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
