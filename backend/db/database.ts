// One small storage interface with two engines behind it: postgres.js for a real
// PostgreSQL server and PGlite (PostgreSQL compiled to WASM) for the embedded default.
// Both speak the same SQL, so every query in the backend is written once.

/** A parameterised query: `text` uses $1, $2 … placeholders. */
export interface Query {
  readonly text: string;
  readonly params: readonly unknown[];
}

/**
 * Tagged template that turns interpolations into placeholders, never into SQL text:
 *   sql`select * from devices where id = ${id}`
 */
export function sql(strings: TemplateStringsArray, ...values: unknown[]): Query {
  let text = strings[0]!;
  for (let i = 0; i < values.length; i++) text += `$${i + 1}` + strings[i + 1]!;
  return { text, params: values };
}

/**
 * Positional parameters for SQL put together from fragments: each add() is the next $n, so a
 * value is added exactly where the text uses it (PostgreSQL refuses a parameter it cannot type).
 */
export class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

export type Row = Record<string, unknown>;

export interface Queryable {
  query<T = Row>(q: Query): Promise<T[]>;
  /** Run a script of several statements (a migration file). No parameters. */
  exec(script: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly kind: "postgres" | "pglite";
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Run `fn` on one connection holding a session-level advisory lock, so that
   * several processes (two backends, two `httvps migrate`) take turns.
   */
  withAdvisoryLock<T>(key: number, fn: (conn: Database) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** int8 (bigint) as a JS number: byte counters stay far below 2^53. */
export const INT8_OID = 20;

const UNREACHABLE = new Set([
  // postgres.js's own connection errors
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  // the socket's
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  // SQLSTATE: admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down)
  "57P01",
  "57P02",
  "57P03",
]);

/**
 * The database server cannot be reached right now (stopped, restarting, the network), as
 * opposed to a query that failed: the API answers 503 and callers retry. postgres.js opens
 * new connections on the next query, so nothing needs resetting once the server is back.
 */
export function isDatabaseUnavailable(err: unknown): err is { code: string } {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code !== "string") return false;
  // SQLSTATE class 08: connection exception
  return UNREACHABLE.has(code) || /^08[0-9A-Z]{3}$/.test(code);
}
