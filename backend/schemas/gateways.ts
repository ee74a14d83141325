// Gateways: their own API keys, and what the backend knows of each from its reports.
import { z } from "zod";
import { count, isoDate, uuid } from "./fields.ts";

export const GatewayCreate = z.strictObject({ name: z.string().trim().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/) });
/** A gateway's own API key. */
export const GatewayKey = z.object({ id: uuid, name: z.string(), created_at: isoDate, revoked_at: isoDate.nullable() });
export const GatewayCreated = GatewayKey.extend({ api_key: z.string().describe("shown once; only its sha256 is stored") });

/** A gateway as the backend knows it: by its key, by its reports, or both (matched by name = its GATEWAY_ID). */
export const Gateway = z.object({
  name: z.string(),
  key: GatewayKey.nullable().describe("its own API key; null: it uses the shared GATEWAY_API_KEY"),
  version: z.string().nullable().describe("from its reports"),
  runtime: z.string().nullable(),
  first_report_at: isoDate.nullable(),
  last_report_at: isoDate.nullable(),
  sessions_active: count,
});
export const GatewayList = z.object({ gateways: z.array(Gateway) });
