import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { checkIdentity } from "./identity.ts";
import {
  formatBytes,
  outlineConfig,
  outlineErrorConfig,
  type OutlineRefusal,
  outlineRefusalText,
  ssconfLink,
} from "./outline.ts";
import { HOSTILE_NAMES, IDENTITY } from "./fixtures.testing.ts";

const dialer = (url: string) => ({
  $type: "shadowsocks",
  endpoint: { $type: "websocket", url },
  cipher: "chacha20-ietf-poly1305",
  secret: IDENTITY.secret,
});

/** What outline-apps does with a dynamic key (config.ts): ssconf:// → https://, fragment dropped; the name is the fragment's first part without `=`. */
function outlineReadsKey(key: string): { fetch: string; name: string } {
  const url = new URL(key.replace(/^ssconf:\/\//, "https://"));
  const fragment = url.hash.slice(1);
  url.hash = "";
  const first = fragment.split("&").find((p) => !p.includes("=")) ?? "";
  return { fetch: url.toString(), name: decodeURIComponent(first) };
}

describe("Outline dynamic access key config", () => {
  test("exactly the documented TunnelConfig keys (strict decoding since 1.15)", () => {
    assert.deepEqual(parseYaml(outlineConfig(IDENTITY)), {
      transport: {
        $type: "tcpudp",
        tcp: dialer("wss://gw.example.com/AbCdEf0123456789_-xyz/tcp"),
        udp: dialer("wss://gw.example.com/AbCdEf0123456789_-xyz/udp"),
      },
    });
  });

  test("another port and an IPv6 host go into the URLs; cipher aliases become the canonical name", () => {
    const doc = parseYaml(outlineConfig({ ...IDENTITY, host: "2001:db8::1", port: 8443, cipher: "AEAD_AES_128_GCM" }));
    assert.equal(doc.transport.tcp.endpoint.url, "wss://[2001:db8::1]:8443/AbCdEf0123456789_-xyz/tcp");
    assert.equal(doc.transport.udp.cipher, "aes-128-gcm");
    assert.equal(new URL(doc.transport.udp.endpoint.url).hostname, "[2001:db8::1]");
  });

  test("the name never enters the config; hostile secrets read back exactly", () => {
    for (const secret of HOSTILE_NAMES.filter((s) => !s.includes("\ud800"))) {
      const doc = parseYaml(outlineConfig({ ...IDENTITY, secret }));
      assert.equal(doc.transport.tcp.secret, secret);
      assert.ok(!outlineConfig({ ...IDENTITY, secret, name: "NAME-MARK" }).includes("NAME-MARK"));
      assert.deepEqual(Object.keys(doc.transport.tcp), ["$type", "endpoint", "cipher", "secret"]);
    }
  });
});

describe("ssconf:// link", () => {
  test("the Outline client fetches the config path and shows the name", () => {
    const key = ssconfLink(IDENTITY);
    assert.equal(key, "ssconf://gw.example.com/AbCdEf0123456789_-xyz/outline#Alice's%20phone");
    assert.deepEqual(outlineReadsKey(key), {
      fetch: "https://gw.example.com/AbCdEf0123456789_-xyz/outline",
      name: "Alice's phone",
    });
    assert.equal(
      outlineReadsKey(ssconfLink({ ...IDENTITY, port: 8443 })).fetch,
      "https://gw.example.com:8443/AbCdEf0123456789_-xyz/outline",
    );
  });

  test("hostile names survive the fragment and never change where the client fetches", () => {
    for (const name of HOSTILE_NAMES) {
      const key = ssconfLink({ ...IDENTITY, name });
      assert.match(key, /^ssconf:\/\/gw\.example\.com\/AbCdEf0123456789_-xyz\/outline#[A-Za-z0-9%!'()*._~-]+$/);
      const read = outlineReadsKey(key);
      assert.equal(read.fetch, "https://gw.example.com/AbCdEf0123456789_-xyz/outline");
      assert.equal(read.name, checkIdentity({ ...IDENTITY, name }).name);
    }
  });
});

describe("Outline error config", () => {
  const reasons: OutlineRefusal[] = [
    "disabled",
    "expired",
    "revoked",
    "unknown_device",
    "quota_exceeded",
    "session_limit",
    "unavailable",
  ];

  test("exactly error: {message, details} for every refusal, in words a person understands", () => {
    for (const reason of reasons) {
      const doc = parseYaml(outlineErrorConfig(reason));
      assert.deepEqual(Object.keys(doc), ["error"]);
      assert.deepEqual(Object.keys(doc.error), ["message", "details"]);
      assert.match(doc.error.message, /^[A-Z][a-z ]+[a-z]$/, reason);
      assert.match(doc.error.details, /\.$/, reason);
      assert.doesNotMatch(doc.error.message + doc.error.details, /_/, "no error codes shown to a person");
    }
  });

  test("quota and expiry say how much and when", () => {
    const usage = { upload: 10e9, download: 90e9, total: 100e9, expire: "2025-01-31T12:00:00Z" };
    assert.deepEqual(outlineRefusalText("quota_exceeded", usage), {
      message: "Data limit reached",
      details: "You have used 100 GB of 100 GB. Ask the person who gave you this key for more data.",
    });
    assert.match(outlineRefusalText("expired", usage).details, /^It stopped working on 2025-01-31\. /);
    assert.doesNotMatch(outlineRefusalText("expired", { ...usage, expire: "not a date" }).details, /stopped/);
    assert.equal(parseYaml(outlineErrorConfig("quota_exceeded", usage)).error.message, "Data limit reached");
  });

  test("formatBytes: decimal units, three significant digits", () => {
    const cases: [number, string][] = [
      [0, "0 bytes"],
      [999, "999 bytes"],
      [1000, "1 kB"],
      [1536, "1.54 kB"],
      [999_999, "1 MB"],
      [
        12_345_678,
        "12.3 MB",
      ],
      [1.5e9, "1.5 GB"],
      [250e9, "250 GB"],
      [3e12, "3 TB"],
      [-5, "0 bytes"],
    ];
    for (const [n, text] of cases) assert.equal(formatBytes(n), text, String(n));
  });
});
