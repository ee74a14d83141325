// What every group of routes is given: the router to declare them on, the database, the
// clock, and the parts of the app they share.
import type { Context } from "hono";
import type { Router } from "../api.ts";
import type { Principal } from "../auth.ts";
import type { BackendDeps } from "../options.ts";
import type { Database } from "../db/database.ts";
import type { BackendMetrics } from "../metrics.ts";
import type { OutlineKeys } from "../outline-keys.ts";

export interface RouteContext {
  r: Router;
  db: Database;
  deps: BackendDeps;
  /** Sessions reported within this many seconds are live. */
  staleSec: number;
  now: () => Date;
  outline: OutlineKeys;
  metrics: BackendMetrics;
}

export const idParam = (c: Context) => c.req.param("id") ?? "";

/** The admin behind an authorized request (routes with auth owner or admin always have one). */
export const principalOf = (c: Context): Principal => c.get("principal") as Principal;

/** Cursors are opaque to clients: base64url of the last row's key. */
export const encodeCursor = (key: string | number) => Buffer.from(String(key)).toString("base64url");
export const decodeCursor = (cursor: string) => Buffer.from(cursor, "base64url").toString("utf8");
