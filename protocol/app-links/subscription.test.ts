import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { decodeBase64 } from "../base64.ts";
import { parseSsUrl } from "../ss-url.ts";
import { checkIdentity } from "./identity.ts";
import {
  appLinks,
  subscriptionBody,
  subscriptionFormatFor,
  subscriptionHeaders,
  subscriptionUrl,
  subscriptionUserinfo,
} from "./subscription.ts";
import { HOSTILE_NAMES, IDENTITY } from "./fixtures.testing.ts";

describe("subscriptionFormatFor", () => {
  test("by User-Agent, as the panels pick", () => {
    const table: [string | null, string][] = [
      ["clash-verge/v2.0.3", "clash"],
      ["ClashMetaForAndroid/2.10.1.Meta", "clash"],
      ["clash.meta", "clash"],
      ["ClashforWindows/0.20.39", "clash"],
      ["FlClash/v0.8.70 clash-verge", "clash"],
      ["mihomo/1.18.5", "clash"],
      ["Stash/2.4.8 Clash/1.9.0", "clash"],
      ["SFA/1.10.1 (34; sing-box 1.10.1)", "sing-box"],
      ["SFI/1.11.0 (iOS 17; sing-box 1.11.0)", "sing-box"],
      ["sing-box 1.12.0", "sing-box"],
      ["HiddifyNext/2.5.7 (android) like ClashMeta v2ray sing-box", "sing-box"],
      ["karing/1.0.30", "sing-box"],
      ["Outline (Android; arm64; go1.22)", "outline"],
      ["v2rayN/6.45", "base64"],
      ["v2rayNG/1.8.29", "base64"],
      ["NekoBox/Android/1.3.3 (Prefer ClashMeta Format)", "base64"],
      ["Shadowrocket/2070 CFNetwork/1494.0.7 Darwin/23.4.0", "base64"],
      ["Go-http-client/1.1", "base64"],
      ["Mozilla/5.0 (X11; Linux x86_64) clash", "base64"],
      ["", "base64"],
      [null, "base64"],
    ];
    for (const [ua, format] of table) assert.equal(subscriptionFormatFor(undefined, ua), format, String(ua));
  });

  test("?format= wins; an unknown one leaves the choice to the User-Agent", () => {
    assert.equal(subscriptionFormatFor("clash", "v2rayN/6.45"), "clash");
    assert.equal(subscriptionFormatFor("SING-BOX", "clash-verge/v2"), "sing-box");
    assert.equal(subscriptionFormatFor("singbox", null), "sing-box");
    assert.equal(subscriptionFormatFor("clash-meta", null), "clash");
    assert.equal(subscriptionFormatFor("mihomo", null), "clash");
    assert.equal(subscriptionFormatFor("outline", "clash-verge/v2"), "outline");
    assert.equal(subscriptionFormatFor("base64", "clash-verge/v2"), "base64");
    assert.equal(subscriptionFormatFor("v2ray", "clash-verge/v2"), "base64");
    assert.equal(subscriptionFormatFor("xml", "clash-verge/v2"), "clash");
    assert.equal(subscriptionFormatFor("", "SFA/1.10"), "sing-box");
  });
});

describe("subscriptionBody", () => {
  test("each format parses with its parser and carries the device's key", () => {
    const clash = subscriptionBody("clash", IDENTITY);
    assert.equal(clash.contentType, "text/yaml; charset=utf-8");
    assert.equal(parseYaml(clash.body).proxies[0].password, IDENTITY.secret);
    const singBox = subscriptionBody("sing-box", IDENTITY);
    assert.equal(singBox.contentType, "application/json; charset=utf-8");
    assert.equal(JSON.parse(singBox.body).outbounds[0].password, IDENTITY.secret);
    const outline = subscriptionBody("outline", IDENTITY);
    assert.equal(parseYaml(outline.body).transport.tcp.secret, IDENTITY.secret);
    const list = subscriptionBody("base64", IDENTITY);
    assert.equal(list.contentType, "text/plain; charset=utf-8");
    assert.equal(parseSsUrl(new TextDecoder().decode(decodeBase64(list.body))).password, IDENTITY.secret);
  });
});

