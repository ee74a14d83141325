// `npm start` (`httvps dev`): what it prints is the README's block, line for line, and the
// demo device it prints — its access key and its apps' links — works and survives a restart.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { loadConfig } from "../config/config.ts";
import { memoryLogger } from "../logging/logger.ts";
import { freePort } from "../shadowsocks/ss-server.testing.ts";
import { repoRoot } from "../test/cli.ts";
import { startDevStack } from "./dev.ts";

/** The README's "what npm start prints" block, each line a pattern: placeholders, ports and paths vary. */
function readmeLines(): RegExp[] {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const block = /```\n(HTTVPS is up[\s\S]*?)\n```/.exec(readme);
  assert.ok(block, "the README shows what npm start prints");
  return block[1]!.split("\n").map((line) => {
    const pattern = line
      .replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      .replace(/<\w+>|…/g, "\\S+?")
      .replace(/:(8080|8443)\b/g, ":\\d+")
      .replace(/runtime: node/, "runtime: \\w+")
      .replace(/PGlite in \\\.\/data/, "PGlite in \\S+")
      .replace(/ADMIN_TOKEN in data\/admin-token/, "ADMIN_TOKEN in \\S+");
    return new RegExp(`^${pattern}$`);
  });
}

function get(url: string, ca: string): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    }).on("error", reject);
  });
}

describe("httvps dev (npm start)", () => {
  const dir = mkdtempSync(join(tmpdir(), "httvps-dev-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const start = async () => {
    const env = loadConfig({
      DATA_DIR: join(dir, "data"),
      BACKEND_HOST: "127.0.0.1",
      BACKEND_PORT: String(await freePort()),
      GATEWAY_LISTEN_ADDR: "127.0.0.1:0",
      GATEWAY_TLS_CERT: join(dir, "certs", "cert.pem"),
      GATEWAY_TLS_KEY: join(dir, "certs", "key.pem"),
      GATEWAY_DECOY_DIR: join(repoRoot, "deploy", "decoy"),
      LOG_LEVEL: "error",
    });
    const lines: string[] = [];
    const dev = await startDevStack(env, { logger: memoryLogger("error"), print: (l) => void lines.push(l) });
    const field = (label: string) => lines.find((l) => l.startsWith(`  ${label} `))?.slice(label.length + 2).trim();
    return { dev, lines, field, ca: readFileSync(env.GATEWAY_TLS_CERT, "utf8") };
  };

  test("prints the README's block; the demo device's links answer; a restart keeps the device and its links", async () => {
    const first = await start();
    try {
      const patterns = readmeLines();
      const printed = first.lines.slice(1, 1 + patterns.length); // the block starts after a blank line
      patterns.forEach((p, i) => assert.match(printed[i] ?? "", p, `line ${i + 1} of the README's block`));

      const ssconf = first.field("ssconf")!;
      assert.match(ssconf, new RegExp(`^ssconf://localhost:${first.dev.gatewayPort}/[A-Za-z0-9_-]{22}/outline#demo$`));
      // The Outline Client's fetch: ssconf:// → https://, no fragment.
      const config = await get(ssconf.replace(/^ssconf:/, "https:").replace(/#.*$/, ""), first.ca);
      assert.equal(config.status, 200);
      assert.equal(parseYaml(config.text).transport.tcp.secret, first.dev.device.app.secret);
      const sub = await get(first.field("subscription")!, first.ca);
      assert.equal(sub.status, 200);
      assert.equal(sub.headers["subscription-userinfo"], "upload=0; download=0; total=0; expire=0");
      assert.ok(first.field("ss_url")!.startsWith("ss://"));
    } finally {
      await first.dev.close();
    }

    const again = await start();
    try {
      assert.equal(again.dev.device.device_id, first.dev.device.device_id);
      const path = (ssconf: string) => new URL(ssconf.replace(/^ssconf:/, "https:")).pathname;
      assert.equal(path(again.field("ssconf")!), path(first.field("ssconf")!));
    } finally {
      await again.dev.close();
    }
  });
});
