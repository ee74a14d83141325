// Scale-out on one PostgreSQL, as real processes on the runtime under test: two backends
// started together, both with MIGRATE_ON_START=1, and two gateways, gateway 1 talking to
// backend 1 and gateway 2 to backend 2. A device works through either gateway; its usage,
// reported by both, adds up on either backend; revoked through backend 1, it is cut on both
// gateways within their (short) auth cache TTL. Needs TEST_DATABASE_URL (a scratch database is
// created and dropped); skipped, saying so, without it.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import postgres from "postgres";
import { readMigrations } from "../../backend/db/migrate.ts";
import { testDatabaseUrl } from "../../backend/db/testing.ts";
import { type SessionSocket, wsConnect } from "../../runtime/index.ts";
import { runtime } from "../cli.ts";
import { type BackendProcess, type GatewayProcess, scratchDatabase, type Stack, startStack } from "./stack.ts";

const skip = testDatabaseUrl ? false : "TEST_DATABASE_URL is not set: scale-out needs one PostgreSQL shared by the backends";
const AUTH_TTL_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

type Frame = { type: string; [k: string]: unknown };

/** A minimal protocol client: JSON frames only (no features asked for), everything it receives recorded. */
interface DeviceClient {
  socket: SessionSocket;
  frames: Frame[];
  closed?: { code: number; reason: string };
}

