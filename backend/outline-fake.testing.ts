// Test support: an in-memory Outline management API, built from the documented routes
// (outline-server's api.yml, summarised in shadowsocks/testdata/NOTES.md §7), served
// over HTTPS on 127.0.0.1 with a fresh self-signed certificate. It records every request
// that reaches the HTTP layer, so a test can prove that nothing was sent.
import { randomBytes } from "node:crypto";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { createDevCertificate } from "../gateway/certs.ts";
import { isShadowsocksMethod } from "../protocol/ss-methods.ts";

export interface FakeKey {
  id: string;
  name: string;
  password: string;
  port: number;
  method: string;
  dataLimit?: { bytes: number };
}

export interface FakeRequest {
  method: string;
  /** The path under the secret prefix. */
  path: string;
  body: unknown;
}

export interface FakeOutline {
  apiUrl: string;
  certSha256: string;
  /** The same server's address under a wrong secret. */
  wrongSecretUrl: string;
  keys: Map<string, FakeKey>;
  requests: FakeRequest[];
  /** Answer every request with this status (and Outline's error shape) until cleared. */
  failWith: number | undefined;
  /** Hold every answer this long (a slow server). */
  delayMs: number;
  portForNewAccessKeys: number;
  close(): Promise<void>;
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const password = () => Array.from(randomBytes(22), (b) => ALNUM[b % ALNUM.length]).join("");

export async function startFakeOutline(opts: { portForNewAccessKeys?: number; hostname?: string } = {}): Promise<FakeOutline> {
  const cert = await createDevCertificate({ hostnames: ["localhost"], ips: ["127.0.0.1"] });
  const secret = randomBytes(16).toString("base64url");
  let nextId = 0;
  const state = {
    keys: new Map<string, FakeKey>(),
    requests: [] as FakeRequest[],
    failWith: undefined as number | undefined,
    delayMs: 0,
    portForNewAccessKeys: opts.portForNewAccessKeys ?? 8388,
  };
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => (state.delayMs ? setTimeout(answer, state.delayMs) : answer()));
    const answer = () => {
      const send = (status: number, body?: unknown) => {
        const text = body === undefined ? "" : JSON.stringify(body);
        res.writeHead(
          status,
          body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(text) },
        );
        res.end(text);
      };
      const err = (status: number, code: string, message: string) => send(status, { code, message });
      const url = new URL(req.url ?? "/", "https://x");
      if (!url.pathname.startsWith(`/${secret}/`)) return err(404, "NotFoundError", "not found");
      const path = url.pathname.slice(secret.length + 1);
      let body: unknown = undefined;
      const text = Buffer.concat(chunks).toString("utf8");
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          return err(400, "InvalidArgument", "bad JSON");
        }
      }
      state.requests.push({ method: req.method ?? "", path, body });
      if (state.failWith) return err(state.failWith, "InternalError", "failing on purpose");
      // deno-lint-ignore no-explicit-any -- an API answer read field by field
      const b = (body ?? {}) as Record<string, any>;
      const keyJson = (k: FakeKey) => ({
        ...k,
        accessUrl: `ss://${Buffer.from(`${k.method}:${k.password}`).toString("base64url")}@${
          opts.hostname ?? "127.0.0.1"
        }:${k.port}/?outline=1`,
      });
      let m: RegExpExecArray | null;
      if (req.method === "GET" && path === "/server") {
        return send(200, {
          name: "Fake Outline",
          serverId: "fake-server",
          metricsEnabled: false,
          createdTimestampMs: 0,
          version: "1.12.0",
          portForNewAccessKeys: state.portForNewAccessKeys,
          hostnameForAccessKeys: opts.hostname ?? "127.0.0.1",
        });
      }
      if (req.method === "GET" && path === "/access-keys") {
        return send(200, { accessKeys: [...state.keys.values()].map(keyJson) });
      }
      if (req.method === "POST" && path === "/access-keys") {
        if (b.id !== undefined) return err(400, "InvalidArgument", "id is not allowed");
        const method = b.method ?? "chacha20-ietf-poly1305";
        if (!isShadowsocksMethod(method)) return err(400, "InvalidArgument", "unsupported cipher");
        const limit = b.limit?.bytes;
        if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) return err(400, "InvalidArgument", "bad limit");
        const k: FakeKey = {
          id: String(nextId++),
          name: b.name ?? "",
          password: b.password ?? password(),
          port: b.port ?? state.portForNewAccessKeys,
          method,
        };
        if (limit !== undefined) k.dataLimit = { bytes: limit };
        state.keys.set(k.id, k);
        return send(201, keyJson(k));
      }
      if ((m = /^\/access-keys\/([^/]+)$/.exec(path))) {
        const id = decodeURIComponent(m[1]!);
        const k = state.keys.get(id);
        if (!k) return err(404, "NotFoundError", "no such key");
        if (req.method === "GET") return send(200, keyJson(k));
        if (req.method === "DELETE") {
          state.keys.delete(id);
          return send(204);
        }
      }
      if ((m = /^\/access-keys\/([^/]+)\/data-limit$/.exec(path))) {
        const k = state.keys.get(decodeURIComponent(m[1]!));
        if (!k) return err(404, "NotFoundError", "no such key");
        if (req.method === "DELETE") {
          delete k.dataLimit;
          return send(204);
        }
        if (req.method === "PUT") {
          const bytes = b.limit?.bytes;
          if (!Number.isInteger(bytes) || bytes < 0) return err(400, "InvalidArgument", "bad limit");
          k.dataLimit = { bytes };
          return send(204);
        }
      }
      return err(404, "NotFoundError", "no such route");
    };
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    apiUrl: `https://127.0.0.1:${port}/${secret}`,
    wrongSecretUrl: `https://127.0.0.1:${port}/wrong${secret}`,
    certSha256: cert.sha256.toUpperCase(),
    close: () =>
      new Promise<void>((resolve) => {
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  });
}
