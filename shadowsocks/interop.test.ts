// Our client against the reference server: shadowsocks-libev's ss-server, one per method,
// in front of a local HTTP target. Raw HTTP/1.1 through shadowsocksDialer(tcpDialer());
// bodies checked by SHA-256 both ways. A missing ss-server fails the suite: without it
// this file would prove nothing (the launcher and the target: ss-server.testing.ts).
// HTTVPS_BIG=1 adds a 64 MiB case.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { type Dialer, type Duplex, StreamError, type Target } from "../transport/stream.ts";
import { tcpDialer } from "../transport/tcp.ts";
import type { AeadProvider } from "./aead.ts";
import { cipherSpec, loadWasmProviders, METHODS, providerFor, PROVIDERS, usable } from "./ciphers.ts";
import { expectedProvider, runtimeName } from "./ciphers.testing.ts";
import { shadowsocksDialer } from "./dialer.ts";
import { freePort, type HttpTarget, type SsServer, startHttpTarget, startSsServer } from "./ss-server.testing.ts";
import { HttpResponse, type HttpResult } from "../test/http-response.ts";

const MiB = 1024 * 1024;
const big = process.env.HTTVPS_BIG === "1";
const POOL = new Uint8Array(randomBytes(big ? 64 * MiB : 8 * MiB));
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface ExchangeResult extends HttpResult {
  closeError?: StreamError;
}

/** One raw HTTP/1.1 exchange over a Duplex. No closeWrite: libev drops the whole connection at the first FIN. */
function httpExchange(d: Duplex, head: string, body?: Uint8Array): Promise<ExchangeResult> {
  return new Promise((resolve, reject) => {
    const response = new HttpResponse();
    let writeResolve: (() => void) | null = null;
    // A regression should fail here with a reason, not hang until the runner's timeout.
    const guard = setTimeout(() => d.close(new StreamError("test_timeout", "no end of exchange within 120 s")), 120_000);
    d.start({
      data: (chunk) => response.push(chunk),
      // The response is complete at the server's FIN; close our side as an HTTP client does.
      end: () => d.closeWrite(),
      drain() {
        writeResolve?.();
      },
      close(err) {
        clearTimeout(guard);
        writeResolve?.();
        if (!response.head) return reject(err ?? new Error("connection closed before the response head"));
        resolve({ ...response.result(), closeError: err });
      },
    });
    void (async () => {
      const headBytes = new TextEncoder().encode(head);
      if (!body) return void d.write(headBytes);
      // The head travels with the first piece of body, as a browser would send it.
      const step = 64 * 1024;
      for (let i = 0; i < body.length || i === 0; i += step) {
        const piece = body.subarray(i, i + step);
        const ok = d.write(i === 0 ? Buffer.concat([headBytes, piece]) : piece);
        if (!ok) await new Promise<void>((r) => (writeResolve = r));
        writeResolve = null;
      }
    })();
  });
}

