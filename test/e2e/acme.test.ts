// Certificates end to end: issued by Debian's pebble over TLS-ALPN-01 (where the runtime's server
// can answer it) and HTTP-01, verified by curl against pebble's root, kept in DATA_DIR, renewed
// and swapped in while a tunnel session stays up, and GATEWAY_TLS_CERT/KEY reloaded the same way.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import { join } from "node:path";
import { ConfigError } from "../../config/config.ts";
import { createDevCertificate } from "../../gateway/certs.ts";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { acmeTlsAlpn, runtime, tlsSwapKeepsSessions } from "../../runtime/index.ts";
import { handshake } from "../../runtime/tls.testing.ts";
import { freePort } from "../../shadowsocks/ss-server.testing.ts";
import { curl } from "../curl.ts";
import { type Pebble, pebbleInstalled, startPebble } from "../pebble.testing.ts";
import { type Stack, startStack, stubBackend, TEST_DEVICE } from "./stack.ts";
import { TunnelClient } from "./tunnel-client.ts";

const DOMAIN = "gw.httvps.test";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type StubStack = Stack<ReturnType<typeof stubBackend>>;

/** A session with one stream open on the fake echo upstream; `echoes()` sends more and waits for it back. */
async function echoingSession(port: number) {
  const c = await TunnelClient.session(port, undefined, TEST_DEVICE);
  const rx = c.open("long");
  let sent = 0;
  return {
    client: c,
    async echoes(): Promise<boolean> {
      sent += 1000;
      await c.write("long", randomBytes(1000));
      await c.until(() => rx.received >= sent || c.closed !== null, "the echo", 10_000);
      return rx.received >= sent && c.closed === null;
    },
  };
}

/** GET over plain HTTP with this Host header: the status and Location. */
function plainGet(port: number, path: string, host: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path, headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
    }).on("error", reject);
  });
}

/** The certificate a visitor of DOMAIN gets now, by pin. */
async function servedPin(port: number): Promise<string | undefined> {
  return (await handshake(port, { servername: DOMAIN })).sha256;
}

describe("ACME with pebble", { skip: pebbleInstalled ? false : "pebble is not installed (apt-get install pebble)" }, () => {
  let stack: StubStack;
  let pebble: Pebble;
  let root: string;
  let rootFile: string;
  let tlsPort: number;
  let httpPort: number;
  let n = 0;

  before(async () => {
    stack = await startStack({ backend: stubBackend() });
    [tlsPort, httpPort] = [await freePort(), await freePort()];
    pebble = await startPebble(stack.dir, { httpPort, tlsPort });
    root = await pebble.root();
    rootFile = join(stack.dir, "pebble-root.pem");
    await writeFile(rootFile, root);
  });
  after(async () => {
    await stack?.close();
    await pebble?.close();
  });

  const acmeEnv = (extra: Record<string, string> = {}) => ({
    GATEWAY_LISTEN_ADDR: `127.0.0.1:${tlsPort}`,
    GATEWAY_ACME_DOMAINS: DOMAIN,
    GATEWAY_ACME_EMAIL: "ops@httvps.test",
    GATEWAY_ACME_DIRECTORY: pebble.directory,
    GATEWAY_ACME_CA_FILE: pebble.caFile,
    DATA_DIR: join(stack.dir, `data-${++n}`),
    ...extra,
  });

  /** The gateway once pebble's certificate is in use (the self-signed stand-in before it). */
  async function issued(gw: RunningGateway): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (gw.certificate.selfSigned) {
      if (Date.now() > deadline) {
        assert.fail(`no certificate from pebble within 60 s; pebble said:\n${pebble.output().slice(-3000)}`);
      }
      await sleep(50);
    }
  }

  /** curl, verifying the chain with pebble's root, to DOMAIN resolved to 127.0.0.1. */
  const curlDomain = (path = "/") =>
    curl(["--cacert", rootFile, "--resolve", `${DOMAIN}:${tlsPort}:127.0.0.1`, `https://${DOMAIN}:${tlsPort}${path}`]);

  test(
    "TLS-ALPN-01 on the gateway's own port: pebble's certificate is served and curl verifies it",
    { skip: acmeTlsAlpn ? false : `${runtime}'s HTTPS server cannot answer TLS-ALPN-01: ACME uses HTTP-01 there` },
    async () => {
      await stack.withGateway(acmeEnv(), async (gw) => {
        assert.equal(gw.httpPort, undefined);
        await issued(gw);
        assert.deepEqual(gw.certificate.names, [DOMAIN]);
        assert.equal(await servedPin(tlsPort), gw.certificate.sha256);
        const r = await curlDomain();
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.status, "200");
      });
    },
  );

  test("HTTP-01 on GATEWAY_HTTP_ADDR, which sends everything else to https; kept in DATA_DIR (0600) across a restart", async () => {
    const env = acmeEnv({ GATEWAY_HTTP_ADDR: `127.0.0.1:${httpPort}` });
    let first: string;
    await stack.withGateway(env, async (gw) => {
      assert.equal(gw.httpPort, httpPort);
      await issued(gw);
      first = gw.certificate.sha256;
      assert.equal(await servedPin(tlsPort), first);
      const r = await curlDomain();
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.status, "200");
      // plain HTTP is a site's usual 301 to https, which curl follows to the verified certificate
      const followed = await curl([
        "-L",
        "--cacert",
        rootFile,
        "--resolve",
        `${DOMAIN}:${httpPort}:127.0.0.1`,
        "--resolve",
        `${DOMAIN}:${tlsPort}:127.0.0.1`,
        `http://${DOMAIN}:${httpPort}/a/b?c=1`,
      ]);
      assert.equal(followed.code, 0, followed.stderr);
      assert.equal(followed.status, "404"); // the decoy's answer for /a/b, over https
      const redirect = await plainGet(httpPort, "/a/b?c=1", DOMAIN);
      assert.equal(redirect.status, 301);
      assert.equal(redirect.location, `https://${DOMAIN}:${tlsPort}/a/b?c=1`);
    });
    // what DATA_DIR holds, all private
    const acmeDir = join(env.DATA_DIR, "acme");
    const [folder] = await readdir(acmeDir);
    const files = [
      join(acmeDir, folder!, "account.key"),
      join(acmeDir, folder!, DOMAIN, "cert.pem"),
      join(acmeDir, folder!, DOMAIN, "key.pem"),
    ];
    for (const f of files) assert.equal((await stat(f)).mode & 0o777, 0o600, f);
    // a restart serves the stored certificate from its first handshake, with no stand-in
    await stack.withGateway(env, async (gw) => {
      assert.equal(gw.certificate.selfSigned, false);
      assert.equal(gw.certificate.sha256, first!);
      assert.equal(await servedPin(tlsPort), first!);
    });
  });

  test(`renewal swaps the certificate with no restart; an open session ${tlsSwapKeepsSessions ? "keeps echoing" : "reconnects (Deno)"}`, async () => {
    const extra: Record<string, string> = acmeTlsAlpn ? {} : { GATEWAY_HTTP_ADDR: `127.0.0.1:${httpPort}` };
    await stack.withGateway(acmeEnv(extra), async (gw) => {
      await issued(gw);
      const old = gw.certificate.sha256;
      const session = await echoingSession(tlsPort);
      try {
        assert.equal(await session.echoes(), true);
        const renewed = await gw.renewCertificate();
        assert.notEqual(renewed.sha256, old);
        assert.equal(gw.certificate.sha256, renewed.sha256);
        assert.equal(await servedPin(tlsPort), renewed.sha256);
        const r = await curlDomain();
        assert.equal(r.code, 0, r.stderr);
        if (tlsSwapKeepsSessions) {
          assert.equal(await session.echoes(), true, "the session from before the renewal still carries its stream");
          assert.equal(gw.sessions, 1);
        } else {
          await session.client.until(() => session.client.closed !== null, "the old listener's session to end", 10_000);
          const again = await echoingSession(tlsPort);
          assert.equal(await again.echoes(), true);
          await again.client.shut();
        }
      } finally {
        await session.client.shut();
      }
    });
  });
});

