import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decoyHandler } from "./decoy.ts";
import { testDecoy, testDecoyFiles, testDecoyText } from "./decoy-site.testing.ts";

const get = (h: (r: Request) => Promise<Response>, path: string, init?: RequestInit) =>
  h(new Request("http://example.test" + path, init));

describe("decoy site (generated for an install)", () => {
  const h = testDecoy();
  const pages = testDecoyFiles.filter((f) => f.path.endsWith(".html") && f.path !== "404.html").map((f) => "/" + f.path);
  const css = "/" + testDecoyFiles.find((f) => f.path.endsWith(".css"))!.path;
  const about = pages.find((p) => p !== "/index.html")!;

  test("serves the pages a small business site has, with a typical static server's headers", async () => {
    assert.equal(pages.length, 3, pages.join());
    for (
      const [path, type] of [
        ["/", "text/html"],
        ...pages.map((p) => [p, "text/html"]),
        [css, "text/css"],
        ["/favicon.ico", "image/x-icon"],
        ["/robots.txt", "text/plain"],
      ] as const
    ) {
      const r = await get(h, path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get("content-type"), type, path);
      const body = new Uint8Array(await r.arrayBuffer());
      assert.equal(r.headers.get("content-length"), String(body.length), path);
      assert.ok(body.length > 0);
      assert.match(r.headers.get("etag") ?? "", /^"[0-9a-f]+-[0-9a-f]+"$/);
      assert.ok(!Number.isNaN(Date.parse(r.headers.get("last-modified") ?? "")));
      assert.ok(!Number.isNaN(Date.parse(r.headers.get("date") ?? "")));
      assert.match(r.headers.get("cache-control") ?? "", /max-age=\d+/);
      assert.equal(r.headers.get("server"), "nginx");
    }
  });

  test("the site never mentions what it is covering for", async () => {
    for (const path of [...pages, "/missing", css, "/robots.txt"]) {
      const text = (await (await get(h, path)).text()).toLowerCase();
      assert.doesNotMatch(text, /vpn|tunnel|proxy|httvps|websocket|shadowsocks|outline/, path);
    }
  });

  test("favicon.ico is a real ICO image", async () => {
    const b = new Uint8Array(await (await get(h, "/favicon.ico")).arrayBuffer());
    assert.deepEqual([...b.subarray(0, 6)], [0, 0, 1, 0, 1, 0]); // reserved, type=icon, one image
    const size = b[14]! | (b[15]! << 8) | (b[16]! << 16);
    const offset = b[18]! | (b[19]! << 8);
    assert.equal(offset + size, b.length);
  });

  test("index.html and / are the same document", async () => {
    assert.equal(await (await get(h, "/")).text(), await (await get(h, "/index.html")).text());
  });

  test("unknown paths get the site's own 404 page", async () => {
    const r = await get(h, "/wp-login.php");
    assert.equal(r.status, 404);
    assert.equal(r.headers.get("content-type"), "text/html");
    assert.equal(await r.text(), testDecoyText("404.html"));
  });

  test("HEAD has GET's headers and no body", async () => {
    const g = await get(h, about);
    const hd = await get(h, about, { method: "HEAD" });
    assert.equal(hd.status, 200);
    assert.equal(hd.headers.get("content-length"), g.headers.get("content-length"));
    assert.equal(hd.headers.get("etag"), g.headers.get("etag"));
    assert.equal(hd.body, null);
    const h404 = await get(h, "/nope", { method: "HEAD" });
    assert.equal(h404.status, 404);
    assert.equal(h404.body, null);
  });

  test("If-None-Match and If-Modified-Since give 304 without a body", async () => {
    const g = await get(h, css);
    const etag = g.headers.get("etag")!;
    const r = await get(h, css, { headers: { "If-None-Match": etag } });
    assert.equal(r.status, 304);
    assert.equal(r.body, null);
    assert.equal(r.headers.get("etag"), etag);
    const list = await get(h, css, { headers: { "If-None-Match": `"0-0", W/${etag}` } });
    assert.equal(list.status, 304);
    const stale = await get(h, css, { headers: { "If-None-Match": '"0-0"' } });
    assert.equal(stale.status, 200);
    const ims = await get(h, css, { headers: { "If-Modified-Since": g.headers.get("last-modified")! } });
    assert.equal(ims.status, 304);
    const old = await get(h, css, { headers: { "If-Modified-Since": "Thu, 01 Jan 1998 00:00:00 GMT" } });
    assert.equal(old.status, 200);
  });

  test("methods other than GET and HEAD get 405 with Allow", async () => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const r = await get(h, "/", { method, body: method === "POST" || method === "PUT" ? "x=1" : undefined });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.get("allow"), "GET, HEAD");
      assert.match(await r.text(), /405 Not Allowed/);
    }
  });

  test("a folder without an index is a 404 with or without its slash; the root is the index", async () => {
    const folder = css.slice(0, css.lastIndexOf("/"));
    if (folder) {
      assert.equal((await get(h, folder)).status, 404, folder);
      assert.equal((await get(h, folder + "/")).status, 404);
    }
    assert.equal((await get(h, "/")).status, 200);
  });
});

