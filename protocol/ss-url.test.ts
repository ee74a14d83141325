import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatLegacySsUrl, formatSsUrl, parseSsUrl, prefixBytes, SsUrlError, type SsUrlInput } from "./ss-url.ts";
import { readVectorJson, toHex } from "../shadowsocks/test-vectors.ts";

interface UrlVectors {
  stringify: {
    input: { host: string; port: number; method: string; password: string; outline?: number; tag?: string; prefix?: string };
    sip002: string;
    legacyBase64: string;
    prefixBytesHex?: string;
  }[];
  parse: {
    uri: string;
    result: { method: string; password: string; host: string; port: number; tag: string; extra: Record<string, string> };
    prefixBytesHex?: string;
  }[];
}

const vectors = readVectorJson<UrlVectors>("urls.json");
const expandedV6 = (h: string) => (h === "2001:db8::1" ? "2001:db8:0:0:0:0:0:1" : h);

function badUrl(url: string, secret?: string) {
  try {
    parseSsUrl(url);
  } catch (e) {
    assert.ok(e instanceof SsUrlError, `${url}: not an SsUrlError`);
    assert.equal(e.code, "bad_ss_url");
    assert.match(e.message, /^bad ss:\/\/ URL: .{5,}/);
    if (secret) assert.ok(!e.message.includes(secret), "the message leaks the password");
    return;
  }
  assert.fail(`${url} was accepted`);
}

describe("ss:// URLs: Outline's vectors", () => {
  test("the vector file is not empty", () => {
    assert.ok(vectors.stringify.length >= 5 && vectors.parse.length >= 7);
  });

  for (const v of vectors.stringify) {
    test(`format and re-parse ${v.sip002.slice(0, 60)}`, () => {
      const input: SsUrlInput = {
        ...v.input,
        outline: v.input.outline,
        prefix: v.input.prefix === undefined ? undefined : prefixBytes(v.input.prefix),
      };
      assert.equal(formatSsUrl(input), v.sip002);
      assert.equal(formatLegacySsUrl(input), v.legacyBase64);
      if (v.prefixBytesHex) assert.equal(toHex(input.prefix!), v.prefixBytesHex);
      for (const url of [v.sip002, v.legacyBase64]) {
        const p = parseSsUrl(url);
        assert.equal(p.method, v.input.method);
        assert.equal(p.password, v.input.password);
        assert.equal(p.host, expandedV6(v.input.host));
        assert.equal(p.port, v.input.port);
        assert.equal(p.tag, v.input.tag ?? "");
      }
      const p = parseSsUrl(v.sip002);
      assert.equal(p.extra.outline, "1");
      assert.equal(p.prefix === undefined ? undefined : toHex(p.prefix), v.prefixBytesHex);
    });
  }

  for (const v of vectors.parse) {
    test(`parse ${v.uri.slice(0, 60)}`, () => {
      const p = parseSsUrl(v.uri);
      assert.deepEqual(
        { method: p.method, password: p.password, host: p.host, port: p.port, tag: p.tag, extra: p.extra },
        v.result,
      );
      assert.equal(p.prefix === undefined ? undefined : toHex(p.prefix), v.prefixBytesHex);
    });
  }
});

