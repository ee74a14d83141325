import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { checkNode } from "./node-health.ts";

const listen = (s: Server) =>
  new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as { port: number }).port)));
const closeServer = (s: Server) => new Promise<void>((r) => s.close(() => r()));
const node = (port: number) => ({ host: "127.0.0.1", port, method: "chacha20-ietf-poly1305", password: "pw", prefix: null });

test("a listening node is up, a closed port is down with the reason", async () => {
  const s = createServer((c) => c.destroy());
  const port = await listen(s);
  try {
    const up = await checkNode(node(port), { timeoutMs: 2000 });
    assert.equal(up.status, "up");
    assert.equal(up.last_error, null);
    assert.ok(up.latency_ms !== null && up.latency_ms >= 0);
  } finally {
    await closeServer(s);
  }
  const down = await checkNode(node(port), { timeoutMs: 2000 });
  assert.equal(down.status, "down");
  assert.match(down.last_error!, /upstream_refused/);
});

test("with a probe target, a server that accepts and stays silent (a wrong key) is down", async () => {
  const sockets = new Set<import("node:net").Socket>();
  const s = createServer((c) => {
    sockets.add(c);
    c.on("data", () => {}); // read and discard, as ss-server does with a wrong key
  });
  const port = await listen(s);
  try {
    const r = await checkNode(node(port), { timeoutMs: 500, probeTarget: { host: "127.0.0.1", port: 9 } });
    assert.equal(r.status, "down");
    assert.match(r.last_error!, /round trip: upstream_timeout/);
  } finally {
    for (const c of sockets) c.destroy();
    await closeServer(s);
  }
});