describe("GATEWAY_TLS_CERT/KEY reloaded when they change", () => {
  let stack: StubStack;
  before(async () => {
    stack = await startStack({ backend: stubBackend() });
  });
  after(async () => {
    await stack?.close();
  });

  test(`new files are served with no restart; an open session ${tlsSwapKeepsSessions ? "keeps echoing" : "reconnects (Deno)"}`, async () => {
    await stack.withGateway({ GATEWAY_TLS_RELOAD_INTERVAL: "50ms" }, async (gw) => {
      assert.equal(await servedPin(gw.port), stack.cert.sha256);
      const session = await echoingSession(gw.port);
      try {
        assert.equal(await session.echoes(), true);
        const next = await createDevCertificate();
        await writeFile(stack.keyFile, next.keyPem);
        await writeFile(stack.certFile, next.certPem);
        const deadline = Date.now() + 10_000;
        while ((await servedPin(gw.port)) !== next.sha256) {
          if (Date.now() > deadline) assert.fail("the new certificate was not served within 10 s");
          await sleep(25);
        }
        assert.equal(gw.certificate.sha256, next.sha256);
        if (tlsSwapKeepsSessions) assert.equal(await session.echoes(), true);
        else await session.client.until(() => session.client.closed !== null, "the old listener's session to end", 10_000);
      } finally {
        await session.client.shut();
      }
    });
  });
});

test(
  "ACME where the server cannot answer TLS-ALPN-01 needs GATEWAY_HTTP_ADDR, and says so",
  { skip: acmeTlsAlpn ? `${runtime} answers TLS-ALPN-01 itself` : false },
  async () => {
    const stack = await startStack({ backend: stubBackend() });
    try {
      await assert.rejects(
        stack.gateway({ GATEWAY_ACME_DOMAINS: DOMAIN, DATA_DIR: join(stack.dir, "data") }),
        (e: unknown) => e instanceof ConfigError && e.variable === "GATEWAY_HTTP_ADDR" && e.message.includes(runtime),
      );
    } finally {
      await stack.close();
    }
  },
);
