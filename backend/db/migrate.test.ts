import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "./database.ts";
import { migrate, MigrationError, migrationStatus, readMigrations } from "./migrate.ts";
import { testDatabases } from "./testing.ts";

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "httvps-mig-"));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t);
  return dir;
}

for (const tdb of testDatabases()) {
  describe(`migrations on ${tdb.name}`, () => {
    test("apply the project's migrations once, then nothing is pending", async () => {
      const db = await tdb.open({ migrated: false });
      try {
        const first = await migrate(db);
        assert.deepEqual(first, readMigrations().map((f) => f.name));
        assert.deepEqual(await migrate(db), []);
        const states = await migrationStatus(db);
        assert.ok(states.every((s) => s.state === "applied"));
        const rows = await db.query<{ n: number }>(sql`select count(*)::int as n from devices`);
        assert.equal(rows[0]!.n, 0);
      } finally {
        await db.close();
      }
    });

    test("a changed applied file stops the runner; a failing file rolls back alone", async () => {
      const db = await tdb.open({ migrated: false });
      try {
        const dir = dirWith({ "0001_a.sql": "create table a (x int);" });
        assert.deepEqual(await migrate(db, readMigrations(dir)), ["0001_a.sql"]);
        writeFileSync(join(dir, "0001_a.sql"), "create table a (x int, y int);");
        await assert.rejects(
          migrate(db, readMigrations(dir)),
          (e: unknown) => e instanceof MigrationError && e.code === "migration_changed",
        );
        assert.equal((await migrationStatus(db, readMigrations(dir)))[0]!.state, "changed");

        const dir2 = dirWith({
          "0001_a.sql": "create table a (x int);",
          "0002_b.sql": "create table b (x int); insert into b values (1); select * from no_such_table;",
        });
        await assert.rejects(
          migrate(db, readMigrations(dir2)),
          (e: unknown) => e instanceof MigrationError && e.code === "migration_failed",
        );
        const b = await db.query<{ t: string | null }>(sql`select to_regclass('b')::text as t`);
        assert.equal(b[0]!.t, null, "the failed migration's table must be rolled back");
        const st = await migrationStatus(db, readMigrations(dir2));
        assert.deepEqual(st.map((s) => s.state), ["applied", "pending"]);
      } finally {
        await db.close();
      }
    });
  });
}