describe("decoy handler: paths, caching, bounds", () => {
  let dir: string;
  let root: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "httvps-decoy-"));
    root = join(dir, "site");
    await mkdir(join(root, "blog"), { recursive: true });
    await writeFile(join(root, "index.html"), "<p>home</p>");
    await writeFile(join(root, "blog", "index.html"), "<p>blog</p>");
    await writeFile(join(root, "page.html"), "<p>v1</p>");
    await writeFile(join(root, "big.txt"), "B".repeat(5000));
    await writeFile(join(root, ".env"), "SECRET=1");
    await writeFile(join(dir, "secret.txt"), "outside");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("nothing outside the directory, and no dotfiles, whatever the spelling", async () => {
    const h = decoyHandler(root);
    for (
      const path of [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/blog/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/page.html%00",
        "/page.html%00.txt",
        "/%zz",
        "/.env",
        "/%2eenv",
        "/blog/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/secret.txt",
      ]
    ) {
      const r = await get(h, path);
      assert.equal(r.status, 404, path);
      assert.doesNotMatch(await r.text(), /outside|SECRET/, path);
    }
  });

  test("without a 404.html the 404 is nginx's own page", async () => {
    const r = await get(decoyHandler(root), "/missing");
    assert.equal(r.status, 404);
    assert.match(await r.text(), /<center><h1>404 Not Found<\/h1><\/center>/);
  });

  test("a directory redirects to its slash when it has an index", async () => {
    const h = decoyHandler(root);
    const r = await get(h, "/blog");
    assert.equal(r.status, 301);
    assert.equal(r.headers.get("location"), "/blog/");
    assert.equal(await (await get(h, "/blog/")).text(), "<p>blog</p>");
    assert.equal(await (await get(h, "//blog//")).text(), "<p>blog</p>");
  });

  test("files are read once and then served from memory", async () => {
    const h = decoyHandler(root);
    assert.equal(await (await get(h, "/page.html")).text(), "<p>v1</p>");
    await writeFile(join(root, "page.html"), "<p>v2 is longer</p>");
    assert.equal(await (await get(h, "/page.html")).text(), "<p>v1</p>");
    assert.equal(await (await decoyHandler(root)(new Request("http://x/page.html"))).text(), "<p>v2 is longer</p>");
    await writeFile(join(root, "page.html"), "<p>v1</p>");
  });

  test("the cache is size-bounded: files over the bound are re-read each time", async () => {
    const h = decoyHandler(root, { maxFileBytes: 1000 });
    assert.equal((await (await get(h, "/big.txt")).text()).length, 5000);
    await writeFile(join(root, "big.txt"), "C".repeat(6000));
    const again = await get(h, "/big.txt");
    assert.equal(again.headers.get("content-length"), "6000");
    assert.equal((await again.text())[0], "C");
    const tight = decoyHandler(root, { maxCacheBytes: 12 });
    assert.equal(await (await get(tight, "/index.html")).text(), "<p>home</p>"); // 11 bytes: cached
    await writeFile(join(root, "page.html"), "<p>v3</p>");
    assert.equal(await (await get(tight, "/page.html")).text(), "<p>v3</p>"); // would exceed: not cached
    await writeFile(join(root, "page.html"), "<p>v4</p>");
    assert.equal(await (await get(tight, "/page.html")).text(), "<p>v4</p>");
  });

  test("a missing file that appears later is served (misses are not remembered)", async () => {
    const h = decoyHandler(root);
    assert.equal((await get(h, "/late.html")).status, 404);
    await writeFile(join(root, "late.html"), "late");
    assert.equal((await get(h, "/late.html")).status, 200);
  });

  test("a missing directory is just a 404, never an error", async () => {
    const h = decoyHandler(join(dir, "does-not-exist"));
    const r = await get(h, "/");
    assert.equal(r.status, 404);
    assert.equal(r.headers.get("server"), "nginx");
  });
});
