// The client's UDP streams (docs/03 §11) against a scripted gateway: the open, one frame per
// datagram both ways, the feature check, drops instead of queues, and the ways a stream ends.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import * as codec from "../protocol/codec.ts";
import type { Frame } from "../protocol/frames.ts";
import { runtime } from "../runtime/index.ts";
import { StreamError } from "../transport/stream.ts";
import { ClientSession } from "./session.ts";
import { echoScript, type GatewayConn, type ScriptedGateway, startScriptedGateway, until } from "./testing.ts";

const gateways: ScriptedGateway[] = [];
const sessions: ClientSession[] = [];
after(async () => {
  for (const s of sessions) s.close();
  for (const g of gateways) await g.close();
});

async function session(onFrame: (conn: GatewayConn, f: Frame) => void): Promise<{ g: ScriptedGateway; s: ClientSession }> {
  const g = await startScriptedGateway(onFrame);
  gateways.push(g);
  const s = await ClientSession.open({ key: g.key(), connectTimeoutMs: 5000 });
  sessions.push(s);
  return { g, s };
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** A handle on what a datagram stream delivers. */
function watch(conn: { start(h: { data(d: Uint8Array): void; close(e?: StreamError): void }): void }) {
  const got: string[] = [];
  const state: { closed: boolean; err?: StreamError } = { closed: false };
  conn.start({ data: (d) => got.push(str(d)), close: (err) => Object.assign(state, { closed: true, err }) });
  return { got, state };
}

describe(`client UDP streams on ${runtime}`, () => {
  test("stream_open names network udp; every send is one stream_data and every echo one datagram", async () => {
    const { g, s } = await session(echoScript({ features: ["flow", "binary", "udp"] }));
    const conn = s.openDatagrams({ host: "192.0.2.1", port: 53 });
    const w = watch(conn);
    for (const d of ["a", "", "ccc"]) assert.equal(conn.send(text(d)), true);
    await until(() => w.got.length === 3, "three echoed datagrams");
    assert.deepEqual(w.got, ["a", "", "ccc"]);
    const gw = g.conns[0]!;
    const openFrame = gw.of("stream_open")[0]!;
    assert.deepEqual({ ...openFrame }, {
      type: "stream_open",
      stream_id: conn.id,
      target: { host: "192.0.2.1", port: 53 },
      network: "udp",
    });
    assert.deepEqual(gw.of("stream_data", conn.id).map((f) => str(f.data)), ["a", "", "ccc"]);
    assert.equal(s.streamCount, 1);
    conn.close();
    assert.equal(s.streamCount, 0);
    await until(() => gw.of("stream_close", conn.id).length === 1, "stream_close at the gateway");
    assert.equal(w.state.closed, true);
    assert.equal(w.state.err, undefined);
  });

  test("without the udp grant the open fails with udp_unsupported", async () => {
    const { s } = await session(echoScript({ features: ["flow", "binary"] }));
    assert.throws(
      () => s.openDatagrams({ host: "192.0.2.1", port: 53 }),
      (e: unknown) => e instanceof StreamError && e.code === "udp_unsupported",
    );
  });

  test("an oversize datagram is dropped and counted, not sent", async () => {
    const { g, s } = await session(echoScript({ features: ["binary", "udp"] }));
    const conn = s.openDatagrams({ host: "192.0.2.1", port: 53 });
    const w = watch(conn);
    assert.equal(conn.send(new Uint8Array(codec.MAX_DATAGRAM_BYTES + 1)), false);
    assert.equal(conn.dropped, 1);
    conn.send(text("ok"));
    await until(() => w.got.length === 1, "the next datagram");
    assert.equal(g.conns[0]!.of("stream_data", conn.id).length, 1);
  });

  test("a datagram_too_large error leaves the stream open; a coded stream_close ends it with that code", async () => {
    let gw!: GatewayConn;
    const { s } = await session((conn, f) => {
      gw = conn;
      echoScript({ features: ["binary", "udp"] })(conn, f);
    });
    const conn = s.openDatagrams({ host: "10.0.0.1", port: 53 });
    const w = watch(conn);
    gw.send({ type: "error", code: "datagram_too_large", message: "too big", stream_id: conn.id });
    conn.send(text("still"));
    await until(() => w.got.length === 1, "the stream still works");
    gw.send({ type: "stream_close", stream_id: conn.id, code: "target_forbidden", message: "no" });
    await until(() => w.state.closed, "closed");
    assert.equal(w.state.err?.code, "target_forbidden");
    assert.equal(conn.send(text("late")), false);
  });

  test("datagram streams count against max_streams and end with session_closed when the session does", async () => {
    const { g, s } = await session(echoScript({ features: ["binary", "udp"], maxStreams: 2 }));
    const a = watch(s.openDatagrams({ host: "192.0.2.1", port: 1 }));
    s.openStream({ host: "example.com", port: 80 });
    assert.throws(
      () => s.openDatagrams({ host: "192.0.2.1", port: 2 }),
      (e: unknown) => e instanceof StreamError && e.code === "too_many_streams",
    );
    g.conns[0]!.close(1001, "shutdown");
    await until(() => a.state.closed, "closed with the session");
    assert.equal(a.state.err?.code, "session_closed");
  });
});
