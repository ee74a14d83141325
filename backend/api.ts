// Route declarations: each route is registered on Hono and recorded with its zod
// schemas, its credential and its audit action, so /api/v1/openapi.json is generated from
// exactly what the handlers validate, a test can walk every route and check its credential,
// and no state-changing admin route can forget the audit log.
import type { Context, Hono } from "hono";
import { z } from "zod";
import { ApiError, ErrorResponse } from "./errors.ts";

/**
 * Who may call a route: anyone; a gateway (GATEWAY_API_KEY or its own key); an owner
 * (ADMIN_TOKEN, or a session of an owner account); any admin, operators included (their
 * handlers narrow what they see: docs/10-console.md).
 */
export type Auth = "public" | "gateway" | "owner" | "admin";

export interface RouteSpec<B extends z.ZodType | undefined, Q extends z.ZodType | undefined> {
  method: "get" | "post" | "patch" | "delete";
  path: string;
  auth: Auth;
  summary: string;
  body?: B;
  query?: Q;
  response: z.ZodType;
  status?: 200 | 201;
  /**
   * The audit log's action for a successful call ("device.update"): required on every
   * state-changing admin route. "self": the handler writes its own entries (sign-in).
   */
  audit?: string;
  handler: (ctx: {
    c: Context;
    body: B extends z.ZodType ? z.infer<B> : undefined;
    query: Q extends z.ZodType ? z.infer<Q> : undefined;
  }) => Promise<unknown>;
}

export interface RecordedRoute {
  method: string;
  path: string;
  auth: Auth;
  summary: string;
  body?: z.ZodType;
  query?: z.ZodType;
  response: z.ZodType;
  status: number;
  audit?: string;
}

/** What a handler may add to its route's audit entry (`c.set("audit", …)`). */
export interface AuditNote {
  targetType?: string;
  targetId?: string | null;
  detail?: Record<string, unknown>;
}

export interface RouterHooks {
  /** Throws ApiError 401 (no or a wrong credential) or 403 (not allowed for this role). */
  authorize(c: Context, auth: Auth): Promise<void>;
  /** Records a successful audited call. */
  audit(c: Context, action: string, note: AuditNote): Promise<void>;
}

/** Request fields never copied into the audit log. */
const SECRET_FIELDS = /password|token|secret|api_url|ss_url/i;

/**
 * Text as jsonb takes it: jsonb refuses U+0000 and unpaired surrogates ("\ud800"), which a
 * request may carry in fields that are not stored (a search, a name refused later).
 */
function storable(v: string): string {
  let out = "";
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0) out += "\ufffd";
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < v.length && (v.charCodeAt(i + 1) & 0xfc00) === 0xdc00) out += v[i]! + v[++i]!;
    else if (c >= 0xd800 && c <= 0xdfff) out += "\ufffd";
    else out += v[i]!;
  }
  return out;
}

/** A value as the audit log keeps it: secrets replaced, long text cut, text made storable. */
function audited(v: unknown, depth = 0): unknown {
  if (typeof v === "string") return storable(v.length > 200 ? v.slice(0, 200) + "…" : v);
  if (Array.isArray(v)) return v.slice(0, 1000).map((x) => audited(x, depth + 1));
  if (v && typeof v === "object" && depth < 4) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[storable(k)] = SECRET_FIELDS.test(k) ? "(secret)" : audited(x, depth + 1);
    return out;
  }
  return v;
}

/** The body as the audit log keeps it. */
export function auditedBody(body: unknown): Record<string, unknown> | undefined {
  if (!body || typeof body !== "object" || Array.isArray(body)) return undefined;
  return audited(body) as Record<string, unknown>;
}

const MAX_BODY = 1 << 20;

function describeIssue(issues: z.core.$ZodIssue[]): string {
  const i = issues[0]!;
  const where = i.path.length ? i.path.join(".") : "body";
  return `${where}: ${i.message}`;
}

