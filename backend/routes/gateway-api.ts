// The gateway-facing API (docs/02 "For gateways"): validate-device, validate-app, reports.
import * as S from "../schemas.ts";
import { applyReport } from "../store/sessions.ts";
import { validateApp, validateDevice } from "../store/validation.ts";
import type { RouteContext } from "./context.ts";

export function gatewayApiRoutes(ctx: RouteContext): void {
  const { r, db, outline, metrics } = ctx;
  const validation = () => ({ staleAfterSec: ctx.staleSec, now: ctx.now() });

  r.add({
    method: "post",
    path: "/api/v1/auth/validate-device",
    auth: "gateway",
    summary: "Check a device's token and limits; assign a node",
    body: S.ValidateRequest,
    response: S.ValidateResponse,
    handler: async ({ c, body }) => {
      const v = await validateDevice(db, { ...body, gateway_id: c.get("gatewayId") }, validation(), {
        deviceKey: outline.deviceKey,
      });
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
      const v = await validateApp(db, { ...body, gateway_id: c.get("gatewayId") }, validation(), {
        deviceKey: outline.deviceKey,
      });
      metrics.validations.inc({ result: v.valid ? "valid" : v.reason });
      return v;
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/gateway/report",
    auth: "gateway",
    summary: "Session open/close and byte counts, batched; also the gateway's heartbeat",
    body: S.Report,
    response: S.ReportAccepted,
    handler: async ({ c, body }) => {
      const report = {
        gatewayId: body.gateway_id ?? c.get("gatewayId"),
        version: body.gateway_version,
        runtime: body.gateway_runtime,
        now: ctx.now(),
      };
      const out = await db.transaction((tx) => applyReport(tx, report, body.events));
      for (const e of body.events) metrics.reportEvents.inc({ type: e.type });
      return out;
    },
  });
}
