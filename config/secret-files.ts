// Where the embedded default keeps its generated secrets: ADMIN_TOKEN and GATEWAY_API_KEY,
// one file each in DATA_DIR (mode 0600). The backend writes them (backend/secrets.ts); the
// gateway and the admin commands on the same machine read them, so `npm start` needs no set-up.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const ADMIN_TOKEN_FILE = "admin-token";
export const GATEWAY_KEY_FILE = "gateway-api-key";

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
