// The small-request rows' list and load generator (bench/lib/small.mjs): the list is the same on
// every run, each request is a new connection, and a body of the wrong size fails the batch.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { SMALL, smallBatch, smallSizes } from "./small.mjs";

test("the size list is fixed: 200 sizes spread over 1–60 KB, the same on every call", () => {
  const sizes = smallSizes();
  assert.equal(sizes.length, SMALL.requests);
  assert.deepEqual(smallSizes(), sizes);
  // Pinned: a changed list would make runs incomparable.
  assert.deepEqual(sizes.slice(0, 3), [40952, 12366, 32352]);
  for (const n of sizes) assert.ok(Number.isInteger(n) && n >= 1_000 && n <= 60_000, `size ${n}`);
  assert.ok(Math.min(...sizes) < 5_000 && Math.max(...sizes) > 55_000, "spread over the whole range");
});

let server: Server;
let port = 0;
let connections = 0;
/** Sizes this server answers one byte short of (with a matching content-length: curl cannot tell). */
const short = new Set<number>();

before(async () => {
  server = createServer((req, res) => {
    const n = Number(/^\/bytes\/(\d+)$/.exec(req.url ?? "")?.[1] ?? NaN);
    if (!Number.isInteger(n)) return void res.writeHead(404).end();
    const len = short.has(n) ? n - 1 : n;
    res.writeHead(200, { "content-length": len }).end(Buffer.alloc(len));
  });
  server.on("connection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

test("a batch checks every body, one new connection per request", async () => {
  const sizes = smallSizes().slice(0, 30);
  connections = 0;
  const r = await smallBatch(0, port, sizes, 8, 20);
  assert.equal(r.requests, 30);
  assert.equal(r.bytes, sizes.reduce((s, n) => s + n, 0));
  assert.ok(r.wallMs > 0);
  assert.equal(connections, 30, "Connection: close: no connection is reused");
});

test("a body of the wrong size fails the batch with a typed error", async () => {
  const sizes = smallSizes().slice(0, 10);
  short.add(sizes[4]!);
  await assert.rejects(smallBatch(0, port, sizes, 4, 20), (e: Error & { code?: string }) => {
    assert.equal(e.code, "SMALL_BATCH_FAILED");
    assert.match(e.message, new RegExp(`1 wrong .*/bytes/${sizes[4]}`));
    return true;
  });
});
