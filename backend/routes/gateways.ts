// /api/v1/gateways…: owners only. Per-gateway API keys, and every gateway the backend knows
// from its keys or its reports (version, runtime, last report, sessions).
import { ApiError, notFound } from "../errors.ts";
import * as S from "../schemas.ts";
import * as gateways from "../store/gateways.ts";
import { idParam, type RouteContext } from "./context.ts";

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function gatewayStatusJson(g: gateways.GatewayStatusRow) {
  return {
    name: g.name,
    key: g.key_id ? { id: g.key_id, name: g.name, created_at: iso(g.key_created_at)!, revoked_at: iso(g.key_revoked_at) } : null,
    version: g.version,
    runtime: g.runtime,
    first_report_at: iso(g.first_report_at),
    last_report_at: iso(g.last_report_at),
    sessions_active: g.sessions_active,
  };
}

export function gatewayRoutes(ctx: RouteContext): void {
  const { r, db } = ctx;

  r.add({
    method: "post",
    path: "/api/v1/gateways",
    auth: "owner",
    audit: "gateway.create_key",
    summary: "Issue a per-gateway API key (shown once)",
    body: S.GatewayCreate,
    response: S.GatewayCreated,
    status: 201,
    handler: async ({ c, body }) => {
      const created = await gateways.createGateway(db, body.name);
      if (!created) throw new ApiError(409, "conflict", `a gateway named ${body.name} exists`);
      c.set("audit", { targetId: created.gateway.id });
      return { ...gateways.gatewayJson(created.gateway), api_key: created.apiKey };
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/gateways",
    auth: "owner",
    summary: "Every gateway: its key, version, runtime, last report and live sessions; the most recently reporting first",
    response: S.GatewayList,
    handler: async () => ({ gateways: (await gateways.gatewayStatus(db, ctx.staleSec)).map(gatewayStatusJson) }),
  });

  r.add({
    method: "delete",
    path: "/api/v1/gateways/:id",
    auth: "owner",
    audit: "gateway.revoke_key",
    summary: "Revoke a gateway's key",
    response: S.GatewayKey,
    handler: async ({ c }) => {
      const g = await gateways.revokeGateway(db, idParam(c));
      if (!g) throw notFound("gateway");
      return gateways.gatewayJson(g);
    },
  });
}
