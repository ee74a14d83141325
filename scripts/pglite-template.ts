// Makes backend/db/pglite-template-<version>.tar.br: a freshly initialised PGlite cluster
// (initdb run once here instead of on every new data directory), checkpointed, as PGlite's
// own tar, brotli'd (the three near-identical databases share one window: 40 MB → ~1.3 MB).
// Run it after upgrading @electric-sql/pglite:  node --import tsx scripts/pglite-template.ts
import { PGlite } from "@electric-sql/pglite";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants } from "node:zlib";
import { TEMPLATE_FILE, TEMPLATE_PGLITE_VERSION } from "../backend/db/pglite-template.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const installed = JSON.parse(readFileSync(join(root, "node_modules/@electric-sql/pglite/package.json"), "utf8")).version;
if (installed !== TEMPLATE_PGLITE_VERSION) {
  console.error(
    `PGlite ${installed} is installed: set TEMPLATE_PGLITE_VERSION in backend/db/pglite-template.ts to "${installed}", remove the old template and run this again`,
  );
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), "httvps-pglite-template-"));
try {
  const pg = await PGlite.create(dir);
  await pg.exec("checkpoint");
  const tar = new Uint8Array(await (await pg.dumpDataDir("none")).arrayBuffer());
  await pg.close();
  const packed = brotliCompressSync(tar, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: tar.length,
    },
  });
  const out = join(root, "backend/db", TEMPLATE_FILE);
  writeFileSync(out, packed);
  console.log(`wrote ${out}: ${tar.length} bytes of tar, ${packed.length} packed`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
