// The choice between ws and h2 with scripted openers: first choice, fallback, which one sticks,
// and the failures that must not fall back.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { memoryLogger } from "../logging/logger.ts";
import type { AccessKey, TransportKind } from "../protocol/access-key.ts";
import type { SessionSocket } from "../runtime/index.ts";
import { cannotOpen, GatewaySocketError, type OpenSocket } from "./gateway-socket.ts";
import { selectTransport } from "./transport-select.ts";

const key: AccessKey = { host: "127.0.0.1", port: 1, path: "/ws", deviceId: "d", token: "t", transport: "h2" };
const fakeSocket = (name: string) => ({ remoteAddress: name }) as unknown as SessionSocket;

/** Openers whose outcome the test sets per transport; `calls` records the order they were tried in. */
function scripted(outcome: Record<TransportKind, "ok" | "refused" | "pin">) {
  const calls: TransportKind[] = [];
  const opener = (t: TransportKind): OpenSocket => async () => {
    calls.push(t);
    if (outcome[t] === "ok") return fakeSocket(t);
    if (outcome[t] === "pin") throw new GatewaySocketError("pin_mismatch", "not our certificate");
    throw new GatewaySocketError("unavailable", `${t} refused`, true);
  };
  return { calls, outcome, openers: { ws: opener("ws"), h2: opener("h2") } };
}

const open = (sel: ReturnType<typeof selectTransport>) =>
  sel.open(key, {}, 1000, () => ({ message() {}, drain() {}, close() {} }));

describe("transport selection", () => {
  test("the first choice when it works; nothing else is tried", async () => {
    const s = scripted({ ws: "ok", h2: "ok" });
    const sel = selectTransport("h2", { openers: s.openers });
    assert.equal((await open(sel)).remoteAddress, "h2");
    assert.deepEqual(s.calls, ["h2"]);
    assert.equal(sel.current, "h2");
  });

  test("falls back both ways, logs it, and keeps the one that worked for the next session", async () => {
    for (const [first, second] of [["h2", "ws"], ["ws", "h2"]] as const) {
      const s = scripted({ ws: "ok", h2: "ok", [first]: "refused" } as Record<TransportKind, "ok" | "refused">);
      const log = memoryLogger("debug");
      const sel = selectTransport(first, { openers: s.openers, logger: log });
      assert.equal((await open(sel)).remoteAddress, second);
      assert.equal(sel.current, second);
      const warned = log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((r) =>
        r.msg === `transport ${first} failed; falling back to ${second}`
      );
      assert.equal(warned?.level, "warn");
      assert.match(String(warned?.error), /refused/);
      await open(sel);
      assert.deepEqual(s.calls, [first, second, second], "the next session goes straight to what worked");
      // And back again when that one stops working.
      s.outcome[second] = "refused";
      s.outcome[first] = "ok";
      assert.equal((await open(sel)).remoteAddress, first);
      assert.equal(sel.current, first);
    }
  });

  test("a pin mismatch is not retried over the other transport", async () => {
    const s = scripted({ ws: "ok", h2: "pin" });
    const sel = selectTransport("h2", { openers: s.openers });
    await assert.rejects(open(sel), (e: unknown) => e instanceof GatewaySocketError && e.code === "pin_mismatch");
    assert.deepEqual(s.calls, ["h2"]);
  });

  test("both failing: one unavailable error naming both reasons; fallback:false tries only the first", async () => {
    const s = scripted({ ws: "refused", h2: "refused" });
    await assert.rejects(
      open(selectTransport("ws", { openers: s.openers })),
      (e: unknown) =>
        e instanceof GatewaySocketError && e.code === "unavailable" && /^ws: ws refused; h2: h2 refused$/.test(e.message),
    );
    s.calls.length = 0;
    await assert.rejects(open(selectTransport("ws", { openers: s.openers, fallback: false })), /ws refused/);
    assert.deepEqual(s.calls, ["ws"]);
  });

  test("a refused TCP connection (nothing listens: a gateway restarting) is not retried over the other transport", async () => {
    const calls: TransportKind[] = [];
    const opener = (t: TransportKind): OpenSocket => async () => {
      calls.push(t);
      throw new GatewaySocketError("unavailable", `${t}: connect ECONNREFUSED`, false, true);
    };
    const sel = selectTransport("h2", { openers: { ws: opener("ws"), h2: opener("h2") } });
    await assert.rejects(open(sel), (e: unknown) => e instanceof GatewaySocketError && e.nothingListens);
    assert.deepEqual(calls, ["h2"]);
    assert.equal(sel.current, "h2", "the first choice stays for the next attempt");
  });

  test("cannotOpen: ECONNREFUSED is nothing listening; a reset is not", async () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    assert.equal(cannotOpen("127.0.0.1:1", refused).nothingListens, true);
    assert.equal(cannotOpen("127.0.0.1:1", reset).nothingListens, false);
  });
});
