// Credentials: 256-bit random tokens, stored only as sha256 digests and compared in
// constant time. A fast hash is right here because the input is a random 256-bit value,
// not a human password: nothing to brute-force, and validation stays cheap.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Compare a presented secret with a stored sha256 hex digest in constant time. */
export function tokenMatches(presented: string, storedHashHex: string): boolean {
  const a = createHash("sha256").update(presented, "utf8").digest();
  const b = Buffer.from(storedHashHex, "hex");
  return b.length === a.length && timingSafeEqual(a, b);
}

/** Constant-time equality of two secrets of any length (hashing first equalises lengths). */
export function secretEquals(presented: string, expected: string): boolean {
  const a = createHash("sha256").update(presented, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}
