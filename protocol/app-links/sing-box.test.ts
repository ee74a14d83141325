import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkIdentity } from "./identity.ts";
import { singBoxConfig } from "./sing-box.ts";
import { HOSTILE_NAMES, IDENTITY } from "./fixtures.testing.ts";

const outbound = (tag: string) => ({
  type: "shadowsocks",
  tag,
  server: "gw.example.com",
  server_port: 443,
  method: "chacha20-ietf-poly1305",
  password: IDENTITY.secret,
  network: "tcp",
  plugin: "v2ray-plugin",
  plugin_opts: "mode=websocket;tls;host=gw.example.com;path=/AbCdEf0123456789_-xyz/tcp;mux=0",
});

describe("sing-box profile", () => {
  test("a tun inbound, the shadowsocks outbound with plugin_opts, direct, and the route to it", () => {
    assert.deepEqual(JSON.parse(singBoxConfig(IDENTITY)), {
      log: { level: "warn" },
      inbounds: [{
        type: "tun",
        tag: "tun-in",
        address: ["172.19.0.1/30", "fdfe:dcba:9876::1/126"],
        auto_route: true,
        strict_route: true,
      }],
      outbounds: [outbound("Alice's phone"), { type: "direct", tag: "direct" }],
      route: {
        rules: [{ action: "sniff" }, { protocol: "dns", action: "hijack-dns" }],
        final: "Alice's phone",
        auto_detect_interface: true,
      },
    });
  });

  test("hostile names are only the tag; tags that would collide are renamed", () => {
    for (const name of HOSTILE_NAMES) {
      const doc = JSON.parse(singBoxConfig({ ...IDENTITY, name }));
      const tag = checkIdentity({ ...IDENTITY, name }).name;
      assert.deepEqual(doc.outbounds[0], outbound(tag));
      assert.equal(doc.route.final, tag);
    }
    const doc = JSON.parse(singBoxConfig({ ...IDENTITY, name: "direct" }));
    assert.equal(doc.outbounds[0].tag, "direct (gw.example.com)");
    assert.equal(doc.route.final, "direct (gw.example.com)");
    assert.equal(new Set(doc.outbounds.map((o: { tag: string }) => o.tag)).size, 2);
  });
});
