// Databases for tests: always an in-memory PGlite, and a real PostgreSQL when
// TEST_DATABASE_URL is set (CI sets it). Each PostgreSQL test database is a fresh
// schema, dropped afterwards, so test files never see each other's rows.
// When TEST_DATABASE_URL is set and the server is down, opening fails: the test fails, it is not skipped.
import postgres from "postgres";
import { randomBytes } from "node:crypto";
import type { Database } from "./database.ts";
import { openPglite } from "./pglite.ts";
import { openPostgres } from "./postgres.ts";
import { migrate } from "./migrate.ts";

export interface TestDatabase {
  name: "pglite" | "postgres";
  open(opts?: { migrated?: boolean }): Promise<Database & { url?: string; schema?: string }>;
}

export const testDatabaseUrl = process.env.TEST_DATABASE_URL || undefined;

export function testDatabases(): TestDatabase[] {
  const list: TestDatabase[] = [
    {
      name: "pglite",
      async open(opts = {}) {
        const db = await openPglite();
        if (opts.migrated !== false) await migrate(db);
        return db;
      },
    },
  ];
  if (testDatabaseUrl) {
    list.push({
      name: "postgres",
      async open(opts = {}) {
        const { db, schema } = await openTestSchema(testDatabaseUrl);
        if (opts.migrated !== false) await migrate(db);
        return Object.assign(db, { url: testDatabaseUrl, schema });
      },
    });
  }
  return list;
}

/** A fresh schema on the test server; closing the returned database drops it. */
export async function openTestSchema(url: string, opts: { max?: number } = {}): Promise<{ db: Database; schema: string }> {
  const schema = "t_" + randomBytes(6).toString("hex");
  const admin = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    await admin.unsafe(`create schema ${schema}`);
  } finally {
    await admin.end({ timeout: 2 });
  }
  const db = openPostgres(url, { schema, max: opts.max ?? 4 });
  const close = db.close.bind(db);
  db.close = async () => {
    await close();
    const a = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await a.unsafe(`drop schema if exists ${schema} cascade`);
    } finally {
      await a.end({ timeout: 2 });
    }
  };
  return { db, schema };
}
