// The backend's housekeeping, every MAINTENANCE_INTERVAL: hourly usage older than
// USAGE_HOURLY_RETENTION rolled up into days, and old sessions, node health checks, signed-out
// or expired admin sessions and audit entries deleted. Each step touches at most `batch` rows
// per run, so a run is short however far behind it is; a run that hit the bound runs again
// soon after (MAINTENANCE_CATCH_UP_MS) until it has caught up. Several backends on one
// PostgreSQL take turns under an advisory lock.
import type { Database } from "./db/database.ts";
import type { Logger } from "../logging/logger.ts";
import { dayStart } from "./quota-period.ts";
import { pruneAdminSessions } from "./store/admin-sessions.ts";
import { pruneAudit } from "./store/audit.ts";
import { pruneNodeChecks } from "./store/nodes.ts";
import { pruneSessions } from "./store/sessions.ts";
import { rollUpHours } from "./store/usage.ts";

export interface MaintenanceOptions {
  hourlyRetentionMs: number;
  sessionRetentionMs: number;
  nodeHealthRetentionMs: number;
  auditRetentionMs: number;
  adminSessionIdleMs: number;
  /** Rows per step per run. */
  batch?: number;
}

export interface MaintenanceResult {
  hours_rolled_up: number;
  sessions_pruned: number;
  node_checks_pruned: number;
  admin_sessions_pruned: number;
  audit_pruned: number;
  /** Some step hit the bound: there is more to do. */
  more: boolean;
}

/** "httvps maintenance" as a 31-bit number: the advisory lock a run holds. */
const MAINTENANCE_LOCK_KEY = 0x6d61696e;
export const DEFAULT_BATCH = 5000;

export async function runMaintenance(db: Database, o: MaintenanceOptions, now: Date): Promise<MaintenanceResult> {
  const batch = o.batch ?? DEFAULT_BATCH;
  const ago = (ms: number) => new Date(now.getTime() - ms);
  return db.withAdvisoryLock(MAINTENANCE_LOCK_KEY, async (conn) => {
    // Whole days only: a day's hours move together, so a daily row is never half of its day
    // for longer than one run.
    const r = {
      hours_rolled_up: await rollUpHours(conn, dayStart(ago(o.hourlyRetentionMs)), batch),
      sessions_pruned: await pruneSessions(conn, ago(o.sessionRetentionMs), batch),
      node_checks_pruned: await pruneNodeChecks(conn, ago(o.nodeHealthRetentionMs), batch),
      admin_sessions_pruned: await pruneAdminSessions(conn, now, o.adminSessionIdleMs, batch),
      audit_pruned: await pruneAudit(conn, ago(o.auditRetentionMs), batch),
    };
    // pruneSessions deletes up to `batch` closed and as many abandoned ones.
    const more = r.hours_rolled_up >= batch || r.sessions_pruned >= batch || r.node_checks_pruned >= batch ||
      r.admin_sessions_pruned >= batch || r.audit_pruned >= batch;
    return { ...r, more };
  });
}

export const MAINTENANCE_CATCH_UP_MS = 1000;

export interface MaintenanceJob {
  /** Run now (tests, and the catch-up runs); resolves with what it did. */
  runNow(): Promise<MaintenanceResult | undefined>;
  stop(): Promise<void>;
}

export function startMaintenance(
  db: Database,
  o: MaintenanceOptions & { intervalMs: number; logger?: Logger; now?: () => Date },
): MaintenanceJob {
  let running: Promise<MaintenanceResult | undefined> | undefined;
  let stopped = false;
  let catchUp: ReturnType<typeof setTimeout> | undefined;
  const runNow = (): Promise<MaintenanceResult | undefined> =>
    stopped ? Promise.resolve(undefined) : (running ??= (async () => {
      try {
        const r = await runMaintenance(db, o, o.now?.() ?? new Date());
        const did = r.hours_rolled_up + r.sessions_pruned + r.node_checks_pruned + r.admin_sessions_pruned + r.audit_pruned;
        if (did) o.logger?.info("maintenance", { ...r });
        if (r.more && !stopped) {
          catchUp = setTimeout(() => void runNow(), MAINTENANCE_CATCH_UP_MS);
          (catchUp as { unref?: () => void }).unref?.();
        }
        return r;
      } catch (e) {
        o.logger?.warn("maintenance failed", { error: e });
        return undefined;
      } finally {
        running = undefined;
      }
    })());
  const timer = setInterval(() => void runNow(), o.intervalMs);
  (timer as { unref?: () => void }).unref?.();
  // Once soon after start too, so a backend restarted more often than the interval still does its housekeeping.
  const first = setTimeout(() => void runNow(), Math.min(o.intervalMs, 60_000));
  (first as { unref?: () => void }).unref?.();
  return {
    runNow,
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(first);
      clearTimeout(catchUp);
      await running;
    },
  };
}
