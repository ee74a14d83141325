// The runtime-free pieces under the adapters: upgrade validation, path matching, the
// watermark logic behind drain(), and the message size check.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isWebSocketUpgrade, pathOf, WS_HIGH_WATER, WS_LOW_WATER } from "./types.ts";
import { tooBig, Watermark } from "./web-socket.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("isWebSocketUpgrade", () => {
  const good = {
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
  };
  test("accepts RFC 6455 upgrades, in any header case and with extra connection tokens", () => {
    assert.equal(isWebSocketUpgrade("GET", new Headers(good)), true);
    assert.equal(
      isWebSocketUpgrade("GET", new Headers({ ...good, Upgrade: "WebSocket", Connection: "keep-alive, Upgrade" })),
      true,
    );
    assert.equal(isWebSocketUpgrade("GET", new Headers({ ...good, "Sec-WebSocket-Protocol": "chat, v2.httvps" })), true);
  });
  test("refuses everything a WebSocket stack would answer with its own error", () => {
    for (
      const [method, h] of [
        ["POST", good],
        ["GET", { ...good, Upgrade: "h2c" }],
        ["GET", { ...good, Connection: "keep-alive" }],
        ["GET", { ...good, "Sec-WebSocket-Version": "8" }],
        ["GET", { ...good, "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ" }],
        ["GET", { ...good, "Sec-WebSocket-Key": "not base64 at all!!!!!==" }],
        ["GET", { ...good, "Sec-WebSocket-Protocol": "a b" }],
        ["GET", { ...good, "Sec-WebSocket-Protocol": "a,,b" }],
        ["GET", { Upgrade: "websocket", Connection: "Upgrade" }],
      ] as const
    ) {
      assert.equal(isWebSocketUpgrade(method, new Headers(h)), false, `${method} ${JSON.stringify(h)}`);
    }
  });
});

describe("pathOf", () => {
  test("gives one normalised path for origin-form and absolute targets", () => {
    assert.equal(pathOf("/ws"), "/ws");
    assert.equal(pathOf("/ws?token=1#x"), "/ws");
    assert.equal(pathOf("https://example.test:8443/ws?x"), "/ws");
    assert.equal(pathOf("/a/../ws"), "/ws");
    assert.equal(pathOf("//evil.test/ws"), "//evil.test/ws"); // a path, not another host
    assert.equal(pathOf("/w%73"), "/w%73"); // not decoded, so not /ws
    assert.equal(pathOf("*"), undefined);
  });
});

describe("Watermark", () => {
  test("drain() only after going above the high mark and coming back to the low mark", () => {
    let buffered = 0;
    let drains = 0;
    const m = new Watermark(() => buffered, () => void drains++);
    buffered = WS_HIGH_WATER;
    m.sent();
    m.check();
    assert.equal(drains, 0, "at the mark is not above it");
    buffered = WS_HIGH_WATER + 1;
    m.sent();
    buffered = WS_LOW_WATER + 1;
    m.check();
    assert.equal(drains, 0, "above the low mark: not yet");
    buffered = WS_LOW_WATER;
    m.check();
    assert.equal(drains, 1);
    m.check();
    assert.equal(drains, 1, "once per crossing");
  });

  test("the polling variant notices the queue going down by itself, and stop() ends the timer", async () => {
    let buffered = WS_HIGH_WATER + 1;
    let drains = 0;
    const m = new Watermark(() => buffered, () => void drains++, true);
    m.sent();
    await sleep(20);
    assert.equal(drains, 0);
    buffered = 0;
    const deadline = Date.now() + 2000;
    while (drains === 0 && Date.now() < deadline) await sleep(5);
    assert.equal(drains, 1);
    buffered = WS_HIGH_WATER + 1;
    m.sent();
    m.stop();
    buffered = 0;
    await sleep(120);
    assert.equal(drains, 1, "no drain after stop()");
  });
});

describe("tooBig", () => {
  test("counts UTF-8 bytes of text and bytes of binary", () => {
    assert.equal(tooBig(new Uint8Array(10), 10), false);
    assert.equal(tooBig(new Uint8Array(11), 10), true);
    assert.equal(tooBig(new ArrayBuffer(11), 10), true);
    assert.equal(tooBig("a".repeat(10), 10), false);
    assert.equal(tooBig("é".repeat(5), 10), false); // 10 bytes
    assert.equal(tooBig("é".repeat(6), 10), true); // 12 bytes in 6 UTF-16 units
    assert.equal(tooBig("☃".repeat(4), 10), true); // 12 bytes
  });
});
