// /api/v1/admins…: the admin accounts, owners only. ADMIN_TOKEN is always an owner besides them.
import { ApiError, notFound } from "../errors.ts";
import { hashPassword } from "../passwords.ts";
import * as S from "../schemas.ts";
import { closeAdminSessions } from "../store/admin-sessions.ts";
import * as admins from "../store/admins.ts";
import { idParam, type RouteContext } from "./context.ts";

export function adminRoutes(ctx: RouteContext): void {
  const { r, db } = ctx;
  const cost = ctx.deps.scryptCost;

  r.add({
    method: "post",
    path: "/api/v1/admins",
    auth: "owner",
    audit: "admin.create",
    summary: "Create an admin account (owner or operator)",
    body: S.AdminCreate,
    response: S.Admin,
    status: 201,
    handler: async ({ c, body }) => {
      const a = await admins.createAdmin(db, {
        name: body.name,
        role: body.role,
        password_hash: await hashPassword(body.password, cost),
        own_devices_only: body.own_devices_only,
        max_devices: body.max_devices,
      });
      if (!a) throw new ApiError(409, "conflict", `an admin named ${body.name} exists`);
      c.set("audit", { targetId: a.id });
      return admins.adminJson(a);
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/admins",
    auth: "owner",
    summary: "The admin accounts",
    response: S.AdminList,
    handler: async () => ({ admins: (await admins.listAdmins(db)).map(admins.adminJson) }),
  });

  r.add({
    method: "get",
    path: "/api/v1/admins/:id",
    auth: "owner",
    summary: "One admin account",
    response: S.Admin,
    handler: async ({ c }) => {
      const a = await admins.getAdmin(db, idParam(c));
      if (!a) throw notFound("admin");
      return admins.adminJson(a);
    },
  });

  r.add({
    method: "patch",
    path: "/api/v1/admins/:id",
    auth: "owner",
    audit: "admin.update",
    summary: "Change an account's role, device scope or cap; disable it (its sessions end) or enable it",
    body: S.AdminPatch,
    response: S.Admin,
    handler: async ({ c, body }) => {
      const a = await admins.updateAdmin(db, idParam(c), body);
      if (!a) throw notFound("admin");
      if (body.disabled) await closeAdminSessions(db, a.id);
      return admins.adminJson(a);
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/admins/:id/password",
    auth: "owner",
    audit: "admin.set_password",
    summary: "Set an account's password; its sessions end",
    body: S.AdminPassword,
    response: S.Admin,
    handler: async ({ c, body }) => {
      const id = idParam(c);
      if (!(await admins.setAdminPassword(db, id, await hashPassword(body.password, cost)))) throw notFound("admin");
      await closeAdminSessions(db, id);
      return admins.adminJson((await admins.getAdmin(db, id))!);
    },
  });
}