describe("subscription headers", () => {
  test("subscription-userinfo: bytes and unix seconds; 0 for no quota and never", () => {
    assert.equal(
      subscriptionUserinfo({ upload: 1, download: 2, total: 3, expire: "2023-11-14T22:13:20Z" }),
      "upload=1; download=2; total=3; expire=1700000000",
    );
    assert.equal(subscriptionUserinfo({ upload: 0, download: 0 }), "upload=0; download=0; total=0; expire=0");
    assert.equal(
      subscriptionUserinfo({ upload: 5.9, download: -1, total: null, expire: null }),
      "upload=5; download=0; total=0; expire=0",
    );
    assert.equal(
      subscriptionUserinfo({ upload: 1, download: 1, expire: new Date(1_700_000_000_500) }),
      "upload=1; download=1; total=0; expire=1700000000",
    );
    assert.equal(
      subscriptionUserinfo({ upload: 1, download: 1, total: Infinity, expire: "garbage" }),
      "upload=1; download=1; total=0; expire=0",
    );
  });

  test("the userinfo reads back the way mihomo and clash-verge-rev read it", () => {
    const value = subscriptionUserinfo({ upload: 1234, download: 5678, total: 10e9, expire: "2030-01-01T00:00:00Z" });
    const fields = Object.fromEntries(value.split(";").map((kv) => kv.trim().split("=")).map(([k, v]) => [k, Number(v)]));
    assert.deepEqual(fields, { upload: 1234, download: 5678, total: 10e9, expire: 1893456000 });
  });

  test("all header values are printable ASCII whatever the name; title and file name decode to it", () => {
    for (const name of [...HOSTILE_NAMES, IDENTITY.name]) {
      const shown = checkIdentity({ ...IDENTITY, name }).name;
      const h = subscriptionHeaders({ ...IDENTITY, name }, { upload: 1, download: 2 });
      assert.deepEqual(Object.keys(h), [
        "subscription-userinfo",
        "profile-update-interval",
        "profile-title",
        "content-disposition",
      ]);
      for (const v of Object.values(h)) assert.match(v, /^[\x20-\x7e]+$/, JSON.stringify(name));
      assert.equal(new Headers(h).get("content-disposition"), h["content-disposition"], "a valid header value");
      assert.match(h["profile-title"]!, /^base64:/);
      assert.equal(new TextDecoder().decode(decodeBase64(h["profile-title"]!.slice(7))), shown);
      const m = /^attachment; filename="([^"\\]+)"; filename\*=UTF-8''([A-Za-z0-9%!#$&+.^_`|~-]+)$/.exec(
        h["content-disposition"]!,
      );
      assert.ok(m, h["content-disposition"]!);
      assert.equal(decodeURIComponent(m[2]!), shown);
      assert.ok(m[1]!.length <= 64);
    }
  });

  test("update interval in whole hours, default 12", () => {
    assert.equal(subscriptionHeaders(IDENTITY, { upload: 0, download: 0 })["profile-update-interval"], "12");
    assert.equal(
      subscriptionHeaders(IDENTITY, { upload: 0, download: 0 }, { updateIntervalHours: 1 })["profile-update-interval"],
      "1",
    );
    assert.equal(
      subscriptionHeaders(IDENTITY, { upload: 0, download: 0 }, { updateIntervalHours: 0.5 })["profile-update-interval"],
      "12",
    );
  });
});

describe("the links a person is handed", () => {
  test("ssconf, ss_url and subscription_url", () => {
    assert.deepEqual(appLinks(IDENTITY), {
      ssconf: "ssconf://gw.example.com/AbCdEf0123456789_-xyz/outline#Alice's%20phone",
      ss_url: appLinks(IDENTITY).ss_url,
      subscription_url: "https://gw.example.com/AbCdEf0123456789_-xyz/sub",
    });
    assert.match(appLinks(IDENTITY).ss_url, /^ss:\/\/[A-Za-z0-9_-]+@gw\.example\.com:443\/\?plugin=v2ray-plugin%3B/);
    assert.equal(
      subscriptionUrl({ ...IDENTITY, port: 8443, host: "2001:db8::1" }),
      "https://[2001:db8::1]:8443/AbCdEf0123456789_-xyz/sub",
    );
  });
});
