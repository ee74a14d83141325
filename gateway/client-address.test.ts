import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCidrList } from "../protocol/ip-address.ts";
import { clientAddress } from "./client-address.ts";

const proxies = parseCidrList("127.0.0.1/32, 10.0.0.0/8, fd00::/8");
const h = (init: Record<string, string>) => new Headers(init);

test("an untrusted peer is the client, whatever it claims", () => {
  const spoof = h({ "x-forwarded-for": "198.51.100.1", forwarded: "for=198.51.100.2" });
  assert.equal(clientAddress("203.0.113.9", spoof, proxies), "203.0.113.9");
  assert.equal(clientAddress("2001:db8::9", spoof, proxies), "2001:db8::9");
  // no trusted proxies configured: nobody's headers count, not even loopback's
  assert.equal(clientAddress("127.0.0.1", spoof, []), "127.0.0.1");
});

test("a trusted peer: the right-most hop that is not trusted", () => {
  // nginx's $proxy_add_x_forwarded_for: what the client sent, then the address nginx saw
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": "203.0.113.7" }), proxies), "203.0.113.7");
  assert.equal(
    clientAddress("127.0.0.1", h({ "x-forwarded-for": "198.51.100.66, 203.0.113.7" }), proxies),
    "203.0.113.7",
    "a hop the client wrote itself (left of the first untrusted one) is not believed",
  );
  // a CDN, then a local proxy: both trusted hops are skipped
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": "1.1.1.1, 203.0.113.7, 10.1.2.3" }), proxies), "203.0.113.7");
  // several header lines are one list, in order
  const two = new Headers();
  two.append("x-forwarded-for", "198.51.100.66");
  two.append("x-forwarded-for", "203.0.113.8");
  assert.equal(clientAddress("127.0.0.1", two, proxies), "203.0.113.8");
});

test("every hop trusted: the left-most; no header: the peer", () => {
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": "10.0.0.5, 10.0.0.6" }), proxies), "10.0.0.5");
  assert.equal(clientAddress("127.0.0.1", h({}), proxies), "127.0.0.1");
});

test("ports, brackets, IPv6 and IPv4-mapped forms", () => {
  assert.equal(clientAddress("::ffff:127.0.0.1", h({ "x-forwarded-for": "203.0.113.7:5555" }), proxies), "203.0.113.7");
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": "[2001:DB8:0::1]:443" }), proxies), "2001:db8::1");
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": "2001:db8::1" }), proxies), "2001:db8::1");
  assert.equal(clientAddress("fd00::1", h({ "x-forwarded-for": "::ffff:203.0.113.7" }), proxies), "203.0.113.7");
  // an untrusted IPv4-mapped peer is written as IPv4 too, so the rate limit keys one client once
  assert.equal(clientAddress("::ffff:203.0.113.9", h({}), proxies), "203.0.113.9");
});

test("Forwarded: for= when there is no X-Forwarded-For, quoted IPv6 with a port included", () => {
  const fwd = h({ forwarded: 'for=198.51.100.66;proto=https, for="[2001:db8::7]:4711";by=10.0.0.1' });
  assert.equal(clientAddress("127.0.0.1", fwd, proxies), "2001:db8::7");
  assert.equal(clientAddress("127.0.0.1", h({ forwarded: "For=203.0.113.7" }), proxies), "203.0.113.7");
  // with both, X-Forwarded-For (what nginx and Caddy set) wins: a client's own Forwarded passes through them untouched
  const both = h({ forwarded: "for=198.51.100.66", "x-forwarded-for": "203.0.113.7" });
  assert.equal(clientAddress("127.0.0.1", both, proxies), "203.0.113.7");
});

test("a hop that is not an address ends the walk at the last address known", () => {
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": "unknown" }), proxies), "127.0.0.1");
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": "203.0.113.7, garbage, 10.0.0.9" }), proxies), "10.0.0.9");
  assert.equal(clientAddress("127.0.0.1", h({ forwarded: "for=_hidden" }), proxies), "127.0.0.1");
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": "" }), proxies), "127.0.0.1");
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": "999.1.1.1" }), proxies), "127.0.0.1");
});

test("a peer that is not an address (a Unix socket, a runtime quirk) is passed through as it is", () => {
  assert.equal(clientAddress("", h({ "x-forwarded-for": "203.0.113.7" }), proxies), "");
});
