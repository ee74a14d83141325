// Every console page in Debian's chromium, on PGlite and on PostgreSQL (TEST_DATABASE_URL), on
// the runtime running this file: axe-core finds no serious or critical violation at desktop
// and phone widths, nothing scrolls sideways on a phone, and the docs' screenshots are written;
// hostile names show as text; a POST without the CSRF token or from another origin is refused;
// an operator sees only its own devices and no owner page, and stops at its cap.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ADMIN, openTestBackend, PASSWORD, type TestBackend } from "../../backend/app.testing.ts";
import { testDatabases } from "../../backend/db/testing.ts";
import { recordNodeHealth } from "../../backend/store/nodes.ts";
import { type ListeningServer, runtime, serveHttp } from "../../runtime/index.ts";
import { checkPage, type ConsoleBrowser, openBrowser, signIn } from "./console-browser.ts";

/** Names meant to break a page: markup, quotes that would close an attribute, a 100-character word. */
const HOSTILE = {
  html: `<img src="x:" onerror="document.title='pwned'"><b class="pwn">bold</b>`,
  quotes: `"'><script>window.pwned=1</script>`,
  long: "W".repeat(100),
};

for (const tdb of testDatabases()) {
  describe(`the console's pages on ${tdb.name}, ${runtime}`, () => {
    let tb: TestBackend;
    let server: ListeningServer;
    let base: string;
    let browser: ConsoleBrowser;
    let hostileDevice: string;
    let hostileNode: string;

    before(async () => {
      tb = await openTestBackend(tdb, { now: () => new Date() });
      server = await serveHttp({
        hostname: "127.0.0.1",
        port: 0,
        fetch: (req, info) => tb.app.fetch(req, { remoteAddress: info.remoteAddress }),
      });
      base = `http://127.0.0.1:${server.port}`;
      // Something to draw: devices (one with traffic on two sessions), a node with health history, a gateway key.
      const node = await tb.call("POST", "/api/v1/nodes", {
        name: HOSTILE.html,
        host: "127.0.0.1",
        port: 9,
        method: "chacha20-ietf-poly1305",
        password: "node-password",
        region: HOSTILE.quotes,
      });
      assert.equal(node.status, 201, JSON.stringify(node.json));
      hostileNode = node.json.id;
      for (const [status, latency] of [["up", 12], ["up", 15], ["down", null]] as const) {
        await recordNodeHealth(
          tb.db,
          hostileNode,
          { status, latency_ms: latency, last_error: latency ? null : "refused" },
          new Date(),
        );
      }
      const d = await tb.newDevice({ name: HOSTILE.html, data_quota_bytes: 50 * 1024 * 1024, quota_period: "month" });
      hostileDevice = d.device_id;
      await tb.newDevice({ name: HOSTILE.quotes, expire_after_days: 30 });
      await tb.newDevice({ name: HOSTILE.long, max_sessions: 2 });
      await tb.report([
        { type: "session_open", session_id: "s-1", device_id: hostileDevice, node_id: hostileNode },
        { type: "session_usage", session_id: "s-1", device_id: hostileDevice, bytes_up: 300_000, bytes_down: 4_000_000 },
        { type: "session_open", session_id: "s-2", device_id: hostileDevice, node_id: null },
        {
          type: "session_close",
          session_id: "s-2",
          device_id: hostileDevice,
          reason: "client_closed",
          bytes_up: 10,
          bytes_down: 20,
        },
      ], { gateway_version: "0.1.0", gateway_runtime: runtime });
      assert.equal((await tb.call("POST", "/api/v1/gateways", { name: "edge-1" })).status, 201);
      browser = await openBrowser();
    });

    after(async () => {
      await browser?.close();
      await server?.close();
      await tb?.close();
    });

    test("every page: no serious axe violation at desktop and phone width, no sideways scroll; screenshots", async () => {
      const { page } = browser;
      await signIn(page, base, { token: ADMIN });
      // Only one database's run writes the docs' pictures.
      const shots = tdb.name === "pglite";
      const visit = async (path: string, name: string, heading: RegExp) => {
        await page.goto(base + path);
        assert.match((await page.getByRole("heading", { level: 1 }).textContent())!, heading, path);
        await checkPage(page, name, shots);
      };
      await visit("/admin", "overview", /^Overview$/);
      await visit("/admin/devices", "devices", /^Devices$/);
      await visit(`/admin/devices/${hostileDevice}`, "device", /^Device: /);
      await visit("/admin/nodes", "nodes", /^Nodes$/);
      await visit(`/admin/nodes/${hostileNode}`, "node", /^Node: /);
      await visit("/admin/gateways", "gateways", /^Gateways$/);
      await visit("/admin/audit", "audit", /^Audit log$/);
      await page.goto(`${base}/admin/devices`);
      await page.getByLabel("Name", { exact: true }).fill("new phone");
      await page.getByRole("button", { name: "Create device" }).click();
      assert.match((await page.getByRole("heading", { level: 1 }).textContent())!, /^Device created: new phone$/);
      await checkPage(page, "device-created", shots);
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/admin\/sign-in$/);
      await checkPage(page, "sign-in", shots);
    });

    test("hostile names show as text on every page that shows them", async () => {
      const { page } = browser;
      await signIn(page, base, { token: ADMIN });
      for (
        const path of [
          "/admin/devices",
          `/admin/devices/${hostileDevice}`,
          "/admin/nodes",
          `/admin/nodes/${hostileNode}`,
          "/admin/audit",
        ]
      ) {
        await page.goto(base + path);
        assert.equal(
          await page.locator("b.pwn, img[src='x:'], main script").count(),
          0,
          `markup from a name was parsed on ${path}`,
        );
        assert.equal(await page.evaluate(() => document.title === "pwned" || "pwned" in globalThis), false, path);
        const text = (await page.locator("main").textContent())!;
        // The audit log shows a request's detail as JSON: its quotes escaped.
        const shown = (s: string) => (path === "/admin/audit" ? JSON.stringify(s).slice(1, -1) : s);
        assert.ok(text.includes(shown(HOSTILE.html)), `the HTML name shows as text on ${path}`);
        if (path !== `/admin/devices/${hostileDevice}`) {
          assert.ok(text.includes(shown(HOSTILE.quotes)), `the quotes show on ${path}`);
        }
      }
      await page.goto(`${base}/admin/devices`);
      assert.ok((await page.locator("main").textContent())!.includes(HOSTILE.long));
    });

    test("a POST without the CSRF token or from another origin is refused; the cookie and the headers", async () => {
      const { page, context } = browser;
      await signIn(page, base, { token: ADMIN });
      const cookie = (await context.cookies(`${base}/admin`)).find((c) => c.name === "httvps_console")!;
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, "Strict");
      assert.equal(cookie.path, "/admin");
      await page.goto(`${base}/admin/devices`);
      const csrf = (await page.locator("input[name=_csrf]").first().getAttribute("value"))!;
      const create = (form: Record<string, string>, origin: string) =>
        page.request.post(`${base}/admin/devices`, { form, headers: { origin }, maxRedirects: 0 });
      const count = async () => (await tb.call("GET", "/api/v1/devices?q=csrf")).json.devices.length;
      assert.equal((await create({ name: "csrf-none" }, base)).status(), 403);
      assert.equal((await create({ name: "csrf-wrong", _csrf: "x".repeat(43) }, base)).status(), 403);
      assert.equal((await create({ name: "csrf-foreign", _csrf: csrf }, "http://evil.example")).status(), 403);
      assert.equal(await count(), 0, "no refused request created a device");
      assert.equal((await create({ name: "csrf-ok", _csrf: csrf }, base)).status(), 200);
      assert.equal(await count(), 1, "the same request with the token and our origin works");

      const res = await page.request.get(`${base}/admin`);
      const csp = res.headers()["content-security-policy"]!;
      assert.match(csp, /frame-ancestors 'none'/);
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(res.headers()["x-frame-options"], "DENY");
    });

    test("the forms do what they say: edit a device, bulk disable, add and change a node, issue and revoke a gateway key", async () => {
      const { page } = browser;
      await signIn(page, base, { token: ADMIN });
      const a = await tb.newDevice({ name: "form-a" });
      const b = await tb.newDevice({ name: "form-b" });
      const device = async (id: string) => (await tb.call("GET", `/api/v1/devices/${id}`)).json;

      await page.goto(`${base}/admin/devices/${a.device_id}`);
      const edit = page.locator("form", { has: page.getByRole("button", { name: "Save" }) });
      await edit.getByLabel("Data quota (MiB, blank: none)").fill("10");
      await edit.getByLabel("Quota resets").selectOption("week");
      await edit.locator("select[name=expiry]").selectOption("first_connection");
      await edit.getByLabel("Days from the first connection", { exact: true }).fill("30");
      await edit.getByLabel("Max sessions (blank: no limit)").fill("3");
      await edit.getByRole("button", { name: "Save" }).click();
      await page.waitForURL(`${base}/admin/devices/${a.device_id}`);
      const edited = await device(a.device_id);
      assert.equal(edited.data_quota_bytes, 10 * 1024 * 1024);
      assert.equal(edited.quota_period, "week");
      assert.equal(edited.expiry_mode, "first_connection");
      assert.equal(edited.expire_after_days, 30);
      assert.equal(edited.max_sessions, 3);
      assert.equal(edited.status, "on_hold");

      await page.goto(`${base}/admin/devices?q=form-`);
      await page.getByLabel("Select all devices on this page").check();
      await page.getByLabel("With the selected devices").selectOption("disable");
      await page.getByRole("button", { name: "Apply" }).click();
      await page.waitForURL(/\/admin\/devices\?q=form-/);
      assert.equal((await device(a.device_id)).status, "disabled");
      assert.equal((await device(b.device_id)).status, "disabled");
      assert.equal(await page.locator("main tbody .status-disabled").count(), 2);

      const link = `ss://${Buffer.from("chacha20-ietf-poly1305:node-pw").toString("base64url")}@127.0.0.1:9#from-a-link`;
      await page.goto(`${base}/admin/nodes`);
      const byLink = page.locator("form", { has: page.getByText("By ss:// link") });
      await byLink.getByLabel("ss:// link").fill(link);
      await byLink.getByRole("button", { name: "Add node" }).click();
      await page.waitForURL(/\/admin\/nodes\/[0-9a-f-]{36}$/);
      const nodeId = page.url().split("/").pop()!;
      assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Node: from-a-link");
      await page.goto(`${base}/admin/nodes`);
      await page.getByRole("button", { name: "Disable from-a-link" }).click();
      await page.getByLabel("Weight of from-a-link").fill("7");
      await page.locator("form", { has: page.getByLabel("Weight of from-a-link") }).getByRole("button", { name: "Set" }).click();
      await page.waitForURL(`${base}/admin/nodes`);
      const node = (await tb.call("GET", `/api/v1/nodes/${nodeId}`)).json;
      assert.equal(node.enabled, false);
      assert.equal(node.weight, 7);

      await page.goto(`${base}/admin/gateways`);
      await page.getByLabel("Gateway id (its GATEWAY_ID)").fill("edge-2");
      await page.getByRole("button", { name: "Issue key" }).click();
      const key = (await page.locator("#gateway-key").textContent())!;
      assert.ok(key.length >= 32);
      const gw = (await tb.call("GET", "/api/v1/gateways")).json.gateways.find((g: { name: string }) => g.name === "edge-2");
      assert.ok(gw?.key && !gw.key.revoked_at);
      assert.equal((await tb.call("POST", "/api/v1/gateway/report", { gateway_id: "edge-2", events: [] }, key)).status, 200);
      await page.goto(`${base}/admin/gateways`);
      await page.getByRole("button", { name: "Revoke key of edge-2" }).click();
      await page.waitForURL(`${base}/admin/gateways`);
      assert.equal((await tb.call("POST", "/api/v1/gateway/report", { gateway_id: "edge-2", events: [] }, key)).status, 401);
    });

    test("an operator: its own devices only, no owner pages or links, stopped at its cap; sign-out ends the session", async () => {
      const { page, context } = browser;
      const op = await tb.newAdmin({ name: "reseller", role: "operator", own_devices_only: true, max_devices: 2 });
      await tb.newDevice({ name: "reseller's first" }, op.token);
      await signIn(page, base, { name: "reseller", password: PASSWORD });
      assert.match(page.url(), /\/admin\/devices$/, "an operator starts on the devices page");
      const nav = (await page.getByRole("navigation", { name: "Main" }).textContent())!;
      assert.doesNotMatch(nav, /Nodes|Gateways|Audit|Overview/);
      const listed = (await page.locator("main tbody").textContent())!;
      assert.match(listed, /reseller's first/);
      assert.ok(!listed.includes(HOSTILE.long), "another admin's device is not listed");
      for (const path of ["/admin/nodes", "/admin/gateways", "/admin/audit", `/admin/nodes/${hostileNode}`]) {
        const res = await page.goto(base + path);
        assert.equal(res!.status(), 403, path);
      }
      assert.equal((await page.goto(`${base}/admin/devices/${hostileDevice}`))!.status(), 404, "another's device is not found");
      await checkPage(page, "operator-devices", tdb.name === "pglite");

      await page.goto(`${base}/admin/devices`);
      await page.getByLabel("Name", { exact: true }).fill("reseller's second");
      await page.getByRole("button", { name: "Create device" }).click();
      assert.match((await page.getByRole("heading", { level: 1 }).textContent())!, /^Device created/);
      await page.goto(`${base}/admin/devices`);
      await page.getByLabel("Name", { exact: true }).fill("one too many");
      await page.getByRole("button", { name: "Create device" }).click();
      assert.equal(await page.getByRole("alert").count(), 1);
      assert.match((await page.getByRole("alert").textContent())!, /cap|at most|limit/i);
      assert.equal((await tb.call("GET", "/api/v1/devices?q=one too many")).json.devices.length, 0);

      const session = (await context.cookies(`${base}/admin`)).find((c) => c.name === "httvps_console")!.value;
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/admin\/sign-in$/);
      assert.equal((await tb.call("GET", "/api/v1/auth/me", undefined, session)).status, 401, "the session is over");
    });
  });
}
