// The postinstall patch of postgres.js: applied once to the version it was written for, and a
// failed install, never a silent skip, for any other version or code it does not recognise.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EDITS, MARK, PatchError, patchPostgres, POSTGRES_VERSION } from "./patch-deps.mjs";

const BUILDS = ["src", "cjs/src", "cf/src"];
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A node_modules/postgres with `version` whose three connection.js hold `text`. */
function fakeInstall(version: string, text: string): string {
  const root = mkdtempSync(join(tmpdir(), "httvps-patch-"));
  dirs.push(root);
  const pkg = join(root, "node_modules", "postgres");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "postgres", version }));
  for (const b of BUILDS) {
    mkdirSync(join(pkg, b), { recursive: true });
    writeFileSync(join(pkg, b, "connection.js"), text);
  }
  return root;
}

const original = EDITS.map(([from]) => `// …\n${from}// …\n`).join("");
const isPatchError = (pattern: RegExp) => (e: unknown) =>
  e instanceof PatchError && e.code === "patch_does_not_apply" && pattern.test(e.message);

test("the pinned version is patched in all three builds, once", () => {
  const root = fakeInstall(POSTGRES_VERSION, original);
  assert.equal(patchPostgres(root).length, 3);
  for (const b of BUILDS) {
    const text = readFileSync(join(root, "node_modules", "postgres", b, "connection.js"), "utf8");
    assert.equal(text.split(MARK).length - 1, 3, b);
    for (const [, to] of EDITS) assert.ok(text.includes(to), b);
  }
  assert.deepEqual(patchPostgres(root), [], "a second run changes nothing");
});

test("another version, changed code or a missing package fail loudly", () => {
  assert.throws(() => patchPostgres(fakeInstall("3.4.10", original)), isPatchError(/3\.4\.10 is installed; the patch is for/));
  const changed = original.replace(EDITS[1]![0], "    incomings = null\n");
  assert.throws(() => patchPostgres(fakeInstall(POSTGRES_VERSION, changed)), isPatchError(/1 of 3 places/));
  const empty = mkdtempSync(join(tmpdir(), "httvps-patch-"));
  dirs.push(empty);
  assert.throws(() => patchPostgres(empty), isPatchError(/is not installed/));
});

test("package.json pins postgres to exactly the version the patch is for", () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(pkg.dependencies.postgres, POSTGRES_VERSION);
  const lock = JSON.parse(readFileSync(new URL("../package-lock.json", import.meta.url), "utf8"));
  assert.equal(lock.packages[""].dependencies.postgres, POSTGRES_VERSION);
  assert.equal(lock.packages["node_modules/postgres"].version, POSTGRES_VERSION);
});
