// /api/v1/auth/sign-in, sign-out, me, password: an admin account's session. The session token
// is a bearer token here; the console keeps the same token in its cookie (docs/10-console.md).
import type { Context } from "hono";
import { clientAddress, type Principal } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { hashPassword, verifyPassword } from "../passwords.ts";
import * as S from "../schemas.ts";
import { signIn } from "../sign-in.ts";
import { closeAdminSessions, closeSession } from "../store/admin-sessions.ts";
import { getAdmin, setAdminPassword } from "../store/admins.ts";
import { principalOf, type RouteContext } from "./context.ts";

export function meJson(p: Principal, idleMs: number) {
  return {
    kind: p.kind,
    id: p.adminId,
    name: p.name,
    role: p.role,
    own_devices_only: p.ownDevicesOnly,
    max_devices: p.maxDevices,
    session: p.session ? { expires_at: p.session.expiresAt.toISOString(), idle_timeout_seconds: idleMs / 1000 } : null,
  };
}

export function authRoutes(ctx: RouteContext): void {
  const { r, db, deps } = ctx;
  const idleMs = deps.sessions.idleMs;
  const sessionOf = (c: Context) => {
    const p = principalOf(c);
    if (!p.session) throw new ApiError(400, "not_a_session", "this request came with ADMIN_TOKEN, not a session token");
    return { p, session: p.session };
  };

  r.add({
    method: "post",
    path: "/api/v1/auth/sign-in",
    auth: "public",
    audit: "self",
    summary: "Sign in with a name and password (or ADMIN_TOKEN) for a session token; failures are rate-limited",
    body: S.SignIn,
    response: S.SignedIn,
    status: 201,
    handler: async ({ c, body }) => {
      const s = await signIn(
        {
          db,
          adminToken: deps.adminToken,
          sessions: deps.sessions,
          now: ctx.now,
          scryptCost: deps.scryptCost,
          limits: deps.signInLimits,
        },
        body,
        { address: clientAddress(c), userAgent: c.req.header("user-agent") },
      );
      const admin = meJson(s.principal, idleMs);
      return {
        token: s.token,
        expires_at: s.expiresAt.toISOString(),
        idle_timeout_seconds: idleMs / 1000,
        admin: { ...admin, session: { expires_at: s.expiresAt.toISOString(), idle_timeout_seconds: idleMs / 1000 } },
      };
    },
  });

  r.add({
    method: "post",
    path: "/api/v1/auth/sign-out",
    auth: "admin",
    audit: "auth.sign_out",
    summary: "End the session this request came with",
    response: S.SignedOut,
    handler: async ({ c }) => {
      const { p, session } = sessionOf(c);
      await closeSession(db, session.tokenHash);
      c.set("audit", { targetType: "admin", targetId: p.adminId });
      return { signed_out: true as const };
    },
  });

  r.add({
    method: "get",
    path: "/api/v1/auth/me",
    auth: "admin",
    summary: "Who this request is: the admin token or an account's session, its role and scope",
    response: S.Me,
    handler: async ({ c }) => meJson(principalOf(c), idleMs),
  });

  r.add({
    method: "post",
    path: "/api/v1/auth/password",
    auth: "admin",
    audit: "auth.password",
    summary: "Change the signed-in account's own password; its other sessions end",
    body: S.OwnPassword,
    response: S.Me,
    handler: async ({ c, body }) => {
      const { p, session } = sessionOf(c);
      const admin = p.adminId ? await getAdmin(db, p.adminId) : undefined;
      if (!admin) throw new ApiError(400, "not_an_account", "a session of ADMIN_TOKEN has no password");
      if (!(await verifyPassword(body.current_password, admin.password_hash))) {
        throw new ApiError(403, "bad_credentials", "the current password is wrong");
      }
      await setAdminPassword(db, admin.id, await hashPassword(body.new_password, deps.scryptCost));
      await closeAdminSessions(db, admin.id, session.tokenHash);
      c.set("audit", { targetType: "admin", targetId: admin.id });
      return meJson(p, idleMs);
    },
  });
}
