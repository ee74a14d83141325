// The gateway behind the real Debian nginx and Caddy, each run from the SHIPPED config
// (deploy/nginx/httvps.conf, deploy/caddy/Caddyfile) with only its ports, names, paths and
// certificate substituted, in front of a gateway with GATEWAY_TLS=off and
// GATEWAY_TRUSTED_PROXIES=127.0.0.1/32 (docs/09 "Behind nginx, Caddy or a CDN"):
//   - the website through each proxy is the gateway's own, byte for byte;
//   - `httvps connect` + curl through each proxy (WebSocket), sha256 equal; the HTTP/2
//     transport through Caddy (h2c to the gateway) where the runtime serves h2;
//   - an app (ss-local + ss-v2ray-plugin, the Outline WebSocket flavour) through each proxy;
//   - the client address: a spoofed X-Forwarded-For straight to the gateway changes nothing
//     (the hello-failure limit still keys on the TCP peer); through a proxy the limit keys on
//     the address the proxy saw, whatever the client claimed.
// nginx and caddy missing is a failure, not a skip.
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { until } from "../../client/testing.ts";
import { GatewayError, type RunningGateway } from "../../gateway/gateway.ts";
import { formatAccessKey, type TransportKind } from "../../protocol/access-key.ts";
import { gatewayTransports, runtime } from "../../runtime/index.ts";
import { freePort, type HttpTarget, startHttpTarget } from "../../shadowsocks/ss-server.testing.ts";
import { curl } from "../curl.ts";
import { repoRoot } from "../cli.ts";
import { fetchThrough, POOL } from "./app-fetch.ts";
import { helloText, session, type SessionVia, wsFrame } from "./probe-kit.ts";
import { type PeerProcess, type Stack, startPeer, startStack } from "./stack.ts";

const NGINX = "/usr/sbin/nginx";
/** Failed hellos per address before rate_limited: small, so the limit shows in a few tries. */
const FAIL_LIMIT = 3;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** `text` with each `from` replaced by its `to`; every `from` must be there, so the shipped file cannot drift from the test. */
function substitute(text: string, pairs: Array<[string | RegExp, string]>): string {
  for (const [from, to] of pairs) {
    const found = typeof from === "string" ? text.includes(from) : from.test(text);
    assert.ok(found, `the shipped config no longer contains ${from}`);
    text = typeof from === "string" ? text.replaceAll(from, to) : text.replace(from, to);
  }
  return text;
}

interface Proxy {
  name: "nginx" | "caddy";
  /** The HTTPS port. */
  port: number;
  process: PeerProcess;
}

/** Debian's nginx in the foreground, deploy/nginx/httvps.conf inside a minimal nginx.conf, everything in `dir`. */
async function startNginx(stack: Stack<"app">, gatewayPort: number): Promise<Proxy> {
  assert.ok(existsSync(NGINX), `${NGINX} is missing: install Debian's nginx (this test does not skip)`);
  const dir = join(stack.dir, "nginx");
  await mkdir(join(dir, "webroot"), { recursive: true });
  const [port, httpPort] = [await freePort(), await freePort()];
  const site = substitute(await readFile(join(repoRoot, "deploy/nginx/httvps.conf"), "utf8"), [
    ["listen 80;", `listen 127.0.0.1:${httpPort};`],
    ["listen [::]:80;", ""],
    ["listen 443 ssl http2;", `listen 127.0.0.1:${port} ssl http2;`],
    ["listen [::]:443 ssl http2;", ""],
    ["server_name vpn.example.com;", "server_name localhost;"],
    ["/etc/letsencrypt/live/vpn.example.com/fullchain.pem", stack.certFile],
    ["/etc/letsencrypt/live/vpn.example.com/privkey.pem", stack.keyFile],
    ["root /var/www/letsencrypt;", `root ${join(dir, "webroot")};`],
    ["server 127.0.0.1:8443;", `server 127.0.0.1:${gatewayPort};`],
  ]);
  await writeFile(join(dir, "httvps.conf"), site);
  const temp = (name: string) => `${name}_temp_path ${join(dir, name)};`;
  await writeFile(
    join(dir, "nginx.conf"),
    [
      "daemon off;",
      // As root the workers would run as nobody, who cannot use this private temporary directory.
      process.getuid?.() === 0 ? "user root;" : "",
      "worker_processes 1;",
      `pid ${join(dir, "nginx.pid")};`,
      `error_log ${join(dir, "error.log")} warn;`,
      "events { worker_connections 512; }",
      "http {",
      `  access_log ${join(dir, "access.log")};`,
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => "  " + temp(t)),
      `  include ${join(dir, "httvps.conf")};`,
      "}",
    ].join("\n"),
  );
  const process_ = await startPeer(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], port);
  return { name: "nginx", port, process: process_ };
}

