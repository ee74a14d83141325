// The harness of the adapter contract tests (serve.test.ts, serve-upgrade.test.ts,
// ws-connect.test.ts): HTTPS requests and raw WebSocket upgrades on their own connections, a
// session handler that records everything, and a TCP relay whose one direction can be stopped.
import { randomBytes } from "node:crypto";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { DevCertificate } from "../gateway/certs.ts";
import { type ListeningServer, serveGateway, type ServeGatewayOptions, type SessionHandler } from "./index.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request on its own connection (no agent, so nothing lingers after the test). */
export function request(
  port: number,
  ca: string,
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1",
      port,
      path,
      method: init.method ?? "GET",
      headers: init.headers,
      ca,
      servername: "localhost",
      agent: false,
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** serveGateway on 127.0.0.1 (a port the OS chooses) with `cert`, sessions on /ws; `opts` give the rest. */
export function testGateway(
  cert: DevCertificate,
  opts: Omit<ServeGatewayOptions, "hostname" | "port" | "tls" | "wsPath">,
): Promise<ListeningServer> {
  return serveGateway({ hostname: "127.0.0.1", port: 0, tls: { cert: cert.certPem, key: cert.keyPem }, wsPath: "/ws", ...opts });
}

/** A session handler that records everything, for assertions. */
export function recorder() {
  const r = {
    messages: [] as (string | Uint8Array)[],
    closes: [] as [number, string][],
    drains: 0,
    handler: undefined as unknown as SessionHandler,
  };
  r.handler = {
    message: (m) => void r.messages.push(m),
    drain: () => void r.drains++,
    close: (code, reason) => void r.closes.push([code, reason]),
  };
  return r;
}

/** A TCP relay in front of the gateway whose gateway→client direction can be stopped: it then stops reading. */
export async function relay(targetPort: number) {
  const sockets = new Set<net.Socket>();
  let up: net.Socket | undefined;
  let stopped = false;
  const srv = net.createServer((down) => {
    const u = (up = net.connect(targetPort, "127.0.0.1"));
    for (const s of [down, u]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        down.destroy();
        u.destroy();
      });
      s.on("end", () => (s === down ? u : down).end());
    }
    down.on("data", (b) => void (u.write(b) || down.pause()));
    u.on("drain", () => down.resume());
    u.on("data", (b) => void (down.write(b) || u.pause()));
    down.on("drain", () => void (stopped || u.resume()));
    if (stopped) u.pause();
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    stop: () => {
      stopped = true;
      up?.pause();
    },
    go: () => {
      stopped = false;
      up?.resume();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

/** A raw WebSocket upgrade over TLS: the response head (status line and headers, lower-cased names), then the socket is closed. */
export function rawUpgrade(
  port: number,
  ca: string,
  path: string,
  extra: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
      const headers = {
        Host: "localhost",
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        ...extra,
      };
      s.write(`GET ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`);
    });
    let text = "";
    s.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const [line, ...rest] = text.slice(0, end).split("\r\n");
      const headers: Record<string, string> = {};
      for (const h of rest) headers[h.slice(0, h.indexOf(":")).toLowerCase()] = h.slice(h.indexOf(":") + 1).trim();
      s.destroy();
      resolve({ status: Number(line!.split(" ")[1]), headers });
    });
    s.on("error", reject);
  });
}
