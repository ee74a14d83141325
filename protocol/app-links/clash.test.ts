import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { checkIdentity } from "./identity.ts";
import { CLASH_GROUP, clashConfig } from "./clash.ts";
import { HOSTILE_NAMES, IDENTITY } from "./fixtures.testing.ts";

const expected = (name: string) => ({
  proxies: [{
    name,
    type: "ss",
    server: "gw.example.com",
    port: 443,
    cipher: "chacha20-ietf-poly1305",
    password: IDENTITY.secret,
    udp: false,
    plugin: "v2ray-plugin",
    "plugin-opts": { mode: "websocket", tls: true, host: "gw.example.com", path: "/AbCdEf0123456789_-xyz/tcp", mux: false },
  }],
  "proxy-groups": [{ name: CLASH_GROUP, type: "select", proxies: [name] }],
  rules: [`MATCH,${CLASH_GROUP}`],
});

describe("Clash / mihomo profile", () => {
  test("exactly mihomo's ss + v2ray-plugin keys, one select group, one MATCH rule", () => {
    assert.deepEqual(parseYaml(clashConfig(IDENTITY)), expected("Alice's phone"));
  });

  test("hostile names change nothing but the name, in YAML 1.2 and 1.1", () => {
    for (const name of HOSTILE_NAMES) {
      const text = clashConfig({ ...IDENTITY, name });
      for (const version of ["1.2", "1.1"] as const) {
        assert.deepEqual(parseYaml(text, { version }), expected(checkIdentity({ ...IDENTITY, name }).name), JSON.stringify(name));
      }
    }
  });

  test("a device named like the group is renamed (proxies and groups share one namespace)", () => {
    const doc = parseYaml(clashConfig({ ...IDENTITY, name: CLASH_GROUP }));
    assert.equal(doc.proxies[0].name, `${CLASH_GROUP} (gw.example.com)`);
    assert.deepEqual(doc["proxy-groups"][0].proxies, [doc.proxies[0].name]);
  });

  test("port and cipher are written as mihomo reads them", () => {
    const doc = parseYaml(clashConfig({ ...IDENTITY, port: 8443, cipher: "AEAD_AES_256_GCM" }));
    assert.equal(doc.proxies[0].port, 8443);
    assert.equal(doc.proxies[0].cipher, "aes-256-gcm");
  });
});
