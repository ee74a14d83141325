// The client's side of early data (docs/03 §13) against scripted gateways that hold back
// auth_result: a stream opened right behind the hello (JSON, padded, at most EARLY_DATA_BYTES
// before auth_result, the rest after it), a refused hello ending it, and the tunnel using early
// data only on sessions after one that was granted it (so an old gateway never gets it).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runtime } from "../runtime/index.ts";
import { type Duplex, StreamError } from "../transport/stream.ts";
import { ClientError, ClientSession } from "./session.ts";
import { EARLY_DATA_BYTES } from "./stream-host.ts";
import { closedAfterTests, concat, echoScript, type GatewayConn, record, until } from "./testing.ts";
import { connect } from "./tunnel-dialer.ts";
import type { TunnelStream } from "./tunnel-stream.ts";

const { gateway, track } = closedAfterTests();

const GRANTS = { features: ["flow", "binary", "half_close", "early_data"] as const };

/**
 * An echo gateway that answers the hello only once stream data arrived (or after `waitMs`),
 * recording for each connection how many stream frames and payload bytes came before auth_result.
 */
async function holdingGateway(opts: { refuse?: boolean; waitMs?: number; grant?: (conn: number) => boolean } = {}) {
  // Whether the n-th connection is granted early_data (all by default).
  const echoFor = (n: number) =>
    echoScript({ features: [...GRANTS.features].filter((f) => f !== "early_data" || (opts.grant?.(n) ?? true)) });
  const before = new Map<GatewayConn, { frames: string[]; bytes: number }>();
  const authed = new Set<GatewayConn>();
  const answer = (conn: GatewayConn) => {
    if (authed.has(conn) || conn.closed) return;
    authed.add(conn);
    if (opts.refuse) {
      conn.send({ type: "auth_result", ok: false, code: "auth_failed", message: "authentication failed" });
      return conn.close(1008, "auth_failed");
    }
    const echo = echoFor(g.conns.indexOf(conn));
    echo(conn, { type: "hello", device_id: "d", token: "t", client_version: "x" });
    // Now what was held runs, as a gateway does.
    for (const f of conn.frames.slice(1)) echo(conn, f);
  };
  const g = await gateway((conn, f) => {
    if (f.type === "hello") {
      before.set(conn, { frames: [], bytes: 0 });
      setTimeout(() => answer(conn), opts.waitMs ?? 2000);
      return;
    }
    if (!authed.has(conn)) {
      const b = before.get(conn)!;
      b.frames.push(f.type);
      if (f.type === "stream_data") {
        b.bytes += f.data.length;
        setTimeout(() => answer(conn), 50); // let the rest of the early bytes arrive first
      }
      return;
    }
    echoFor(g.conns.indexOf(conn))(conn, f);
  });
  return { g, before };
}

async function echoText(st: Duplex, text: string): Promise<string> {
  const rx = record(st);
  st.write(new TextEncoder().encode(text));
  st.closeWrite();
  await until(() => rx.closed !== null, "stream close");
  if (rx.closed!.err) throw rx.closed!.err;
  return rx.text();
}

