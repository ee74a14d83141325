// Device authentication for the gateway: a small client for the backend's gateway API
// (validate-device, validate-app and the usage report) and a cache in front of validate-device
// (validate-app's is gateway/apps/app-auth.ts).
//
// Why a cache at all: a client reconnecting after a network blip or opening several
// sessions should not cost a backend round trip each. Why it is careful:
// - keys hold sha256(token), never the token, so a heap dump or a debug print of the map
//   holds nothing replayable;
// - a device with max_sessions is never admitted from the cache, because only the backend
//   counts sessions;
// - only positive answers are cached, and a negative answer evicts the device's entry, so
//   a revocation takes effect for new sessions at once and for live ones within the TTL.
import { createHash } from "node:crypto";
import { z } from "zod";
import type { Logger } from "../logging/logger.ts";
import { CachedValidation, type CachedValidationOptions } from "./answer-cache.ts";
import type {
  AppKey,
  AppUsageCounters,
  Assignment,
  ReportAccepted,
  ReportBody,
  UsageEvent,
  ValidateAppRequest,
  ValidateRequest,
  ValidDevice,
} from "../protocol/control-plane.ts";

// The control-plane shapes this module's BackendClient speaks, for its users and their test doubles.
export type { AppKey, AppUsageCounters, Assignment, ReportBody, UsageEvent, ValidateAppRequest, ValidateRequest };

export type AuthOutcome =
  | { ok: true; device: ValidDevice; assignment: Assignment | null }
  /** code: a reason from the backend (INVALID_REASONS, or one this gateway does not know yet), or `unavailable` when it could not answer. */
  | { ok: false; code: string; message: string };

export interface Credentials {
  device_id: string;
  token: string;
  client_version: string;
}

/** What the cache asks of a backend: never throws; failures are `unavailable`. */
export type ValidateDevice = (req: ValidateRequest) => Promise<AuthOutcome>;

/**
 * validate-app's answer. A refusal of a known device carries the device and its usage (a config
 * fetch says why); `unknown_device` (an unknown or revoked path) and `unavailable` carry neither.
 */
export type AppAuthOutcome =
  | { ok: true; device: ValidDevice; assignment: Assignment | null; app: AppKey; usage: AppUsageCounters }
  | { ok: false; code: string; message: string; device?: ValidDevice; usage?: AppUsageCounters };

/** Never throws; failures are `unavailable`. */
export type ValidateApp = (req: ValidateAppRequest) => Promise<AppAuthOutcome>;

export interface BackendClient {
  validateDevice: ValidateDevice;
  validateApp: ValidateApp;
  /** Resolves with the accepted count; rejects with a BackendError on any failure (the caller retries). */
  report(body: ReportBody): Promise<number>;
}

export class BackendError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "BackendError";
  }
}

// The backend's answers, read into protocol/control-plane.ts's shapes. Lenient where a newer
// backend may say more: an unknown reason is passed on as the auth_result code.
const deviceSchema = z.object({
  id: z.string(),
  name: z.string(),
  max_sessions: z.number().int().nullable(),
  data_quota_bytes: z.number().nullable(),
  expires_at: z.string().nullable(),
}) satisfies z.ZodType<ValidDevice>;
const assignmentSchema = z.object({
  node_id: z.string(),
  host: z.string(),
  port: z.number().int(),
  method: z.string(),
  password: z.string(),
  prefix: z.string().nullable(),
}) satisfies z.ZodType<Assignment>;
const validateResponse = z.union([
  z.object({ valid: z.literal(true), device: deviceSchema, assignment: assignmentSchema.nullable() }),
  z.object({ valid: z.literal(false), reason: z.string().min(1).max(64) }),
]);
const usageSchema = z.object({ bytes_up: z.number(), bytes_down: z.number() }) satisfies z.ZodType<AppUsageCounters>;
const validateAppResponse = z.union([
  z.object({
    valid: z.literal(true),
    device: deviceSchema,
    assignment: assignmentSchema.nullable(),
    app: z.object({ cipher: z.string(), secret: z.string().min(1) }) satisfies z.ZodType<AppKey>,
    usage: usageSchema,
  }),
  z.object({
    valid: z.literal(false),
    reason: z.string().min(1).max(64),
    device: deviceSchema.optional(),
    usage: usageSchema.optional(),
  }),
]);
const reportResponse = z.object({ accepted: z.number() }) satisfies z.ZodType<Pick<ReportAccepted, "accepted">>;

