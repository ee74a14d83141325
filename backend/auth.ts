// Who is calling: a gateway, the owner's ADMIN_TOKEN, or an admin account's session. The
// authorizer turns the Authorization header into a principal on the request (or a 401), and
// a route's role into a 403 for an operator on an owner's route (docs/10-console.md, "Roles").
import type { Context } from "hono";
import type { Auth } from "./api.ts";
import type { Database } from "./db/database.ts";
import { ApiError } from "./errors.ts";
import { secretEquals } from "./secrets.ts";
import type { AdminRole } from "./store/admins.ts";
import { sessionByToken, type SessionTimes } from "./store/admin-sessions.ts";
import type { Actor } from "./store/audit.ts";
import type { DeviceScope } from "./store/devices.ts";
import * as gateways from "./store/gateways.ts";

export interface Principal {
  kind: "token" | "session";
  /** The admin account; null for ADMIN_TOKEN (and for a session opened with it). */
  adminId: string | null;
  name: string;
  role: AdminRole;
  ownDevicesOnly: boolean;
  maxDevices: number | null;
  /** The session the request came with. */
  session?: { tokenHash: string; expiresAt: Date };
}

/** What the app keeps on a request once it is authorized. */
export type AuthVars = { Variables: { gatewayId: string; principal: Principal; audit: unknown } };

/** The name the audit log gives ADMIN_TOKEN. */
export const TOKEN_ACTOR = "admin-token";

export const tokenPrincipal = (): Principal => ({
  kind: "token",
  adminId: null,
  name: TOKEN_ACTOR,
  role: "owner",
  ownDevicesOnly: false,
  maxDevices: null,
});

export function actorOf(p: Principal | undefined): Actor {
  if (!p) return { type: "anonymous", id: null, name: "anonymous" };
  return p.adminId ? { type: "admin", id: p.adminId, name: p.name } : { type: "token", id: null, name: TOKEN_ACTOR };
}

/** The devices an admin sees: an operator with own_devices_only, only those it created. */
export function deviceScope(p: Principal): DeviceScope {
  return p.role === "operator" && p.ownDevicesOnly && p.adminId ? { createdBy: p.adminId } : {};
}

/** The address the request came from, as the runtime adapter saw it (docs/10: no proxy header is trusted). */
export function clientAddress(c: Context): string | null {
  const env = c.env as { remoteAddress?: unknown } | undefined;
  return typeof env?.remoteAddress === "string" ? env.remoteAddress : null;
}

export interface AuthorizerDeps {
  db: Database;
  adminToken: string;
  gatewayApiKey: string;
  sessions: SessionTimes;
  now: () => Date;
}

export function createAuthorizer(deps: AuthorizerDeps): (c: Context<AuthVars>, auth: Auth) => Promise<void> {
  return async function authorize(c, auth) {
    if (auth === "public") return;
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(\S{1,1024})\s*$/i.exec(header);
    const unauthorized = () => {
      c.header("WWW-Authenticate", 'Bearer realm="httvps"');
      return new ApiError(401, "unauthorized", "missing or wrong credential");
    };
    if (!m) throw unauthorized();
    const presented = m[1]!;
    if (auth === "gateway") {
      if (secretEquals(presented, deps.gatewayApiKey)) {
        c.set("gatewayId", "default");
        return;
      }
      const gw = await gateways.gatewayByKey(deps.db, presented);
      if (!gw) throw unauthorized();
      c.set("gatewayId", gw.name);
      return;
    }
    let principal: Principal;
    if (secretEquals(presented, deps.adminToken)) principal = tokenPrincipal();
    else {
      const s = await sessionByToken(deps.db, presented, { ...deps.sessions, now: deps.now() });
      if (!s) throw unauthorized();
      principal = s.adminId
        ? {
          kind: "session",
          adminId: s.adminId,
          name: s.name!,
          role: s.role!,
          ownDevicesOnly: s.ownDevicesOnly,
          maxDevices: s.maxDevices,
          session: { tokenHash: s.tokenHash, expiresAt: s.expiresAt },
        }
        : { ...tokenPrincipal(), kind: "session", session: { tokenHash: s.tokenHash, expiresAt: s.expiresAt } };
    }
    c.set("principal", principal);
    if (auth === "owner" && principal.role !== "owner") throw new ApiError(403, "forbidden", "this needs an owner");
  };
}
