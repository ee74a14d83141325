// The gateway-facing API: validate-device, validate-app, reports. Its shapes are declared once
// in protocol/control-plane.ts; these schemas are checked against them at compile time.
import { z } from "zod";
import type * as ControlPlane from "../../protocol/control-plane.ts";
import { INVALID_REASONS } from "../../protocol/control-plane.ts";
import { SHADOWSOCKS_METHODS } from "../../protocol/ss-methods.ts";
import { appKeyFields, appPath } from "./devices.ts";
import { count, isoDate, stored, uuid } from "./fields.ts";

const sessionId = stored().min(1).max(128);
const usageCounters = z.object({ bytes_up: count, bytes_down: count });
const validDevice = z.object({
  id: uuid,
  name: z.string(),
  max_sessions: z.number().int().nullable(),
  data_quota_bytes: count.nullable(),
  expires_at: isoDate.nullable(),
});

export const ValidateRequest = z.object({
  device_id: z.string().max(100),
  token: z.string().max(1024),
  client_version: z.string().max(64),
  session_id: stored().max(128).optional(),
  exclude_node_ids: z.array(z.string().max(100)).max(64).optional(),
});

export const Assignment = z.object({
  node_id: uuid,
  host: z.string(),
  port: z.number().int(),
  method: z.enum(SHADOWSOCKS_METHODS),
  password: z.string(),
  prefix: z.string().nullable(),
});

export const ValidateResponse = z.union([
  z.object({ valid: z.literal(true), device: validDevice, assignment: Assignment.nullable() }),
  z.object({ valid: z.literal(false), reason: z.enum(INVALID_REASONS) }),
]);

export const ValidateAppRequest = z
  .object({
    app_path: appPath,
    purpose: z.enum(["connect", "config"]),
    session_id: sessionId.optional(),
    exclude_node_ids: z.array(z.string().max(100)).max(64).optional(),
    client_version: z.string().max(64).optional(),
  })
  .refine((r) => r.purpose !== "connect" || r.session_id !== undefined, {
    message: "required when purpose is connect (the app session being admitted)",
    path: ["session_id"],
  });

export const ValidateAppResponse = z.union([
  z.object({
    valid: z.literal(true),
    device: validDevice,
    assignment: Assignment.nullable(),
    app: z.object(appKeyFields),
    usage: usageCounters,
  }),
  z.object({
    valid: z.literal(false),
    reason: z.enum(INVALID_REASONS),
    device: validDevice.optional(),
    usage: usageCounters.optional(),
  }),
]);

export const ReportEvent = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("session_open"),
    session_id: sessionId,
    device_id: z.string().max(100),
    node_id: z.string().max(100).nullable().optional(),
  }),
  z.object({
    type: z.literal("session_usage"),
    session_id: sessionId,
    device_id: z.string().max(100),
    bytes_up: count,
    bytes_down: count,
  }),
  z.object({
    type: z.literal("session_close"),
    session_id: sessionId,
    device_id: z.string().max(100),
    reason: stored().max(64).optional(),
    bytes_up: count,
    bytes_down: count,
  }),
  z.object({ type: z.literal("node_failure"), node_id: z.string().max(100), error: stored().max(200) }),
]);
export const Report = z.object({
  gateway_id: stored().min(1).max(64).optional(),
  gateway_version: stored().max(64).optional().describe("the gateway's software version (the console's gateway list)"),
  gateway_runtime: stored().max(64).optional().describe("node, bun or deno"),
  events: z.array(ReportEvent).max(1000),
});
export const ReportAccepted = z.object({ accepted: count, ignored: count });

export type ReportEventT = z.infer<typeof ReportEvent>;

// The gateway API's shapes are declared in protocol/control-plane.ts; these schemas must agree
// with them: every request a gateway sends parses here, and every answer is what a gateway reads.
type Agrees<T extends true> = T;
export type GatewayApiAgrees = [
  Agrees<ControlPlane.ValidateRequest extends z.input<typeof ValidateRequest> ? true : false>,
  Agrees<z.output<typeof ValidateResponse> extends ControlPlane.ValidateResponse ? true : false>,
  Agrees<ControlPlane.ValidateAppRequest extends z.input<typeof ValidateAppRequest> ? true : false>,
  Agrees<z.output<typeof ValidateAppResponse> extends ControlPlane.ValidateAppResponse ? true : false>,
  Agrees<ControlPlane.ReportBody extends z.input<typeof Report> ? true : false>,
  Agrees<z.output<typeof ReportAccepted> extends ControlPlane.ReportAccepted ? true : false>,
];
