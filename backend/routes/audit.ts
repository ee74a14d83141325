// /api/v1/audit: the audit log, newest first, owners only.
import { ApiError } from "../errors.ts";
import * as S from "../schemas.ts";
import { auditJson, listAudit } from "../store/audit.ts";
import { decodeCursor, encodeCursor, type RouteContext } from "./context.ts";

export function auditRoutes(ctx: RouteContext): void {
  ctx.r.add({
    method: "get",
    path: "/api/v1/audit",
    auth: "owner",
    summary: "The audit log: who did what to what, when and from where; newest first",
    query: S.AuditQuery,
    response: S.AuditList,
    handler: async ({ query }) => {
      let beforeId: number | undefined;
      if (query.cursor) {
        beforeId = Number(decodeCursor(query.cursor));
        if (!Number.isSafeInteger(beforeId) || beforeId < 1) {
          throw new ApiError(400, "validation_failed", "cursor: not a cursor this API returned");
        }
      }
      const rows = await listAudit(ctx.db, {
        beforeId,
        actorId: query.actor_id,
        action: query.action,
        targetId: query.target_id,
        from: query.from ? new Date(query.from) : undefined,
        to: query.to ? new Date(query.to) : undefined,
      }, query.limit + 1);
      const page = rows.slice(0, query.limit);
      return {
        entries: page.map(auditJson),
        next_cursor: rows.length > query.limit ? encodeCursor(Number(page.at(-1)!.id)) : null,
      };
    },
  });
}
