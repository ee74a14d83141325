// The adapter contract, client side: wsConnect's typed failures and its insecure mode.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { createDevCertificate, type DevCertificate } from "../gateway/certs.ts";
import { RuntimeError, wsConnect } from "./index.ts";
import { recorder, testGateway, until } from "./serve.testing.ts";

let cert: DevCertificate;
before(async () => {
  cert = await createDevCertificate();
});

describe("wsConnect", () => {
  test("refuses an untrusted certificate, a closed port and a bad URL with typed errors", async () => {
    const g = await testGateway(cert, {
      fetch: () => new Response("x"),
      accept: () => recorder().handler,
    });
    try {
      const isConnectError = (e: unknown) => e instanceof RuntimeError && e.code === "ws_connect_failed";
      await assert.rejects(wsConnect(`wss://localhost:${g.port}/ws`, {}, () => recorder().handler), isConnectError);
      const other = await createDevCertificate();
      await assert.rejects(
        wsConnect(`wss://localhost:${g.port}/ws`, { ca: other.certPem }, () => recorder().handler),
        isConnectError,
      );
      await assert.rejects(
        wsConnect(`wss://localhost:${g.port}/nope`, { ca: cert.certPem }, () => recorder().handler),
        isConnectError,
      );
      await assert.rejects(wsConnect("http://localhost/ws", {}, () => recorder().handler), isConnectError);
      await assert.rejects(wsConnect("wss://", {}, () => recorder().handler), isConnectError);
    } finally {
      await g.close();
    }
    // a port nobody listens on any more
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const freePort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(
      wsConnect(`wss://127.0.0.1:${freePort}/ws`, { ca: cert.certPem }, () => recorder().handler),
      (e: unknown) => e instanceof RuntimeError && e.code === "ws_connect_failed",
    );
  });

  test("insecure connects without the certificate", async () => {
    const rec = recorder();
    const g = await testGateway(cert, {
      fetch: () => new Response("x"),
      accept: (s) => ({ message: (m) => s.send(m), drain() {}, close() {} }),
    });
    try {
      const c = await wsConnect(`wss://localhost:${g.port}/ws`, { insecure: true }, () => rec.handler);
      c.send(new Uint8Array([1, 2, 3]));
      await until("echo", () => rec.messages.length === 1);
      assert.deepEqual([...(rec.messages[0] as Uint8Array)], [1, 2, 3]);
      c.close(1000, "done");
      await until("close", () => rec.closes.length === 1);
    } finally {
      await g.close();
    }
  });
});
