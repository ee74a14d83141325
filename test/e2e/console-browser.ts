// Debian's chromium driven by playwright-core for the console's browser tests: one browser
// per test file with a fresh profile, and what every such test does with a page: sign in,
// run axe-core, check the width, take the docs' screenshots, decode a QR code from pixels.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import axe from "axe-core";
import jsQR from "jsqr";
import { type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import { repoRoot } from "../cli.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export interface ConsoleBrowser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

export async function openBrowser(): Promise<ConsoleBrowser> {
  const profile = await mkdtemp(join(tmpdir(), "httvps-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: DESKTOP,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? (await context.newPage());
  // The console asks before revoking (window.confirm): the tests say yes.
  page.on("dialog", (d) => void d.accept());
  return {
    context,
    page,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Sign in on the console's form (ADMIN_TOKEN, or a name and password). */
export async function signIn(page: Page, base: string, who: { token: string } | { name: string; password: string }) {
  await page.goto(`${base}/admin/sign-in`);
  if ("token" in who) await page.getByLabel("Admin token").fill(who.token);
  else {
    await page.getByLabel("Account name").fill(who.name);
    await page.getByLabel("Password", { exact: true }).fill(who.password);
  }
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => !u.pathname.endsWith("/sign-in"));
}

/**
 * axe-core's serious and critical violations on the page, as "rule: target" lines. axe is
 * evaluated through the debugging protocol, which the page's CSP does not govern.
 */
export async function axeProblems(page: Page): Promise<string[]> {
  await page.evaluate(axe.source);
  const violations = await page.evaluate(async () => {
    // deno-lint-ignore no-explicit-any -- axe as the page's global
    const r = await (globalThis as any).axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v: { id: string; impact: string; nodes: { target: string[] }[] }) => ({
      id: v.id,
      impact: v.impact,
      targets: v.nodes.map((n) => n.target.join(" ")).slice(0, 3),
    }));
  });
  return violations
    .filter((v: { impact: string }) => v.impact === "serious" || v.impact === "critical")
    .map((v: { id: string; targets: string[] }) => `${v.id}: ${v.targets.join(", ")}`);
}

/**
 * The page at desktop and phone widths: axe finds nothing serious, nothing scrolls sideways on
 * the phone, and (with `write`) a screenshot of each goes to docs/console/<name>-desktop|phone.png.
 */
export async function checkPage(page: Page, name: string, write = true): Promise<void> {
  const dir = join(repoRoot, "docs", "console");
  await mkdir(dir, { recursive: true });
  for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]] as const) {
    await page.setViewportSize(viewport);
    assert.deepEqual(await axeProblems(page), [], `axe on ${name} at ${size} width`);
    const overflow = await page.evaluate(() => {
      const width = document.documentElement.clientWidth;
      const wide = [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > width + 1);
      return { by: document.documentElement.scrollWidth - width, wide: wide.slice(-3).map((e) => e.outerHTML.slice(0, 120)) };
    });
    assert.ok(overflow.by <= 0, `${name} scrolls sideways by ${overflow.by}px at ${size} width: ${overflow.wide.join("\n")}`);
    if (write) await page.screenshot({ path: join(dir, `${name}-${size}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}

/** The text of a QR code on the page: the element's screenshot, decoded by jsQR. */
export async function readQr(page: Page, qr: Locator): Promise<string | undefined> {
  const png = await qr.screenshot();
  // The PNG's pixels, by the browser's own decoder in a blank page (no CSP there).
  const scratch = await page.context().newPage();
  try {
    const { w, h, data } = await scratch.evaluate(async (b64: string) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const g = canvas.getContext("2d")!;
      g.drawImage(img, 0, 0);
      return { w: canvas.width, h: canvas.height, data: Array.from(g.getImageData(0, 0, canvas.width, canvas.height).data) };
    }, png.toString("base64"));
    return jsQR(Uint8ClampedArray.from(data), w, h)?.data;
  } finally {
    await scratch.close();
  }
}
