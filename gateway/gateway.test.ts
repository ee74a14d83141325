// startGateway() as a whole, with the backend client injected (the e2e suite uses the real
// backend): the mode switch, startup errors, backend outages, and that sessions do not pile up.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ConfigError, type Env, loadConfig } from "../config/config.ts";
import { memoryLogger } from "../logging/logger.ts";
import * as codec from "../protocol/codec.ts";
import type { Frame } from "../protocol/frames.ts";
import { type SessionHandler, type SessionSocket, wsConnect } from "../runtime/index.ts";
import type { AuthOutcome, BackendClient, ReportBody } from "./auth.ts";
import { createDevCertificate, type DevCertificate } from "./certs.ts";
import { GatewayError, startGateway } from "./gateway.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Client implements SessionHandler {
  socket!: SessionSocket;
  frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  static async connect(port: number, ca: string): Promise<Client> {
    const c = new Client();
    c.socket = await wsConnect(`wss://localhost:${port}/ws`, { ca }, () => c);
    return c;
  }
  send(f: Frame): void {
    this.socket.send(codec.encodeText(f));
  }
  message(m: string | Uint8Array): void {
    const r = typeof m === "string" ? codec.decodeText(m) : codec.decodeBinary(m);
    if (r.ok) this.frames.push(r.frame);
  }
  drain(): void {}
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }
  async until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(5);
    }
  }
  echoed(id: string): string {
    return this.frames
      .filter((f) => f.type === "stream_data" && f.stream_id === id)
      .map((f) => new TextDecoder().decode((f as { data: Uint8Array }).data))
      .join("");
  }
}

/** A backend client under the test's control: validation can go down, reports are recorded. */
function switchableBackend() {
  const reports: ReportBody[] = [];
  const state = { down: false };
  const client: BackendClient = {
    async validateDevice(req): Promise<AuthOutcome> {
      if (state.down) return { ok: false, code: "unavailable", message: "down" };
      if (req.token !== "good-token") return { ok: false, code: "bad_token", message: "no" };
      return {
        ok: true,
        device: { id: req.device_id, name: "d", max_sessions: null, data_quota_bytes: null, expires_at: null },
        assignment: null,
      };
    },
    async validateApp() {
      return state.down
        ? { ok: false, code: "unavailable", message: "down" }
        : { ok: false, code: "unknown_device", message: "no" };
    },
    async report(body) {
      if (state.down) throw Object.assign(new Error("down"), { code: "unreachable" });
      reports.push(body);
      return body.events.length;
    },
  };
  return { client, reports, state };
}