/** Debian's caddy with deploy/caddy/Caddyfile: admin off, storage and config in `dir`, the stack's certificate. */
async function startCaddy(stack: Stack<"app">, gatewayPort: number): Promise<Proxy> {
  const onPath = (process.env.PATH ?? "").split(":").some((d) => d && existsSync(join(d, "caddy")));
  assert.ok(onPath, "caddy is not on PATH: install Debian's caddy (this test does not skip)");
  const dir = join(stack.dir, "caddy");
  await mkdir(dir, { recursive: true });
  const [port, httpPort] = [await freePort(), await freePort()];
  const site = substitute(await readFile(join(repoRoot, "deploy/caddy/Caddyfile"), "utf8"), [
    // Both names: `httvps connect` sends SNI localhost but Host 127.0.0.1:<port> (the key's host).
    [
      /^vpn\.example\.com \{$/m,
      `https://localhost:${port}, https://127.0.0.1:${port} {\n\tbind 127.0.0.1\n\ttls ${stack.certFile} ${stack.keyFile}`,
    ],
    ["127.0.0.1:8443", `127.0.0.1:${gatewayPort}`],
  ]);
  const global = [
    "{",
    "\tadmin off",
    `\tstorage file_system ${join(dir, "data")}`,
    `\thttp_port ${httpPort}`,
    `\thttps_port ${port}`,
    "\tauto_https disable_redirects",
    "\tskip_install_trust",
    "}",
    "",
  ].join("\n");
  const file = join(dir, "Caddyfile");
  await writeFile(file, global + site);
  const env = { HOME: dir, XDG_CONFIG_HOME: join(dir, "config"), XDG_DATA_HOME: join(dir, "data") };
  const process_ = await startPeer("caddy", ["run", "--config", file, "--adapter", "caddyfile"], port, env);
  return { name: "caddy", port, process: process_ };
}

describe(`behind nginx and Caddy on ${runtime}`, () => {
  let stack: Stack<"app">;
  let gw: RunningGateway;
  let target: HttpTarget;
  const proxies: Proxy[] = [];

  before(async () => {
    stack = await startStack({
      upstream: "direct",
      logLevel: "error",
      env: {
        GATEWAY_TLS: "off",
        GATEWAY_TRUSTED_PROXIES: "127.0.0.1/32",
        GATEWAY_DIRECT_ALLOW: "127.0.0.0/8",
        GATEWAY_HELLO_FAIL_LIMIT: String(FAIL_LIMIT),
        GATEWAY_HELLO_FAIL_WINDOW: "10m",
      },
    });
    gw = await stack.gateway();
    target = await startHttpTarget(POOL, { keepAlive: true });
    proxies.push(await startNginx(stack, gw.port), await startCaddy(stack, gw.port));
  });

  after(async () => {
    for (const p of proxies) await p.process.stop();
    await target?.close();
    await stack?.close();
  });

  test("the gateway listens in plain HTTP on loopback, with no certificate of its own", async () => {
    assert.equal(gw.hostname, "127.0.0.1");
    const noCertificate = (e: unknown) => e instanceof GatewayError && e.code === "no_certificate";
    assert.throws(() => gw.certificate, noCertificate);
    await assert.rejects(gw.renewCertificate(), noCertificate);
    const r = await curl([`http://127.0.0.1:${gw.port}/`]);
    assert.equal(r.status, "200");
    assert.match(Buffer.from(r.body).toString("utf8"), /<html/i);
  });

  test("`httvps gateway` with GATEWAY_TLS=off serves plain HTTP and makes no certificate", async () => {
    const certFile = join(stack.dir, "unused", "cert.pem");
    const proc = await stack.gatewayProcess({
      LOG_LEVEL: "info", // its "gateway listening" line says it is ready
      GATEWAY_TLS_CERT: certFile,
      GATEWAY_TLS_KEY: join(stack.dir, "unused", "key.pem"),
    });
    const r = await curl([`http://127.0.0.1:${proc.port}/`]);
    assert.equal(r.status, "200");
    assert.ok(!existsSync(certFile), "no development certificate is written");
    assert.match(proc.output(), /"certificate":"none: plain HTTP for a proxy \(GATEWAY_TLS=off\)"/);
    await proc.stop();
  });

  const keyFor = async (proxy: Proxy, transport: TransportKind) => {
    const d = await stack.backend.device({ name: `${proxy.name}-${transport}` });
    return formatAccessKey({
      host: "127.0.0.1",
      port: proxy.port,
      sni: "localhost",
      deviceId: d.device_id,
      token: d.token,
      pin: stack.cert.sha256,
      name: proxy.name,
      transport,
    });
  };

  /** `httvps connect` with `key`; once connected over `transport`, curl downloads through its SOCKS5 proxy. */
  async function tunnelDownload(key: string, transport: TransportKind, what: string) {
    const c = await stack.client(key, { http: false });
    await until(
      () => new RegExp(`connected to 127\\.0\\.0\\.1:\\d+ over ${transport}`).test(c.output()),
      `${what}: connected over ${transport}`,
      20_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; the client said:\n${c.output().slice(-3000)}`);
    });
    for (const n of [1, 65_536, 3_000_001]) {
      const r = await curl(["--socks5-hostname", `127.0.0.1:${c.socks}`, `http://127.0.0.1:${target.port}/bytes/${n}`]);
      assert.equal(r.code, 0, `${what} GET ${n}: curl ${r.code} ${r.stderr}`);
      assert.equal(r.size, n, `${what} GET ${n}: size`);
      assert.equal(r.sha, sha(POOL.subarray(0, n)), `${what} GET ${n}: sha256`);
    }
    await c.stop();
  }

  for (const name of ["nginx", "caddy"] as const) {
    const proxy = () => proxies.find((p) => p.name === name)!;

    test(`${name}: the website through it is the gateway's own, byte for byte`, async () => {
      const via = (path: string) =>
        curl([
          "--cacert",
          stack.certFile,
          "--resolve",
          `localhost:${proxy().port}:127.0.0.1`,
          `https://localhost:${proxy().port}${path}`,
        ]);
      for (const path of ["/", "/no-such-page", "/ws"]) {
        const direct = await curl([`http://127.0.0.1:${gw.port}${path}`]);
        const proxied = await via(path);
        assert.equal(proxied.code, 0, `${name} ${path}: ${proxied.stderr}`);
        assert.equal(proxied.status, direct.status, `${name} ${path}: status`);
        assert.equal(proxied.sha, direct.sha, `${name} ${path}: body`);
        // One Server header, the proxy's own (nginx hides the upstream's; the Caddyfile drops it).
        assert.equal(proxied.server, name === "nginx" ? "nginx" : "Caddy", `${name} ${path}: Server`);
      }
    });

    test(`${name}: httvps connect over WebSocket + curl through SOCKS5, sha256 equal`, async () => {
      await tunnelDownload(await keyFor(proxy(), "ws"), "ws", `${name} ws`);
    });

    test(`${name}: an app (ss-local + ss-v2ray-plugin, Outline's WebSocket flavour) through it`, async () => {
      const dev = await stack.backend.device({ name: `${name}-app` });
      const peer = await stack.ssLocal(proxy().port, dev.app, 0);
      try {
        // ss-local listens before its plugin does (SIP003 gives the plugin its own port): wait for a first answer.
        const deadline = Date.now() + 10_000;
        while (
          (await curl(["--socks5-hostname", `127.0.0.1:${peer.socks}`, `http://127.0.0.1:${target.port}/bytes/1`])).code !== 0
        ) {
          assert.ok(Date.now() < deadline, `${name} app: no answer through ss-local in 10 s\n${peer.output().slice(-2000)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        await Promise.all([100_000, 1_000_003, 7].map((n) => fetchThrough(peer, target, n, `${name} app`)));
      } finally {
        await peer.stop();
      }
    });
  }

  test(
    `Caddy: the HTTP/2 transport (h2c to the gateway) ${
      gatewayTransports.includes("h2") ? "" : "— none on this runtime: falls back to ws"
    }`,
    async () => {
      const caddy = proxies.find((p) => p.name === "caddy")!;
      const served = gatewayTransports.includes("h2");
      await tunnelDownload(await keyFor(caddy, "h2"), served ? "h2" : "ws", "caddy h2");
    },
  );

  test("nginx: an h2 key falls back to WebSocket (nginx proxies in HTTP/1.1 only)", async () => {
    const nginx = proxies.find((p) => p.name === "nginx")!;
    await tunnelDownload(await keyFor(nginx, "h2"), "ws", "nginx h2 key");
  });

  /** A hello with a wrong token (a new unknown device each time, so only the per-address limit can bite); its auth_result. */
  async function failedHello(port: number, via: SessionVia): Promise<string> {
    const r = await session(port, "/ws", [wsFrame(1, helloText(randomUUID(), "wrong-token-0123456789"))], 2000, false, via);
    const result = r.messages.find((m) => m.startsWith("auth_result"));
    assert.ok(result, `an auth_result: ${r.messages.join(" ")}`);
    return result;
  }

  /** FAIL_LIMIT + 1 failed hellos, each claiming another X-Forwarded-For; the auth_results. */
  async function spoofedRun(port: number, via: SessionVia, net: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 1; i <= FAIL_LIMIT + 1; i++) {
      out.push(await failedHello(port, { ...via, headers: [`X-Forwarded-For: 198.51.${net}.${i}`] }));
    }
    return out;
  }
  const limited = (results: string[]) => results.map((r) => r.endsWith(":rate_limited"));

  test("a spoofed X-Forwarded-For straight to the gateway changes nothing: the limit keys on the TCP peer", async () => {
    // 127.0.0.2 is not a trusted proxy: each hello claims another client, all count against 127.0.0.2.
    const results = await spoofedRun(gw.port, { plain: true, localAddress: "127.0.0.2" }, 100);
    assert.deepEqual(limited(results), [false, false, false, true], results.join(" "));
  });

  test("from a trusted proxy's address the header is believed: each claimed client has its own limit", async () => {
    const results = await spoofedRun(gw.port, { plain: true, localAddress: "127.0.0.1" }, 101);
    assert.deepEqual(limited(results), [false, false, false, false], results.join(" "));
  });

  for (const [name, source] of [["nginx", "127.0.0.3"], ["caddy", "127.0.0.4"]] as const) {
    test(`through ${name}, the limit keys on the address ${name} saw, whatever the client claims`, async () => {
      const proxy = proxies.find((p) => p.name === name)!;
      const results = await spoofedRun(proxy.port, { localAddress: source }, name === "nginx" ? 102 : 103);
      assert.deepEqual(limited(results), [false, false, false, true], results.join(" "));
    });
  }
});
