import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseCidrList } from "../protocol/ip-address.ts";
import { PreauthCounter } from "./preauth-limit.ts";

describe("PreauthCounter", () => {
  test("admits up to the cap per address, then refuses until one is released", () => {
    const c = new PreauthCounter(2);
    const a = c.admit("192.0.2.1");
    const b = c.admit("192.0.2.1");
    assert.ok(a && b);
    assert.equal(c.admit("192.0.2.1"), undefined);
    assert.equal(c.refused, 1);
    assert.ok(c.admit("192.0.2.2"), "another address has its own count");
    a();
    assert.equal(c.count("192.0.2.1"), 1);
    assert.ok(c.admit("192.0.2.1"), "the released place is free again");
  });

  test("a release counts once, however often it is called", () => {
    const c = new PreauthCounter(2);
    const a = c.admit("192.0.2.1")!;
    c.admit("192.0.2.1");
    a();
    a();
    assert.equal(c.count("192.0.2.1"), 1);
  });

  test("nothing is kept for an address once its last connection is released", () => {
    const c = new PreauthCounter(3);
    const releases = [c.admit("192.0.2.1")!, c.admit("192.0.2.1")!, c.admit("198.51.100.7")!];
    assert.equal(c.addresses, 2);
    for (const r of releases) r();
    assert.equal(c.addresses, 0);
  });

  test("IPv6 addresses share their /64; an IPv4-mapped address is its IPv4 one", () => {
    const c = new PreauthCounter(2);
    assert.ok(c.admit("2001:db8:1:2::1"));
    assert.ok(c.admit("2001:db8:1:2:ffff::9"));
    assert.equal(c.admit("2001:db8:1:2:abcd::1"), undefined, "the same /64");
    assert.ok(c.admit("2001:db8:1:3::1"), "another /64");
    assert.ok(c.admit("::ffff:192.0.2.1"));
    assert.ok(c.admit("192.0.2.1"));
    assert.equal(c.admit("::ffff:192.0.2.1"), undefined, "mapped and plain IPv4 are one address");
  });

  test("0 turns the cap off and counts nothing", () => {
    const c = new PreauthCounter(0);
    for (let i = 0; i < 1000; i++) assert.ok(c.admit("192.0.2.1"));
    assert.equal(c.addresses, 0);
    assert.equal(c.refused, 0);
  });

  test("trusted proxies are not counted: behind one, every client has the proxy's address", () => {
    const c = new PreauthCounter(1, parseCidrList("127.0.0.1/32,::1/128"));
    for (let i = 0; i < 100; i++) assert.ok(c.admit("127.0.0.1"));
    assert.ok(c.admit("::ffff:127.0.0.1"), "an IPv4-mapped proxy address is the proxy");
    assert.ok(c.admit("::1"));
    assert.equal(c.addresses, 0);
    assert.ok(c.admit("127.0.0.2"), "an address outside the list is counted");
    assert.equal(c.admit("127.0.0.2"), undefined);
  });
});
