import { test } from "node:test";
import assert from "node:assert/strict";
import { PendingChallenges } from "./challenges.ts";
import { httpListenerHandler } from "./http-listener.ts";

const info = { remoteAddress: "192.0.2.1" };

test("an HTTP-01 token that is pending gets its key authorization, as text", async () => {
  const challenges = new PendingChallenges();
  challenges.setHttp("tok-1", "tok-1.thumbprint");
  const handle = httpListenerHandler({ challenges, httpsPort: 443, fallbackHost: "gw.example.test" });
  const r = await handle(new Request("http://gw.example.test/.well-known/acme-challenge/tok-1"), info);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/plain");
  assert.equal(await r.text(), "tok-1.thumbprint");
  challenges.deleteHttp("tok-1");
  const gone = await handle(new Request("http://gw.example.test/.well-known/acme-challenge/tok-1"), info);
  assert.equal(gone.status, 301, "an answered challenge is not served again");
});

test("everything else is a 301 to the same host and path on https, the public port named unless it is 443", async () => {
  const challenges = new PendingChallenges();
  const on443 = httpListenerHandler({ challenges, httpsPort: 443, fallbackHost: "gw.example.test" });
  const cases: [string, Record<string, string>, string][] = [
    ["http://gw.example.test/", {}, "https://gw.example.test/"],
    ["http://gw.example.test/a/b?x=1&y=%20", {}, "https://gw.example.test/a/b?x=1&y=%20"],
    ["http://gw.example.test:80/p", {}, "https://gw.example.test/p"],
    ["http://WWW.Example.TEST/p", {}, "https://www.example.test/p"],
    ["http://[2001:db8::1]/p", {}, "https://[2001:db8::1]/p"],
    [
      "http://gw.example.test/.well-known/acme-challenge/unknown",
      {},
      "https://gw.example.test/.well-known/acme-challenge/unknown",
    ],
  ];
  for (const [url, headers, location] of cases) {
    const r = await on443(new Request(url, { headers }), info);
    assert.equal(r.status, 301, url);
    assert.equal(r.headers.get("location"), location, url);
    assert.equal(r.headers.get("server"), "nginx");
    assert.match(await r.text(), /<title>301 Moved Permanently<\/title>/);
  }
  const on8443 = httpListenerHandler({ challenges, httpsPort: 8443, fallbackHost: "gw.example.test" });
  const r = await on8443(new Request("http://gw.example.test/x", { method: "POST", body: "ignored" }), info);
  assert.equal(r.headers.get("location"), "https://gw.example.test:8443/x");
  const head = await on8443(new Request("http://gw.example.test/x", { method: "HEAD" }), info);
  assert.equal(head.status, 301);
  assert.equal(await head.text(), "");
});

test("a Host header that is not a host (header injection, junk) falls back to the configured name", async () => {
  const handle = httpListenerHandler({ challenges: new PendingChallenges(), httpsPort: 443, fallbackHost: "gw.example.test" });
  for (const host of ["evil.test/path", "a b", "evil.test:80:80", "user@evil.test"]) {
    // The URL's host differs from the fallback, so a header that did not arrive would show.
    const r = await handle(new Request("http://url-host.test/p", { headers: { host } }), info);
    assert.equal(r.headers.get("location"), "https://gw.example.test/p", host);
  }
});
