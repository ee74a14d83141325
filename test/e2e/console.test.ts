// The console end to end in Debian's chromium, on the runtime running this file: sign in,
// create a device, read its access key and the key's QR code (decoded from a screenshot),
// `httvps connect` with it and fetch through it with curl, watch the device come online and its
// traffic rise on its page (the page's own refresh), revoke it from the console and see the
// live session end.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { until } from "../../client/testing.ts";
import { appLinks } from "../../protocol/app-links/subscription.ts";
import { runtime } from "../../runtime/index.ts";
import { type HttpTarget, startHttpTarget } from "../../shadowsocks/ss-server.testing.ts";
import { curl } from "../curl.ts";
import { type ConsoleBrowser, openBrowser, readQr, signIn } from "./console-browser.ts";
import { ADMIN_TOKEN, type ClientProcess, type Stack, startStack } from "./stack.ts";

const POOL = new Uint8Array(randomBytes(2 * 1024 * 1024));

describe(`the console in a browser, end to end, on ${runtime}`, () => {
  let stack: Stack<"app">;
  let target: HttpTarget;
  let browser: ConsoleBrowser;
  let gatewayPort = 0;
  const clients: ClientProcess[] = [];

  before(async () => {
    stack = await startStack({
      upstream: "direct",
      logLevel: "error",
      env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8", GATEWAY_USAGE_FLUSH_INTERVAL: "500ms", GATEWAY_AUTH_CACHE_TTL: "300ms" },
      // What `httvps backend` is given from GATEWAY_PUBLIC_URL: here the stack's gateway, pinned.
      app: {
        deviceLinks: {
          accessKey: (d) => stack.accessKey(d, gatewayPort),
          appLinks: (d) => appLinks({ name: d.name, host: "localhost", port: gatewayPort, ...d.app }),
        },
      },
    });
    gatewayPort = (await stack.gateway()).port;
    target = await startHttpTarget(POOL, { keepAlive: true });
    browser = await openBrowser();
  });

  after(async () => {
    for (const c of clients) await c.stop();
    await browser?.close();
    await target?.close();
    await stack?.close();
  });

  test("the gateway never serves the console: /admin there is its own site, with no sign-in form and no cookie", async () => {
    for (const path of ["/admin", "/admin/sign-in", "/admin/assets/console.js"]) {
      const res = await stack.get(gatewayPort, path);
      assert.doesNotMatch(res.text, /HTTVPS console|name="_csrf"|Admin token|Progressive enhancement/, path);
      assert.equal(res.headers["set-cookie"], undefined, path);
    }
  });

  test("create a device, connect with the key from the page, watch it online, revoke it and the session ends", async () => {
    const { page } = browser;
    const base = stack.backend.url;
    await page.goto(`${base}/admin`);
    assert.match(page.url(), /\/admin\/sign-in$/, "signed out: the console sends us to sign in");
    await signIn(page, base, { token: ADMIN_TOKEN });
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Overview");

    await page.getByRole("link", { name: "Devices" }).click();
    await page.getByLabel("Name", { exact: true }).fill("browser phone");
    await page.getByRole("button", { name: "Create device" }).click();
    const key = (await page.locator("#access-key").textContent())!;
    assert.match(key, /^httvps:\/\//);
    assert.equal(await readQr(page, page.locator('[data-qr="access-key"] svg')), key, "the QR code is the access key");
    const ssUrl = (await page.locator("#link-ss-url").textContent())!;
    assert.match(ssUrl, /^ss:\/\//);
    assert.equal(await readQr(page, page.locator('[data-qr="ss-url"] svg')), ssUrl, "the ss:// link's QR code");

    await page.getByRole("link", { name: "Open the device's page" }).click();
    const devicePage = page.url();
    assert.equal((await page.locator("#device-online").textContent())?.trim(), "no");

    const client = await stack.client(key);
    clients.push(client);
    const first = await curl(["-x", `http://127.0.0.1:${client.http}`, `http://127.0.0.1:${target.port}/bytes/100000`]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.size, 100_000);

    // Online, with the first bytes counted: the page's script redraws its live part, no reload.
    const traffic = page.locator("#device-traffic");
    const bytesShown = async () => Number(await traffic.getAttribute("data-bytes"));
    await page.waitForFunction(() => document.querySelector("#device-online")?.textContent?.startsWith("yes"), null, {
      timeout: 30_000,
    });
    await page.waitForFunction(
      () => Number(document.querySelector("#device-traffic")?.getAttribute("data-bytes")) >= 100_000,
      null,
      {
        timeout: 30_000,
      },
    );
    const before = await bytesShown();
    assert.equal(page.url(), devicePage, "the page was not reloaded");

    const second = await curl(["-x", `http://127.0.0.1:${client.http}`, `http://127.0.0.1:${target.port}/bytes/1500000`]);
    assert.equal(second.code, 0, second.stderr);
    await page.waitForFunction(
      (b) => Number(document.querySelector("#device-traffic")?.getAttribute("data-bytes")) >= b + 1_500_000,
      before,
      { timeout: 30_000 },
    );
    assert.ok(await page.locator("svg.chart rect.down").count() > 0, "the traffic chart is drawn");
    assert.equal(await page.locator("td[data-label=State] .online").count(), 1, "one live session on the page");

    await page.getByRole("button", { name: "Revoke" }).click();
    await page.waitForURL(devicePage);
    assert.equal((await page.locator("#device-status").textContent())?.trim(), "revoked");
    // The live session ends: the client is refused and exits, and the gateway reports it closed.
    await until(() => client.child.exitCode !== null, "the client exits after the revocation", 20_000);
    assert.equal(client.child.exitCode, 1);
    const deadline = Date.now() + 20_000;
    for (;;) {
      await page.reload();
      if ((await page.locator("td[data-label=State] .online").count()) === 0) break;
      assert.ok(Date.now() < deadline, "the session still shows online 20 s after the revocation");
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.match((await page.locator("td[data-label=State]").first().textContent())!, /closed/);
  });
});
