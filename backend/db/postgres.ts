// PostgreSQL through postgres.js.
import postgres from "postgres";
import { type Database, INT8_OID, type Query, type Queryable } from "./database.ts";

type Sql = postgres.Sql | postgres.TransactionSql | postgres.ReservedSql;

function queryable(s: Sql): Queryable {
  return {
    async query<T>(q: Query): Promise<T[]> {
      const rows = await s.unsafe(q.text, q.params as postgres.ParameterOrJSON<never>[], { prepare: true });
      return rows as unknown as T[];
    },
    async exec(script: string): Promise<void> {
      await s.unsafe(script).simple();
    },
  };
}

export interface PostgresOptions {
  /** Use this schema (created when missing): tests get one each. */
  schema?: string;
  max?: number;
}

export function openPostgres(url: string, opts: PostgresOptions = {}): Database {
  const client = postgres(url, {
    max: opts.max ?? 10,
    onnotice: () => {},
    connect_timeout: 5,
    // The backend must answer "database unreachable" quickly, not hang on a dead server.
    idle_timeout: 60,
    // The wait before reconnecting after a failed connection. postgres.js's default grows to
    // 20 s after a few failures (3^n / 100 s), and a query waits for it: while PostgreSQL
    // restarts, validate-device then outlasts the gateway's 2 s deadline, and once it is back the
    // backend stays down for up to 20 s more. Capped at 0.5 s (jittered), queries fail fast
    // while it is away and the backend is back within half a second of it; a refused connect
    // every 0.5 s per pooled connection costs nothing.
    backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(0.05 * 2 ** retries, 0.5),
    types: {
      int8: { to: INT8_OID, from: [INT8_OID], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
    },
    connection: opts.schema ? { search_path: opts.schema } : {},
  });
  return fromClient(client);
}

function fromClient(client: postgres.Sql, reserved?: postgres.ReservedSql): Database {
  const target: Sql = reserved ?? client;
  return {
    kind: "postgres",
    ...queryable(target),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      if (reserved) {
        await reserved.unsafe("begin");
        try {
          const out = await fn(queryable(reserved));
          await reserved.unsafe("commit");
          return out;
        } catch (e) {
          await reserved.unsafe("rollback").catch(() => {});
          throw e;
        }
      }
      return (await client.begin((tx) => fn(queryable(tx)))) as T;
    },
    async withAdvisoryLock<T>(key: number, fn: (conn: Database) => Promise<T>): Promise<T> {
      const conn = await client.reserve();
      try {
        await conn.unsafe("select pg_advisory_lock($1)", [key]);
        try {
          return await fn(fromClient(client, conn));
        } finally {
          await conn.unsafe("select pg_advisory_unlock($1)", [key]).catch(() => {});
        }
      } finally {
        conn.release();
      }
    },
    async close() {
      if (!reserved) await client.end({ timeout: 5 });
    },
  };
}
