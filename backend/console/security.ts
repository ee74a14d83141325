// The console's browser-facing guards: the session cookie, the per-session CSRF token, the
// Origin check on every POST, and the headers every console answer carries.
import { createHash } from "node:crypto";
import type { Context } from "hono";
import { getCookie } from "hono/cookie";

/** The cookie holding the admin session's token (the same token the API takes as a bearer). */
export const SESSION_COOKIE = "httvps_console";

/**
 * The CSRF token of a session: derived from its secret token, so it is per session, needs no
 * storage, and cannot be computed by a page that does not know the cookie.
 */
export function csrfToken(sessionToken: string): string {
  return createHash("sha256").update("httvps console csrf\0").update(sessionToken).digest("base64url");
}

export function sessionToken(c: Context): string | undefined {
  const t = getCookie(c, SESSION_COOKIE);
  return t && /^[\x21-\x7e]{1,1024}$/.test(t) ? t : undefined;
}

const isHttps = (c: Context) => new URL(c.req.url).protocol === "https:";

/** Set-Cookie for a session: HttpOnly, SameSite=Strict, Secure over TLS, ending with the session. */
export function sessionCookie(c: Context, token: string, expiresAt: Date): string {
  const secure = isHttps(c) ? "; Secure" : "";
  return `${SESSION_COOKIE}=${token}; Path=/admin; HttpOnly; SameSite=Strict${secure}; Expires=${expiresAt.toUTCString()}`;
}

export function clearedCookie(c: Context): string {
  const secure = isHttps(c) ? "; Secure" : "";
  return `${SESSION_COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict${secure}; Max-Age=0`;
}

/**
 * Whether a state-changing request comes from the console's own pages: its Origin (or, when a
 * browser sends none, its Referer) must be this server's own origin. SameSite=Strict already
 * keeps the cookie off cross-site requests; this also refuses same-site ones from other origins.
 */
export function sameOrigin(c: Context): boolean {
  const own = new URL(c.req.url).origin;
  const origin = c.req.header("origin");
  if (origin) return origin === own;
  const referer = c.req.header("referer");
  if (!referer) return false;
  try {
    return new URL(referer).origin === own;
  } catch {
    return false;
  }
}

/**
 * Scripts and styles only from the console's own files (no inline script), images only from
 * itself and data: (none now; QR codes are inline SVG), no framing, forms only to itself.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

export function securityHeaders(c: Context): void {
  c.header("content-security-policy", CONSOLE_CSP);
  c.header("x-frame-options", "DENY");
  c.header("x-content-type-options", "nosniff");
  c.header("referrer-policy", "same-origin");
  c.header("cache-control", "no-store");
}
