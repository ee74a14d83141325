// The entry of the single-file binary (`npm run build` → dist/httvps, `bun build --compile`).
// Bun-only, and only there: Node, Deno and plain Bun start at cli/main.ts and never load this.
// Inside the binary there is no node_modules and no repository, so before cli/main.ts runs we
// hand PGlite its WebAssembly and file-system bundle, the migrator its SQL, and the gateway a
// website, all carried inside the executable.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { useEmbeddedMigrations } from "../backend/db/migrate.ts";
import { usePgliteAssets } from "../backend/db/pglite.ts";
import { loadEnv } from "../config/dotenv.ts";
// `type: "file"` embeds each file in the executable and yields its path inside it (/$bunfs/…).
import pgliteWasm from "../node_modules/@electric-sql/pglite/dist/pglite.wasm" with { type: "file" };
import initdbWasm from "../node_modules/@electric-sql/pglite/dist/initdb.wasm" with { type: "file" };
import pgliteData from "../node_modules/@electric-sql/pglite/dist/pglite.data" with { type: "file" };
// Macros run while bundling; their results are inlined as literals.
import { embeddedDecoySite, embeddedMigrations } from "./embed.ts" with { type: "macro" };

const DEFAULT_DECOY_DIR = "deploy/decoy";

useEmbeddedMigrations(embeddedMigrations());

usePgliteAssets(async () => {
  const [pglite, initdb, data] = await Promise.all([readFile(pgliteWasm), readFile(initdbWasm), readFile(pgliteData)]);
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all([WebAssembly.compile(pglite), WebAssembly.compile(initdb)]);
  return { pgliteWasmModule, initdbWasmModule, fsBundle: new Blob([data]) };
});

/**
 * The decoy site for `gateway` and `dev` when GATEWAY_DECOY_DIR is left at its default and no
 * deploy/decoy exists here: the embedded copy, written once to a content-addressed folder in the
 * temp directory (concurrent starts agree on it), since the decoy handler serves from disk.
 * An operator's own GATEWAY_DECOY_DIR is always used as given.
 */
function provideDecoySite(): void {
  const command = process.argv.slice(2).find((a) => !a.startsWith("-"));
  if (command !== "gateway" && command !== "dev") return;
  const configured = loadEnv().GATEWAY_DECOY_DIR?.trim() || DEFAULT_DECOY_DIR;
  if (configured.replace(/^\.\//, "").replace(/\/$/, "") !== DEFAULT_DECOY_DIR || existsSync(configured)) return;
  const files = embeddedDecoySite();
  const hash = createHash("sha256");
  for (const f of files) hash.update(f.path).update("\0").update(f.base64).update("\0");
  const dir = join(tmpdir(), `httvps-decoy-${hash.digest("hex").slice(0, 16)}`);
  if (!existsSync(dir)) {
    const staging = mkdtempSync(`${dir}.tmp-`);
    for (const f of files) {
      const path = join(staging, ...f.path.split("/"));
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, Buffer.from(f.base64, "base64"));
    }
    try {
      renameSync(staging, dir);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process got there first
    }
  }
  process.env.GATEWAY_DECOY_DIR = dir;
}

provideDecoySite();

// Dynamic, so that everything above has run before cli/main.ts and its imports evaluate.
await import("./main.ts");
