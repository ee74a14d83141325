// Signing in: a name and password (or ADMIN_TOKEN) for a session token. Failed attempts go to
// the audit log, and the same rows are the rate limit: past a number of failures in a window
// for one account name, or from one address, sign-in answers 429 without checking anything.
// The count lives in the database, so it holds across restarts and across several backends.
import type { Database } from "./db/database.ts";
import { ApiError } from "./errors.ts";
import { type Principal, TOKEN_ACTOR, tokenPrincipal } from "./auth.ts";
import { decoyHash, hashPassword, needsRehash, type ScryptCost, verifyPassword } from "./passwords.ts";
import { secretEquals } from "./secrets.ts";
import { adminByName, setAdminPassword } from "./store/admins.ts";
import { openSession, type SessionTimes } from "./store/admin-sessions.ts";
import { failedSignIns, writeAudit } from "./store/audit.ts";

export interface SignInLimits {
  /** Failed sign-ins for one account name within the window before it is refused. */
  perAccount: number;
  /** Failed sign-ins from one address within the window. */
  perAddress: number;
  windowMs: number;
}

export const DEFAULT_SIGN_IN_LIMITS: SignInLimits = { perAccount: 10, perAddress: 20, windowMs: 15 * 60_000 };

export interface SignInDeps {
  db: Database;
  adminToken: string;
  sessions: SessionTimes;
  now: () => Date;
  scryptCost: ScryptCost;
  limits: SignInLimits;
}

export type SignInInput = { name: string; password: string } | { token: string };

export interface SignedIn {
  token: string;
  expiresAt: Date;
  principal: Principal;
}

export async function signIn(
  deps: SignInDeps,
  input: SignInInput,
  client: { address: string | null; userAgent?: string },
): Promise<SignedIn> {
  const now = deps.now();
  const name = "name" in input ? input.name : null;
  const tried = await failedSignIns(deps.db, name, client.address, new Date(now.getTime() - deps.limits.windowMs));
  if ((name !== null && tried.by_name >= deps.limits.perAccount) || tried.by_address >= deps.limits.perAddress) {
    // Not audited: an attacker could otherwise fill the log at the rate it can send requests.
    throw new ApiError(429, "too_many_attempts", "too many failed sign-ins; try again later", {
      "retry-after": String(Math.ceil(deps.limits.windowMs / 1000)),
    });
  }
  const fail = async (reason: string): Promise<never> => {
    await writeAudit(deps.db, {
      actor: { type: "anonymous", id: null, name: "anonymous" },
      action: "auth.sign_in_failed",
      targetType: "admin",
      targetId: name ?? TOKEN_ACTOR,
      address: client.address,
      detail: { reason },
      at: now,
    });
    throw new ApiError(401, "bad_credentials", "wrong name or password");
  };

  let principal: Principal;
  if ("token" in input) {
    if (!secretEquals(input.token, deps.adminToken)) return fail("wrong_token");
    principal = tokenPrincipal();
  } else {
    const admin = await adminByName(deps.db, input.name);
    // An unknown name costs the same scrypt as a known one, so timing does not tell names apart.
    const ok = await verifyPassword(input.password, admin?.password_hash ?? (await decoyHash(deps.scryptCost)));
    if (!admin) return fail("unknown_name");
    if (!ok) return fail("wrong_password");
    if (admin.disabled_at) return fail("disabled");
    if (needsRehash(admin.password_hash, deps.scryptCost)) {
      await setAdminPassword(deps.db, admin.id, await hashPassword(input.password, deps.scryptCost));
    }
    principal = {
      kind: "session",
      adminId: admin.id,
      name: admin.name,
      role: admin.role,
      ownDevicesOnly: admin.own_devices_only,
      maxDevices: admin.max_devices,
    };
  }
  const s = await openSession(deps.db, principal.adminId, {
    ...deps.sessions,
    now,
    address: client.address ?? undefined,
    userAgent: client.userAgent?.slice(0, 200),
  });
  await writeAudit(deps.db, {
    actor: principal.adminId
      ? { type: "admin", id: principal.adminId, name: principal.name }
      : { type: "token", id: null, name: TOKEN_ACTOR },
    action: "auth.sign_in",
    targetType: "admin",
    targetId: principal.adminId,
    address: client.address,
    at: now,
  });
  return { token: s.token, expiresAt: s.expiresAt, principal: { ...principal, kind: "session" } };
}
