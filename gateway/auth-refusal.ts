// What a client that failed its hello is told. A client without valid credentials must learn
// nothing about which part was wrong (docs/07 "No oracle"): an unknown device id, a wrong
// token, and a device that is disabled, revoked or expired all get the same auth_result, the
// same close and the same timing, so nobody can probe which device ids exist or what became of
// a stolen key. The real reason stays with the operator (the log line and the
// sessions_total{outcome} label) and with the hello limiter, which counts it.
import { Code } from "../protocol/errors.ts";

/**
 * Refusals a client is told as they are: only a device with the right token reaches
 * quota_exceeded and session_limit, and unavailable and rate_limited are the gateway's own
 * state; none tells a guesser anything. Every other reason — the five credential ones, and one
 * a newer backend may invent — is `auth_failed`: a reason this list does not know stays hidden.
 */
const TOLD: ReadonlySet<string> = new Set([Code.quota_exceeded, Code.session_limit, Code.unavailable, Code.rate_limited]);

export const AUTH_FAILED_MESSAGE = "authentication failed";

/** The code and message the client gets for a refusal; `masked` when its real reason is hidden. */
export function refusalForClient(code: string, message: string): { code: string; message: string; masked: boolean } {
  if (TOLD.has(code)) return { code, message, masked: false };
  return { code: Code.auth_failed, message: AUTH_FAILED_MESSAGE, masked: true };
}
