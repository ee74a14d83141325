// What the embedded default keeps in DATA_DIR, one file each (mode 0600): the generated secrets
// ADMIN_TOKEN and GATEWAY_API_KEY, which the backend writes and the gateway and the admin
// commands on the same machine read, so `npm start` needs no set-up; and the gateway's decoy
// seed, from which its built-in website is generated (gateway/decoy-site.ts).
import { randomBytes } from "node:crypto";
import { chmodSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const ADMIN_TOKEN_FILE = "admin-token";
export const GATEWAY_KEY_FILE = "gateway-api-key";
export const DECOY_SEED_FILE = "decoy-seed";

/** Path of a generated secret inside DATA_DIR. */
export function secretPath(dataDir: string, file: string): string {
  return join(dataDir, file);
}

/** The secret in that file, or undefined when it is missing or empty. */
export function readSecretFile(dataDir: string, file: string): string | undefined {
  try {
    const v = readFileSync(secretPath(dataDir, file), "utf8").trim();
    return v || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The secret in that file, generated (256 random bits, base64url) and written with mode 0600
 * when missing. Written to a private temporary file and linked into place, which fails if the
 * name exists: two processes starting on one DATA_DIR agree on one secret, and neither ever
 * reads a half-written file.
 */
export function ensureSecretFile(dataDir: string, file: string): { value: string; path: string; created: boolean } {
  const path = secretPath(dataDir, file);
  const existing = readSecretFile(dataDir, file);
  if (existing) return { value: existing, path, created: false };
  mkdirSync(dataDir, { recursive: true });
  const value = randomBytes(32).toString("base64url");
  const staging = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(staging, value + "\n", { mode: 0o600, flag: "wx" });
  try {
    chmodSync(staging, 0o600); // the umask may have taken bits off the mode
    linkSync(staging, path);
  } catch (e) {
    const theirs = (e as NodeJS.ErrnoException).code === "EEXIST" && readSecretFile(dataDir, file);
    if (theirs) return { value: theirs, path, created: false };
    throw e;
  } finally {
    rmSync(staging, { force: true });
  }
  return { value, path, created: true };
}