async function readJson(c: Context): Promise<unknown> {
  const len = Number(c.req.header("content-length") ?? 0);
  if (len > MAX_BODY) throw new ApiError(413, "payload_too_large", `request body over ${MAX_BODY} bytes`);
  const text = await c.req.text();
  if (text.length > MAX_BODY) throw new ApiError(413, "payload_too_large", `request body over ${MAX_BODY} bytes`);
  if (!text.trim()) throw new ApiError(400, "bad_json", "request body must be a JSON object");
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, "bad_json", "request body is not valid JSON");
  }
}

export class Router {
  readonly routes: RecordedRoute[] = [];
  constructor(
    private readonly app: Hono,
    private readonly hooks: RouterHooks,
  ) {}

  add<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined>(spec: RouteSpec<B, Q>): void {
    this.routes.push({ ...spec, status: spec.status ?? 200 });
    this.app.on(spec.method.toUpperCase(), spec.path, async (c) => {
      await this.hooks.authorize(c, spec.auth);
      let body: unknown;
      if (spec.body) {
        const r = spec.body.safeParse(await readJson(c));
        if (!r.success) throw new ApiError(400, "validation_failed", describeIssue(r.error.issues));
        body = r.data;
      }
      let query: unknown;
      if (spec.query) {
        const r = spec.query.safeParse(c.req.query());
        if (!r.success) throw new ApiError(400, "validation_failed", describeIssue(r.error.issues));
        query = r.data;
      }
      const out = await spec.handler({ c, body: body as never, query: query as never });
      if (spec.audit && spec.audit !== "self") {
        const note = (c.var as { audit?: AuditNote }).audit ?? {};
        await this.hooks.audit(c, spec.audit, {
          targetType: note.targetType ?? spec.audit.split(".")[0],
          targetId: note.targetId !== undefined ? note.targetId : c.req.param("id") ?? null,
          detail: { ...auditedBody(body), ...auditedBody(note.detail) },
        });
      }
      if (out instanceof Response) return out;
      return c.json(out as object, spec.status ?? 200);
    });
  }

  /** OpenAPI 3.1 from the recorded zod schemas. */
  openapi(info: { title: string; version: string }) {
    const paths: Record<string, Record<string, unknown>> = {};
    const schema = (s: z.ZodType, io: "input" | "output") => z.toJSONSchema(s, { io, unrepresentable: "any" });
    for (const r of this.routes) {
      const p = r.path.replace(/:([A-Za-z_]+)/g, "{$1}");
      const params = [...r.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({
        name: m[1],
        in: "path",
        required: true,
        schema: { type: "string" },
      }));
      if (r.query) {
        const js = schema(r.query, "input") as { properties?: Record<string, unknown>; required?: string[] };
        for (const [name, s] of Object.entries(js.properties ?? {})) {
          params.push({ name, in: "query", required: js.required?.includes(name) ?? false, schema: s as never });
        }
      }
      (paths[p] ??= {})[r.method] = {
        summary: r.summary,
        security: r.auth === "public"
          ? []
          : r.auth === "gateway"
          ? [{ gatewayKey: [] }]
          : [{ adminToken: [] }, { adminSession: [] }],
        "x-roles": r.auth === "owner" ? ["owner"] : r.auth === "admin" ? ["owner", "operator"] : [],
        ...(r.audit && r.audit !== "self" ? { "x-audit": r.audit } : {}),
        ...(params.length ? { parameters: params } : {}),
        ...(r.body
          ? { requestBody: { required: true, content: { "application/json": { schema: schema(r.body, "input") } } } }
          : {}),
        responses: {
          [String(r.status)]: { description: "OK", content: { "application/json": { schema: schema(r.response, "output") } } },
          default: { description: "Error", content: { "application/json": { schema: schema(ErrorResponse, "output") } } },
        },
      };
    }
    return {
      openapi: "3.1.0",
      info,
      paths,
      components: {
        securitySchemes: {
          adminToken: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN (the owner)" },
          adminSession: {
            type: "http",
            scheme: "bearer",
            description: "a session token from POST /api/v1/auth/sign-in (an owner or an operator: see x-roles)",
          },
          gatewayKey: {
            type: "http",
            scheme: "bearer",
            description: "GATEWAY_API_KEY or a per-gateway key from POST /api/v1/gateways",
          },
        },
      },
    };
  }
}
