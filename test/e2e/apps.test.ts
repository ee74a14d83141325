// The v2ray-plugin flavour end to end with clients nobody here wrote: Debian's ss-local +
// ss-v2ray-plugin (`tls;host=localhost;path=<device path>/tcp;cert=…;mux=0|1`) against a gateway
// on the runtime under test, the real backend (PGlite) behind it, curl over ss-local's SOCKS5.
// Direct mode reaches a local HTTP target itself; outline mode re-encrypts to a real ss-server
// node the backend assigns. Bodies are compared by sha256.
//
// Then the links as the apps read them: `httvps device create --json` gives the ssconf://
// key, the ss:// link and the subscription URL; each is fetched and parsed the way its app does
// (yaml, JSON.parse, base64 — not with this repository's own parsers), and ss-local +
// ss-v2ray-plugin is started from exactly what was parsed. mihomo (Clash) and sing-box are not
// in Debian bookworm, so their profiles' entries — server, port, cipher, password and plugin
// options — are mapped onto ss-local + ss-v2ray-plugin, the same wire protocol (docs/08).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { runtime } from "../../runtime/index.ts";
import { type HttpTarget, type SsServer, startHttpTarget, startSsServer } from "../../shadowsocks/ss-server.testing.ts";
import { runHttvps } from "../cli.ts";
import { fetchSet, fetchThrough, POOL } from "./app-fetch.ts";
import { ADMIN_TOKEN, type AppIdentity, NODE_PASSWORD, type SsPluginServer, type Stack, startStack } from "./stack.ts";

/** SIP003 plugin options `k=v;flag;…` with `\`-escapes (shadowsocks-org sip003.md), as v2ray-plugin reads them. */
function sip003Options(text: string): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (const part of text.match(/(?:\\.|[^;])+/g) ?? []) {
    const [k, v] = part.split(/(?<!\\)=/, 2) as [string, string | undefined];
    out[k.replace(/\\(.)/g, "$1")] = v === undefined ? true : v.replace(/\\(.)/g, "$1");
  }
  return out;
}

/** A SIP002 link, read as the apps read it (WHATWG URL, base64url user info, the plugin parameter). */
function sip002Server(link: string): SsPluginServer & { name: string; options: Record<string, string | true> } {
  const u = new URL(link);
  assert.equal(u.protocol, "ss:");
  const [method, ...rest] = Buffer.from(decodeURIComponent(u.username), "base64url").toString("utf8").split(":");
  const plugin = new URLSearchParams(u.search).get("plugin") ?? "";
  const [name, ...opts] = plugin.split(";");
  assert.equal(name, "v2ray-plugin", link);
  const pluginOptions = opts.join(";");
  return {
    host: u.hostname,
    port: Number(u.port),
    method: method!,
    password: rest.join(":"),
    pluginOptions,
    options: sip003Options(pluginOptions),
    name: decodeURIComponent(u.hash.slice(1)),
  };
}

/** SIP003 escaping of one option value. */
const escapeOption = (v: string) => v.replace(/[\\;=:]/g, (c) => `\\${c}`);