describe("startGateway", () => {
  let cert: DevCertificate;
  let dir: string;
  before(async () => {
    cert = await createDevCertificate();
    dir = await mkdtemp(join(tmpdir(), "httvps-gw-"));
    await writeFile(join(dir, "cert.pem"), cert.certPem);
    await writeFile(join(dir, "key.pem"), cert.keyPem, { mode: 0o600 });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string> = {}): Env =>
    loadConfig({
      LOG_LEVEL: "warn",
      GATEWAY_LISTEN_ADDR: "127.0.0.1:0",
      GATEWAY_TLS_CERT: join(dir, "cert.pem"),
      GATEWAY_TLS_KEY: join(dir, "key.pem"),
      DATA_DIR: join(dir, "data"),
      GATEWAY_METRICS_ADDR: "127.0.0.1:0",
      ...extra,
    });

  test("every upstream mode starts and stops; a bad direct allow-list is a config error naming the variable", async () => {
    for (const mode of ["fake", "outline", "direct"]) {
      const gw = await startGateway(env({ GATEWAY_UPSTREAM_MODE: mode }), {
        logger: memoryLogger(),
        backend: switchableBackend().client,
      });
      assert.ok(gw.port > 0, mode);
      await gw.close();
    }
    await assert.rejects(
      startGateway(env({ GATEWAY_UPSTREAM_MODE: "direct", GATEWAY_DIRECT_ALLOW: "10.0.0.0/33" }), {
        logger: memoryLogger(),
        backend: switchableBackend().client,
      }),
      (e: unknown) => e instanceof ConfigError && e.variable === "GATEWAY_DIRECT_ALLOW",
    );
  });

  test("unreadable TLS files are a typed error naming the file", async () => {
    await assert.rejects(
      startGateway(env({ GATEWAY_TLS_KEY: join(dir, "missing.pem") }), {
        logger: memoryLogger(),
        backend: switchableBackend().client,
      }),
      (e: unknown) => e instanceof GatewayError && e.code === "tls_unreadable" && e.message.includes("missing.pem"),
    );
  });

  test("backend down: new sessions get `unavailable`, a live one keeps flowing; reports catch up later", async () => {
    const b = switchableBackend();
    const gw = await startGateway(env({ GATEWAY_AUTH_CACHE_TTL: "50ms", GATEWAY_USAGE_FLUSH_INTERVAL: "50ms" }), {
      logger: memoryLogger(),
      backend: b.client,
    });
    try {
      const live = await Client.connect(gw.port, cert.certPem);
      live.send({ type: "hello", device_id: "d1", token: "good-token", client_version: "t" });
      await live.until(() => live.frames.some((f) => f.type === "auth_result"), "auth_result");
      b.state.down = true;
      const fresh = await Client.connect(gw.port, cert.certPem);
      fresh.send({ type: "hello", device_id: "d2", token: "good-token", client_version: "t" });
      await fresh.until(() => fresh.closed !== null, "refused");
      const r = fresh.frames.find((f) => f.type === "auth_result");
      assert.ok(r?.type === "auth_result" && !r.ok && r.code === "unavailable");
      await sleep(200); // several re-validations fail meanwhile
      live.send({ type: "stream_open", stream_id: "s1", data: new TextEncoder().encode("still here") });
      await live.until(() => live.echoed("s1") === "still here", "echo while the backend is down");
      assert.equal(live.closed, null);
      b.state.down = false;
      await live.until(
        () => b.reports.flatMap((x) => x.events).some((e) => e.type === "session_open"),
        "reports delivered after the outage",
      );
      live.socket.close(1000, "bye");
      await live.until(() => live.closed !== null, "closed");
      const body = (await gw.metrics.render()).body;
      assert.match(body, /httvps_gateway_sessions_total\{outcome="unavailable"\} 1/);
      assert.match(body, /httvps_gateway_sessions_total\{outcome="ok"\} 1/);
    } finally {
      await gw.close();
    }
  });

  test("sessions leave the gateway's set when they end; close() ends the rest", async () => {
    const b = switchableBackend();
    const gw = await startGateway(env(), { logger: memoryLogger(), backend: b.client });
    try {
      for (let i = 0; i < 10; i++) {
        const c = await Client.connect(gw.port, cert.certPem);
        c.send({ type: "hello", device_id: "d", token: i % 2 ? "good-token" : "bad", client_version: "t" });
        await c.until(() => c.frames.length > 0, "answer");
        c.socket.close(1000, "bye");
        await c.until(() => c.closed !== null, "closed");
      }
      const deadline = Date.now() + 5000;
      while (gw.sessions > 0 && Date.now() < deadline) await sleep(10);
      assert.equal(gw.sessions, 0, "nothing accumulates");
      const open = await Client.connect(gw.port, cert.certPem);
      open.send({ type: "hello", device_id: "d", token: "good-token", client_version: "t" });
      await open.until(() => open.frames.length > 0, "auth");
      assert.equal(gw.sessions, 1);
      await gw.close();
      await open.until(() => open.closed !== null, "closed by shutdown");
      assert.equal(open.closed!.code, 1001);
      assert.equal(gw.sessions, 0);
    } finally {
      await gw.close();
    }
  });
});
