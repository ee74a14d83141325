// A tiny `.env` reader: KEY=VALUE lines, `#` comments, optional quotes.
// Values already present in the environment win, as with every dotenv tool.
import { readFileSync } from "node:fs";

export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\n/g, "\n");
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    out[m[1]!] = value;
  }
  return out;
}

/**
 * Merge `.env` (when present) under the real environment. HTTVPS_ENV_FILE names another
 * file, or `none` for no file at all (the test suite's children: a developer's `.env`
 * must not change what the tests see).
 */
export function loadEnv(
  path = process.env.HTTVPS_ENV_FILE || ".env",
  env: Record<string, string | undefined> = process.env,
): Record<string, string | undefined> {
  let file: Record<string, string> = {};
  if (path === "none") return { ...env };
  try {
    file = parseDotenv(readFileSync(path, "utf8"));
  } catch {
    // no .env: the environment alone
  }
  return { ...file, ...env };
}
