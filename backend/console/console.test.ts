// The console's guards without a browser (test/e2e/console*.test.ts drive it in chromium):
// where a signed-out request goes, the cookie's flags over http and https, idle expiry through
// the API's session, the sign-in rate limit, and POSTs refused without our Origin or the token.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ADMIN, openTestBackend, PASSWORD, type TestBackend } from "../app.testing.ts";
import { testDatabases } from "../db/testing.ts";

const FORM = { "content-type": "application/x-www-form-urlencoded" };

for (const tdb of testDatabases()) {
  describe(`the console's guards on ${tdb.name}`, () => {
    let tb: TestBackend;
    before(async () => {
      tb = await openTestBackend(tdb, {
        adminSessionIdleMs: 60_000,
        signInLimits: { perAccount: 3, perAddress: 100, windowMs: 60_000 },
      });
      await tb.newAdmin({ name: "ann", role: "operator" });
    });
    after(() => tb.close());

    const request = (url: string, init: RequestInit = {}) => tb.app.request(url, init, { remoteAddress: "192.0.2.9" });
    const signIn = (origin: string, body: Record<string, string>) =>
      request(`${origin}/admin/sign-in`, {
        method: "POST",
        headers: { ...FORM, origin },
        body: new URLSearchParams(body).toString(),
      });

    test("signed out: pages send to the sign-in form; assets and the form need no session", async () => {
      for (const path of ["/admin", "/admin/devices", "/admin/nodes"]) {
        const res = await request(`http://localhost${path}`);
        assert.equal(res.status, 303, path);
        assert.equal(res.headers.get("location"), "/admin/sign-in");
      }
      const form = await request("http://localhost/admin/sign-in");
      assert.equal(form.status, 200);
      assert.match(form.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
      const js = await request("http://localhost/admin/assets/console.js");
      assert.equal(js.status, 200);
      assert.match(js.headers.get("content-type")!, /javascript/);
    });

    test("the session cookie: HttpOnly, SameSite=Strict, Secure only over https; a session ends when idle", async () => {
      const plain = await signIn("http://localhost", { token: ADMIN });
      assert.equal(plain.status, 303);
      const cookie = plain.headers.get("set-cookie")!;
      assert.match(cookie, /^httvps_console=[^;]+; Path=\/admin; HttpOnly; SameSite=Strict; Expires=/);
      assert.doesNotMatch(cookie, /Secure/);
      const tls = await signIn("https://console.example", { name: "ann", password: PASSWORD });
      assert.equal(tls.status, 303);
      assert.equal(tls.headers.get("location"), "/admin/devices", "an operator starts on the devices");
      assert.match(tls.headers.get("set-cookie")!, /; Secure;/);

      const session = cookie.split(";")[0]!;
      assert.equal((await request("http://localhost/admin/devices", { headers: { cookie: session } })).status, 200);
      tb.clock.advance(61_000);
      const idle = await request("http://localhost/admin/devices", { headers: { cookie: session } });
      assert.equal(idle.status, 303, "idle longer than ADMIN_SESSION_IDLE");
      assert.equal(idle.headers.get("location"), "/admin/sign-in");
      assert.match(idle.headers.get("set-cookie")!, /^httvps_console=; .*Max-Age=0/);
    });

    test("failed sign-ins: a plain refusal, then the API's rate limit; a sign-in from another origin is refused", async () => {
      for (let i = 0; i < 3; i++) {
        const res = await signIn("http://localhost", { name: "ann", password: "not the password" });
        assert.equal(res.status, 401);
        assert.match(await res.text(), /Wrong name, password or token/);
      }
      const limited = await signIn("http://localhost", { name: "ann", password: PASSWORD });
      assert.equal(limited.status, 429);
      assert.match(await limited.text(), /Too many failed sign-ins/);
      const foreign = await request("http://localhost/admin/sign-in", {
        method: "POST",
        headers: { ...FORM, origin: "http://evil.example" },
        body: `token=${ADMIN}`,
      });
      assert.equal(foreign.status, 403);
      assert.equal(foreign.headers.get("set-cookie"), null);
      const none = await request("http://localhost/admin/sign-in", { method: "POST", headers: FORM, body: `token=${ADMIN}` });
      assert.equal(none.status, 403, "no Origin and no Referer");
      const huge = await request("http://localhost/admin/sign-in", {
        method: "POST",
        headers: { ...FORM, origin: "http://localhost" },
        body: `token=${"x".repeat(100_000)}`,
      });
      assert.equal(huge.status, 413);
    });
  });
}