describe(`client early data on ${runtime}`, () => {
  test("a stream opened behind the hello: JSON padded frames before auth_result, at most EARLY_DATA_BYTES, the rest after", async () => {
    const { g, before } = await holdingGateway();
    const data = Uint8Array.from({ length: EARLY_DATA_BYTES * 2 + 123 }, (_, i) => (i * 7) & 0xff);
    let st: TunnelStream | undefined;
    let rx: ReturnType<typeof record> | undefined;
    const s = track(
      await ClientSession.open({ key: g.key(), connectTimeoutMs: 5000, earlyData: true }, {
        helloSent(s) {
          assert.equal(s.canOpenEarly, true);
          st = s.openStream({ host: "example.com", port: 443 });
          rx = record(st);
          st.write(data);
          st.closeWrite();
          assert.equal(s.canOpenEarly, false, "one early stream per session");
        },
      }),
    );
    await until(() => rx?.closed != null, "the early stream's echo and close");
    assert.deepEqual(concat(rx!.data), data);
    const conn = g.conns[0]!;
    const b = before.get(conn)!;
    assert.deepEqual(b.frames.slice(0, 2), ["stream_open", "stream_data"]);
    assert.equal(b.bytes, EARLY_DATA_BYTES, "exactly the early allowance went before auth_result");
    // The early frames were JSON with a pad field; what came after auth_result was binary.
    const openAt = conn.frames.findIndex((f) => f.type === "stream_open");
    assert.match(conn.messages[openAt] as string, /"pad":"0+"\}$/);
    const dataKinds = conn.frames.flatMap((f, i) => (f.type === "stream_data" ? [conn.kinds[i]] : []));
    assert.equal(dataKinds[0], "text");
    assert.ok(dataKinds.length > 1 && dataKinds.slice(1).every((k) => k === "binary"), dataKinds.join());
    assert.ok(s.features.has("early_data"));
  });

  test("a refused hello ends the early stream with session_closed and the open with the auth code", async () => {
    const { g } = await holdingGateway({ refuse: true, waitMs: 100 });
    let rx: ReturnType<typeof record> | undefined;
    await assert.rejects(
      ClientSession.open({ key: g.key(), connectTimeoutMs: 5000, earlyData: true }, {
        helloSent(s) {
          const st = s.openStream({ host: "example.com", port: 443 });
          rx = record(st);
          st.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
        },
      }),
      (e: unknown) => e instanceof ClientError && e.code === "auth_failed",
    );
    await until(() => rx?.closed != null, "the early stream closed");
    assert.ok(rx!.closed!.err instanceof StreamError && rx!.closed!.err.code === "session_closed");
  });

  test("without earlyData (the default) no stream opens before auth_result", async () => {
    const g = await gateway(echoScript());
    let threw: unknown;
    track(
      await ClientSession.open({ key: g.key(), connectTimeoutMs: 5000 }, {
        helloSent(s) {
          assert.equal(s.canOpenEarly, false);
          try {
            s.openStream({ host: "example.com", port: 443 });
          } catch (e) {
            threw = e;
          }
        },
      }),
    );
    assert.ok(threw instanceof StreamError && threw.code === "session_closed");
  });

  /**
   * A tunnel whose gateway closes each session after one dial, so every later dial is made while
   * the tunnel reconnects: for each session, the stream frames that came before its auth_result.
   */
  async function heldPerSession(grant: (conn: number) => boolean, sessions: number): Promise<string[][]> {
    const { g, before } = await holdingGateway({ waitMs: 300, grant });
    const t = track(connect(g.key(), { backoffInitialMs: 20, backoffMaxMs: 100, connectTimeoutMs: 5000 }));
    for (let i = 0; i < sessions; i++) {
      if (i > 0) {
        g.conns[i - 1]!.close(1001, "shutdown");
        await until(() => t.status.state !== "connected", "the tunnel noticed");
      }
      const st = await t.dial({ host: "example.com", port: 80 });
      assert.equal(await echoText(st, `dial ${i}`), `dial ${i}`);
      await until(() => g.conns.length === i + 1, `session ${i + 1}`);
    }
    return g.conns.map((c) => before.get(c)!.frames);
  }

  test("the tunnel: no early stream on a first session; after a session granted early_data, the next one carries one", async () => {
    const held = await heldPerSession(() => true, 2);
    assert.deepEqual(held[0], [], "nothing before auth_result on a first session");
    assert.deepEqual(held[1]!.slice(0, 2), ["stream_open", "stream_data"], "the second session's stream was early");
  });

  test("the tunnel: a gateway that never grants it (an old one) never gets an early stream", async () => {
    assert.deepEqual(await heldPerSession(() => false, 2), [[], []]);
  });

  test("the tunnel: a gateway that stops granting it gets no early stream on the session after", async () => {
    const held = await heldPerSession((n) => n === 0, 3);
    assert.deepEqual(held[0], []);
    assert.deepEqual(held[1]!.slice(0, 2), ["stream_open", "stream_data"], "granted before: early");
    assert.deepEqual(held[2], [], "the second session did not grant it: no early stream on the third");
  });
});
