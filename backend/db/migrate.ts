// Plain numbered SQL migrations (sql/NNNN_name.sql), applied in order, each in its own
// transaction, under a PostgreSQL advisory lock so concurrent starters take turns.
// Applied files are recorded with their sha256; an edited applied file stops start-up.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Database, sql } from "./database.ts";

export interface MigrationFile {
  name: string;
  sha256: string;
  text: string;
}

export interface MigrationState {
  name: string;
  sha256: string;
  state: "applied" | "pending" | "changed" | "unknown";
  applied_at?: Date;
}

export class MigrationError extends Error {
  constructor(readonly code: "migration_changed" | "migration_unknown" | "migration_failed", message: string) {
    super(message);
  }
}

/** "httvps" as a 31-bit number: the advisory lock every migrator takes. */
export const MIGRATION_LOCK_KEY = 0x68747476;

export const defaultMigrationsDir = fileURLToPath(new URL("../../sql/", import.meta.url));

// A compiled binary (`npm run build`) runs with no sql/ folder beside it: its entry hands the
// texts in here at start-up, and they stand in for the default folder.
let embedded: MigrationFile[] | undefined;

/** Use these migration texts instead of reading sql/ from disk (the compiled binary's entry calls this). */
export function useEmbeddedMigrations(files: { name: string; text: string }[]): void {
  embedded = files
    .map((f) => ({ name: f.name, text: f.text, sha256: createHash("sha256").update(f.text).digest("hex") }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function readMigrations(dir?: string): MigrationFile[] {
  if (dir === undefined && embedded) return embedded;
  dir ??= defaultMigrationsDir;
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((name) => {
      const text = readFileSync(`${dir.replace(/\/$/, "")}/${name}`, "utf8");
      return { name, text, sha256: createHash("sha256").update(text).digest("hex") };
    });
}

const CREATE_TABLE = `create table if not exists schema_migrations (
  name text primary key,
  sha256 text not null,
  applied_at timestamptz not null default now()
)`;

async function applied(db: Database): Promise<Map<string, { sha256: string; applied_at: Date }>> {
  await db.exec(CREATE_TABLE);
  const rows = await db.query<{ name: string; sha256: string; applied_at: Date }>(
    sql`select name, sha256, applied_at from schema_migrations order by name`,
  );
  return new Map(rows.map((r) => [r.name, r]));
}

export async function migrationStatus(db: Database, files = readMigrations()): Promise<MigrationState[]> {
  return db.withAdvisoryLock(MIGRATION_LOCK_KEY, async (conn) => {
    const done = await applied(conn);
    const states: MigrationState[] = files.map((f) => {
      const a = done.get(f.name);
      if (!a) return { name: f.name, sha256: f.sha256, state: "pending" };
      return { name: f.name, sha256: f.sha256, state: a.sha256 === f.sha256 ? "applied" : "changed", applied_at: a.applied_at };
    });
    for (const [name, a] of done) {
      if (!files.some((f) => f.name === name)) {
        states.push({ name, sha256: a.sha256, state: "unknown", applied_at: a.applied_at });
      }
    }
    return states;
  });
}

/** Apply pending migrations. Returns the names applied by this call. */
export async function migrate(db: Database, files = readMigrations()): Promise<string[]> {
  return db.withAdvisoryLock(MIGRATION_LOCK_KEY, async (conn) => {
    const done = await applied(conn);
    for (const f of files) {
      const a = done.get(f.name);
      if (a && a.sha256 !== f.sha256) {
        throw new MigrationError(
          "migration_changed",
          `migration ${f.name} was applied with sha256 ${a.sha256.slice(0, 12)}… but the file now has ${
            f.sha256.slice(0, 12)
          }…; ` +
            `applied migrations must not change — add a new file instead`,
        );
      }
    }
    const newest = [...done.keys()].sort().at(-1);
    const unknown = [...done.keys()].filter((n) => !files.some((f) => f.name === n));
    if (unknown.length) {
      throw new MigrationError(
        "migration_unknown",
        `the database has migrations this build does not know: ${unknown.join(", ")} (newest ${newest})`,
      );
    }
    const ran: string[] = [];
    for (const f of files) {
      if (done.has(f.name)) continue;
      try {
        await conn.transaction(async (tx) => {
          await tx.exec(f.text);
          await tx.query(sql`insert into schema_migrations (name, sha256) values (${f.name}, ${f.sha256})`);
        });
      } catch (e) {
        throw new MigrationError("migration_failed", `migration ${f.name} failed: ${(e as Error).message}`);
      }
      ran.push(f.name);
    }
    return ran;
  });
}
