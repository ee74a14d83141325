// The control plane's HTTP API as one Hono app. Runtime-free: the caller hands it a
// Database and secrets, and serves `app.fetch` with whichever runtime adapter it has
// (passing the client's address as the env's `remoteAddress`). The routes live in routes/,
// one file per resource; every one is declared through the Router (api.ts).
import { Hono } from "hono";
import { type AuditNote, Router } from "./api.ts";
import { actorOf, type AuthVars, clientAddress, createAuthorizer, type Principal } from "./auth.ts";
import { isDatabaseUnavailable, sql } from "./db/database.ts";
import { consoleRoutes } from "./console/console.ts";
import { ApiError, errorBody } from "./errors.ts";
import { createBackendMetrics } from "./metrics.ts";
import { createOutlineKeys } from "./outline-keys.ts";
import type { BackendDeps, BackendOptions } from "./options.ts";
import { DEFAULT_SCRYPT_COST } from "./passwords.ts";
import { DEFAULT_SIGN_IN_LIMITS } from "./sign-in.ts";
import { writeAudit } from "./store/audit.ts";
import { adminRoutes } from "./routes/admins.ts";
import { auditRoutes } from "./routes/audit.ts";
import { authRoutes } from "./routes/auth.ts";
import type { RouteContext } from "./routes/context.ts";
import { deviceRoutes } from "./routes/devices.ts";
import { gatewayApiRoutes } from "./routes/gateway-api.ts";
import { gatewayRoutes } from "./routes/gateways.ts";
import { nodeRoutes } from "./routes/nodes.ts";
import { statsRoutes } from "./routes/stats.ts";

export type { BackendDeps, BackendOptions };

export function createBackendApp(options: BackendOptions) {
  const deps: BackendDeps = {
    ...options,
    sessions: { idleMs: options.adminSessionIdleMs ?? 30 * 60_000, maxMs: options.adminSessionMaxMs ?? 12 * 3_600_000 },
    scryptCost: options.scryptCost ?? DEFAULT_SCRYPT_COST,
    signInLimits: options.signInLimits ?? DEFAULT_SIGN_IN_LIMITS,
  };
  const { db } = deps;
  const now = deps.now ?? (() => new Date());
  const metrics = deps.metrics ?? createBackendMetrics();
  const outline = deps.outlineKeys ?? createOutlineKeys(db, { logger: deps.logger });
  const app = new Hono<AuthVars>();

  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json(errorBody(err.code, err.message), err.status, err.headers);
    if (isDatabaseUnavailable(err)) {
      // Not this request's fault: the database is down or restarting. A 503 tells gateways and
      // clients to retry; one warning line per request, without a stack.
      deps.logger?.warn("database unavailable", { path: c.req.path, code: err.code });
      return c.json(errorBody("database_unavailable", "database unreachable; retry later"), 503);
    }
    deps.logger?.error("request failed", { path: c.req.path, error: err });
    return c.json(errorBody("internal", "internal error"), 500);
  });
  app.notFound((c) => c.json(errorBody("not_found", "no such route"), 404));

  app.use("*", async (c, next) => {
    const t0 = performance.now();
    await next();
    const route = c.req.routePath || "unmatched";
    metrics.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.duration.observe({ method: c.req.method, route }, (performance.now() - t0) / 1000);
  });

  const r = new Router(app as unknown as Hono, {
    authorize: createAuthorizer({ ...deps, sessions: deps.sessions, now }) as never,
    audit: (c, action, note: AuditNote) =>
      writeAudit(db, {
        actor: actorOf(c.get("principal") as Principal | undefined),
        action,
        targetType: note.targetType,
        targetId: note.targetId,
        address: clientAddress(c),
        detail: note.detail && Object.keys(note.detail).length ? note.detail : null,
        at: now(),
      }),
  });

  // ---- health

  app.get("/healthz", (c) => c.json({ ok: true }));
  app.get("/readyz", async (c) => {
    try {
      await Promise.race([
        db.query(sql`select 1`),
        new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 2000)),
      ]);
      return c.json({ ok: true, database: db.kind });
    } catch {
      return c.json(errorBody("database_unavailable", "database unreachable"), 503);
    }
  });
  app.get(
    "/metrics",
    async (c) => c.text(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType }),
  );

  const ctx: RouteContext = { r, db, deps, staleSec: (deps.sessionStaleAfterMs ?? 180_000) / 1000, now, outline, metrics };
  authRoutes(ctx);
  deviceRoutes(ctx);
  nodeRoutes(ctx);
  gatewayRoutes(ctx);
  adminRoutes(ctx);
  auditRoutes(ctx);
  statsRoutes(ctx);
  gatewayApiRoutes(ctx);

  // The console at /admin: pages over this same app's API (backend/console/).
  consoleRoutes(app as unknown as Hono, { api: (req, env) => app.fetch(req, env as never), deviceLinks: deps.deviceLinks });

  const spec = r.openapi({ title: "HTTVPS control plane", version: deps.version ?? "0.1.0" });
  app.get("/api/v1/openapi.json", (c) => c.json(spec));

  return Object.assign(app, { routeSpecs: r.routes, metrics, outlineKeys: outline });
}

export type BackendApp = ReturnType<typeof createBackendApp>;
