// A new stream's stream_open waits for the end of the event-loop turn (held-opens.ts), so the
// proxy's success reply, written in the microtasks after the dial, goes out before it; and
// nothing the session sends may overtake a held open. Checked on what the session hands to its
// socket, against a scripted gateway on the runtime's real WebSocket server.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { setImmediate } from "node:timers";
import { runtime, type SessionSocket } from "../runtime/index.ts";
import { openGatewaySocket, type OpenSocket } from "./gateway-socket.ts";
import { HeldOpens } from "./held-opens.ts";
import { ClientSession } from "./session.ts";
import { echoScript, type ScriptedGateway, startScriptedGateway, until } from "./testing.ts";

const gateways: ScriptedGateway[] = [];
const sessions: ClientSession[] = [];
after(async () => {
  for (const s of sessions) s.close();
  for (const g of gateways) await g.close();
});

const endOfTurn = () => new Promise<void>((r) => setImmediate(r));
/** Every microtask queued so far, and those they queue, a few levels deep (a dial's promise hops). */
const microtasks = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

/** A session whose socket records the frame type of every message handed to it. */
async function recordingSession(): Promise<{ session: ClientSession; sent: string[] }> {
  const g = await startScriptedGateway(echoScript());
  gateways.push(g);
  const sent: string[] = [];
  const openSocket: OpenSocket = (key, tls, timeoutMs, accept) =>
    openGatewaySocket(key, tls, timeoutMs, (socket: SessionSocket) => {
      const send = socket.send.bind(socket);
      socket.send = (msg) => {
        sent.push(typeof msg === "string" ? JSON.parse(msg).type : `binary:${msg[0]}`);
        send(msg);
      };
      return accept(socket);
    });
  const session = await ClientSession.open({ key: g.key(), connectTimeoutMs: 5000, padding: false, openSocket });
  sessions.push(session);
  sent.length = 0; // the hello
  return { session, sent };
}

describe(`held stream_open on ${runtime}`, () => {
  test("stream_open leaves at the end of the turn, after the microtasks that write a proxy's reply", async () => {
    const { session, sent } = await recordingSession();
    const st = session.openStream({ host: "example.com", port: 80 });
    assert.deepEqual(sent, [], "not sent by openStream itself");
    await microtasks();
    assert.deepEqual(sent, [], "not sent in this turn's microtasks");
    await endOfTurn();
    assert.deepEqual(sent, ["stream_open"]);
    st.close();
  });

  test("data written right after the open goes out behind it, at once", async () => {
    const { session, sent } = await recordingSession();
    const st = session.openStream({ host: "example.com", port: 80 });
    st.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    assert.equal(sent[0], "stream_open", "the held open is flushed first");
    assert.equal(sent.length, 2, "then the data, without waiting for the end of the turn");
    await endOfTurn();
    assert.equal(sent.length, 2, "the open is not sent twice");
    st.close();
  });

  test("two streams opened in one turn are opened in order", async () => {
    const { session } = await recordingSession();
    const gw = gateways.at(-1)!;
    const a = session.openStream({ host: "a.example", port: 1 });
    const b = session.openStream({ host: "b.example", port: 2 });
    await until(() => gw.conns[0]!.of("stream_open").length === 2, "both opens at the gateway");
    assert.deepEqual(gw.conns[0]!.of("stream_open").map((f) => f.stream_id), [a.id, b.id]);
    a.close();
    b.close();
  });

  test("HeldOpens: flush sends in order once, drop discards, and a flush from inside out() sends nothing twice", async () => {
    const out: string[] = [];
    const h: HeldOpens = new HeldOpens((m) => {
      out.push(String(m));
      h.flush(); // the session's send() flushes first: re-entry must be a no-op
    });
    h.hold("1");
    h.hold("2");
    h.flush();
    assert.deepEqual(out, ["1", "2"]);
    h.hold("3");
    h.drop();
    await endOfTurn();
    assert.deepEqual(out, ["1", "2"], "a dropped open never goes");
  });
});
