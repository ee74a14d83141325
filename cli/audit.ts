// `httvps audit list`: the audit log, newest first (owners: the CLI uses ADMIN_TOKEN).
// deno-lint-ignore-file no-explicit-any -- the commands print the API's JSON answers, whose shapes docs/02 and the OpenAPI document own
import type { Env } from "../config/config.ts";
import { adminCall, output, type Print, table } from "./admin-api.ts";
import { type ParsedOptions, UsageError, wholeNumber } from "./args.ts";

export const AUDIT_OPTIONS = {
  limit: { type: "string" },
  action: { type: "string" },
  actor: { type: "string" },
  target: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  json: { type: "boolean" },
} as const;

export async function auditCommand(env: Env, args: ParsedOptions<typeof AUDIT_OPTIONS>, print: Print): Promise<void> {
  const [sub, ...rest] = args.positionals;
  if (sub !== "list" || rest.length) throw new UsageError("audit: expected `audit list`");
  const { values } = args;
  const want = wholeNumber(values, "limit") ?? 50;
  if (want < 1) throw new UsageError("--limit: at least 1");
  const q = new URLSearchParams();
  if (values.action) q.set("action", values.action);
  if (values.actor) q.set("actor_id", values.actor);
  if (values.target) q.set("target_id", values.target);
  if (values.from) q.set("from", values.from);
  if (values.to) q.set("to", values.to);
  const entries: any[] = [];
  let cursor: string | null = null;
  do {
    q.set("limit", String(Math.min(500, want - entries.length)));
    if (cursor) q.set("cursor", cursor);
    const page: any = await adminCall(env, "GET", `/api/v1/audit?${q}`);
    entries.push(...page.entries);
    cursor = page.next_cursor;
  } while (cursor && entries.length < want);
  output(
    print,
    values.json === true,
    entries,
    () =>
      table(
        entries.map((e) => ({
          ...e,
          actor: e.actor.name,
          target: e.target_id,
          detail: e.detail ? JSON.stringify(e.detail) : null,
        })),
        [
          "at",
          "actor",
          "action",
          "target",
          "address",
          "detail",
        ],
      ),
  );
}
