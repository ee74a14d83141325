// `httvps connect` end to end on the runtime under test, driven by the real curl:
//   curl → SOCKS5 / HTTP proxy (the CLI, as a child process) → real gateway (direct upstream)
//   → a local HTTP target,
// with the real backend app (PGlite) deciding who may connect. Bodies are compared by sha256.
// Also: 50 curls at once, a gateway restart mid-run, and a device revoked while connected.
// All of it over each transport the runtime's gateway serves (ws, and h2 on Node and Deno),
// plus the fallback from one transport to the other.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { until } from "../../client/testing.ts";
import type { RunningGateway } from "../../gateway/gateway.ts";
import type { TransportKind } from "../../protocol/access-key.ts";
import { gatewayTransports, runtime } from "../../runtime/index.ts";
import { type HttpTarget, startHttpTarget, startSsServer } from "../../shadowsocks/ss-server.testing.ts";
import { runHttvps } from "../cli.ts";
import { curl } from "../curl.ts";
import { type Device, NODE_PASSWORD, type Stack, startStack } from "./stack.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
/** What the target serves: GET /bytes/N is its first N bytes. */
const POOL = new Uint8Array(randomBytes(8 * 1024 * 1024));

/** until(), with this file's 20 s default. */
const waitFor = (cond: () => boolean, what: string, ms = 20_000) => until(cond, what, ms);