describe("ss:// URLs: other accepted spellings", () => {
  test("percent-encoded method:password userinfo (SIP002 plain form)", () => {
    const p = parseSsUrl("ss://aes-128-gcm:p%40ss%3Aw%2Frd%3F%23@example.com:1234/?plugin=obfs-local%3Bobfs%3Dhttp#n");
    assert.deepEqual([p.method, p.password, p.host, p.port, p.tag], ["aes-128-gcm", "p@ss:w/rd?#", "example.com", 1234, "n"]);
    assert.equal(p.extra.plugin, "obfs-local;obfs=http");
  });

  test("base64 with padding, %3D padding, standard alphabet", () => {
    // "aes-256-gcm:a>b?c" → standard base64 contains '+' and '/'; url-safe uses '-' and '_'.
    const std = btoa("aes-256-gcm:a>>b??c");
    assert.match(std, /[+/]/);
    for (const userinfo of [std, std.replace(/\+/g, "-").replace(/\//g, "_"), std.replace(/=/g, "%3D"), std.replace(/=+$/, "")]) {
      const p = parseSsUrl(`ss://${userinfo}@1.2.3.4:8388`);
      assert.equal(p.password, "a>>b??c", userinfo);
    }
  });

  test("a UTF-8 password, a bare trailing slash, upper-case scheme, + in a query value", () => {
    const url = formatSsUrl({ method: "chacha20-ietf-poly1305", password: "пароль-🔑", host: "h.example", port: 443 });
    assert.equal(parseSsUrl(url).password, "пароль-🔑");
    assert.equal(parseSsUrl(url + "/").port, 443);
    assert.equal(parseSsUrl("SS://" + url.slice(5)).host, "h.example");
    assert.equal(toHex(parseSsUrl(url + "/?prefix=A+B").prefix!), "412042");
  });

  test("format writes extra parameters after outline and prefix, and escapes the tag", () => {
    const url = formatSsUrl({
      method: "aes-256-gcm",
      password: "x",
      host: "::1",
      port: 1,
      outline: true,
      prefix: new Uint8Array([0x50, 0xff]),
      extra: { plugin: "v2ray;tls", outline: "ignored" },
      tag: "a/b c",
    });
    assert.equal(url, "ss://YWVzLTI1Ni1nY206eA@[0:0:0:0:0:0:0:1]:1/?outline=1&prefix=P%C3%BF&plugin=v2ray%3Btls#a%2Fb%20c");
    const p = parseSsUrl(url);
    assert.equal(toHex(p.prefix!), "50ff");
    assert.equal(p.extra.plugin, "v2ray;tls");
    assert.equal(p.tag, "a/b c");
  });
});

describe("ss:// URLs: bad input is bad_ss_url", () => {
  const good = "ss://YWVzLTEyOC1nY206c2VjcmV0LXB3@example.com:8388";
  test("the reference URL is fine", () => assert.equal(parseSsUrl(good).password, "secret-pw"));

  for (
    const [why, url] of [
      ["another scheme", "http://YWVzLTEyOC1nY206c2VjcmV0LXB3@example.com:8388"],
      ["nothing after ss://", "ss://"],
      ["no port", "ss://YWVzLTEyOC1nY206c2VjcmV0LXB3@example.com"],
      ["empty port", "ss://YWVzLTEyOC1nY206c2VjcmV0LXB3@example.com:"],
      ["port 0", "ss://YWVzLTEyOC1nY206c2VjcmV0LXB3@example.com:0"],
      ["port 65536", "ss://YWVzLTEyOC1nY206c2VjcmV0LXB3@example.com:65536"],
      ["port with letters", "ss://YWVzLTEyOC1nY206c2VjcmV0LXB3@example.com:80a"],
      ["no host", "ss://YWVzLTEyOC1nY206c2VjcmV0LXB3@:8388"],
      ["unclosed IPv6 bracket", "ss://YWVzLTEyOC1nY206c2VjcmV0LXB3@[::1:8388"],
      ["bad IPv6", "ss://YWVzLTEyOC1nY206c2VjcmV0LXB3@[1::2::3]:8388"],
      ["userinfo not base64", "ss://!!!!@example.com:8388"],
      ["base64 without a colon", `ss://${btoa("nocolonhere")}@example.com:8388`],
      ["empty password", `ss://${btoa("aes-128-gcm:")}@example.com:8388`],
      ["empty method", "ss://:secret-pw@example.com:8388"],
      ["bad percent-encoding", "ss://aes-128-gcm:secret%ZZpw@example.com:8388"],
      ["bad percent-encoding in the tag", good + "#%E0%A4"],
      ["bad percent-encoding in the query", good + "/?prefix=%C2"],
      ["prefix above U+00FF", good + "/?prefix=%E2%82%AC"],
      ["a path", good + "/some/path"],
      ["legacy without @", `ss://${btoa("aes-128-gcm:secret-pw")}`],
      ["legacy not base64", "ss://***"],
      ["base64 of invalid UTF-8", "ss://__8@example.com:1"],
    ] as const
  ) {
    test(why, () => badUrl(url, "secret"));
  }
});