async function download(ss: Dialer, target: Target, n: number): Promise<void> {
  const d = await ss.dial(target);
  const r = await httpExchange(d, `GET /bytes/${n} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  assert.equal(r.closeError, undefined);
  assert.equal(r.status, 200);
  assert.equal(r.bodyLength, n);
  assert.equal(r.bodySha256, r.headers["x-sha256"]);
  assert.equal(r.bodySha256, sha256(POOL.subarray(0, n)));
}

async function upload(ss: Dialer, target: Target, n: number): Promise<void> {
  const body = POOL.subarray(0, n);
  const d = await ss.dial(target);
  const r = await httpExchange(
    d,
    `POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n`,
    body,
  );
  assert.equal(r.closeError, undefined);
  assert.equal(r.status, 200);
  assert.equal(r.bodyText, `${n} ${sha256(body)}`);
}

const SIZES = [1, 16383, 16384, MiB];
const PASSWORD = "interop-Pa55word";

describe("interop with shadowsocks-libev ss-server", () => {
  let target: HttpTarget;
  const servers = new Map<string, SsServer>();
  const viaServer = (method: string, opts: { password?: string; timeoutMs?: number; provider?: AeadProvider } = {}) =>
    shadowsocksDialer(
      {
        host: "127.0.0.1",
        port: servers.get(method)!.port,
        method,
        password: opts.password ?? PASSWORD,
        timeoutMs: opts.timeoutMs,
        provider: opts.provider,
      },
      tcpDialer(),
    );

  before(async () => {
    target = await startHttpTarget(POOL);
    for (const m of METHODS) servers.set(m, await startSsServer(m, PASSWORD));
  });

  after(async () => {
    for (const s of servers.values()) await s.stop();
    await target.close();
  });

  test(`the tests below without a provider use the one this runtime (${runtimeName}) picks`, () => {
    for (const m of METHODS) assert.equal(providerFor(cipherSpec(m)).name, expectedProvider(m), m);
  });

  for (const method of METHODS) {
    test(`${method}: download and upload of ${SIZES.join(", ")} bytes`, async () => {
      const ss = viaServer(method);
      const t = { host: "127.0.0.1", port: target.port };
      for (const n of SIZES) {
        await download(ss, t, n);
        await upload(ss, t, n);
      }
    });
  }

  test("chacha20-ietf-poly1305: 8 MiB each way, to a domain name target", async () => {
    const ss = viaServer("chacha20-ietf-poly1305");
    await download(ss, { host: "localhost", port: target.port }, 8 * MiB);
    await upload(ss, { host: "localhost", port: target.port }, 8 * MiB);
  });

  if (big) {
    test("aes-256-gcm: 64 MiB each way (HTTVPS_BIG=1)", async () => {
      const ss = viaServer("aes-256-gcm");
      await download(ss, { host: "127.0.0.1", port: target.port }, 64 * MiB);
      await upload(ss, { host: "127.0.0.1", port: target.port }, 64 * MiB);
    });
  }

  test("every provider usable here (FFI, node:crypto, WebAssembly, noble) talks to ss-server too", async () => {
    assert.ok(await loadWasmProviders(), "libsodium loads");
    const cases: [string, AeadProvider][] = [];
    for (const method of ["chacha20-ietf-poly1305", "aes-256-gcm"]) {
      for (const p of PROVIDERS.filter((p) => usable(p, cipherSpec(method)))) cases.push([method, p]);
    }
    assert.ok(cases.length >= 4, cases.map(([m, p]) => `${m}/${p.name}`).join(", "));
    for (const [method, provider] of cases) {
      const ss = viaServer(method, { provider });
      await download(ss, { host: "127.0.0.1", port: target.port }, MiB);
      await upload(ss, { host: "127.0.0.1", port: target.port }, MiB);
    }
  });

  test("a wrong password ends the stream with upstream_timeout after the configured timeout", async () => {
    const ss = viaServer("chacha20-ietf-poly1305", { password: "not-the-password", timeoutMs: 1000 });
    const d = await ss.dial({ host: "127.0.0.1", port: target.port });
    const t0 = performance.now();
    const err = await new Promise<StreamError | undefined>((resolve) => {
      d.start({ data: () => resolve(new StreamError("unexpected_data")), end() {}, drain() {}, close: resolve });
      d.write(new TextEncoder().encode("GET /bytes/1 HTTP/1.1\r\nHost: x\r\n\r\n"));
    });
    const elapsed = performance.now() - t0;
    assert.equal(err?.code, "upstream_timeout");
    assert.ok(elapsed >= 900 && elapsed < 10_000, `closed after ${elapsed.toFixed(0)} ms`);
  });

  test("a target that refuses: libev closes without a byte, which reads as a plain end", async () => {
    const closedPort = await freePort();
    const d = await viaServer("aes-128-gcm").dial({ host: "127.0.0.1", port: closedPort });
    const events: string[] = [];
    const err = await new Promise<StreamError | undefined>((resolve) => {
      const end = () => {
        events.push("end");
        d.closeWrite();
      };
      d.start({ data: () => events.push("data"), end, drain() {}, close: resolve });
      d.write(new TextEncoder().encode("hello"));
    });
    assert.equal(err, undefined);
    assert.deepEqual(events, ["end"]);
  });
});
