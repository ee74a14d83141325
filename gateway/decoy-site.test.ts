// The generated decoy is not a fingerprint: two installs share no sentence a searcher could
// quote and no ETag; one install keeps its site byte for byte across restarts; every install's
// site is whole (its links and stylesheet resolve, nothing is left unfilled).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../config/config.ts";
import { decoyFor, decoyHandler } from "./decoy.ts";
import { DecoyInputError, generateDecoySite, readDecoyInputs, type SiteFile } from "./decoy-site.ts";

const inputs = readDecoyInputs();
const since = new Date("2026-03-10T09:00:00Z");
const site = (seed: string) => generateDecoySite(new TextEncoder().encode(seed), inputs, since);
const text = (f: SiteFile) => new TextDecoder().decode(f.body);

/**
 * What a searcher could quote: every sentence (or clause) of five words or more in the visible
 * text, the title and the description. Shorter strings ("Contact", "Page not found", "Based in
 * Devon.") are what any site says.
 */
function quotable(files: SiteFile[]): Set<string> {
  const out = new Set<string>();
  for (const f of files.filter((f) => f.path.endsWith(".html"))) {
    const html = text(f);
    const pieces = [...html.replace(/<[^>]+>/g, "\n").split("\n"), ...[...html.matchAll(/content="([^"]+)"/g)].map((m) => m[1]!)];
    for (const piece of pieces) {
      for (const s of piece.split(/(?<=[.!?;:])\s+/)) if (s.trim().split(/\s+/).length >= 5) out.add(s.trim());
    }
  }
  return out;
}

/** nginx's ETags of a site as the handler serves them. */
async function etags(files: SiteFile[]): Promise<string[]> {
  const h = decoyHandler(files);
  return await Promise.all(files.map(async (f) => (await h(new Request(`http://x/${f.path}`))).headers.get("etag")!));
}

describe("decoy site generator", () => {
  test("two installs share no quotable sentence, no ETag, no favicon, no name", async () => {
    const [a, b] = [site("install-a"), site("install-b")];
    const shared = [...quotable(a)].filter((s) => quotable(b).has(s));
    assert.deepEqual(shared, []);
    assert.ok(quotable(a).size >= 20, `a real amount of text: ${quotable(a).size} sentences`);
    const [ea, eb] = [await etags(a), await etags(b)];
    assert.deepEqual(ea.filter((e) => eb.includes(e)), []);
    const icon = (s: SiteFile[]) => Buffer.from(s.find((f) => f.path === "favicon.ico")!.body).toString("hex");
    assert.notEqual(icon(a), icon(b));
    const title = (s: SiteFile[]) => /<title>([^<]+)<\/title>/.exec(text(s.find((f) => f.path === "index.html")!))![1];
    assert.notEqual(title(a), title(b));
  });

  test("across 40 installs no quotable sentence is on more than 3, and every site is whole", () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const files = site(`install-${i}`);
      for (const s of quotable(files)) seen.set(s, (seen.get(s) ?? 0) + 1);
      const paths = new Set(files.map((f) => "/" + f.path));
      for (const f of files.filter((f) => f.path.endsWith(".html") || f.path.endsWith(".css"))) {
        const body = text(f);
        assert.doesNotMatch(body, /\{\{|\{[a-z0-9_]+\}|\bundefined\b|\bNaN\b/, `${i} ${f.path}: something left unfilled`);
        for (const [, href] of body.matchAll(/(?:href|src)="(\/[^"]*)"/g)) {
          assert.ok(href === "/" || paths.has(href!), `${i} ${f.path} links to ${href}, which the site does not have`);
        }
      }
      assert.ok(paths.has("/index.html") && paths.has("/404.html") && paths.has("/favicon.ico") && paths.has("/robots.txt"));
    }
    const most = [...seen.entries()].sort((x, y) => y[1] - x[1])[0]!;
    assert.ok(most[1] <= 3, `"${most[0]}" is on ${most[1]} of 40 sites`);
  });

  test("the same seed gives the same site, byte for byte, dates and ETags included", async () => {
    const [a, b] = [site("install-a"), site("install-a")];
    assert.deepEqual(
      a.map((f) => [f.path, Buffer.from(f.body).toString("hex"), f.mtime.getTime()]),
      b.map((f) => [f.path, Buffer.from(f.body).toString("hex"), f.mtime.getTime()]),
    );
    assert.deepEqual(await etags(a), await etags(b));
    for (const f of a) {
      assert.ok(
        f.mtime < since && since.getTime() - f.mtime.getTime() < 200 * 86_400_000,
        `${f.path}: edited before the install`,
      );
    }
  });

  test("broken inputs are a typed error naming what is wrong", () => {
    const without = (name: string) => new Map([...inputs].filter(([k]) => k !== name));
    assert.throws(
      () => generateDecoySite(new Uint8Array(1), without("words.json"), since),
      (e: unknown) => e instanceof DecoyInputError && e.code === "bad_decoy_inputs" && /words\.json/.test(e.message),
    );
    assert.throws(
      () => generateDecoySite(new Uint8Array(1), without("layout.html"), since),
      (e: unknown) => e instanceof DecoyInputError && /layout\.html/.test(e.message),
    );
    const noTrades = new Map(inputs).set("words.json", JSON.stringify({ ...JSON.parse(inputs.get("words.json")!), trades: [] }));
    assert.throws(
      () => generateDecoySite(new Uint8Array(1), noTrades, since),
      (e: unknown) => e instanceof DecoyInputError && /trades/.test(e.message),
    );
  });
});

describe("decoyFor: which site the public port serves", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "httvps-decoy-seed-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const home = async (env: Record<string, string>) => await (await decoyFor(loadConfig(env))(new Request("http://x/"))).text();

  test("without a site of the operator's: one generated from DATA_DIR/decoy-seed (0600, made once, kept)", async () => {
    const data = join(dir, "data");
    const first = await home({ DATA_DIR: data });
    const seed = await stat(join(data, "decoy-seed"));
    assert.equal(seed.mode & 0o777, 0o600);
    assert.equal(await home({ DATA_DIR: data }), first, "a restart serves the same site");
    assert.equal((await stat(join(data, "decoy-seed"))).mtimeMs, seed.mtimeMs, "the seed is not rewritten");
    assert.notEqual(await home({ DATA_DIR: join(dir, "other") }), first, "another install, another site");
  });

  test("GATEWAY_DECOY_DIR: the operator's own files, as they are", async () => {
    const own = join(dir, "own");
    await mkdir(own);
    await writeFile(join(own, "index.html"), "<p>my own site</p>");
    assert.equal(await home({ DATA_DIR: join(dir, "data"), GATEWAY_DECOY_DIR: own }), "<p>my own site</p>");
  });
});