const UNAVAILABLE = "the control plane is unavailable; retry later";
const unavailable = (message: string) => ({ ok: false, code: "unavailable", message }) as const;
/** What a validation is when the backend could not answer. */
export const BACKEND_UNAVAILABLE = unavailable(UNAVAILABLE);

export interface BackendClientOptions {
  /** e.g. http://127.0.0.1:8080 — the /api/v1/... paths are appended. */
  baseUrl: string;
  apiKey?: string;
  timeoutMs: number;
  logger?: Logger;
  /** Injected for tests that answer from an in-process app (Hono's app.request) instead of the network. */
  fetch?: (input: Request) => Promise<Response>;
}

export function createBackendClient(opts: BackendClientOptions): BackendClient {
  const base = opts.baseUrl.replace(/\/+$/, "");
  const doFetch = opts.fetch ?? ((req: Request) => fetch(req));

  async function post(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
    const ctrl = new AbortController();
    // A manual timer rather than AbortSignal.timeout(): it is cleared on success, so no
    // timer outlives the request (Deno's test sanitizer and clean shutdown both care).
    const timer = setTimeout(() => ctrl.abort(), opts.timeoutMs);
    try {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
      const res = await doFetch(
        new Request(base + path, { method: "POST", headers, body: JSON.stringify(body), signal: ctrl.signal }),
      );
      const text = await res.text();
      let json: unknown = undefined;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, json };
    } catch (err) {
      if (ctrl.signal.aborted) throw new BackendError("timeout", `backend did not answer within ${opts.timeoutMs} ms`);
      throw new BackendError("unreachable", `backend unreachable: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  function errorCode(json: unknown): string {
    const e = (json as { error?: { code?: unknown } } | undefined)?.error;
    return typeof e?.code === "string" ? e.code : "unknown";
  }

  /** A validation: its parsed answer, or why there is none (never the device's fault). */
  async function validation<T>(
    name: string,
    body: unknown,
    schema: z.ZodType<T>,
  ): Promise<{ ok: true; answer: T } | ReturnType<typeof unavailable>> {
    let r: { status: number; json: unknown };
    try {
      r = await post(`/api/v1/auth/${name}`, body);
    } catch (err) {
      opts.logger?.warn(`backend ${name} failed`, { code: (err as BackendError).code, error: (err as Error).message });
      return BACKEND_UNAVAILABLE;
    }
    if (r.status < 200 || r.status > 299) {
      // A 4xx here is the gateway's fault (bad API key, a request the backend rejects),
      // never the device's: the client is told to retry and the operator gets the log.
      opts.logger?.[r.status >= 500 ? "warn" : "error"](`backend ${name} refused`, { status: r.status, code: errorCode(r.json) });
      return BACKEND_UNAVAILABLE;
    }
    const parsed = schema.safeParse(r.json);
    if (!parsed.success) {
      opts.logger?.error(`backend ${name} answered an unexpected body`, { status: r.status });
      return unavailable("the control plane answered unexpectedly; retry later");
    }
    return { ok: true, answer: parsed.data };
  }

  return {
    async validateDevice(req) {
      const r = await validation("validate-device", req, validateResponse);
      if (!r.ok) return r;
      const v = r.answer;
      if (v.valid) return { ok: true, device: v.device, assignment: v.assignment };
      return { ok: false, code: v.reason, message: failureMessage(v.reason) };
    },

    async validateApp(req) {
      const r = await validation("validate-app", req, validateAppResponse);
      if (!r.ok) return r;
      const v = r.answer;
      if (v.valid) return { ok: true, device: v.device, assignment: v.assignment, app: v.app, usage: v.usage };
      return {
        ok: false,
        code: v.reason,
        message: failureMessage(v.reason),
        ...(v.device ? { device: v.device } : {}),
        ...(v.usage ? { usage: v.usage } : {}),
      };
    },

    async report(body) {
      const r = await post("/api/v1/gateway/report", body);
      if (r.status < 200 || r.status > 299) {
        throw new BackendError(`http_${r.status}`, `backend report refused: ${r.status} ${errorCode(r.json)}`);
      }
      const parsed = reportResponse.safeParse(r.json);
      if (!parsed.success) throw new BackendError("bad_response", "backend report answered an unexpected body");
      return parsed.data.accepted;
    },
  };
}

/** Human text for a failure code; the same text whatever the device, so it reveals nothing beyond the code. */
export function failureMessage(code: string): string {
  switch (code) {
    case "unknown_device":
    case "bad_token":
      return "device authentication failed";
    case "disabled":
      return "the device is disabled";
    case "expired":
      return "the device's access has expired";
    case "revoked":
      return "the device's access was revoked";
    case "session_limit":
      return "the device has reached its session limit";
    case "quota_exceeded":
      return "the device's data quota is exhausted";
    case "unavailable":
      return "the control plane is unavailable; retry later";
    default:
      return "device authentication failed";
  }
}

export interface DeviceAuthOptions extends CachedValidationOptions {
  validate: ValidateDevice;
}

export interface CheckOptions {
  /** The live session being re-validated (the backend does not count it against max_sessions). */
  session_id?: string;
  /** Nodes the gateway could not use: the backend assigns (and pins) another. */
  exclude_node_ids?: string[];
  /** Ask the backend even when the cache holds an answer. */
  fresh?: boolean;
  /**
   * The id a new session will have: the backend reserves its slot under the device's
   * max_sessions, so racing hellos (here or on other gateways) cannot overshoot the limit.
   */
  new_session_id?: string;
}

/** Positive-result cache with shared in-flight requests in front of validate-device. */
export class DeviceAuth extends CachedValidation<ValidateRequest, AuthOutcome> {
  constructor(opts: DeviceAuthOptions) {
    super(opts.validate, BACKEND_UNAVAILABLE, opts);
  }

  /**
   * Validate for a new session (no session_id) or re-validate a live one (with its
   * session_id). `fresh` skips the cache (the answer still refreshes it). Never throws.
   */
  async check(creds: Credentials, opts: CheckOptions = {}): Promise<AuthOutcome> {
    const key = cacheKey(creds);
    const hit = this.cache.get(key);
    const isNew = opts.session_id === undefined;
    // exclude_node_ids asks for a different assignment: a cached one would defeat it.
    const wantsOther = (opts.exclude_node_ids?.length ?? 0) > 0;
    if (hit && !wantsOther && !opts.fresh && (!isNew || hit.device.max_sessions === null)) return hit;

    const req: ValidateRequest = { device_id: creds.device_id, token: creds.token, client_version: creds.client_version };
    if (opts.session_id !== undefined) req.session_id = opts.session_id;
    else if (opts.new_session_id !== undefined) req.session_id = opts.new_session_id;
    if (wantsOther) req.exclude_node_ids = opts.exclude_node_ids;

    if (!isNew || wantsOther || opts.fresh) {
      return this.flights.join(`r\n${key}\n${opts.session_id ?? ""}\n${opts.exclude_node_ids ?? ""}`, () => this.call(key, req))
        .promise;
    }

    return this.flights.admit(`n\n${key}`, () => this.call(key, req), (r) => r.ok && r.device.max_sessions !== null);
  }

  /** Forget a device's cached answer (e.g. when a session learns it was revoked). */
  forget(creds: Credentials): void {
    this.cache.delete(cacheKey(creds));
  }

  private async call(key: string, req: ValidateRequest): Promise<AuthOutcome> {
    const r = await this.ask(req);
    if (r.ok) this.cache.set(key, r);
    else if (r.code !== "unavailable") this.cache.delete(key);
    return r;
  }
}

function cacheKey(creds: Credentials): string {
  return creds.device_id + "\n" + createHash("sha256").update(creds.token).digest("hex");
}
