import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { type AppIdentity, AppLinkError, appPaths, authority, checkIdentity, yamlString } from "./identity.ts";
import { HOSTILE_NAMES, IDENTITY } from "./fixtures.testing.ts";

function rejects(change: Partial<AppIdentity>, field: RegExp) {
  try {
    checkIdentity({ ...IDENTITY, ...change });
  } catch (e) {
    assert.ok(e instanceof AppLinkError, "an AppLinkError");
    assert.equal(e.code, "bad_app_identity");
    assert.match(e.message, field);
    assert.ok(!e.message.includes(IDENTITY.secret), "the message never holds the secret");
    return;
  }
  assert.fail(`accepted ${JSON.stringify(change)}`);
}

describe("checkIdentity", () => {
  test("normalises: canonical cipher name, lower-case host without brackets, a name that is never empty", () => {
    const id = checkIdentity({ ...IDENTITY, cipher: "AEAD_AES_256_GCM", host: "GW.Example.com", name: "  " });
    assert.equal(id.cipher, "aes-256-gcm");
    assert.equal(id.host, "gw.example.com");
    assert.equal(id.name, "gw.example.com");
    assert.equal(checkIdentity({ ...IDENTITY, host: "[2001:db8::1]" }).host, "2001:db8::1");
    assert.equal(checkIdentity({ ...IDENTITY, host: "192.0.2.7" }).host, "192.0.2.7");
    assert.equal(checkIdentity({ ...IDENTITY, name: "lone \ud800" }).name, "lone \ufffd");
  });

  test("rejects what would land unquoted in a URL or config", () => {
    for (
      const host of [
        "",
        "gw.example.com/evil",
        "gw example.com",
        "user@gw.example.com",
        "gw.example.com:443",
        "-gw.example.com",
        "[1.2.3.4]",
        "1::2::3",
      ]
    ) {
      rejects({ host }, /host/);
    }
    for (const port of [0, 65536, 1.5, Number.NaN]) rejects({ port }, /port/);
    for (const path of ["", "/", "AbC", "/AbC/", "/a//b", "/a?b", "/a#b", "/a b", "/../etc", "/./x", "/a%2Fb", "/ä"]) {
      rejects({ path }, /path/);
    }
    rejects({ cipher: "rc4-md5" }, /cipher/);
    rejects({ secret: "" }, /secret/);
    rejects({ secret: "pw\udc00" }, /secret/);
  });

  test("routes under the device path; authority omits port 443 and brackets IPv6", () => {
    assert.deepEqual(appPaths("/AbC"), {
      tcp: "/AbC/tcp",
      udp: "/AbC/udp",
      outlineConfig: "/AbC/outline",
      subscription: "/AbC/sub",
    });
    assert.equal(authority(checkIdentity(IDENTITY)), "gw.example.com");
    assert.equal(authority(checkIdentity({ ...IDENTITY, port: 8443 })), "gw.example.com:8443");
    assert.equal(authority(checkIdentity({ ...IDENTITY, host: "2001:db8::1", port: 443 })), "[2001:db8::1]");
  });
});

describe("yamlString", () => {
  test("every hostile string reads back as itself, in YAML 1.2 and 1.1, as a key's value and in a flow list", () => {
    for (const text of [...HOSTILE_NAMES, IDENTITY.secret, ""]) {
      const expected = text.replace(/[\ud800-\udbff](?![\udc00-\udfff])/g, "\ufffd");
      for (const version of ["1.2", "1.1"] as const) {
        const doc = `a: ${yamlString(text)}\nb:\n  - ${yamlString(text)}\nc: [${yamlString(text)}]\n`;
        assert.deepEqual(parseYaml(doc, { version }), { a: expected, b: [expected], c: [expected] }, JSON.stringify(text));
      }
    }
  });

  test("characters YAML forbids raw are escaped, so the text is printable YAML", () => {
    const out = yamlString("\u007f\u0085\u009b\u2028\u2029\ufeff\uffff");
    assert.equal(out, '"\\u007f\\u0085\\u009b\\u2028\\u2029\\ufeff\\uffff"');
  });
});
