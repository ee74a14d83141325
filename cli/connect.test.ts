// `httvps connect` in-process: option and key errors (exit 2, never the token), a final auth
// failure (exit 1 with advice), a port already taken (exit 1), and the status line.
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, describe, test } from "node:test";
import { type ScriptedGateway, startScriptedGateway } from "../client/testing.ts";
import { loadConfig } from "../config/config.ts";
import { memoryLogger } from "../logging/logger.ts";
import { formatAccessKey } from "../protocol/access-key.ts";
import { runtime } from "../runtime/index.ts";
import { connectCommand, formatBytes, formatStatus } from "./connect.ts";

const env = loadConfig({});
const KEY = "httvps://dev-1:tok-very-secret@127.0.0.1:1/ws";

async function run(argv: string[]): Promise<{ code: number; out: string; logs: string }> {
  const lines: string[] = [];
  const log = memoryLogger("debug");
  const code = await connectCommand(env, argv, log, { print: (l) => void lines.push(l) });
  return { code, out: lines.join("\n"), logs: log.lines.join("\n") };
}

const gateways: ScriptedGateway[] = [];
after(async () => {
  for (const g of gateways) await g.close();
});

describe(`httvps connect (in-process) on ${runtime}`, () => {
  test("bad keys and bad options exit 2 with a message that names the problem", async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /missing the access key/],
      [["httvps://dev-1:tok-very-secret@127.0.0.1:70000/ws"], /bad access key: port: expected 1-65535/],
      [["httvps://dev-1:tok-very-secret@127.0.0.1/ws?transport=h3"], /bad access key: transport: expected ws or h2/],
      [[KEY, "--transport", "h3"], /--transport: expected ws or h2, got "h3"/],
      [[KEY, "--transport"], /--transport needs a value/],
      [[KEY, "--insecure=yes"], /--insecure takes no value/],
      [[KEY, "--socks", "--insecure"], /--socks needs a value \(write --socks=VALUE/],
      [[KEY, "extra"], /expected one access key/],
      [[KEY, "--sock", "127.0.0.1:1080"], /unknown option --sock/],
      [[KEY, "--socks", "off", "--http", "off"], /leave nothing to do/],
      [[KEY, "--socks", "localhost"], /--socks: expected HOST:PORT/],
      [[KEY, "--http"], /--http needs a value/],
      [[KEY, "--socks-user", "alice"], /both --socks-user and --socks-pass/],
      [[KEY, "--ca", "/nonexistent/ca.pem"], /--ca: cannot read/],
      [[KEY, "--ca", "/dev/null"], /no PEM certificate/],
      [["--key-file", "/nonexistent/key"], /--key-file: cannot read/],
      [[KEY, "--key-file", "/dev/null"], /not both/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.match(r.out, message, argv.join(" "));
      assert.ok(!(r.out + r.logs).includes("tok-very-secret"), `no token in the output of ${argv.join(" ")}`);
    }
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /usage: httvps connect/);
  });

  test("a device the gateway refuses for good: exit 1 with advice, proxies closed", async () => {
    const g = await startScriptedGateway((conn, f) => {
      if (f.type === "hello") {
        conn.send({ type: "auth_result", ok: false, code: "auth_failed", message: "authentication failed" });
        conn.close(1008, "auth_failed");
      }
    });
    gateways.push(g);
    const key = formatAccessKey({
      host: "127.0.0.1",
      port: g.port,
      deviceId: "dev-1",
      token: "tok-very-secret",
      pin: g.cert.sha256,
    });
    const r = await run([key, "--socks", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
    assert.equal(r.code, 1);
    assert.match(r.out, /SOCKS5 proxy on 127\.0\.0\.1:\d+/);
    assert.match(
      r.out,
      /httvps: the gateway refused this access key \(wrong, revoked, disabled or expired\) — ask your operator/,
    );
    assert.ok(!(r.out + r.logs).includes("tok-very-secret"));
    const port = Number(/SOCKS5 proxy on 127\.0\.0\.1:(\d+)/.exec(r.out)![1]);
    // The proxy was closed on the way out: nothing listens there any more.
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(false)));
      s.once("error", () => resolve(true));
    });
    assert.equal(refused, true);
  });

  test("a proxy port already taken: exit 1 naming the address", async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const r = await run([KEY, "--socks", `127.0.0.1:${port}`, "--http", "off"]);
      assert.equal(r.code, 1);
      assert.match(r.out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
  });

  test("status lines", () => {
    assert.equal(formatBytes(0), "0 B");
    assert.equal(formatBytes(1536), "1.5 KiB");
    assert.equal(formatBytes(35 * 1024 * 1024), "35.0 MiB");
    const base = {
      gateway: "gw.example:8443",
      streams: 3,
      bytesUp: 1024,
      bytesDown: 2048,
      sessions: 1,
      transport: "h2" as const,
    };
    assert.equal(
      formatStatus({ ...base, state: "connected", sessionId: "5f0c9e1d2a7b" }),
      "httvps: connected to gw.example:8443 over h2 (session 5f0c9e1d) · streams 3 · up 1.0 KiB · down 2.0 KiB",
    );
    assert.equal(
      formatStatus({ ...base, state: "reconnecting", retryInMs: 1700, error: { code: "unavailable", message: "no route" } }),
      "httvps: reconnecting to gw.example:8443 in 1.7 s (unavailable: no route) · streams 3 · up 1.0 KiB · down 2.0 KiB",
    );
    assert.equal(
      formatStatus({ ...base, state: "failed", error: { code: "revoked", message: "gone" } }),
      "httvps: failed (revoked: gone)",
    );
  });
});
