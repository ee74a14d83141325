// The embedded default: PGlite, real PostgreSQL in WASM, in a data directory.
// One PGlite instance is one connection, so a data directory belongs to one process.
import { PGlite } from "@electric-sql/pglite";
import { mkdirSync } from "node:fs";
import { INT8_OID, type Database, type Query, type Queryable } from "./database.ts";

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

/** `dataDir` undefined → in memory (tests). */
export async function openPglite(dataDir?: string): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const pg = await PGlite.create(dataDir, {
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
