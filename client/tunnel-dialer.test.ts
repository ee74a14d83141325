// The tunnel Dialer against scripted gateways: waiting for a session, reconnecting with
// backoff, final auth failures, goaway (make-before-break), and bad access keys.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { after, describe, test } from "node:test";
import type { Frame } from "../protocol/frames.ts";
import { runtime } from "../runtime/index.ts";
import { StreamError } from "../transport/stream.ts";
import { ClientError } from "./session.ts";
import { echoScript, type GatewayConn, record, type ScriptedGateway, startScriptedGateway, until } from "./testing.ts";
import { connect, type ConnectOptions, FINAL_AUTH_CODES, type Tunnel, type TunnelStatus } from "./tunnel-dialer.ts";

const gateways: ScriptedGateway[] = [];
const tunnels: Tunnel[] = [];
after(async () => {
  for (const t of tunnels) await t.close();
  for (const g of gateways) await g.close();
});

async function gateway(onFrame: (conn: GatewayConn, f: Frame) => void, port?: number): Promise<ScriptedGateway> {
  const g = await startScriptedGateway(onFrame, { port });
  gateways.push(g);
  return g;
}

function tunnel(key: Parameters<typeof connect>[0], opts: ConnectOptions = {}): Tunnel {
  const t = connect(key, { backoffInitialMs: 50, backoffMaxMs: 400, connectTimeoutMs: 3000, ...opts });
  tunnels.push(t);
  return t;
}

