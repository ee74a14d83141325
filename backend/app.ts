// The control plane's HTTP API as one Hono app. Runtime-free: the caller hands it a
// Database and secrets, and serves `app.fetch` with whichever runtime adapter it has.
import { type Context, Hono } from "hono";
import { type Auth, Router } from "./api.ts";
import { type Database, isDatabaseUnavailable, sql } from "./db/database.ts";
import { ApiError, errorBody, notFound } from "./errors.ts";
import type { Logger } from "../logging/logger.ts";
import { isShadowsocksMethod, SHADOWSOCKS_METHODS } from "../protocol/ss-methods.ts";
import { type BackendMetrics, createBackendMetrics } from "./metrics.ts";
import { apiOrigin, OutlineApiError } from "./outline-api.ts";
import { createOutlineKeys, type OutlineKeys } from "./outline-keys.ts";
import * as S from "./schemas.ts";
import { parseSsUrlForNode } from "./ss-import.ts";
import { secretEquals } from "./secrets.ts";
import * as devices from "./store/devices.ts";
import * as gateways from "./store/gateways.ts";
import * as nodes from "./store/nodes.ts";
import { applyReport, deviceUsage } from "./store/sessions.ts";
import { validateApp, validateDevice } from "./store/validation.ts";
import { z } from "zod";

export interface BackendDeps {
  db: Database;
  adminToken: string;
  gatewayApiKey: string;
  /** Sessions not reported for this long stop counting towards limits and load. */
  sessionStaleAfterMs?: number;
  logger?: Logger;
  metrics?: BackendMetrics;
  /** Called after a device is revoked or changed (its Outline keys are already handled by outlineKeys). */
  onDeviceChanged?: (deviceId: string, change: "revoked" | "updated") => void;
  /** Called after a node is added or changed (the health checker looks at it at once). */
  onNodesChanged?: () => void;
  /** Per-device keys on nodes with an Outline management API; default: one with no timers. */
  outlineKeys?: OutlineKeys;
  version?: string;
}

type Vars = { Variables: { gatewayId: string } };

const encodeCursor = (d: devices.DeviceRow) => Buffer.from(d.id).toString("base64url");
function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, "base64url").toString("utf8");
  if (!devices.isUuid(id)) throw new ApiError(400, "validation_failed", "cursor: not a cursor this API returned");
  return id;
}

/** Like the password, an api_url's secret path is write-only: answers show its origin. */
const nodeOut = (n: nodes.NodeRow) => ({ ...nodes.nodeJson(n), api_url: n.api_url ? `${apiOrigin(n.api_url)}/…` : null });

/** Outline's management API failed: the upstream's fault (502), or the request's (400). */
function outlineFailure(e: unknown): never {
  if (e instanceof OutlineApiError) throw new ApiError(e.code === "outline_api_bad_config" ? 400 : 502, e.code, e.message);
  throw e;
}

