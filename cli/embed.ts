// Bundle-time readers for the compiled binary: cli/compiled.ts imports these with
// `{ type: "macro" }`, so Bun runs them while bundling and inlines what they return. The binary
// then carries the SQL migrations and the decoy site's generator inputs with no repository around it.
// Runs only under `bun build`; nothing imports this at run time.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** sql/NNNN_name.sql, as { name, text }. */
export function embeddedMigrations(): { name: string; text: string }[] {
  const dir = join(root, "sql");
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((name) => ({ name, text: readFileSync(join(dir, name), "utf8") }));
}

/** Every file under deploy/decoy (the decoy generator's templates and word lists), as { path relative to it, base64 content }. */
export function embeddedDecoyInputs(): { path: string; base64: string }[] {
  const dir = join(root, "deploy", "decoy");
  const out: { path: string; base64: string }[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: relative(dir, p).split("\\").join("/"), base64: readFileSync(p).toString("base64") });
    }
  };
  walk(dir);
  return out;
}
