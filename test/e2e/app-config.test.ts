// The apps' config fetches end to end on the runtime under test (issue 14): the real backend app
// (PGlite) over HTTP, the real gateway (TLS, decoy) from startGateway(), and HTTPS requests as
// the apps send them — the Outline Client's dynamic key config and the subscription formats.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { memoryLogger } from "../../logging/logger.ts";
import { appLinks } from "../../protocol/app-links/subscription.ts";
import { parseSsUrl } from "../../protocol/ss-url.ts";
import { type AppDevice, GATEWAY_API_KEY, type HttpsAnswer, type Stack, startStack } from "./stack.ts";

const DAY = 86_400_000;

describe("app config fetches through a real gateway and backend", () => {
  let stack: Stack<"app">;
  let gw: RunningGateway;
  const log = memoryLogger("debug");

  before(async () => {
    stack = await startStack({ upstream: "fake" });
    gw = await stack.gateway({ LOG_LEVEL: "debug" }, { logger: log });
  });
  after(async () => {
    await stack?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => stack.get(gw.port, path, headers);
  const device = (fields: object = {}) => stack.backend.device(fields);
  /** What the gateway itself is told (validate-app, config). */
  const validateApp = async (d: AppDevice) =>
    (await stack.backend.api("POST", "/api/v1/auth/validate-app", { app_path: d.app.path, purpose: "config" }, GATEWAY_API_KEY))
      .json;
  const report = (d: AppDevice, bytes_up: number, bytes_down: number) =>
    stack.backend.api("POST", "/api/v1/gateway/report", {
      events: [{
        type: "session_close",
        session_id: `r-${d.device_id}`,
        device_id: d.device_id,
        reason: "done",
        bytes_up,
        bytes_down,
      }],
    }, GATEWAY_API_KEY);
  /** Everything of an answer but the headers that change per request. */
  const comparable = (a: HttpsAnswer) => ({
    status: a.status,
    headers: Object.entries(a.headers).filter(([k]) => !["date", "etag", "last-modified"].includes(k)),
    body: Buffer.from(a.body).toString("base64"),
  });

  test("the ssconf:// key's config: exactly the documented keys, with validate-app's key, built for this gateway", async () => {
    const d = await device({ name: "Alice's phone" });
    const { ssconf } = appLinks({ name: d.name, host: "127.0.0.1", port: gw.port, ...d.app });
    // What the Outline Client does with the key: ssconf:// → https://, the fragment dropped.
    const url = new URL(ssconf.replace(/^ssconf:/, "https:"));
    assert.equal(url.host, `127.0.0.1:${gw.port}`);
    const res = await get(url.pathname, { "user-agent": "Go-http-client/1.1" });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "text/yaml; charset=utf-8");
    assert.equal(res.headers["cache-control"], "no-store");
    const v = await validateApp(d);
    assert.equal(v.valid, true);
    const dialer = (kind: string) => ({
      $type: "shadowsocks",
      endpoint: { $type: "websocket", url: `wss://127.0.0.1:${gw.port}${d.app.path}/${kind}` },
      cipher: v.app.cipher,
      secret: v.app.secret,
    });
    assert.deepEqual(parseYaml(res.text), { transport: { $type: "tcpudp", tcp: dialer("tcp"), udp: dialer("udp") } });
    assert.equal(v.app.secret, d.app.secret);
    // Query strings are ignored for matching (the key may carry one).
    assert.equal((await get(`${d.app.path}/outline?utm=1`)).text, res.text);
    const logs = log.lines.join("\n");
    assert.ok(!logs.includes(d.app.secret) && !logs.includes(d.app.path.slice(1)), "neither key nor path is logged");
  });

  test("GATEWAY_PUBLIC_URL's host and port go into the config", async () => {
    const d = await device();
    await stack.withGateway({ GATEWAY_PUBLIC_URL: "wss://vpn.example.com/ws" }, async (other) => {
      const yaml = parseYaml((await stack.get(other.port, `${d.app.path}/outline`)).text);
      assert.equal(yaml.transport.tcp.endpoint.url, `wss://vpn.example.com${d.app.path}/tcp`);
      assert.equal(yaml.transport.udp.endpoint.url, `wss://vpn.example.com${d.app.path}/udp`);
    });
  });

  test("disabled, expired and over-quota devices get the error form with a readable message, status 200", async () => {
    const disabled = await device({ disabled: true });
    const expired = await device({ expires_at: new Date(Date.now() - DAY).toISOString() });
    const over = await device({ data_quota_bytes: 1_000_000 });
    await report(over, 400_000, 700_000);
    const cases: [AppDevice, string, RegExp][] = [
      [disabled, "This key is switched off", /switch it back on/],
      [expired, "This key has expired", /^It stopped working on \d{4}-\d\d-\d\d\. .*for more time\.$/],
      [over, "Data limit reached", /^You have used 1\.1 MB of 1 MB\. .*for more data\.$/],
    ];
    for (const [d, message, details] of cases) {
      const res = await get(`${d.app.path}/outline`);
      assert.equal(res.status, 200, message);
      assert.equal(res.headers["content-type"], "text/yaml; charset=utf-8");
      const yaml = parseYaml(res.text);
      assert.deepEqual(Object.keys(yaml), ["error"]);
      assert.deepEqual(Object.keys(yaml.error).sort(), ["details", "message"]);
      assert.equal(yaml.error.message, message);
      assert.match(yaml.error.details, details);
      // The subscription has no error form: a failing status, the text and the usage header.
      const sub = await get(`${d.app.path}/sub`);
      assert.equal(sub.status, 403);
      assert.ok(sub.text.startsWith(`${message}. `));
    }
    assert.equal(
      (await get(`${over.app.path}/sub`)).headers["subscription-userinfo"],
      "upload=400000; download=700000; total=1000000; expire=0",
    );
  });

  test("a revoked device's paths and unknown paths get the decoy's answer, byte for byte", async () => {
    const d = await device();
    assert.equal((await get(`${d.app.path}/outline`)).status, 200);
    assert.equal((await stack.backend.api("DELETE", `/api/v1/devices/${d.device_id}`)).status, 200);
    // The gateway's cache holds the positive answer for GATEWAY_AUTH_CACHE_TTL; a fresh gateway asks the backend.
    await stack.withGateway({}, async (other) => {
      const unknown = comparable(await stack.get(other.port, "/AAAAAAAAAAAAAAAAAAAAAA/outline"));
      assert.equal(unknown.status, 404);
      for (const route of ["outline", "sub"]) {
        assert.deepEqual(comparable(await stack.get(other.port, `${d.app.path}/${route}`)), unknown, route);
        assert.deepEqual(comparable(await stack.get(other.port, `/BBBBBBBBBBBBBBBBBBBBBB/${route}`)), unknown, route);
      }
      assert.deepEqual(comparable(await stack.get(other.port, "/no-such-page")), unknown);
    });
  });

  test("the subscription in every format, by ?format= and by User-Agent, with subscription-userinfo", async () => {
    const expires = new Date(Date.now() + 30 * DAY);
    const d = await device({ name: "tablet", data_quota_bytes: 10_000_000_000, expires_at: expires.toISOString() });
    await report(d, 1234, 5678);
    const userinfo = `upload=1234; download=5678; total=10000000000; expire=${Math.floor(expires.getTime() / 1000)}`;
    const sub = async (query: string, ua: string) => {
      const res = await get(`${d.app.path}/sub${query}`, { "user-agent": ua });
      assert.equal(res.status, 200, `${query} ${ua}`);
      assert.equal(res.headers["subscription-userinfo"], userinfo);
      assert.equal(res.headers["profile-update-interval"], "12");
      assert.equal(res.headers["profile-title"], `base64:${Buffer.from("tablet").toString("base64")}`);
      assert.equal(res.headers["content-disposition"], `attachment; filename="tablet"; filename*=UTF-8''tablet`);
      return res;
    };
    const host = "127.0.0.1";
    const tcpPath = `${d.app.path}/tcp`;

    for (const [query, ua] of [["?format=clash", "curl/8"], ["", "clash-verge/v2.2.3"], ["", "mihomo/1.19"]]) {
      const res = await sub(query!, ua!);
      assert.equal(res.headers["content-type"], "text/yaml; charset=utf-8");
      const proxy = parseYaml(res.text).proxies[0];
      assert.deepEqual(
        [proxy.type, proxy.server, proxy.port, proxy.cipher, proxy.password, proxy.plugin],
        ["ss", host, gw.port, d.app.cipher, d.app.secret, "v2ray-plugin"],
      );
      assert.deepEqual([proxy["plugin-opts"].mode, proxy["plugin-opts"].tls, proxy["plugin-opts"].path], [
        "websocket",
        true,
        tcpPath,
      ]);
    }
    for (const [query, ua] of [["?format=sing-box", "curl/8"], ["", "SFA/1.11.0"], ["", "HiddifyNext/2.5 ClashMeta"]]) {
      const res = await sub(query!, ua!);
      assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
      const out = JSON.parse(res.text).outbounds.find((o: { type: string }) => o.type === "shadowsocks");
      assert.deepEqual(
        [out.server, out.server_port, out.method, out.password, out.plugin],
        [host, gw.port, d.app.cipher, d.app.secret, "v2ray-plugin"],
      );
      assert.match(out.plugin_opts, new RegExp(`^mode=websocket;tls;host=${host};path=${tcpPath};mux=0$`));
    }
    for (const [query, ua] of [["?format=outline", "curl/8"], ["", "Outline (linux; amd64; go1.22)"]]) {
      const res = await sub(query!, ua!);
      assert.equal(parseYaml(res.text).transport.tcp.secret, d.app.secret);
    }
    for (const [query, ua] of [["?format=base64", "clash-verge/v2"], ["", "v2rayN/6.42"], ["", "Mozilla/5.0"]]) {
      const res = await sub(query!, ua!);
      assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
      const links = Buffer.from(res.text, "base64").toString("utf8").trim().split("\n");
      assert.equal(links.length, 1);
      const link = parseSsUrl(links[0]!);
      assert.deepEqual([link.method, link.password, link.host, link.port, link.tag], [
        d.app.cipher,
        d.app.secret,
        host,
        gw.port,
        "tablet",
      ]);
      assert.equal(link.extra.plugin, `v2ray-plugin;mode=websocket;tls;host=${host};path=${tcpPath};mux=0`);
    }
  });
});
