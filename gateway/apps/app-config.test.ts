import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { AppAuthOutcome, ValidateAppRequest } from "../auth.ts";
import { AppAuth } from "./app-auth.ts";
import { appConfigHandler } from "./app-config.ts";

const P = "/AbCdEf0123456789_-xyzW";
const KEY = { cipher: "chacha20-ietf-poly1305", secret: "the-device-secret-0123456789abcdef" };
const DEVICE = {
  id: "dev-1",
  name: "Alice's phone",
  max_sessions: null,
  data_quota_bytes: 5e9,
  expires_at: "2031-02-03T00:00:00.000Z",
};
const USAGE = { bytes_up: 1000, bytes_down: 2_000_000 };
const USERINFO = `upload=1000; download=2000000; total=5000000000; expire=${Date.parse(DEVICE.expires_at) / 1000}`;

function handler(answer: AppAuthOutcome, publicUrl?: string) {
  const calls: ValidateAppRequest[] = [];
  const auth = new AppAuth({
    validate: (req) => {
      calls.push(req);
      return Promise.resolve(answer);
    },
    ttlMs: 1000,
  });
  return { calls, handle: appConfigHandler({ auth, publicUrl, updateIntervalHours: 6 }) };
}
const VALID: AppAuthOutcome = { ok: true, device: DEVICE, assignment: null, app: KEY, usage: USAGE };
const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
  new Request(`https://gw.example.com:8443${path}`, { method, headers });

describe("app config fetches at the gateway", () => {
  test("/<P>/outline: the Outline YAML for the request's host, exactly the documented keys", async () => {
    const { calls, handle } = handler(VALID);
    const res = (await handle(get(`${P}/outline?x=1`, { "user-agent": "Go-http-client/1.1" })))!;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/yaml; charset=utf-8");
    assert.equal(res.headers.get("cache-control"), "no-store");
    const dialer = (kind: string) => ({
      $type: "shadowsocks",
      endpoint: { $type: "websocket", url: `wss://gw.example.com:8443${P}/${kind}` },
      ...KEY,
    });
    assert.deepEqual(parseYaml(await res.text()), { transport: { $type: "tcpudp", tcp: dialer("tcp"), udp: dialer("udp") } });
    assert.deepEqual(calls, [{ app_path: P, purpose: "config", client_version: "Go-http-client/1.1" }]);
  });

  test("GATEWAY_PUBLIC_URL's host and port win over the request's", async () => {
    const { handle } = handler(VALID, "wss://vpn.example.org/ws");
    const yaml = parseYaml(await (await handle(get(`${P}/outline`)))!.text());
    assert.equal(yaml.transport.tcp.endpoint.url, `wss://vpn.example.org${P}/tcp`);
  });

  test("not a config fetch, or an unknown path: nothing (the decoy answers)", async () => {
    const { calls, handle } = handler({ ok: false, code: "unknown_device", message: "no" });
    for (
      const req of [
        get(`${P}/outline`),
        get(`${P}/sub`),
        get(`${P}/tcp`),
        get(`${P}/udp`),
        get(`${P}/outline`, {}, "POST"),
        get(`${P}/outline/`),
        get(`${P}x/outline`),
        get("/index.html"),
      ]
    ) assert.equal(await handle(req), undefined, req.url);
    assert.equal(calls.length, 2, "only the two config routes ask the backend");
    const badHost = handler(VALID).handle;
    assert.equal(await badHost(new Request(`https://bad_host.example${P}/outline`)), undefined);
  });

  test("a device that may not connect: Outline's error form with status 200; other formats a failing status", async () => {
    const refused = (code: string): AppAuthOutcome => ({ ok: false, code, message: "m", device: DEVICE, usage: USAGE });
    const cases: [string, string][] = [
      ["quota_exceeded", "Data limit reached"],
      ["expired", "This key has expired"],
      ["disabled", "This key is switched off"],
      ["some_new_reason", "This key is switched off"],
    ];
    for (const [code, message] of cases) {
      const { handle } = handler(refused(code));
      const res = (await handle(get(`${P}/outline`)))!;
      assert.equal(res.status, 200);
      const yaml = parseYaml(await res.text());
      assert.deepEqual(Object.keys(yaml), ["error"]);
      assert.equal(yaml.error.message, message);
      assert.equal(typeof yaml.error.details, "string");
      const sub = (await handle(get(`${P}/sub`)))!;
      assert.equal(sub.status, 403, code);
      assert.ok((await sub.text()).startsWith(`${message}. `));
      assert.equal(
        sub.headers.get("subscription-userinfo"),
        USERINFO,
      );
    }
    const quota = parseYaml(await (await handler(refused("quota_exceeded")).handle(get(`${P}/outline`)))!.text());
    assert.match(quota.error.details, /2 MB of 5 GB/);
  });

  test("the control plane unavailable: the busy message, 503 for subscriptions", async () => {
    const { handle } = handler({ ok: false, code: "unavailable", message: "down" });
    assert.equal(parseYaml(await (await handle(get(`${P}/outline`)))!.text()).error.message, "The service is busy");
    const sub = (await handle(get(`${P}/sub`)))!;
    assert.equal(sub.status, 503);
    assert.equal(sub.headers.get("subscription-userinfo"), null);
  });

  test("/<P>/sub: the format by ?format= or User-Agent, with the subscription headers", async () => {
    const { handle } = handler(VALID);
    const fetchSub = async (query: string, ua?: string) => {
      const res = (await handle(get(`${P}/sub${query}`, ua ? { "user-agent": ua } : {})))!;
      assert.equal(res.status, 200);
      assert.equal(
        res.headers.get("subscription-userinfo"),
        USERINFO,
      );
      assert.equal(res.headers.get("profile-update-interval"), "6");
      assert.match(res.headers.get("content-disposition")!, /^attachment; filename="Alice_s phone"/);
      return { type: res.headers.get("content-type"), body: await res.text() };
    };
    const clash = await fetchSub("?format=clash", "v2rayNG/1.8");
    assert.equal(clash.type, "text/yaml; charset=utf-8");
    assert.equal(parseYaml(clash.body).proxies[0].password, KEY.secret);
    const byUa = await fetchSub("", "clash-verge/v2.0");
    assert.equal(byUa.body, clash.body);
    const singBox = await fetchSub("", "SFA/1.9");
    assert.equal(singBox.type, "application/json; charset=utf-8");
    assert.equal(JSON.parse(singBox.body).outbounds[0].password, KEY.secret);
    const outline = await fetchSub("?format=outline");
    assert.equal(parseYaml(outline.body).transport.tcp.secret, KEY.secret);
    const list = await fetchSub("", "v2rayN/6.0");
    const links = Buffer.from(list.body, "base64").toString("utf8").trim().split("\n");
    assert.equal(links.length, 1);
    assert.match(
      links[0]!,
      /^ss:\/\/.+@gw\.example\.com:8443\/\?plugin=v2ray-plugin%3Bmode%3Dwebsocket%3Btls%3Bhost%3Dgw\.example\.com%3Bpath%3D%2FAbCdEf0123456789_-xyzW%2Ftcp%3Bmux%3D0#/,
    );
  });
});