describe(`httvps connect end to end on ${runtime}`, () => {
  let stack: Stack<"app">;
  let target: HttpTarget;
  let tport: number;

  before(async () => {
    stack = await startStack({
      upstream: "direct",
      logLevel: "error",
      // GATEWAY_DIRECT_ALLOW lets the gateways reach the loopback target.
      env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8", GATEWAY_USAGE_FLUSH_INTERVAL: "500ms" },
    });
    target = await startHttpTarget(POOL, { keepAlive: true });
    tport = target.port;
  });

  after(async () => {
    await stack?.close();
    await target?.close();
  });

  /** A gateway on `port`, retried while it is still held. */
  async function gateway(port = 0, extra: Record<string, string> = {}): Promise<RunningGateway> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        return await stack.gateway({ GATEWAY_LISTEN_ADDR: `127.0.0.1:${port}`, ...extra });
      } catch (e) {
        // A restart on the same port: the old listener may need a moment to let go of it.
        if (port === 0 || Date.now() > deadline) throw e;
        await sleep(100);
      }
    }
  }

  const device = (name: string) => stack.backend.device({ name });
  const keyFor = (d: Device, port: number, transport: TransportKind = "ws") => stack.accessKey(d, port, transport);
  const client = (key: string, flags: string[] = []) => stack.client(key, { flags });

  /** The status line that proves which transport carries the session. */
  const connectedOver = (transport: TransportKind) => new RegExp(`connected to 127\\.0\\.0\\.1:\\d+ over ${transport}`);

  for (const transport of gatewayTransports) {
    describe(`over ${transport}`, () => {
      test("GET and POST through SOCKS5, the HTTP proxy and CONNECT: every body intact", async () => {
        const gw = await gateway();
        const dev = await device("bodies");
        const c = await client(keyFor(dev, gw.port, transport));
        await waitFor(() => connectedOver(transport).test(c.output()), `connected over ${transport}`);

        const via = {
          socks: ["--socks5-hostname", `127.0.0.1:${c.socks}`],
          http: ["-x", `http://127.0.0.1:${c.http}`],
          connect: ["-p", "-x", `http://127.0.0.1:${c.http}`],
        };
        for (const [name, proxy] of Object.entries(via)) {
          for (const n of [0, 1, 65_536, 1_000_003, 8_000_000]) {
            // "localhost" makes the gateway resolve the name (SOCKS5 with a domain, not an address).
            const r = await curl([...proxy, `http://localhost:${tport}/bytes/${n}`]);
            assert.equal(r.code, 0, `${name} GET ${n}: curl ${r.code} ${r.stderr}`);
            assert.equal(r.status, "200");
            assert.equal(r.size, n, `${name} GET ${n}: size`);
            assert.equal(r.sha, r.header, `${name} GET ${n}: sha256`);
          }
          const upload = randomBytes(3_000_017);
          const file = join(stack.dir, `upload-${name}`);
          await writeFile(file, upload);
          const r = await curlBody([
            ...proxy,
            "--data-binary",
            `@${file}`,
            "-H",
            "content-type: application/octet-stream",
            `http://127.0.0.1:${tport}/upload`,
          ]);
          assert.equal(r.code, 0, `${name} POST: curl ${r.code}`);
          assert.equal(r.body, `${upload.length} ${sha(upload)}`, `${name} POST: the target saw the same bytes`);
        }

        // A refused target: the HTTP proxy explains with 502; SOCKS5 (optimistic, like Shadowsocks) ends the connection.
        const refused = await curl(["-x", `http://127.0.0.1:${c.http}`, `http://127.0.0.1:1/`]);
        assert.equal(refused.status, "502");
        const socksRefused = await curl(["--socks5-hostname", `127.0.0.1:${c.socks}`, `http://127.0.0.1:1/`], 10);
        assert.notEqual(socksRefused.code, 0);
        // Outside GATEWAY_DIRECT_ALLOW: the gateway forbids it, the HTTP proxy says 403.
        const forbidden = await curl(["-x", `http://127.0.0.1:${c.http}`, `http://10.255.255.1/`]);
        assert.equal(forbidden.status, "403");

        const out = c.output();
        assert.ok(!out.includes(dev.token), "the token never appears in the client's output");
        assert.match(out, /"msg":"session open"/, "structured JSON logs");
        const code = await c.stop();
        // Deno's node:child_process reports a child that got SIGTERM as killed by it (code null) even
        // when it handled the signal and exited 0; the final status line is the proof there.
        if (runtime !== "deno") assert.equal(code, 0, "SIGTERM is a clean exit");
        await waitFor(() => /httvps: closed/.test(c.output()), "the final status line", 5000);
      });

      test("outline mode: curl through the client, the gateway and a real ss-server", async () => {
        const ss = await startSsServer("chacha20-ietf-poly1305", NODE_PASSWORD);
        let nodeId: string | undefined;
        try {
          const res = await stack.backend.api("POST", "/api/v1/nodes", {
            name: "local ss-server",
            host: "127.0.0.1",
            port: ss.port,
            method: "chacha20-ietf-poly1305",
            password: NODE_PASSWORD,
          });
          assert.equal(res.status, 201);
          nodeId = res.json.id as string;
          const gw = await gateway(0, { GATEWAY_UPSTREAM_MODE: "outline" });
          const c = await client(keyFor(await device("outline"), gw.port, transport));
          for (const n of [1, 16_383, 16_384, 2_000_000]) {
            const r = await curl(["--socks5-hostname", `127.0.0.1:${c.socks}`, `http://127.0.0.1:${tport}/bytes/${n}`]);
            assert.equal(r.code, 0, `GET ${n}: curl ${r.code} ${r.stderr}`);
            assert.equal(r.size, n);
            assert.equal(r.sha, r.header, `GET ${n}: sha256`);
          }
          const upload = randomBytes(1_000_001);
          const file = join(stack.dir, "upload-outline");
          await writeFile(file, upload);
          const up = await curlBody([
            "-x",
            `http://127.0.0.1:${c.http}`,
            "--data-binary",
            `@${file}`,
            `http://127.0.0.1:${tport}/upload`,
          ]);
          assert.equal(up.body, `${upload.length} ${sha(upload)}`);
        } finally {
          if (nodeId) await stack.backend.api("DELETE", `/api/v1/nodes/${nodeId}`);
          await ss.stop();
        }
      });

      /** curl's body as text (for /upload's answer). */
      const curlBody = async (args: string[]) => {
        const r = await curl(args);
        return { code: r.code, body: new TextDecoder().decode(r.body) };
      };

      test("50 curls in parallel over one session", async () => {
        const gw = await gateway();
        const c = await client(keyFor(await device("parallel"), gw.port, transport));
        const runs = Array.from({ length: 50 }, (_, i) => {
          const proxy = i % 3 === 0
            ? ["--socks5-hostname", `127.0.0.1:${c.socks}`]
            : i % 3 === 1
            ? ["-x", `http://127.0.0.1:${c.http}`]
            : ["-p", "-x", `http://127.0.0.1:${c.http}`];
          return curl([...proxy, `http://127.0.0.1:${tport}/bytes/${200_000 + i * 1000}`], 60);
        });
        const results = await Promise.all(runs);
        results.forEach((r, i) => {
          assert.equal(r.code, 0, `curl ${i}: ${r.stderr}`);
          assert.equal(r.size, 200_000 + i * 1000);
          assert.equal(r.sha, r.header, `curl ${i}: sha256`);
        });
        assert.equal(gw.sessions, 1, "all of it over one session");
        await c.stop();
      });

      test("the gateway restarts mid-run: the client reconnects and later curls succeed", async () => {
        let gw = await gateway();
        const port = gw.port;
        const c = await client(keyFor(await device("restart"), port, transport));
        const socks = ["--socks5-hostname", `127.0.0.1:${c.socks}`];
        assert.equal((await curl([...socks, `http://127.0.0.1:${tport}/bytes/100000`])).code, 0);

        await gw.close();
        await waitFor(() => /reconnecting to 127\.0\.0\.1/.test(c.output()), "reconnecting status line");
        // A dial while the gateway is down waits (up to 10 s) for the next session.
        const during = curl([...socks, `http://127.0.0.1:${tport}/bytes/300000`], 40);
        await sleep(500);
        gw = await gateway(port);
        const r = await during;
        assert.equal(r.code, 0, `the curl made during the outage: ${r.stderr}`);
        assert.equal(r.sha, r.header);
        await waitFor(() => (c.output().match(new RegExp(connectedOver(transport), "g")) ?? []).length >= 2, "connected again");
        for (const proxy of [socks, ["-x", `http://127.0.0.1:${c.http}`]]) {
          const after = await curl([...proxy, `http://127.0.0.1:${tport}/bytes/1000000`]);
          assert.equal(after.code, 0, after.stderr);
          assert.equal(after.sha, after.header);
        }
        await c.stop();
      });

      test("a device revoked while connected: the client says so, stops retrying and exits non-zero", async () => {
        const gw = await gateway(0, { GATEWAY_AUTH_CACHE_TTL: "300ms" });
        const dev = await device("revoked");
        const c = await client(keyFor(dev, gw.port, transport));
        assert.equal((await curl(["-x", `http://127.0.0.1:${c.http}`, `http://127.0.0.1:${tport}/bytes/1000`])).code, 0);
        const res = await stack.backend.api("DELETE", `/api/v1/devices/${dev.device_id}`);
        assert.equal(res.status, 200);
        const exited = await new Promise<number | null>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`the client did not exit:\n${c.output()}`)), 20_000);
          c.child.once("exit", (code) => {
            clearTimeout(t);
            resolve(code);
          });
          if (c.child.exitCode !== null) {
            clearTimeout(t);
            resolve(c.child.exitCode);
          }
        });
        assert.equal(exited, 1);
        assert.match(c.output(), /device revoked — ask your operator for a new access key/);
        assert.ok(!c.output().includes(dev.token));
        // Started again with the same key: refused at once at its hello, which no longer says why
        // (auth_failed, docs/07), so the advice covers every reason; the same exit.
        const again = await runHttvps(
          ["connect", keyFor(dev, gw.port, transport), "--socks", "127.0.0.1:0", "--http", "127.0.0.1:0"],
          { LOG_LEVEL: "info" },
          { timeoutMs: 30_000 },
        );
        assert.equal(again.code, 1);
        assert.match(again.stderr, /the gateway refused this access key \(wrong, revoked, disabled or expired\)/);
        assert.ok(!(again.stdout + again.stderr).includes(dev.token));
      });
    });
  }

  test("fallback: a key asking for h2 on a gateway without it (GATEWAY_H2=0, or Bun) connects over ws and says so", async () => {
    const gw = await gateway(0, { GATEWAY_H2: "0" });
    const c = await client(keyFor(await device("fallback-ws"), gw.port, "h2"));
    await waitFor(() => connectedOver("ws").test(c.output()), "connected over ws");
    assert.match(c.output(), /transport h2 failed; falling back to ws/);
    // Node refuses h2 by ALPN; Deno.serve always speaks h2, so there the path refuses the request.
    assert.match(c.output(), runtime === "deno" ? /refused the HTTP\/2 session request/ : /does not offer HTTP\/2/);
    const r = await curl(["--socks5-hostname", `127.0.0.1:${c.socks}`, `http://127.0.0.1:${tport}/bytes/2000000`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.sha, r.header);
    await c.stop();
  });

  test("--transport overrides the key's; without h2 on the gateway (Bun) it falls back to ws", async () => {
    const gw = await gateway();
    const want = gatewayTransports.includes("h2") ? "h2" : "ws";
    const c = await client(keyFor(await device("flag"), gw.port, "ws"), ["--transport", "h2"]);
    await waitFor(() => connectedOver(want).test(c.output()), `connected over ${want}`);
    if (want === "ws") assert.match(c.output(), /transport h2 failed; falling back to ws/);
    else assert.doesNotMatch(c.output(), /falling back/);
    const r = await curl(["-x", `http://127.0.0.1:${c.http}`, `http://127.0.0.1:${tport}/bytes/3000000`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.sha, r.header);
    await c.stop();
  });

  test("a bad access key: exit 2 and a message that names the mistake, never the token", async () => {
    const r = await runHttvps(
      ["connect", "httvps://dev-9:very-secret-token@127.0.0.1:99999/ws", "--socks", "127.0.0.1:0", "--http", "off"],
      {},
      { timeoutMs: 30_000 },
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad access key: port: expected 1-65535/);
    assert.ok(!(r.stdout + r.stderr).includes("very-secret-token"));
  });
});
