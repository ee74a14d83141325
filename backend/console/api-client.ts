// How the console talks to the API: every page and action is a request to the public admin API,
// made in process through the same app (`app.fetch`) with the session token as its bearer and
// the browser's address as the env. So the API's authorization, validation, role checks and
// audit log apply to the console exactly as to curl or the CLI: the console adds none of its own.
import type { Context } from "hono";

export type ApiFetch = (req: Request, env: unknown) => Response | Promise<Response>;

/** An API answer that was not a success; the page shows its message. */
export class ApiFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export interface ConsoleApi {
  // deno-lint-ignore no-explicit-any -- API answers are read field by field by the pages
  get(path: string): Promise<any>;
  // deno-lint-ignore no-explicit-any
  send(method: "POST" | "PATCH" | "DELETE", path: string, body?: unknown): Promise<any>;
}

export function consoleApi(c: Context, fetchApi: ApiFetch, token: string | undefined): ConsoleApi {
  const call = async (method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    const ua = c.req.header("user-agent");
    if (ua) headers["user-agent"] = ua;
    const url = new URL(path, c.req.url);
    const res = await fetchApi(
      new Request(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }),
      c.env,
    );
    const text = await res.text();
    let json: { error?: { code?: string; message?: string } } | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.status >= 300) {
      throw new ApiFailure(res.status, json?.error?.code ?? "error", json?.error?.message ?? `HTTP ${res.status}`);
    }
    return json;
  };
  return { get: (path) => call("GET", path), send: (method, path, body) => call(method, path, body) };
}

/** A query string from the set values. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : "";
}