describe(`ss-local + ss-v2ray-plugin through the gateway on ${runtime}`, () => {
  let stack: Stack<"app">;
  let target: HttpTarget;
  let node: SsServer;
  let direct: RunningGateway;
  let outline: RunningGateway;

  before(async () => {
    [stack, target, node] = await Promise.all([
      startStack({ upstream: "direct", logLevel: "error", env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" } }),
      startHttpTarget(POOL),
      startSsServer("chacha20-ietf-poly1305", NODE_PASSWORD),
    ]);
    direct = await stack.gateway();
    outline = await stack.gateway({ GATEWAY_UPSTREAM_MODE: "outline" });
    await stack.backend.admin("POST", "/api/v1/nodes", {
      name: "apps-node",
      host: "127.0.0.1",
      port: node.port,
      method: "chacha20-ietf-poly1305",
      password: NODE_PASSWORD,
    });
  });
  after(async () => {
    await node?.stop();
    await target?.close();
    await stack?.close();
  });

  /** 1 B, 16 KiB and 5 in parallel through the peer, sha256-equal; then the peer stops. */
  const works = async (server: SsPluginServer, label: string) => {
    const peer = await stack.ssLocalTo(server);
    for (const n of [1, 16 * 1024]) await fetchThrough(peer, target, n, label);
    await Promise.all([1000, 100_000, 7, 65_536, 300_000].map((n) => fetchThrough(peer, target, n, label)));
    await peer.stop();
  };

  const newApp = async (): Promise<AppIdentity> => {
    const d = await stack.backend.device({ name: "apps-e2e" });
    assert.ok(d.app, "POST /api/v1/devices answers the app identity");
    return d.app;
  };

  for (const mux of [0, 1] as const) {
    test(`direct mode, mux=${mux}: 0 B, 1 B, 16 KiB, 20 in parallel and 64 MiB, sha256-equal`, async () => {
      const peer = await stack.ssLocal(direct.port, await newApp(), mux);
      await fetchSet(peer, target, `v2ray-plugin mux=${mux} direct`, true);
      const m = await direct.metrics.render();
      assert.match(
        m.body,
        new RegExp(`httvps_gateway_app_connections_total\\{flavour="${mux ? "mux" : "v2ray-plugin"}"\\} [1-9]`),
      );
      await peer.stop();
    });

    test(`outline mode through a real ss-server node, mux=${mux}: the same set`, async () => {
      const peer = await stack.ssLocal(outline.port, await newApp(), mux);
      await fetchSet(peer, target, `v2ray-plugin mux=${mux} outline`, mux === 1);
      await peer.stop();
    });
  }

  describe("the links, fetched and parsed as the apps do, drive ss-local + ss-v2ray-plugin", () => {
    let links: { ssconf: string; ss_url: string; subscription_url: string; app: AppIdentity; name: string };
    before(async () => {
      // What an operator runs: the gateway's public address is localhost:<its port> (the certificate's name).
      const created = await runHttvps(["device", "create", "--name", "Bob's phone", "--json"], {
        BACKEND_URL: stack.backend.url,
        ADMIN_TOKEN,
        GATEWAY_PUBLIC_URL: `wss://localhost:${direct.port}/ws`,
      });
      assert.equal(created.code, 0, created.stderr);
      links = JSON.parse(created.stdout);
    });

    test("ssconf://: the Outline Client's fetch, exactly the documented keys, its tcp URL and key through ss-local", async () => {
      // The Outline Client: ssconf:// → https://, the fragment dropped (outline-apps config.ts).
      assert.match(links.ssconf, /^ssconf:\/\/localhost:\d+\/[A-Za-z0-9_-]{22}\/outline#Bob's%20phone$/);
      const url = links.ssconf.replace(/^ssconf:\/\//, "https://").replace(/#.*$/, "");
      const res = await stack.getUrl(url, { "user-agent": "Go-http-client/1.1" });
      assert.equal(res.status, 200);
      const config = parseYaml(res.text);
      const keys = (o: object) => Object.keys(o).sort();
      assert.deepEqual(keys(config), ["transport"]);
      assert.deepEqual(keys(config.transport), ["$type", "tcp", "udp"]);
      assert.equal(config.transport.$type, "tcpudp");
      for (const kind of ["tcp", "udp"]) {
        const dialer = config.transport[kind];
        assert.deepEqual(keys(dialer), ["$type", "cipher", "endpoint", "secret"], kind);
        assert.equal(dialer.$type, "shadowsocks");
        assert.deepEqual(keys(dialer.endpoint), ["$type", "url"]);
        assert.equal(dialer.endpoint.$type, "websocket");
        for (const v of [dialer.cipher, dialer.secret, dialer.endpoint.url]) assert.equal(typeof v, "string");
      }
      const tcp = config.transport.tcp;
      const wss = new URL(tcp.endpoint.url);
      assert.equal(wss.protocol, "wss:");
      assert.equal(new URL(config.transport.udp.endpoint.url).pathname, wss.pathname.replace(/\/tcp$/, "/udp"));
      // The Outline Client sends the raw stream, one WebSocket per connection: v2ray-plugin's mux=0.
      await works({
        host: wss.hostname,
        port: Number(wss.port || 443),
        method: tcp.cipher,
        password: tcp.secret,
        pluginOptions: `mode=websocket;tls;host=${escapeOption(wss.hostname)};path=${escapeOption(wss.pathname)};mux=0`,
      }, "ssconf → Outline config");
    });

    test("ss://: the link's plugin options as they are (mux=0), and with mux=1 (mihomo ignores mux in links)", async () => {
      const link = sip002Server(links.ss_url);
      assert.equal(link.name, "Bob's phone");
      assert.deepEqual(
        [link.options.mode, link.options.tls, link.options.host, link.options.mux],
        ["websocket", true, "localhost", "0"],
      );
      await works(link, "ss:// link, mux=0");
      await works({ ...link, pluginOptions: link.pluginOptions.replace(/mux=0$/, "mux=1") }, "ss:// link, mux=1");
    });

    test("the subscription: base64 (each SIP002 link), Clash YAML and sing-box JSON entries through ss-local", async () => {
      const sub = (format: string) => stack.getUrl(`${links.subscription_url}?format=${format}`);
      // base64: standard padded base64 of newline-separated links (SIP002 lists as mihomo `common/convert/base64.go` reads them).
      const list = Buffer.from((await sub("base64")).text, "base64").toString("utf8").trim().split("\n");
      assert.deepEqual(list, [links.ss_url]);
      for (const line of list) {
        const link = sip002Server(line);
        const muxes = [link.options.mux as string, ...(link.options.mux === "1" ? [] : ["1"])];
        for (const mux of muxes) {
          await works(
            { ...link, pluginOptions: link.pluginOptions.replace(/mux=\d$/, `mux=${mux}`) },
            `base64 entry, mux=${mux}`,
          );
        }
      }

      // Clash / mihomo: the proxy's keys, as mihomo's adapter/outbound/shadowsocks.go reads them.
      const clash = parseYaml((await sub("clash")).text);
      assert.equal(clash.proxies.length, 1);
      for (const p of clash.proxies) {
        assert.deepEqual([p.type, p.plugin, p["plugin-opts"].mode, p["plugin-opts"].tls], [
          "ss",
          "v2ray-plugin",
          "websocket",
          true,
        ]);
        const o = p["plugin-opts"];
        await works({
          host: p.server,
          port: p.port,
          method: p.cipher,
          password: p.password,
          pluginOptions: `mode=${o.mode};tls;host=${escapeOption(o.host)};path=${escapeOption(o.path)};mux=${o.mux ? 1 : 0}`,
        }, "Clash entry");
      }

      // sing-box: the shadowsocks outbound; plugin_opts is SIP003 text, handed on as it is.
      const singBox = JSON.parse((await sub("sing-box")).text);
      const outbounds = singBox.outbounds.filter((o: { type: string }) => o.type === "shadowsocks");
      assert.equal(outbounds.length, 1);
      for (const o of outbounds) {
        assert.equal(o.plugin, "v2ray-plugin");
        await works(
          { host: o.server, port: o.server_port, method: o.method, password: o.password, pluginOptions: o.plugin_opts },
          "sing-box entry",
        );
      }
    });
  });
});
