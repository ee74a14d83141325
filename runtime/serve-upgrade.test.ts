// The adapter contract, upgrades to other paths than the session path: the gateway decides on
// them before the 101 (the apps' secret paths), with the Sec-WebSocket-Protocol it chooses.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createDevCertificate, type DevCertificate } from "../gateway/certs.ts";
import { testDecoy } from "../gateway/decoy-site.testing.ts";
import { type ListeningServer, RuntimeError, type SessionSocket, wsConnect } from "./index.ts";
import { rawUpgrade, recorder, request, sleep, testGateway, until } from "./serve.testing.ts";

let cert: DevCertificate;
before(async () => {
  cert = await createDevCertificate();
});

describe("serveGateway: upgrades the gateway decides on (other paths)", () => {
  let gw: ListeningServer;
  const asked: { path: string; remote: string; header: string | null }[] = [];
  const servers: { socket: SessionSocket; rec: ReturnType<typeof recorder> }[] = [];
  before(async () => {
    gw = await testGateway(cert, {
      fetch: testDecoy(),
      accept: () => recorder().handler,
      upgrade: async (path, headers, remote) => {
        asked.push({ path, remote, header: headers.get("x-app") });
        await sleep(30); // the answer comes after a round trip to somewhere
        if (!path.startsWith("/app")) return undefined;
        const protocol = headers.get("sec-websocket-protocol") ?? undefined;
        return {
          protocol: path === "/app/echo-protocol" ? protocol : undefined,
          accept: (socket) => {
            const rec = recorder();
            servers.push({ socket, rec });
            return {
              message: (m) => {
                rec.handler.message(m);
                if (m === "end") return socket.close(1000, "");
                if (m === "pause") return socket.pause!();
                if (m !== "resume") socket.send(m);
              },
              drain: () => rec.handler.drain(),
              close: (code, reason) => rec.handler.close(code, reason),
            };
          },
        };
      },
    });
  });
  after(async () => {
    await gw.close();
  });

  test("an accepted path becomes a WebSocket: binary both ways, the path without its query, Close 1000 reaches the client", async () => {
    const rec = recorder();
    const client = await wsConnect(
      `wss://localhost:${gw.port}/app/x?ed=2048`,
      { ca: cert.certPem, headers: { "x-app": "1" } },
      () => rec.handler,
    );
    const bin = new Uint8Array(randomBytes(70_000));
    client.send(bin);
    await until("echo", () => rec.messages.length === 1);
    assert.ok(Buffer.from(rec.messages[0] as Uint8Array).equals(bin));
    const seen = asked.at(-1)!;
    assert.deepEqual(
      seen,
      { path: "/app/x", remote: "127.0.0.1", header: "1" },
      "the path without its query, the address, the headers",
    );
    client.send("end");
    await until("close", () => rec.closes.length === 1);
    assert.equal(rec.closes[0]![0], 1000);
  });

  test("the chosen Sec-WebSocket-Protocol is echoed in the 101; none is sent when the answer has none", async () => {
    const early = "AAECAwQFBgcICQ"; // base64url, as mihomo and Xray send early data
    const echoed = await rawUpgrade(gw.port, cert.certPem, "/app/echo-protocol", { "Sec-WebSocket-Protocol": early });
    assert.equal(echoed.status, 101);
    assert.equal(echoed.headers["sec-websocket-protocol"], early);
    for (const offered of [{}, { "Sec-WebSocket-Protocol": early }] as Record<string, string>[]) {
      const plain = await rawUpgrade(gw.port, cert.certPem, "/app/plain", offered);
      assert.equal(plain.status, 101);
      assert.equal(plain.headers["sec-websocket-protocol"], undefined, "offered but not chosen: none");
    }
  });

  test("wsConnect offers protocols: the client socket names the one the 101 chose; a 101 naming none fails the open", async () => {
    const early = "AAECAwQFBgcICQ";
    const rec = recorder();
    const client = await wsConnect(
      `wss://localhost:${gw.port}/app/echo-protocol?ed=2048`,
      { ca: cert.certPem, protocols: [early] },
      () => rec.handler,
    );
    assert.equal(client.protocol, early);
    client.send("x");
    await until("echo", () => rec.messages.length === 1);
    client.send("end");
    await until("close", () => rec.closes.length === 1);
    const plain = await wsConnect(`wss://localhost:${gw.port}/app/plain`, { ca: cert.certPem }, () => recorder().handler);
    assert.equal(plain.protocol, "");
    plain.close(1000, "");
    await assert.rejects(
      wsConnect(`wss://localhost:${gw.port}/app/plain`, { ca: cert.certPem, protocols: [early] }, () => recorder().handler),
      (e: unknown) => e instanceof RuntimeError && e.code === "ws_connect_failed",
    );
  });

  test("an upgrade the hook declines is the decoy's 404, with the same body as any unknown page", async () => {
    const notFound = await request(gw.port, cert.certPem, "/no-such-page");
    const r = await rawUpgrade(gw.port, cert.certPem, "/other");
    assert.equal(r.status, 404);
    assert.equal(r.headers.server, "nginx");
    assert.equal(r.headers["content-length"], String(Buffer.byteLength(notFound.body)));
    assert.equal(r.headers.upgrade, undefined);
  });

  test("pause() stops delivery and resume() delivers what came meanwhile, in order", async () => {
    const rec = recorder();
    const before = servers.length;
    const client = await wsConnect(`wss://localhost:${gw.port}/app/p`, { ca: cert.certPem }, () => rec.handler);
    await until("accept", () => servers.length === before + 1);
    const srv = servers[before]!;
    client.send("pause");
    await until("paused", () => srv.rec.messages.length === 1);
    for (let i = 0; i < 5; i++) client.send(new Uint8Array([i]));
    await sleep(200);
    assert.equal(srv.rec.messages.length, 1, "nothing delivered while paused");
    srv.socket.resume!();
    await until("resumed", () => rec.messages.length === 5);
    assert.deepEqual(rec.messages.map((m) => (m as Uint8Array)[0]), [0, 1, 2, 3, 4]);
    client.close(1000, "done");
    await until("close", () => rec.closes.length === 1);
  });
});
