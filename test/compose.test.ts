// docker-compose.yml and deploy/Dockerfile against the one configuration schema, with no
// Docker needed: every ${VAR} the compose file substitutes is documented in .env.example, every
// variable it hands to an httvps container is one the programs read (a typo would be silently
// ignored there), and its fallbacks are the programs' own defaults. `make .env` yields a file
// the config accepts. Where Debian's docker-compose is installed, it validates the file too.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { envSchema, loadConfig } from "../config/config.ts";
import { parseDotenv } from "../config/dotenv.ts";
import { repoRoot } from "./cli.ts";

const compose = readFileSync(join(repoRoot, "docker-compose.yml"), "utf8");
const dockerfile = readFileSync(join(repoRoot, "deploy", "Dockerfile"), "utf8");
const example = readFileSync(join(repoRoot, ".env.example"), "utf8");
const configKeys = new Set(Object.keys(envSchema.shape));

/** Every ${VAR}, ${VAR:-default} and ${VAR:?message} in the compose file ($$ is a literal $). */
function substitutions(text: string): { name: string; fallback?: string }[] {
  const out: { name: string; fallback?: string }[] = [];
  for (const m of text.replace(/\$\$/g, "").matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*)|:?\?[^}]*)?\}/g)) {
    out.push({ name: m[1]!, fallback: m[2] ? m[3] : undefined });
  }
  return out;
}

/** Variables .env.example documents, set (`NAME=`) or commented out (`# NAME=`). */
const documented = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!));

/** `environment:` keys per service (block mapping style, as the file is written). */
function environmentKeys(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let service: string | undefined;
  let inServices = false;
  let envIndent: number | undefined;
  for (const line of text.split("\n")) {
    if (/^\S/.test(line)) {
      inServices = line.startsWith("services:");
      service = undefined;
      envIndent = undefined;
      continue;
    }
    const indent = line.length - line.trimStart().length;
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    if (inServices && indent === 2 && /^\s{2}[A-Za-z0-9_-]+:\s*$/.test(line)) {
      service = line.trim().slice(0, -1);
      out.set(service, []);
      envIndent = undefined;
      continue;
    }
    if (service && /^\s+environment:\s*$/.test(line)) {
      envIndent = indent;
      continue;
    }
    if (envIndent !== undefined && indent > envIndent) {
      const m = /^\s+([A-Za-z_][A-Za-z0-9_]*):/.exec(line);
      if (m) out.get(service!)!.push(m[1]!);
    } else envIndent = undefined;
  }
  return out;
}

describe("docker-compose.yml and deploy/Dockerfile", () => {
  test("every ${VAR} the compose file uses is documented in .env.example", () => {
    const used = substitutions(compose);
    assert.ok(used.length >= 20, `found ${used.length} substitutions: the parser sees the file`);
    const missing = [...new Set(used.map((u) => u.name))].filter((n) => !documented.has(n));
    assert.deepEqual(missing, [], `not in .env.example: ${missing.join(", ")}`);
  });

  test("a compose fallback is the program's own default", () => {
    const defaults = loadConfig({});
    for (const { name, fallback } of substitutions(compose)) {
      if (!configKeys.has(name) || !fallback) continue;
      const withFallback = loadConfig({ [name]: fallback }) as Record<string, unknown>;
      assert.deepEqual(withFallback[name], (defaults as Record<string, unknown>)[name], `${name}: compose says ${fallback}`);
    }
  });

  test("every variable handed to an httvps container is one the programs read", () => {
    const env = environmentKeys(compose);
    assert.deepEqual([...env.keys()].sort(), ["backend", "gateway", "migrate", "postgres", "prometheus"]);
    for (const service of ["backend", "gateway", "migrate"]) {
      const keys = env.get(service)!;
      assert.ok(keys.length > 0, `${service} has an environment`);
      const unknown = keys.filter((k) => !configKeys.has(k));
      assert.deepEqual(unknown, [], `${service}: not config variables: ${unknown.join(", ")}`);
    }
    assert.ok(env.get("backend")!.includes("DATABASE_URL") && env.get("migrate")!.includes("DATABASE_URL"));
    const dockerEnv = [...dockerfile.matchAll(/^\s*(?:ENV\s+)?([A-Z][A-Z0-9_]*)=\S+/gm)].map((m) => m[1]!);
    assert.ok(dockerEnv.length >= 5, "the Dockerfile's ENV block was found");
    assert.deepEqual(dockerEnv.filter((k) => !configKeys.has(k)), []);
    // Fixed values inside the image must be valid too.
    const fixed = Object.fromEntries(
      [...dockerfile.matchAll(/^\s*(?:ENV\s+)?([A-Z][A-Z0-9_]*)=(\S+)/gm)].map((m) => [m[1]!, m[2]!]),
    );
    assert.doesNotThrow(() => loadConfig(fixed));
  });

  test(".env.example as it is, and `make .env`'s output, are accepted by the config", () => {
    assert.doesNotThrow(() => loadConfig(parseDotenv(example)));
    const dir = mkdtempSync(join(tmpdir(), "httvps-make-env-"));
    try {
      const file = join(dir, ".env");
      const r = spawnSync("node", [join(repoRoot, "scripts", "make-env.mjs"), file], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      const made = parseDotenv(readFileSync(file, "utf8"));
      const cfg = loadConfig(made);
      assert.match(cfg.ADMIN_TOKEN ?? "", /^[0-9a-f]{64}$/);
      assert.match(cfg.GATEWAY_API_KEY ?? "", /^[0-9a-f]{64}$/);
      assert.notEqual(cfg.ADMIN_TOKEN, cfg.GATEWAY_API_KEY);
      assert.match(made.HTTVPS_CONTAINER_USER ?? "", /^\d+:\d+$/);
      // Never overwrites: a second run leaves the secrets alone.
      const again = spawnSync("node", [join(repoRoot, "scripts", "make-env.mjs"), file], { encoding: "utf8" });
      assert.equal(again.status, 1);
      assert.equal(parseDotenv(readFileSync(file, "utf8")).ADMIN_TOKEN, cfg.ADMIN_TOKEN);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const dockerCompose = spawnSync("docker-compose", ["version"], { encoding: "utf8" });
  test("docker-compose validates the file offline", {
    skip: dockerCompose.status === 0 ? false : "docker-compose is not installed (apt-get install docker-compose)",
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), "httvps-compose-"));
    try {
      const file = join(dir, ".env");
      assert.equal(spawnSync("node", [join(repoRoot, "scripts", "make-env.mjs"), file]).status, 0);
      const base = ["--project-directory", repoRoot, "-f", join(repoRoot, "docker-compose.yml"), "--env-file", file];
      for (const extra of [[], ["--profile", "metrics"]]) {
        const r = spawnSync("docker-compose", [...base, ...extra, "config", "-q"], { encoding: "utf8", timeout: 60_000 });
        assert.equal(r.status, 0, r.stderr);
      }
      // Without the secrets it refuses, naming what to set.
      const bare = join(dir, "bare.env");
      spawnSync("cp", [join(repoRoot, ".env.example"), bare]);
      const r = spawnSync("docker-compose", [...base.slice(0, -1), bare, "config", "-q"], { encoding: "utf8", timeout: 60_000 });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /set (ADMIN_TOKEN|GATEWAY_API_KEY) in \.env/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