export function createBackendApp(deps: BackendDeps) {
  const { db } = deps;
  const staleSec = (deps.sessionStaleAfterMs ?? 180_000) / 1000;
  const metrics = deps.metrics ?? createBackendMetrics();
  const outline = deps.outlineKeys ?? createOutlineKeys(db, { logger: deps.logger });
  const app = new Hono<Vars>();

  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json(errorBody(err.code, err.message), err.status);
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

  async function authorize(c: Context<Vars>, auth: Auth): Promise<void> {
    if (auth === "public") return;
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(\S{1,1024})\s*$/i.exec(header);
    const unauthorized = () => {
      c.header("WWW-Authenticate", 'Bearer realm="httvps"');
      return new ApiError(401, "unauthorized", "missing or wrong credential");
    };
    if (!m) throw unauthorized();
    const presented = m[1]!;
    if (auth === "admin") {
      if (!secretEquals(presented, deps.adminToken)) throw unauthorized();
      return;
    }
    if (secretEquals(presented, deps.gatewayApiKey)) {
      c.set("gatewayId", "default");
      return;
    }
    const gw = await gateways.gatewayByKey(db, presented);
    if (!gw) throw unauthorized();
    c.set("gatewayId", gw.name);
  }

  const r = new Router(app as unknown as Hono, authorize as never);
  const idParam = (c: Context) => c.req.param("id") ?? "";

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

  // ---- devices (admin)

  r.add({
    method: "post",
    path: "/api/v1/devices",
    auth: "admin",
    summary: "Create a device; its token is shown once",
    body: S.DeviceCreate,
    response: S.DeviceCreated,
    status: 201,
    handler: async ({ body }) => {
      const { device, token, app } = await devices.createDevice(db, body);
      return { ...devices.deviceJson(device), device_id: device.id, token, app };
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/devices",
    auth: "admin",
    summary: "List devices (keyset pagination)",
    query: S.ListQuery,
    response: S.DeviceList,
    handler: async ({ query }) => {
      const after = query.cursor ? decodeCursor(query.cursor) : undefined;
      const rows = await devices.listDevices(db, query.limit + 1, after);
      const page = rows.slice(0, query.limit);
      return {
        devices: page.map(devices.deviceJson),
        next_cursor: rows.length > query.limit ? encodeCursor(page.at(-1)!) : null,
      };
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/devices/:id",
    auth: "admin",
    summary: "One device",
    response: S.Device,
    handler: async ({ c }) => {
      const d = await devices.getDevice(db, idParam(c));
      if (!d) throw notFound("device");
      return devices.deviceJson(d);
    },
  });

  r.add({
    method: "patch",
    path: "/api/v1/devices/:id",
    auth: "admin",
    summary: "Change name, disabled, expires_at, max_sessions, data_quota_bytes",
    body: S.DevicePatch,
    response: S.Device,
    handler: async ({ c, body }) => {
      const d = await devices.updateDevice(db, idParam(c), body);
      if (!d) throw notFound("device");
      if (body.data_quota_bytes !== undefined) await outline.deviceChanged(d.id);
      deps.onDeviceChanged?.(d.id, "updated");
      return devices.deviceJson(d);
    },
  });

  r.add({
    method: "delete",
    path: "/api/v1/devices/:id",
    auth: "admin",
    summary: "Revoke a device (its usage history stays)",
    response: S.Device,
    handler: async ({ c }) => {
      const d = await devices.revokeDevice(db, idParam(c));
      if (!d) throw notFound("device");
      await outline.deviceChanged(d.id);
      deps.onDeviceChanged?.(d.id, "revoked");
      return devices.deviceJson(d);
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/devices/:id/rotate-token",
    auth: "admin",
    summary: "Issue a new token and app identity; the old token, app path and app key stop working",
    response: S.TokenRotated,
    handler: async ({ c }) => {
      const id = idParam(c);
      const rotated = await devices.rotateDeviceToken(db, id);
      if (!rotated) throw notFound("device");
      deps.onDeviceChanged?.(id, "updated");
      return { device_id: id, ...rotated };
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/devices/:id/app",
    auth: "admin",
    summary: "The device's app identity (path, cipher, secret), to print its app links again",
    response: S.DeviceApp,
    handler: async ({ c }) => {
      const found = await devices.getDeviceApp(db, idParam(c));
      if (!found) throw notFound("device");
      if (found.revoked) throw new ApiError(409, "revoked", "the device is revoked: its app links no longer work");
      return found.app;
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/devices/:id/usage",
    auth: "admin",
    summary: "Bytes and sessions the gateways reported",
    response: S.Usage,
    handler: async ({ c }) => {
      const d = await devices.getDevice(db, idParam(c));
      if (!d) throw notFound("device");
      const u = await deviceUsage(db, d.id, staleSec);
      const total = u.bytes_up + u.bytes_down;
      return {
        device_id: d.id,
        bytes_up: u.bytes_up,
        bytes_down: u.bytes_down,
        bytes_total: total,
        sessions_total: u.sessions_total,
        sessions_active: u.sessions_active,
        last_seen_at: u.last_seen_at ? new Date(u.last_seen_at).toISOString() : null,
        data_quota_bytes: d.data_quota_bytes,
        quota_remaining_bytes: d.data_quota_bytes === null ? null : Math.max(0, d.data_quota_bytes - total),
      };
    },
  });

  // ---- nodes (admin)

  r.add({
    method: "post",
    path: "/api/v1/nodes",
    auth: "admin",
    summary: "Add an Outline (Shadowsocks) node",
    body: S.NodeCreate,
    response: S.Node,
    status: 201,
    handler: async ({ body }) => {
      const n = await nodes.createNode(db, body);
      deps.onNodesChanged?.();
      return nodeOut(n);
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/nodes/import",
    auth: "admin",
    summary: "Add a node from an ss:// access key (SIP002, Outline)",
    body: S.NodeImport,
    response: S.Node,
    status: 201,
    handler: async ({ body }) => {
      let parsed;
      try {
        parsed = parseSsUrlForNode(body.ss_url);
      } catch (e) {
        throw new ApiError(400, "bad_ss_url", (e as Error).message);
      }
      if (!isShadowsocksMethod(parsed.method)) {
        throw new ApiError(400, "unsupported_method", `method ${parsed.method} is not one of ${SHADOWSOCKS_METHODS.join(", ")}`);
      }
      const node = await nodes.createNode(db, {
        name: body.name ?? parsed.tag ?? `${parsed.host}:${parsed.port}`,
        host: parsed.host,
        port: parsed.port,
        method: parsed.method,
        password: parsed.password,
        prefix: parsed.prefix,
        region: body.region,
        weight: body.weight,
        enabled: body.enabled,
      });
      deps.onNodesChanged?.();
      return nodeOut(node);
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/nodes/outline",
    auth: "admin",
    summary: "Add an Outline server from its management API (the installer's apiUrl and certSha256)",
    body: S.NodeOutlineRegister,
    response: S.Node,
    status: 201,
    handler: async ({ body }) => {
      const origin = apiOrigin(body.api_url);
      const same = await db.query(sql`select id from nodes where api_url = ${body.api_url}`);
      if (same.length) throw new ApiError(409, "conflict", `a node for ${origin} exists`);
      const n = await outline.registerServer(body).catch(outlineFailure);
      deps.onNodesChanged?.();
      return nodeOut(n);
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/nodes",
    auth: "admin",
    summary: "The node pool with health and load",
    response: S.NodeList,
    handler: async () => ({ nodes: (await nodes.listNodes(db, staleSec)).map(nodeOut) }),
  });

  r.add({
    method: "get",
    path: "/api/v1/nodes/:id",
    auth: "admin",
    summary: "One node",
    response: S.Node,
    handler: async ({ c }) => {
      const n = await nodes.getNode(db, idParam(c), staleSec);
      if (!n) throw notFound("node");
      return nodeOut(n);
    },
  });

  r.add({
    method: "patch",
    path: "/api/v1/nodes/:id",
    auth: "admin",
    summary: "Change a node",
    body: S.NodePatch,
    response: S.Node,
    handler: async ({ c, body }) => {
      const id = idParam(c);
      let detached: (() => Promise<void>) | undefined;
      if (body.api_url !== undefined) {
        const old = await nodes.getNode(db, id, staleSec);
        if (old && old.api_url !== body.api_url) detached = await outline.detachNode(id, "api_changed");
        const cert = body.cert_sha256 !== undefined ? body.cert_sha256 : old?.cert_sha256;
        if (body.api_url && !cert) {
          throw new ApiError(
            400,
            "validation_failed",
            "cert_sha256: required when api_url is set (the sha256 of the server's certificate)",
          );
        }
      }
      if (!(await nodes.updateNode(db, id, body))) throw notFound("node");
      await detached?.();
      deps.onNodesChanged?.();
      return nodeOut((await nodes.getNode(db, idParam(c), staleSec))!);
    },
  });

  r.add({
    method: "delete",
    path: "/api/v1/nodes/:id",
    auth: "admin",
    summary: "Remove a node; its devices are reassigned on next validation",
    response: z.object({ deleted: z.literal(true), id: z.string() }),
    handler: async ({ c }) => {
      const detached = devices.isUuid(idParam(c)) ? await outline.detachNode(idParam(c), "removed") : undefined;
      if (!(await nodes.deleteNode(db, idParam(c)))) throw notFound("node");
      await detached?.();
      return { deleted: true, id: idParam(c) };
    },
  });

  // ---- gateway credentials (admin)

  r.add({
    method: "post",
    path: "/api/v1/gateways",
    auth: "admin",
    summary: "Issue a per-gateway API key (shown once)",
    body: S.GatewayCreate,
    response: S.GatewayCreated,
    status: 201,
    handler: async ({ body }) => {
      const created = await gateways.createGateway(db, body.name);
      if (!created) throw new ApiError(409, "conflict", `a gateway named ${body.name} exists`);
      return { ...gateways.gatewayJson(created.gateway), api_key: created.apiKey };
    },
  });
  r.add({
    method: "get",
    path: "/api/v1/gateways",
    auth: "admin",
    summary: "Gateways with their own keys",
    response: S.GatewayList,
    handler: async () => ({ gateways: (await gateways.listGateways(db)).map(gateways.gatewayJson) }),
  });
  r.add({
    method: "delete",
    path: "/api/v1/gateways/:id",
    auth: "admin",
    summary: "Revoke a gateway's key",
    response: S.Gateway,
    handler: async ({ c }) => {
      const g = await gateways.revokeGateway(db, idParam(c));
      if (!g) throw notFound("gateway");
      return gateways.gatewayJson(g);
    },
  });

  // ---- gateway-facing

  r.add({
    method: "post",
    path: "/api/v1/auth/validate-device",
    auth: "gateway",
    summary: "Check a device's token and limits; assign a node",
    body: S.ValidateRequest,
    response: S.ValidateResponse,
    handler: async ({ c, body }) => {
      const v = await validateDevice(db, { ...body, gateway_id: c.get("gatewayId") }, staleSec, { deviceKey: outline.deviceKey });
      metrics.validations.inc({ result: v.valid ? "valid" : v.reason });
      return v;
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/auth/validate-app",
    auth: "gateway",
    summary: "Find a device by its app path; admit an app session (connect) or describe it (config)",
    body: S.ValidateAppRequest,
    response: S.ValidateAppResponse,
    handler: async ({ c, body }) => {
      const v = await validateApp(db, { ...body, gateway_id: c.get("gatewayId") }, staleSec, { deviceKey: outline.deviceKey });
      metrics.validations.inc({ result: v.valid ? "valid" : v.reason });
      return v;
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/gateway/report",
    auth: "gateway",
    summary: "Session open/close and byte counts, batched",
    body: S.Report,
    response: S.ReportAccepted,
    handler: async ({ c, body }) => {
      const gatewayId = body.gateway_id ?? c.get("gatewayId");
      const out = await db.transaction((tx) => applyReport(tx, gatewayId, body.events));
      for (const e of body.events) metrics.reportEvents.inc({ type: e.type });
      return out;
    },
  });

  const spec = r.openapi({ title: "HTTVPS control plane", version: deps.version ?? "0.1.0" });
  app.get("/api/v1/openapi.json", (c) => c.json(spec));

  return Object.assign(app, { routeSpecs: r.routes, metrics, outlineKeys: outline });
}

export type BackendApp = ReturnType<typeof createBackendApp>;
