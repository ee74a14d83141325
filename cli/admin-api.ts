// The administration commands' client of the backend's admin API (docs/02). They go through
// HTTP rather than the database because an embedded PGlite directory belongs to the one
// backend process that has it open. The credential is ADMIN_TOKEN (or DATA_DIR/admin-token).
// deno-lint-ignore-file no-explicit-any -- the commands print the API's JSON answers, whose shapes docs/02 and the OpenAPI document own
import { backendUrl, type Env } from "../config/config.ts";
import { ADMIN_TOKEN_FILE, readSecretFile, secretPath } from "../config/secret-files.ts";

export class AdminApiError extends Error {
  constructor(readonly code: string, message: string, readonly status?: number) {
    super(message);
  }
}

export function adminToken(env: Env): string {
  const t = env.ADMIN_TOKEN ?? readSecretFile(env.DATA_DIR, ADMIN_TOKEN_FILE);
  if (!t) {
    throw new AdminApiError(
      "no_admin_token",
      `ADMIN_TOKEN is not set and ${
        secretPath(env.DATA_DIR, ADMIN_TOKEN_FILE)
      } does not exist (start the backend once, or set ADMIN_TOKEN)`,
    );
  }
  return t;
}

export async function adminCall(env: Env, method: string, path: string, body?: unknown): Promise<any> {
  const base = backendUrl(env);
  let res: Response;
  try {
    res = await fetch(base + path, {
      method,
      headers: {
        authorization: `Bearer ${adminToken(env)}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (e) {
    throw new AdminApiError(
      "backend_unreachable",
      `cannot reach the backend at ${base} (${(e as Error).message}); is it running? (npm run backend)`,
    );
  }
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AdminApiError("bad_response", `backend answered ${res.status} with a non-JSON body`, res.status);
  }
  if (!res.ok) throw new AdminApiError(json?.error?.code ?? "error", json?.error?.message ?? `HTTP ${res.status}`, res.status);
  return json;
}

export type Print = (line: string) => void;

export function table(rows: Record<string, unknown>[], cols: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? "-" : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join("\n");
}

/** `--json`: the answer as indented JSON; otherwise the text. */
export function output(print: Print, json: boolean, answer: unknown, text: () => string): void {
  print(json ? JSON.stringify(answer, null, 2) : text());
}
