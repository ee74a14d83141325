// The embedded default's new clusters: seeded from the committed template, with the memory
// settings applied, refusing a tar that would write outside the data directory.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync } from "node:zlib";
import { openPglite } from "./pglite.ts";
import { isEmptyDir, PgliteTemplateError, readTemplate, TEMPLATE_PGLITE_VERSION, untar } from "./pglite-template.ts";

const scratch = mkdtempSync(join(tmpdir(), "httvps-pglite-template-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

test("the committed template is the installed PGlite's (else: node --import tsx scripts/pglite-template.ts)", () => {
  const pkg = fileURLToPath(new URL("../../node_modules/@electric-sql/pglite/package.json", import.meta.url));
  assert.equal(JSON.parse(readFileSync(pkg, "utf8")).version, TEMPLATE_PGLITE_VERSION);
});

test("a new data directory is the template unpacked: it opens with the memory settings, keeps its rows, opens again", async () => {
  const dir = join(scratch, "new");
  assert.ok(isEmptyDir(dir));
  let db = await openPglite(dir);
  try {
    assert.ok(existsSync(join(dir, "PG_VERSION")));
    const [settings] = await db.query<{ shared_buffers: string; max_connections: string }>({
      text: "select current_setting('shared_buffers') as shared_buffers, current_setting('max_connections') as max_connections",
      params: [],
    });
    assert.deepEqual(settings, { shared_buffers: "8MB", max_connections: "2" });
    await db.exec("create table kept (v text); insert into kept values ('still here')");
  } finally {
    await db.close();
  }
  db = await openPglite(dir);
  try {
    assert.deepEqual(await db.query({ text: "select v from kept", params: [] }), [{ v: "still here" }]);
  } finally {
    await db.close();
  }
});

test("an in-memory database starts from the template too", async () => {
  const db = await openPglite();
  try {
    assert.deepEqual(await db.query({ text: "select current_setting('shared_buffers') as s", params: [] }), [{ s: "8MB" }]);
  } finally {
    await db.close();
  }
});

/** One ustar header block for `name`, followed by `body` padded to whole blocks. */
function tarEntry(name: string, body: string, type = "0"): Uint8Array {
  const data = new TextEncoder().encode(body);
  const out = new Uint8Array(512 + Math.ceil(data.length / 512) * 512);
  out.set(new TextEncoder().encode(name), 0);
  out.set(new TextEncoder().encode(data.length.toString(8).padStart(11, "0")), 124);
  out[156] = type.charCodeAt(0);
  out.set(data, 512);
  return out;
}

test("untar writes files and directories, and refuses a path out of the directory or an entry it does not know", () => {
  const dir = join(scratch, "untar");
  const ok = [tarEntry("/base", "", "5"), tarEntry("/base/1", "eight"), new Uint8Array(1024)];
  assert.equal(untar(Buffer.concat(ok), dir), 1);
  assert.equal(readFileSync(join(dir, "base/1"), "utf8"), "eight");
  for (const bad of [tarEntry("/../escaped", "x"), tarEntry("/link", "", "2"), tarEntry("/short", "x").subarray(0, 512)]) {
    assert.throws(
      () => untar(bad, dir),
      (e: unknown) => e instanceof PgliteTemplateError && e.code === "pglite_template_invalid",
    );
  }
  assert.ok(!existsSync(join(scratch, "escaped")));
});

test("a template that cannot be read is no template: the caller runs initdb", async () => {
  assert.equal(await readTemplate(() => Promise.resolve(new Uint8Array([1, 2, 3]))), undefined);
  assert.equal(await readTemplate(() => Promise.reject(new Error("no such file"))), undefined);
});

test("a template PostgreSQL refuses (another release's cluster) is cleared away and initdb runs as before", async () => {
  const dir = join(scratch, "fallback");
  const foreign = Buffer.concat([tarEntry("/PG_VERSION", "99\n"), new Uint8Array(1024)]);
  const db = await openPglite(dir, { template: () => Promise.resolve(brotliCompressSync(foreign)) });
  try {
    assert.deepEqual(await db.query({ text: "select 1 as one", params: [] }), [{ one: 1 }]);
    assert.notEqual(readFileSync(join(dir, "PG_VERSION"), "utf8").trim(), "99");
  } finally {
    await db.close();
  }
});
