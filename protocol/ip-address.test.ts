import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatHostPort, formatIPv6, parseIP, parseIPv4, parseIPv6, unbracketHost, unmapIPv4, urlHost } from "./ip-address.ts";

const hex = (b: Uint8Array | null) => (b ? Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("") : null);

describe("IP addresses", () => {
  test("IPv4: dotted quads only, no leading zeros, no octet above 255", () => {
    assert.equal(hex(parseIPv4("192.0.2.1")), "c0000201");
    assert.equal(hex(parseIPv4("0.0.0.0")), "00000000");
    for (const bad of ["01.2.3.4", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.4 ", "a.b.c.d", ""]) {
      assert.equal(parseIPv4(bad), null, bad);
    }
  });

  test("IPv6: every RFC 4291 text form; no brackets, no zone", () => {
    assert.equal(hex(parseIPv6("::1")), "00000000000000000000000000000001");
    assert.equal(hex(parseIPv6("2001:DB8::1")), "20010db8000000000000000000000001");
    assert.equal(hex(parseIPv6("::ffff:1.2.3.4")), "00000000000000000000ffff01020304");
    assert.equal(hex(parseIPv6("1:2:3:4:5:6:7::")), "00010002000300040005000600070000");
    for (const bad of ["[::1]", "fe80::1%eth0", "1::2::3", "12345::", ":::", "1:2:3:4:5:6:7:8:9", "::g", "1.2.3.4", ":"]) {
      assert.equal(parseIPv6(bad), null, bad);
    }
  });

  test("parseIP takes either family; unmapIPv4 finds the IPv4 inside ::ffff:a.b.c.d only", () => {
    assert.equal(parseIP("10.0.0.1")?.length, 4);
    assert.equal(parseIP("::1")?.length, 16);
    assert.equal(parseIP("example.com"), null);
    assert.equal(hex(unmapIPv4(parseIP("::ffff:203.0.113.7")!)), "cb007107");
    assert.equal(unmapIPv4(parseIP("64:ff9b::203.0.113.7")!), null);
    assert.equal(unmapIPv4(parseIP("203.0.113.7")!), null);
  });

  test("IPv6 text forms: RFC 5952 and Outline's expanded form", () => {
    assert.equal(formatIPv6(parseIPv6("2001:db8::1")!, "expanded"), "2001:db8:0:0:0:0:0:1");
    assert.equal(formatIPv6(parseIPv6("2001:db8:0:1:0:0:1:1")!), "2001:db8:0:1::1:1");
    assert.equal(formatIPv6(parseIPv6("2001:0:0:1:0:0:0:1")!), "2001:0:0:1::1");
    assert.equal(formatIPv6(parseIPv6("1:0:2:3:4:5:6:7")!), "1:0:2:3:4:5:6:7", "a single zero group stays");
    assert.equal(formatIPv6(new Uint8Array(16)), "::");
    assert.equal(formatIPv6(parseIPv6("2001:db8:1:0:0:0:0:1")!), "2001:db8:1::1");
    assert.equal(formatIPv6(parseIPv6("2001:db8:0:1:1:1:1:1")!), "2001:db8:0:1:1:1:1:1");
  });

  test("brackets come off a URL's host and go back on only beside a port", () => {
    assert.equal(urlHost(new URL("https://[2001:db8::1]:8443/x")), "2001:db8::1");
    assert.equal(urlHost(new URL("https://example.com/")), "example.com");
    assert.equal(unbracketHost("[::1]"), "::1");
    assert.equal(unbracketHost("[1.2.3.4]"), "[1.2.3.4]", "brackets are for IPv6 only: this is no host");
    assert.equal(formatHostPort("2001:db8::1", 443), "[2001:db8::1]:443");
    assert.equal(formatHostPort("192.0.2.1", 80), "192.0.2.1:80");
    assert.equal(formatHostPort("example.com", 80), "example.com:80");
  });
});
