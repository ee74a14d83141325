// The embedded default: PGlite, real PostgreSQL in WASM, in a data directory.
// One PGlite instance is one connection, so a data directory belongs to one process.
import { PGlite, type PGliteOptions } from "@electric-sql/pglite";
import { mkdirSync } from "node:fs";
import { type Database, INT8_OID, type Query, type Queryable } from "./database.ts";

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

/** What PGlite otherwise loads from files beside its own module. */
export type PgliteAssets = Pick<PGliteOptions, "pgliteWasmModule" | "initdbWasmModule" | "fsBundle">;

// Inside a `bun build --compile` binary PGlite's files beside its module do not exist, so the
// binary's entry (cli/compiled.ts) registers a loader for the copies embedded in it. On Node,
// Deno and plain Bun nothing registers one and PGlite finds its files in node_modules.
let assetLoader: (() => Promise<PgliteAssets>) | undefined;
let assets: Promise<PgliteAssets> | undefined;

export function usePgliteAssets(load: () => Promise<PgliteAssets>): void {
  assetLoader = load;
  assets = undefined;
}

/** `dataDir` undefined → in memory (tests). */
export async function openPglite(dataDir?: string): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  // Compiled once per process: a WebAssembly.Module can be instantiated again and again.
  if (assetLoader) assets ??= assetLoader();
  const pg = await PGlite.create(dataDir, {
    ...(assets ? await assets : {}),
    parsers: { [INT8_OID]: (v: string) => Number(v) },
  });
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
