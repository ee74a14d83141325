// The gateway listener's certificate, on each runtime: replaced while it runs (setTls), and the
// TLS-ALPN-01 answer (acme-tls/1) where the runtime's server can give one (acmeTlsAlpn).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createDevCertificate, type DevCertificate } from "../gateway/certs.ts";
import {
  ACME_TLS_ALPN,
  acmeTlsAlpn,
  type GatewayServer,
  runtime,
  RuntimeError,
  serveGateway,
  type SessionSocket,
  type TlsFiles,
  tlsSwapKeepsSessions,
  wsConnect,
} from "./index.ts";
import { handshake } from "./tls.testing.ts";

const files = (c: DevCertificate): TlsFiles => ({ cert: c.certPem, key: c.keyPem });

/** An echoing gateway; `challenge` answers TLS-ALPN-01 when given. */
function echoGateway(cert: DevCertificate, challenge?: (name: string) => TlsFiles | undefined): Promise<GatewayServer> {
  return serveGateway({
    hostname: "127.0.0.1",
    port: 0,
    tls: files(cert),
    wsPath: "/ws",
    fetch: () => new Response("site"),
    accept: (socket) => ({ message: (m) => socket.send(m), drain() {}, close() {} }),
    acmeTlsChallenge: challenge,
  });
}

describe("GatewayServer.setTls", () => {
  let first: DevCertificate;
  let second: DevCertificate;
  let gw: GatewayServer;
  before(async () => {
    [first, second] = await Promise.all([createDevCertificate(), createDevCertificate()]);
    gw = await echoGateway(first);
  });
  after(async () => {
    await gw.close();
  });

  test(`new connections get the new certificate; an open session ${tlsSwapKeepsSessions ? "keeps echoing" : "is closed"}`, async () => {
    const got: (string | Uint8Array)[] = [];
    const closes: number[] = [];
    const socket: SessionSocket = await wsConnect(`wss://localhost:${gw.port}/ws`, { ca: first.certPem }, () => ({
      message: (m) => void got.push(m),
      drain() {},
      close: (code) => void closes.push(code),
    }));
    const echoed = async (text: string) => {
      const deadline = Date.now() + 5000;
      socket.send(text);
      while (!got.includes(text) && closes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      return got.includes(text);
    };
    try {
      assert.equal(await echoed("before"), true);
      assert.equal((await handshake(gw.port)).sha256, first.sha256);
      await gw.setTls(files(second));
      for (let i = 0; i < 5; i++) assert.equal((await handshake(gw.port)).sha256, second.sha256, `connection ${i}`);
      if (tlsSwapKeepsSessions) {
        assert.equal(await echoed("after"), true);
        assert.deepEqual(closes, []);
      } else {
        const deadline = Date.now() + 5000;
        while (closes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        assert.equal(closes.length, 1, `${runtime}: the old listener's sessions end with it`);
      }
      // and back, so a second swap works like the first
      await gw.setTls(files(first));
      assert.equal((await handshake(gw.port)).sha256, first.sha256);
    } finally {
      socket.close();
    }
  });

  test("a certificate that cannot be used is a bad_tls error and the one in use stays", async () => {
    const before = (await handshake(gw.port)).sha256;
    for (const bad of [{ cert: "junk", key: "junk" }, { cert: first.certPem, key: second.keyPem }]) {
      await assert.rejects(gw.setTls(bad), (e: unknown) => e instanceof RuntimeError && e.code === "bad_tls", bad.cert);
      assert.equal((await handshake(gw.port)).sha256, before);
    }
  });
});

describe(
  "TLS-ALPN-01 (acme-tls/1) on the gateway's port",
  { skip: acmeTlsAlpn ? false : `${runtime}'s server cannot choose a certificate by ALPN: ACME uses HTTP-01 there` },
  () => {
    let site: DevCertificate;
    let challenge: DevCertificate;
    let gw: GatewayServer;
    const pending = new Map<string, TlsFiles>();
    before(async () => {
      [site, challenge] = await Promise.all([
        createDevCertificate({ hostnames: ["gw.example.test"] }),
        createDevCertificate({ hostnames: ["gw.example.test"], days: 7 }),
      ]);
      gw = await echoGateway(site, (name) => pending.get(name));
    });
    after(async () => {
      await gw.close();
    });

    test("a handshake offering acme-tls/1 for a name with a pending challenge gets the challenge certificate", async () => {
      pending.set("gw.example.test", files(challenge));
      try {
        const p = await handshake(gw.port, { servername: "gw.example.test", ALPNProtocols: [ACME_TLS_ALPN] });
        assert.deepEqual(p, { ok: true, sha256: challenge.sha256, alpn: ACME_TLS_ALPN });
        // ordinary visitors of the same name meanwhile see the site's certificate and its protocols
        const h1 = await handshake(gw.port, { servername: "gw.example.test", ALPNProtocols: ["http/1.1"] });
        assert.deepEqual(h1, { ok: true, sha256: site.sha256, alpn: "http/1.1" });
        const h2 = await handshake(gw.port, { servername: "gw.example.test", ALPNProtocols: ["h2", "http/1.1"] });
        assert.equal(h2.alpn, "h2");
        assert.equal(h2.sha256, site.sha256);
      } finally {
        pending.clear();
      }
    });

    test("without a pending challenge acme-tls/1 is refused like any unknown protocol", async () => {
      const none = await handshake(gw.port, { servername: "gw.example.test", ALPNProtocols: [ACME_TLS_ALPN] });
      const unknown = await handshake(gw.port, { servername: "gw.example.test", ALPNProtocols: ["foo/1"] });
      assert.equal(none.ok, false);
      assert.equal(unknown.ok, false);
      pending.set("gw.example.test", files(challenge));
      try {
        const other = await handshake(gw.port, { servername: "other.example.test", ALPNProtocols: [ACME_TLS_ALPN] });
        assert.equal(other.ok, false, "a challenge is answered only for its own name");
      } finally {
        pending.clear();
      }
    });

    test("the certificate swap leaves the challenge answer working", async () => {
      await gw.setTls(files(await createDevCertificate({ hostnames: ["gw.example.test"] })));
      pending.set("gw.example.test", files(challenge));
      try {
        const p = await handshake(gw.port, { servername: "gw.example.test", ALPNProtocols: [ACME_TLS_ALPN] });
        assert.equal(p.sha256, challenge.sha256);
        const h2 = await handshake(gw.port, { servername: "gw.example.test", ALPNProtocols: ["h2"] });
        assert.equal(h2.alpn, "h2");
      } finally {
        pending.clear();
      }
    });
  },
);
