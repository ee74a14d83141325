import type { Database } from "./database.ts";

/** DATABASE_URL set → PostgreSQL; unset → PGlite in DATA_DIR/pglite. */
export async function openDatabase(opts: { databaseUrl?: string; dataDir: string }): Promise<Database> {
  if (opts.databaseUrl) {
    const { openPostgres } = await import("./postgres.ts");
    return openPostgres(opts.databaseUrl);
  }
  const { openPglite } = await import("./pglite.ts");
  return openPglite(`${opts.dataDir.replace(/\/$/, "")}/pglite`);
}
