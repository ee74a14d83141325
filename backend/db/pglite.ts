// The embedded default: PGlite, real PostgreSQL in WASM, in a data directory.
// One PGlite instance is one connection, so a data directory belongs to one process.
import { PGlite, type PGliteOptions } from "@electric-sql/pglite";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Database, INT8_OID, type Query, type Queryable } from "./database.ts";
import { isEmptyDir, readTemplate, untar } from "./pglite-template.ts";

/**
 * PostgreSQL's memory settings for one embedded connection, passed at every start (so an
 * existing data directory gets them too). The defaults are a server's: 128 MB of shared
 * buffers, touched in the WebAssembly memory at start, were most of the backend's RSS
 * (docs/06 "The embedded default's footprint"). The data of a small deployment (devices,
 * sessions, a few weeks of hourly usage) fits in these; the kernel's page cache is behind them.
 */
export const PGLITE_SETTINGS = [
  "shared_buffers=8MB",
  "wal_buffers=256kB",
  "temp_buffers=1MB",
  "work_mem=2MB",
  "maintenance_work_mem=8MB",
  "max_connections=2",
];
const startParams = [...PGlite.defaultStartParams, ...PGLITE_SETTINGS.flatMap((s) => ["-c", s])];

interface PgliteLike {
  query<T>(text: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(text: string): Promise<unknown>;
}

function queryable(pg: PgliteLike): Queryable {
  return {
    async query<T>(q: Query): Promise<T[]> {
      return (await pg.query<T>(q.text, q.params as unknown[])).rows;
    },
    async exec(script: string): Promise<void> {
      await pg.exec(script);
    },
  };
}

/** What PGlite otherwise loads from files beside its own module, and our template (pglite-template.ts). */
export type PgliteAssets = Pick<PGliteOptions, "pgliteWasmModule" | "initdbWasmModule" | "fsBundle"> & {
  template?: () => Promise<Uint8Array>;
};

// Inside a `bun build --compile` binary PGlite's files beside its module do not exist, so the
// binary's entry (cli/compiled.ts) registers a loader for the copies embedded in it. On Node,
// Deno and plain Bun nothing registers one and PGlite finds its files in node_modules.
let assetLoader: (() => Promise<PgliteAssets>) | undefined;
let assets: Promise<PgliteAssets> | undefined;

export function usePgliteAssets(load: () => Promise<PgliteAssets>): void {
  assetLoader = load;
  assets = undefined;
}

/**
 * A new cluster from the template: unpacked into `dataDir`, or loaded into memory by PGlite.
 * A function of its own so that no frame holds the 40 MB tar once this returns.
 */
async function seed(dataDir: string | undefined, options: PGliteOptions, load?: () => Promise<Uint8Array>): Promise<boolean> {
  const tar = await readTemplate(load);
  if (!tar) return false;
  if (!dataDir) {
    options.loadDataDir = new Blob([tar as Uint8Array<ArrayBuffer>]);
    return true;
  }
  try {
    untar(tar, dataDir);
    return true;
  } catch {
    emptyDir(dataDir); // a damaged template: initdb, as without one
    return false;
  }
}

function emptyDir(dir: string): void {
  for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true });
}

/**
 * `dataDir` undefined → in memory (tests). A new (empty) data directory, or an in-memory
 * database, starts from the committed template instead of initdb; should that cluster not
 * start (a template from another PGlite), the directory is emptied and initdb runs as before.
 */
export async function openPglite(
  dataDir?: string,
  opts: { /** Another template than the committed one (tests). */ template?: () => Promise<Uint8Array> } = {},
): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  // Compiled once per process: a WebAssembly.Module can be instantiated again and again.
  if (assetLoader) assets ??= assetLoader();
  const { template: loadTemplate, ...wasm } = assets ? await assets : {};
  const options: PGliteOptions = { ...wasm, startParams, parsers: { [INT8_OID]: (v: string) => Number(v) } };
  const seeded = (!dataDir || isEmptyDir(dataDir)) && (await seed(dataDir, options, opts.template ?? loadTemplate));
  let pg: PGlite;
  try {
    pg = await PGlite.create(dataDir, options);
  } catch (e) {
    if (!seeded) throw e;
    delete options.loadDataDir;
    if (dataDir) emptyDir(dataDir);
    pg = await PGlite.create(dataDir, options);
  }
  const db: Database = {
    kind: "pglite",
    ...queryable(pg),
    transaction: (fn) => pg.transaction((tx) => fn(queryable(tx))),
    async withAdvisoryLock(key, fn) {
      // Single connection: the lock is still taken so the SQL path is the same as on PostgreSQL.
      await pg.query("select pg_advisory_lock($1)", [key]);
      try {
        return await fn(db);
      } finally {
        await pg.query("select pg_advisory_unlock($1)", [key]).catch(() => {});
      }
    },
    close: () => pg.close(),
  };
  return db;
}
