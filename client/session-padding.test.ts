// The client's side of "padding" (docs/03 §12) against a scripted gateway: the padded hello
// and session-request path, the first PADDED_FRAMES frames of each stream padded once granted,
// and nothing padded beyond the hello for a gateway that does not grant it (an old gateway) or
// when the client has padding off.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BinaryKind } from "../protocol/codec.ts";
import { PADDED_FRAMES } from "../protocol/padding.ts";
import { runtime } from "../runtime/index.ts";
import { pathOf } from "../runtime/types.ts";
import { openGatewaySocket, type OpenSocket } from "./gateway-socket.ts";
import { ClientSession, type ClientSessionOptions } from "./session.ts";
import { closedAfterTests, concat, echoScript, type GatewayConn, record, type ScriptedGateway, until } from "./testing.ts";

const { gateway, track } = closedAfterTests();

/** Opens a session and records the path each session request asked for. */
async function open(g: ScriptedGateway, opts: Partial<ClientSessionOptions> = {}) {
  const paths: string[] = [];
  const openSocket: OpenSocket = (key, tls, ms, accept) => (paths.push(key.path), openGatewaySocket(key, tls, ms, accept));
  const s = track(await ClientSession.open({ key: g.key(), connectTimeoutMs: 5000, openSocket, ...opts }));
  return { s, paths };
}

/** The kind byte ("text" for JSON text) of each message the gateway got for stream `id`'s data. */
function dataKinds(conn: GatewayConn, id: string): Array<number | "text"> {
  return conn.frames.flatMap((f, i) => {
    if (f.type !== "stream_data" || f.stream_id !== id) return [];
    const m = conn.messages[i]!;
    return [typeof m === "string" ? "text" : m[0]!];
  });
}

/** Writes `n` chunks one by one, each after the echo of the one before (so each is its own frame). */
async function writeChunks(st: ReturnType<ClientSession["openStream"]>, n: number) {
  const rx = record(st);
  for (let i = 0; i < n; i++) {
    st.write(new TextEncoder().encode(`chunk ${i};`));
    await until(() => rx.text().includes(`chunk ${i};`), `echo ${i}`);
  }
  return rx;
}

describe(`client padding on ${runtime}`, () => {
  test("hello padded to 900-1399 and asks for padding; the session request's path carries a random query", async () => {
    const g = await gateway(echoScript({ features: ["flow", "binary", "half_close", "padding"] }));
    const { s, paths } = await open(g);
    const conn = g.conns[0]!;
    const hello = conn.messages[0] as string;
    assert.match(hello, /^\{"type":"hello".*,"pad":"0+"\}$/);
    assert.ok(hello.length >= 900 && hello.length < 1400, `hello of ${hello.length}`);
    const f = conn.frames[0]!;
    assert.ok(f.type === "hello" && f.features?.includes("padding"));
    assert.equal(paths.length, 1);
    assert.match(paths[0]!, /^\/ws\?[a-z]+=[A-Za-z0-9]{16,}$/);
    assert.equal(pathOf(paths[0]!), "/ws");
    assert.ok(s.features.has("padding"));
  });

  test("granted: stream_open and the first 8 stream_data are 0x04 padded, the rest plain binary", async () => {
    const g = await gateway(echoScript({ features: ["flow", "binary", "half_close", "padding"] }));
    const { s } = await open(g);
    const st = s.openStream({ host: "example.com", port: 443 });
    const rx = await writeChunks(st, PADDED_FRAMES + 3);
    const conn = g.conns[0]!;
    const openAt = conn.frames.findIndex((f) => f.type === "stream_open");
    assert.equal((conn.messages[openAt] as Uint8Array)[0], BinaryKind.padded);
    const kinds = dataKinds(conn, st.id);
    assert.deepEqual(kinds, [...Array(PADDED_FRAMES).fill(BinaryKind.padded), ...Array(3).fill(BinaryKind.stream_data)]);
    for (const m of conn.messages) {
      if (typeof m !== "string" && m[0] === BinaryKind.padded) assert.ok(m.length >= 900 && m.length < 1400);
    }
    assert.equal(rx.text(), Array.from({ length: PADDED_FRAMES + 3 }, (_, i) => `chunk ${i};`).join(""));
  });

  test("an old gateway (padding not granted): only the hello is padded, every frame after it is plain", async () => {
    const g = await gateway(echoScript({ features: ["flow", "binary", "half_close"] }));
    const { s } = await open(g);
    const st = s.openStream({ host: "example.com", port: 443 });
    await writeChunks(st, 3);
    const conn = g.conns[0]!;
    const after = conn.messages.slice(1);
    assert.ok(after.length >= 4);
    assert.ok(after.every((m) => typeof m === "string" ? !m.includes('"pad"') : m[0] !== BinaryKind.padded), "nothing padded");
    assert.deepEqual(dataKinds(conn, st.id), Array(3).fill(BinaryKind.stream_data));
  });

  test("padding off on the client: no pad, no query, not asked for", async () => {
    const g = await gateway(echoScript({ features: ["flow", "binary", "half_close"] }));
    const { s, paths } = await open(g, { padding: false });
    const conn = g.conns[0]!;
    assert.doesNotMatch(conn.messages[0] as string, /"pad"/);
    const f = conn.frames[0]!;
    assert.ok(f.type === "hello" && !f.features?.includes("padding"));
    assert.deepEqual(paths, ["/ws"]);
    const st = s.openStream({ host: "example.com", port: 443 });
    const rx = await writeChunks(st, 2);
    assert.deepEqual(concat(rx.data).length, "chunk 0;chunk 1;".length);
  });
});
