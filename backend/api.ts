// Route declarations: each route is registered on Hono and recorded with its zod
// schemas, so /api/v1/openapi.json is generated from exactly what the handlers validate,
// and a test can walk every route and check its credential.
import type { Context, Hono } from "hono";
import { z } from "zod";
import { ApiError, ErrorResponse } from "./errors.ts";

export type Auth = "admin" | "gateway" | "public";

export interface RouteSpec<B extends z.ZodType | undefined, Q extends z.ZodType | undefined> {
  method: "get" | "post" | "patch" | "delete";
  path: string;
  auth: Auth;
  summary: string;
  body?: B;
  query?: Q;
  response: z.ZodType;
  status?: 200 | 201;
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
    private readonly authorize: (c: Context, auth: Auth) => Promise<void>,
  ) {}

  add<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined>(spec: RouteSpec<B, Q>): void {
    this.routes.push({ ...spec, status: spec.status ?? 200 });
    this.app.on(spec.method.toUpperCase(), spec.path, async (c) => {
      await this.authorize(c, spec.auth);
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
        security: r.auth === "public" ? [] : [{ [r.auth === "admin" ? "adminToken" : "gatewayKey"]: [] }],
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
          adminToken: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN" },
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
