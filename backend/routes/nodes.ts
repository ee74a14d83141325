// /api/v1/nodes…: the Outline node pool, owners only. Health history and traffic for the
// console's charts, and the devices pinned to a node.
import { z } from "zod";
import { ApiError, notFound } from "../errors.ts";
import { isShadowsocksMethod, SHADOWSOCKS_METHODS } from "../../protocol/ss-methods.ts";
import { apiOrigin, OutlineApiError } from "../outline-api.ts";
import * as S from "../schemas.ts";
import { parseSsUrlForNode } from "../ss-import.ts";
import { sql } from "../db/database.ts";
import { listDevices } from "../store/device-list.ts";
import { deviceJson } from "../store/device-view.ts";
import * as devices from "../store/devices.ts";
import * as nodes from "../store/nodes.ts";
import { decodeCursor, encodeCursor, idParam, type RouteContext } from "./context.ts";
import { seriesJson, seriesRange } from "./series.ts";

/** Like the password, an api_url's secret path is write-only: answers show its origin. */
const nodeOut = (n: nodes.NodeRow) => ({ ...nodes.nodeJson(n), api_url: n.api_url ? `${apiOrigin(n.api_url)}/…` : null });

/** Outline's management API failed: the upstream's fault (502), or the request's (400). */
function outlineFailure(e: unknown): never {
  if (e instanceof OutlineApiError) throw new ApiError(e.code === "outline_api_bad_config" ? 400 : 502, e.code, e.message);
  throw e;
}

const HEALTH_DEFAULT_MS = 24 * 3_600_000;

export function nodeRoutes(ctx: RouteContext): void {
  const { r, db, outline, now } = ctx;
  /** The node, or 404. */
  const found = async (id: string) => {
    const n = await nodes.getNode(db, id, ctx.staleSec);
    if (!n) throw notFound("node");
    return n;
  };

  r.add({
    method: "post",
    path: "/api/v1/nodes",
    auth: "owner",
    audit: "node.create",
    summary: "Add an Outline (Shadowsocks) node",
    body: S.NodeCreate,
    response: S.Node,
    status: 201,
    handler: async ({ c, body }) => {
      const n = await nodes.createNode(db, body);
      c.set("audit", { targetId: n.id });
      ctx.deps.onNodesChanged?.();
      return nodeOut(n);
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/nodes/import",
    auth: "owner",
    audit: "node.import",
    summary: "Add a node from an ss:// access key (SIP002, Outline)",
    body: S.NodeImport,
    response: S.Node,
    status: 201,
    handler: async ({ c, body }) => {
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
      c.set("audit", { targetId: node.id });
      ctx.deps.onNodesChanged?.();
      return nodeOut(node);
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/nodes/outline",
    auth: "owner",
    audit: "node.register",
    summary: "Add an Outline server from its management API (the installer's apiUrl and certSha256)",
    body: S.NodeOutlineRegister,
    response: S.Node,
    status: 201,
    handler: async ({ c, body }) => {
      const origin = apiOrigin(body.api_url);
      const same = await db.query(sql`select id from nodes where api_url = ${body.api_url}`);
      if (same.length) throw new ApiError(409, "conflict", `a node for ${origin} exists`);
      const n = await outline.registerServer(body).catch(outlineFailure);
      c.set("audit", { targetId: n.id });
      ctx.deps.onNodesChanged?.();
      return nodeOut(n);
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/nodes",
    auth: "owner",
    summary: "The node pool with health and load",
    response: S.NodeList,
    handler: async () => ({ nodes: (await nodes.listNodes(db, ctx.staleSec)).map(nodeOut) }),
  });

  r.add({
    method: "get",
    path: "/api/v1/nodes/:id",
    auth: "owner",
    summary: "One node",
    response: S.Node,
    handler: async ({ c }) => {
      const n = await nodes.getNode(db, idParam(c), ctx.staleSec);
      if (!n) throw notFound("node");
      return nodeOut(n);
    },
  });

  r.add({
    method: "patch",
    path: "/api/v1/nodes/:id",
    auth: "owner",
    audit: "node.update",
    summary: "Change a node",
    body: S.NodePatch,
    response: S.Node,
    handler: async ({ c, body }) => {
      const id = idParam(c);
      let detached: (() => Promise<void>) | undefined;
      if (body.api_url !== undefined) {
        const old = await nodes.getNode(db, id, ctx.staleSec);
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
      ctx.deps.onNodesChanged?.();
      return nodeOut((await nodes.getNode(db, idParam(c), ctx.staleSec))!);
    },
  });

  r.add({
    method: "delete",
    path: "/api/v1/nodes/:id",
    auth: "owner",
    audit: "node.delete",
    summary: "Remove a node; its devices are reassigned on next validation",
    response: z.object({ deleted: z.literal(true), id: z.string() }),
    handler: async ({ c }) => {
      const detached = devices.isUuid(idParam(c)) ? await outline.detachNode(idParam(c), "removed") : undefined;
      if (!(await nodes.deleteNode(db, idParam(c)))) throw notFound("node");
      await detached?.();
      return { deleted: true, id: idParam(c) };
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/nodes/:id/health",
    auth: "owner",
    summary: "The node's health checks (status, latency) over time, for its history chart",
    query: S.NodeHealthQuery,
    response: S.NodeHealthHistory,
    handler: async ({ c, query }) => {
      const n = await found(idParam(c));
      const to = query.to ? new Date(query.to) : now();
      const from = query.from ? new Date(query.from) : new Date(to.getTime() - HEALTH_DEFAULT_MS);
      if (from >= to) throw new ApiError(400, "validation_failed", "from: must be before to");
      const checks = await nodes.nodeChecks(db, n.id, from, to, query.limit);
      return {
        node_id: n.id,
        from: from.toISOString(),
        to: to.toISOString(),
        checks: checks.map((k) => ({ ...k, checked_at: new Date(k.checked_at).toISOString() })),
      };
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/nodes/:id/usage",
    auth: "owner",
    summary: "Traffic through the node per hour or day",
    query: S.UsageQuery,
    response: S.UsageSeries,
    handler: async ({ c, query }) => {
      const n = await found(idParam(c));
      const bucket = query.bucket ?? "hour";
      return seriesJson(db, "node", n.id, bucket, seriesRange(bucket, now(), query.from, query.to));
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/nodes/:id/devices",
    auth: "owner",
    summary: "The devices (not revoked) pinned to the node, as the device list",
    query: S.DeviceListQuery,
    response: S.DeviceList,
    handler: async ({ c, query }) => {
      const n = await found(idParam(c));
      const after = query.cursor ? decodeCursor(query.cursor) : undefined;
      if (after !== undefined && !devices.isUuid(after)) {
        throw new ApiError(400, "validation_failed", "cursor: not a cursor this API returned");
      }
      const o = { now: now(), staleAfterSec: ctx.staleSec };
      const rows = await listDevices(db, { ...query, node_id: n.id }, {}, {
        limit: query.limit + 1,
        afterId: after,
        order: query.order,
      }, o);
      const page = rows.slice(0, query.limit);
      return {
        devices: page.map((d) => deviceJson(d, o.now)),
        next_cursor: rows.length > query.limit ? encodeCursor(page.at(-1)!.id) : null,
      };
    },
  });
}
