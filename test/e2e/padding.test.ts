// Padding and early data end to end on the runtime under test (docs/03 §12–13): the real
// gateway (TLS, WebSocket and HTTP/2 where served, direct mode) and the real client session,
// new and old on either side — padding on or off at the gateway (GATEWAY_PADDING=0 behaves as
// a gateway without the feature) and at the client — moving bytes sha256-equal; early data
// carrying a request on a fresh session; and a refused hello with early data dialling nothing.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { openH2Socket } from "../../client/h2-socket.ts";
import { openGatewaySocket, type OpenSocket } from "../../client/gateway-socket.ts";
import { ClientError, ClientSession, type ClientSessionOptions } from "../../client/session.ts";
import { concat, record, until } from "../../client/testing.ts";
import type { TunnelStream } from "../../client/tunnel-stream.ts";
import type { BackendClient } from "../../gateway/auth.ts";
import { type AccessKey, parseAccessKey } from "../../protocol/access-key.ts";
import { gatewayTransports, runtime } from "../../runtime/index.ts";
import { type HttpTarget, startHttpTarget } from "../../shadowsocks/ss-server.testing.ts";
import { curl } from "../curl.ts";
import { type Stack, startStack, stubBackend, TEST_DEVICE } from "./stack.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const POOL = new Uint8Array(randomBytes(256 * 1024));
const OPENERS: Array<[string, OpenSocket]> = [
  ["ws", openGatewaySocket],
  ...(gatewayTransports.includes("h2") ? [["h2", openH2Socket] as [string, OpenSocket]] : []),
];

describe(`padding and early data end to end on ${runtime}`, () => {
  let stack: Stack<BackendClient>;
  let target: HttpTarget;

  before(async () => {
    stack = await startStack({ backend: stubBackend(), upstream: "direct", env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" } });
    target = await startHttpTarget(POOL);
  });
  after(async () => {
    await target?.close();
    await stack?.close();
  });

  function keyFor(port: number, device = TEST_DEVICE): AccessKey {
    const r = parseAccessKey(stack.accessKey(device, port));
    if (!r.ok) throw new Error(r.error.message);
    return r.key;
  }

  /** One request on `st`: the answer's head and body once the target has sent it all (and ended its side). */
  async function exchange(st: TunnelStream, request: string, body?: Uint8Array): Promise<{ head: string; body: Uint8Array }> {
    const rx = record(st);
    st.write(new TextEncoder().encode(request));
    if (body) st.write(body);
    await until(() => rx.ended || rx.closed !== null, "the answer");
    assert.equal(rx.closed?.err, undefined, `stream ended with ${rx.closed?.err?.code}`);
    st.close();
    const all = concat(rx.data);
    const at = Buffer.from(all).indexOf("\r\n\r\n");
    return { head: new TextDecoder().decode(all.subarray(0, at)), body: all.subarray(at + 4) };
  }
  const get = (n: number) => `GET /bytes/${n} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`;

  const cases: Array<[string, Record<string, string>, Partial<ClientSessionOptions>, boolean]> = [
    ["new gateway, new client", {}, {}, true],
    ["old gateway (GATEWAY_PADDING=0), new client", { GATEWAY_PADDING: "0", GATEWAY_EARLY_DATA: "0" }, {}, false],
    ["new gateway, client with padding off", {}, { padding: false }, false],
  ];
  for (const [name, env, opts, padded] of cases) {
    for (const [transport, openSocket] of OPENERS) {
      test(`${name} over ${transport}: ${padded ? "padded" : "unpadded"}, download and upload sha256-equal`, async () => {
        await stack.withGateway(env, async (gw) => {
          const s = await ClientSession.open({ key: keyFor(gw.port), tls: { ca: stack.cert.certPem }, openSocket, ...opts });
          try {
            assert.equal(s.features.has("padding"), padded);
            const t = { host: "127.0.0.1", port: target.port };
            // Small answers (every frame of the stream padded) and a large one (past the first 8).
            for (const n of [10, 3000, POOL.length]) {
              const { head, body } = await exchange(s.openStream(t), get(n));
              assert.match(head, /^HTTP\/1\.1 200/);
              assert.equal(sha(body), sha(POOL.subarray(0, n)), `GET /bytes/${n}`);
            }
            const up = POOL.subarray(0, 100_000);
            const upload = `POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: ${up.length}\r\nConnection: close\r\n\r\n`;
            const answer = await exchange(s.openStream(t), upload, up);
            assert.equal(new TextDecoder().decode(answer.body), `${up.length} ${sha(up)}`);
          } finally {
            s.close();
          }
        });
      });
    }
  }

  test("early data: a session after one that was granted it carries its first request behind the hello", async () => {
    await stack.withGateway({}, async (gw) => {
      const key = keyFor(gw.port);
      const first = await ClientSession.open({ key, tls: { ca: stack.cert.certPem } });
      assert.ok(first.features.has("early_data"));
      first.close();
      let answer: ReturnType<typeof exchange> | undefined;
      const s = await ClientSession.open({ key, tls: { ca: stack.cert.certPem }, earlyData: true }, {
        helloSent: (s) => void (answer = exchange(s.openStream({ host: "127.0.0.1", port: target.port }), get(2000))),
      });
      try {
        assert.ok(answer, "the stream was opened before auth_result");
        const { head, body } = await answer!;
        assert.match(head, /^HTTP\/1\.1 200/);
        assert.equal(sha(body), sha(POOL.subarray(0, 2000)));
      } finally {
        s.close();
      }
    });
  });

  test("httvps connect: padding asked for and granted by default, neither with --no-padding; curl through both", async () => {
    await stack.withGateway({}, async (gw) => {
      const key = stack.accessKey(TEST_DEVICE, gw.port);
      for (const flags of [[], ["--no-padding", "--no-early-data"]]) {
        const client = await stack.client(key, { http: false, flags });
        try {
          const r = await curl([
            "--socks5-hostname",
            `127.0.0.1:${client.socks}`,
            `http://127.0.0.1:${target.port}/bytes/5000`,
          ]);
          assert.equal(r.status, "200", r.stderr);
          assert.equal(r.sha, sha(POOL.subarray(0, 5000)));
          const open = client.output().split("\n").find((l) => l.includes('"msg":"session open"')) ?? "";
          assert.match(open, /"features":\[/, "the session-open line names the features");
          assert.equal(open.includes('"padding"'), flags.length === 0, `${flags.join(" ") || "defaults"}: ${open}`);
        } finally {
          await client.stop();
        }
      }
    });
  });

  test("early data with a wrong token: auth_failed, the early stream ends, and the target sees no connection", async () => {
    let connections = 0;
    const counter = net.createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => counter.listen(0, "127.0.0.1", r));
    try {
      await stack.withGateway({ GATEWAY_AUTH_FAIL_DELAY: "0ms" }, async (gw) => {
        const key = keyFor(gw.port, { ...TEST_DEVICE, token: "not-the-token" });
        let rx: ReturnType<typeof record> | undefined;
        await assert.rejects(
          ClientSession.open({ key, tls: { ca: stack.cert.certPem }, earlyData: true }, {
            helloSent: (s) => {
              const st = s.openStream({ host: "127.0.0.1", port: (counter.address() as net.AddressInfo).port });
              rx = record(st);
              st.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
            },
          }),
          (e: unknown) => e instanceof ClientError && e.code === "auth_failed",
        );
        await until(() => rx?.closed != null, "the early stream ended");
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(connections, 0, "nothing dialled for a refused hello");
      });
    } finally {
      counter.close();
    }
  });
});
