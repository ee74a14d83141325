// The entry of the single-file binary (`npm run build` → dist/httvps, `bun build --compile`).
// Bun-only, and only there: Node, Deno and plain Bun start at cli/main.ts and never load this.
// Inside the binary there is no node_modules and no repository, so before cli/main.ts runs we
// hand PGlite its WebAssembly and file-system bundle, the migrator its SQL, and the gateway its
// decoy site's templates and word lists, all carried inside the executable.
import { readFile } from "node:fs/promises";
import { useEmbeddedMigrations } from "../backend/db/migrate.ts";
import { usePgliteAssets } from "../backend/db/pglite.ts";
import { useEmbeddedDecoyInputs } from "../gateway/decoy-site.ts";
// `type: "file"` embeds each file in the executable and yields its path inside it (/$bunfs/…).
import pgliteWasm from "../node_modules/@electric-sql/pglite/dist/pglite.wasm" with { type: "file" };
import initdbWasm from "../node_modules/@electric-sql/pglite/dist/initdb.wasm" with { type: "file" };
import pgliteData from "../node_modules/@electric-sql/pglite/dist/pglite.data" with { type: "file" };
// A new data directory starts from this cluster instead of initdb (backend/db/pglite-template.ts).
import pgliteTemplate from "../backend/db/pglite-template-0.5.16.tar.br" with { type: "file" };
// Macros run while bundling; their results are inlined as literals.
import { embeddedDecoyInputs, embeddedMigrations } from "./embed.ts" with { type: "macro" };

useEmbeddedMigrations(embeddedMigrations());

usePgliteAssets(async () => {
  const [pglite, initdb, data] = await Promise.all([readFile(pgliteWasm), readFile(initdbWasm), readFile(pgliteData)]);
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all([WebAssembly.compile(pglite), WebAssembly.compile(initdb)]);
  return { pgliteWasmModule, initdbWasmModule, fsBundle: new Blob([data]), template: () => readFile(pgliteTemplate) };
});

// The decoy site's generator inputs (templates and word lists): the gateway generates its
// site from them and the install's seed (gateway/decoy-site.ts).
useEmbeddedDecoyInputs(embeddedDecoyInputs());

// Dynamic, so that everything above has run before cli/main.ts and its imports evaluate.
await import("./main.ts");