/** A loopback port nobody listens on (until a test starts a gateway there). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const enc = (s: string) => new TextEncoder().encode(s);

async function echoOnce(t: Tunnel, text: string): Promise<string> {
  const st = await t.dial({ host: "example.com", port: 80 });
  const rx = record(st);
  st.write(enc(text));
  st.closeWrite();
  await until(() => rx.closed !== null, "stream close");
  if (rx.closed!.err) throw rx.closed!.err;
  return rx.text();
}

describe(`tunnel dialer on ${runtime}`, () => {
  test("a bad access key is a ClientError bad_access_key that never shows the token", () => {
    assert.throws(
      () => connect("httvps://dev:sup3r-secret@gw.example.com:99999/ws"),
      (e: unknown) =>
        e instanceof ClientError && e.code === "bad_access_key" && /port/.test(e.message) && !e.message.includes("sup3r-secret"),
    );
    assert.throws(() => connect("https://example.com"), (e: unknown) => e instanceof ClientError && e.code === "bad_access_key");
    assert.throws(
      () => connect("httvps://d:t@gw.example.com/ws?transport=h3"),
      (e: unknown) => e instanceof ClientError && e.code === "bad_access_key" && /transport/.test(e.message),
    );
  });

  test("dials through one session; a dial made before the gateway is up waits for it", async () => {
    const port = await freePort();
    const probe = await gateway(echoScript()); // only to build a key with the right pin
    const key = probe.key({ port });
    const t = tunnel(key);
    const states: string[] = [];
    t.onStatus((s) => states.push(s.state));
    const pending = echoOnce(t, "early bird");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(t.status.state, "connecting");
    assert.ok(t.status.error, "the refused connection is reported");
    const g = await gateway(echoScript(), port);
    assert.equal(await pending, "early bird");
    assert.equal(await echoOnce(t, "second"), "second");
    assert.equal(g.conns.length, 1, "both dials shared one session");
    assert.equal(t.status.state, "connected");
    assert.equal(t.status.sessions, 1);
    assert.ok(states.includes("connected"));
  });

  test("a dial with no session in sight fails with unavailable after waitForSessionMs", async () => {
    const probe = await gateway(echoScript());
    const t = tunnel(probe.key({ port: await freePort() }), { waitForSessionMs: 300 });
    const t0 = Date.now();
    await assert.rejects(
      t.dial({ host: "h", port: 1 }),
      (e: unknown) => e instanceof StreamError && e.code === "unavailable" && /last error/.test(e.message),
    );
    assert.ok(Date.now() - t0 >= 250);
  });

  test("a live session cut as revoked, then auth_failed at the next hello: final, and it stays revoked", async () => {
    let hellos = 0;
    const g = await gateway((conn, f) => {
      if (f.type !== "hello") return;
      if (++hellos === 1) {
        conn.authOk();
        setTimeout(() => {
          conn.send({ type: "error", code: "revoked", message: "the device's access was revoked" });
          conn.close(1008, "revoked");
        }, 20);
        return;
      }
      conn.send({ type: "auth_result", ok: false, code: "auth_failed", message: "authentication failed" });
      conn.close(1008, "auth_failed");
    });
    const t = tunnel(g.key(), { backoffInitialMs: 10 });
    const failed = new Promise<TunnelStatus>((resolve) => t.onStatus((s) => s.state === "failed" && resolve(s)));
    await t.ready();
    const s = await failed;
    assert.equal(hellos, 2, "it tried once more, as after any lost session");
    assert.deepEqual(s.error, { code: "revoked", message: "the device's access was revoked" });
  });

  test("docs/05 names exactly the final codes, and the retried ones are not among them", () => {
    const doc = readFileSync(new URL("../docs/05-client.md", import.meta.url), "utf8");
    const bullet = /^- `unavailable`, `rate_limited`[\s\S]*?(?=\n(?:- |\n))/m.exec(doc)?.[0] ?? "";
    const [retried, final] = bullet.split(" are retried.");
    const codes = (text = "") => new Set([...text.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!));
    assert.deepEqual([...codes(final)].sort(), [...FINAL_AUTH_CODES].sort());
    for (const c of codes(retried)) assert.ok(!FINAL_AUTH_CODES.has(c), `${c} is documented as retried`);
  });

  for (const code of ["auth_failed", "revoked", "bad_token", "unknown_device", "disabled", "expired"]) {
    test(`auth failure ${code} is final: state failed, dials fail with ${code}, no more attempts`, async () => {
      const g = await gateway((conn, f) => {
        if (f.type === "hello") {
          conn.send({ type: "auth_result", ok: false, code, message: `because ${code}` });
          conn.close(1008, code);
        }
      });
      const t = tunnel(g.key());
      const failed = new Promise<TunnelStatus>((resolve) => t.onStatus((s) => s.state === "failed" && resolve(s)));
      await assert.rejects(t.ready(), (e: unknown) => e instanceof ClientError && e.code === code);
      const s = await failed;
      assert.equal(s.error?.code, code);
      await assert.rejects(t.dial({ host: "h", port: 1 }), (e: unknown) => e instanceof StreamError && e.code === code);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(g.conns.length, 1, "no retry after a final answer");
    });
  }

  test("unavailable and rate_limited keep retrying with backoff until the gateway says yes", async () => {
    let answers = ["unavailable", "rate_limited", "unavailable"];
    const g = await gateway((conn, f) => {
      if (f.type !== "hello") return echoScript()(conn, f);
      const code = answers.shift();
      if (code) {
        conn.send({ type: "auth_result", ok: false, code, message: "later" });
        conn.close(1008, code);
      } else conn.authOk();
    });
    const t = tunnel(g.key());
    const seen: TunnelStatus[] = [];
    t.onStatus((s) => seen.push(s));
    await t.ready();
    assert.equal(g.conns.length, 4);
    assert.deepEqual(
      seen.filter((s) => s.state === "connecting").map((s) => s.error?.code),
      ["unavailable", "rate_limited", "unavailable"],
    );
    assert.ok(seen.every((s) => s.state !== "connecting" || (s.retryInMs ?? 0) > 0));
    assert.equal(await echoOnce(t, "finally"), "finally");
    answers = [];
  });

  test("a lost session fails its open streams with session_closed, then reconnects", async () => {
    const g = await gateway(echoScript());
    const t = tunnel(g.key());
    await t.ready();
    const st = await t.dial({ host: "h", port: 1 });
    const rx = record(st);
    g.conns[0]!.close(1011, "internal");
    await until(() => rx.closed !== null, "stream closed");
    assert.equal(rx.closed!.err?.code, "session_closed");
    await until(() => t.status.state === "connected" && g.conns.length === 2, "reconnected");
    assert.equal(await echoOnce(t, "after"), "after");
    assert.equal(t.status.sessions, 2);
  });

  test("goaway: a new session at once for new dials, while the old stream finishes on the old one", async () => {
    const g = await gateway(echoScript());
    const t = tunnel(g.key());
    await t.ready();
    const old = await t.dial({ host: "h", port: 1 });
    const rxOld = record(old);
    g.conns[0]!.send({ type: "goaway", code: "shutdown", message: "restarting", drain_ms: 5000 });
    await until(() => g.conns.length === 2 && t.status.state === "connected", "second session");
    assert.equal(await echoOnce(t, "new"), "new");
    assert.equal(g.conns[1]!.of("stream_open").length, 1, "the new dial went to the new session");
    old.write(enc("old"));
    old.closeWrite();
    await until(() => rxOld.closed !== null, "old stream done");
    assert.equal(rxOld.text(), "old");
    assert.equal(rxOld.closed!.err, undefined);
    await until(() => g.conns[0]!.closed !== null, "old session closed after draining");
  });

  test("confirmMs turns an early stream_close into a failed dial", async () => {
    const g = await gateway((conn, f) => {
      if (f.type === "hello") conn.authOk();
      if (f.type === "stream_open") {
        conn.send({ type: "stream_close", stream_id: f.stream_id, code: "upstream_refused", message: "connection refused" });
      }
    });
    const t = tunnel(g.key(), { confirmMs: 2000 });
    await assert.rejects(
      t.dial({ host: "h", port: 1 }),
      (e: unknown) => e instanceof StreamError && e.code === "upstream_refused",
    );
  });

  test("close(): dials fail with session_closed and the session is closed", async () => {
    const g = await gateway(echoScript());
    const t = tunnel(g.key());
    await t.ready();
    const st = await t.dial({ host: "h", port: 1 });
    const rx = record(st);
    await t.close();
    assert.equal(t.status.state, "closed");
    await until(() => rx.closed !== null && g.conns[0]!.closed !== null, "closed");
    await assert.rejects(t.dial({ host: "h", port: 1 }), (e: unknown) => e instanceof StreamError && e.code === "session_closed");
    await assert.rejects(t.dial({ host: "", port: 0 }), (e: unknown) => e instanceof StreamError && e.code === "bad_target");
  });
});