describe(`scale-out: two backends and two gateways on one PostgreSQL (${runtime})`, () => {
  let stack: Stack<"none"> | undefined;
  let database: { url: string; drop(): Promise<void> } | undefined;
  let certPem: string;
  const backends: BackendProcess[] = [];
  const gateways: GatewayProcess[] = [];
  const clients: DeviceClient[] = [];

  const api = (backend: number, method: string, path: string, body?: unknown) => backends[backend]!.api(method, path, body);

  async function connect(gateway: number, device: { device_id: string; token: string }): Promise<DeviceClient> {
    const c: DeviceClient = { frames: [] } as unknown as DeviceClient;
    c.socket = await wsConnect(`wss://127.0.0.1:${gateways[gateway]!.port}/ws`, { ca: certPem, timeoutMs: 10_000 }, () => ({
      message(m) {
        if (typeof m === "string") c.frames.push(JSON.parse(m) as Frame);
      },
      drain() {},
      close(code, reason) {
        c.closed = { code, reason };
      },
    }));
    clients.push(c);
    c.socket.send(JSON.stringify({ type: "hello", device_id: device.device_id, token: device.token, client_version: "1.0" }));
    await until("auth_result", () => c.frames.some((f) => f.type === "auth_result") || c.closed !== undefined);
    return c;
  }

  /** Open a stream on the fake (echo) upstream, send `n` random bytes, wait for all of them back. */
  async function echo(c: DeviceClient, streamId: string, n: number): Promise<void> {
    const sent = randomBytes(n);
    c.socket.send(JSON.stringify({ type: "stream_open", stream_id: streamId }));
    c.socket.send(JSON.stringify({ type: "stream_data", stream_id: streamId, data: sent.toString("base64") }));
    const received = () =>
      Buffer.concat(
        c.frames.filter((f) => f.type === "stream_data" && f.stream_id === streamId).map((f) =>
          Buffer.from(f.data as string, "base64")
        ),
      );
    await until(`${n} bytes echoed on ${streamId}`, () => received().length >= n || c.closed !== undefined);
    assert.ok(received().equals(sent), `${streamId}: the echo is the bytes sent`);
  }

  before(async () => {
    if (skip) return;
    [stack, database] = await Promise.all([
      startStack({
        backend: "none",
        certificate: "cli",
        upstream: "fake",
        logLevel: "info",
        env: { GATEWAY_AUTH_CACHE_TTL: `${AUTH_TTL_MS}ms`, GATEWAY_USAGE_FLUSH_INTERVAL: "300ms" },
      }),
      scratchDatabase("httvps_scale"),
    ]);
    certPem = stack.cert.certPem;

    // Started together, both migrating: the advisory lock must make them take turns.
    const started = await Promise.allSettled(
      [1, 2].map(() => stack!.backendProcess({ DATABASE_URL: database!.url, MIGRATE_ON_START: "1" })),
    );
    for (const s of started) if (s.status === "fulfilled") backends.push(s.value);
    for (const s of started) if (s.status === "rejected") throw s.reason;

    const gws = await Promise.allSettled(
      [1, 2].map((n) => stack!.gatewayProcess({ GATEWAY_ID: `gateway-${n}`, GATEWAY_BACKEND_URL: backends[n - 1]!.url })),
    );
    for (const g of gws) if (g.status === "fulfilled") gateways.push(g.value);
    for (const g of gws) if (g.status === "rejected") throw g.reason;
  });

  after(async () => {
    for (const c of clients) if (!c.closed) c.socket.close(1000, "done");
    await stack?.close();
    await database?.drop();
  });

  test("two backends migrating at once: each migration is applied exactly once, both serve", { skip }, async () => {
    const names = readMigrations().map((f) => f.name);
    const applied = backends.map((b) => /"migrations applied"/.test(b.output()));
    assert.deepEqual(applied.filter(Boolean).length, 1, "one backend applied the migrations, the other found nothing to do");
    const s = postgres(database!.url, { max: 1, onnotice: () => {} });
    try {
      const rows = await s.unsafe("select name from schema_migrations order by name");
      assert.deepEqual(rows.map((r) => r.name), names);
    } finally {
      await s.end();
    }
    for (const b of backends) assert.equal(((await (await fetch(`${b.url}/readyz`)).json()) as { ok: boolean }).ok, true);
  });

  test(
    "a device works through either gateway; usage reported by both adds up on either backend; revoked through backend 1, it is cut on both",
    { skip },
    async () => {
      // Created through backend 2, revoked later through backend 1: the database is the only shared state.
      const created = await api(1, "POST", "/api/v1/devices", { name: "roaming" });
      assert.equal(created.status, 201);
      const device = created.json as unknown as { device_id: string; token: string };

      const c1 = await connect(0, device);
      const c2 = await connect(1, device);
      for (const c of [c1, c2]) {
        const auth = c.frames.find((f) => f.type === "auth_result")!;
        assert.equal(auth.ok, true, JSON.stringify(auth));
      }
      await echo(c1, "s1", 1000);
      await echo(c2, "s1", 2345);
      await echo(c2, "s2", 655);
      const total = 1000 + 2345 + 655;

      for (const b of [0, 1]) {
        await until(`usage of both gateways on backend ${b + 1}`, async () => {
          const u = await api(b, "GET", `/api/v1/devices/${device.device_id}/usage`);
          return u.json.bytes_up === total && u.json.bytes_down === total;
        });
        const u = (await api(b, "GET", `/api/v1/devices/${device.device_id}/usage`)).json;
        assert.equal(u.bytes_total, 2 * total);
        assert.equal(u.sessions_active, 2, "one live session on each gateway");
      }

      const revoked = await api(0, "DELETE", `/api/v1/devices/${device.device_id}`);
      assert.equal(revoked.status, 200);
      assert.equal(revoked.json.status, "revoked");
      // Each gateway re-validates its live sessions every GATEWAY_AUTH_CACHE_TTL; with 1 s both must
      // have cut the device well inside this bound (the default TTL, 30 s, never would).
      await until("both sessions cut", () => c1.closed !== undefined && c2.closed !== undefined, 8 * AUTH_TTL_MS);
      for (const [i, c] of [c1, c2].entries()) {
        assert.equal(c.closed!.reason, "revoked", `gateway ${i + 1}: close reason`);
        assert.ok(c.frames.some((f) => f.type === "error" && f.code === "revoked"), `gateway ${i + 1}: an error frame says why`);
      }
      // And a new hello is refused on either gateway, without saying why (docs/07 "No oracle").
      for (const g of [0, 1]) {
        const again = await connect(g, device);
        const auth = again.frames.find((f) => f.type === "auth_result");
        assert.equal(auth?.ok, false, `gateway ${g + 1}`);
        assert.equal(auth?.code, "auth_failed");
      }
    },
  );
});
