import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseSsUrl } from "../ss-url.ts";
import { decodeBase64 } from "../base64.ts";
import { checkIdentity } from "./identity.ts";
import { base64Subscription, sip002Link, v2rayPluginOptions } from "./sip002.ts";
import { HOSTILE_NAMES, IDENTITY } from "./fixtures.testing.ts";

/** SIP003 option parsing as v2ray-plugin's args.go and sing-box's transport/sip003/args.go do it (backslash escapes). */
function parsePluginOptions(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let key = "";
  let value = "";
  let inValue = false;
  for (let i = 0; i < text.length; i++) {
    let c = text[i]!;
    if (c === "\\") c = text[++i]!;
    else if (c === ";") {
      out[key] = value;
      key = value = "";
      inValue = false;
      continue;
    } else if (c === "=" && !inValue) {
      inValue = true;
      continue;
    }
    if (inValue) value += c;
    else key += c;
  }
  out[key] = value;
  return out;
}

describe("SIP002 ss:// link with the v2ray-plugin", () => {
  test("the link as SIP002's example writes it", () => {
    const link = sip002Link({ ...IDENTITY, secret: "PW", name: "gw" });
    assert.equal(
      link,
      "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpQVw@gw.example.com:443/?plugin=v2ray-plugin%3Bmode%3Dwebsocket%3Btls%3Bhost%3Dgw.example.com" +
        "%3Bpath%3D%2FAbCdEf0123456789_-xyz%2Ftcp%3Bmux%3D0#gw",
    );
  });

  test("parses back to the identity; the plugin string is v2ray-plugin over WebSocket + TLS to the TCP path", () => {
    const p = parseSsUrl(sip002Link(IDENTITY));
    assert.deepEqual(
      { method: p.method, password: p.password, host: p.host, port: p.port, tag: p.tag },
      { method: "chacha20-ietf-poly1305", password: IDENTITY.secret, host: "gw.example.com", port: 443, tag: "Alice's phone" },
    );
    const [plugin, ...rest] = p.extra.plugin!.split(";");
    assert.equal(plugin, "v2ray-plugin");
    assert.deepEqual(parsePluginOptions(rest.join(";")), {
      mode: "websocket",
      tls: "",
      host: "gw.example.com",
      path: "/AbCdEf0123456789_-xyz/tcp",
      mux: "0",
    });
    // mihomo's converter: needs a ';', reads mode, host, path, and finds "tls" as a substring.
    assert.ok(p.extra.plugin!.includes(";") && p.extra.plugin!.includes("tls"));
  });

  test("mux=1 on request; SIP003 escapes survive (an IPv6 host holds ':')", () => {
    assert.match(v2rayPluginOptions(IDENTITY, { mux: true }), /;mux=1$/);
    const v6 = v2rayPluginOptions({ ...IDENTITY, host: "2001:db8::1" });
    assert.match(v6, /host=2001\\:db8\\:\\:1;/);
    assert.equal(parsePluginOptions(v6).host, "2001:db8::1");
    assert.equal(parseSsUrl(sip002Link({ ...IDENTITY, host: "2001:db8::1" })).host, "2001:db8:0:0:0:0:0:1");
  });

  test("hostile names and secrets stay in the tag and the user info", () => {
    for (const name of HOSTILE_NAMES) {
      const link = sip002Link({ ...IDENTITY, name });
      assert.doesNotMatch(link, /[\s"<>\\^`{|}]/, "nothing a URL must not hold raw");
      const p = parseSsUrl(link);
      assert.equal(p.tag, checkIdentity({ ...IDENTITY, name }).name);
      assert.equal(p.host, "gw.example.com");
      assert.equal(p.password, IDENTITY.secret);
    }
  });
});

describe("base64 subscription list", () => {
  test("standard padded base64 of the newline-separated links", () => {
    const links = [sip002Link(IDENTITY), sip002Link({ ...IDENTITY, name: "📱 second" })];
    const body = base64Subscription(links);
    assert.match(body, /^[A-Za-z0-9+/]+=*$/);
    assert.equal(new TextDecoder().decode(decodeBase64(body)), links.join("\n"));
    assert.deepEqual(new TextDecoder().decode(decodeBase64(body)).split("\n").map((l) => parseSsUrl(l).tag), [
      "Alice's phone",
      "📱 second",
    ]);
  });
});
