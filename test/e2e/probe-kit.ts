// What an active prober (a censor's scanner) can do to the gateway, with raw node:tls sockets
// so every byte is ours: send a request (possibly slowly, possibly malformed), then record what
// comes back and how — the status line, the header names in order, the body, whether the
// server closes afterwards, and a coarse timing class. Also a minimal WebSocket client for
// what happens after a successful upgrade, and one HTTP/2 request (node:http2 over our own TLS
// socket) for the same questions over h2. Used by probes.test.ts and no-oracle.test.ts; no
// assertions here.
import { randomBytes } from "node:crypto";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { H2_CONTENT_TYPE } from "../../runtime/index.ts";
import { encodeMessage, RECORD_CLOSE, RECORD_HEADER_BYTES } from "../../runtime/record-socket.ts";
import { parseHead, ResponseReader } from "../http-response.ts";
import type { AdminApi, Device } from "./stack.ts";

/** Pause between two writes (slowloris). */
export interface Pause {
  pauseMs: number;
}
export type Step = string | Uint8Array | Pause;

export interface ProbeOptions {
  /** SNI to send; false sends none (connecting to an IP sends none either). */
  servername?: string | false;
  alpn?: string[];
  /** How long after the last write to watch for an answer and a close. */
  watchMs?: number;
}

/**
 * immediate: the first answer byte (or the close) came within FAST_MS of the last write.
 * waits: nothing yet after watchMs, connection still open (the server wants more bytes or a timeout).
 * slow: something came, but later than FAST_MS.
 */
export type TimingClass = "immediate" | "slow" | "waits";
export const FAST_MS = 200;

export interface ProbeResult {
  /** Empty when the server answered nothing. */
  statusLine: string;
  /** Header names in order, as sent (case kept). */
  headerNames: string[];
  /** Header values other than those that change per request or per file (Date, ETag, Last-Modified). */
  stableHeaders: string[];
  /** Everything after the first head, per-request header lines (Date, ETag, Last-Modified) blanked. */
  body: string;
  /** Status lines seen (a kept-alive connection may answer several requests). */
  responses: number;
  /** All bytes received, latin1. */
  raw: string;
  /** Did the server close the connection within watchMs after the last write? */
  closed: boolean;
  timing: TimingClass;
  alpn: string | false;
  tlsError?: string;
}

const VOLATILE = new Set(["date", "etag", "last-modified"]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Open a TLS connection to 127.0.0.1:port, play `steps`, watch the answer. Never rejects. */
export function probe(port: number, steps: Step[], opts: ProbeOptions = {}): Promise<ProbeResult> {
  const watchMs = opts.watchMs ?? 1200;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let lastWrite = 0;
    let firstByte: number | undefined;
    let closedAt: number | undefined;
    let tlsError: string | undefined;
    let alpn: string | false = false;
    let connected = false;
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      rejectUnauthorized: false, // the gateway's certificate is not what is under test
      servername: opts.servername === false ? undefined : (opts.servername ?? "localhost"),
      ALPNProtocols: opts.alpn,
    });
    socket.on("data", (b: Buffer) => {
      firstByte ??= performance.now();
      chunks.push(b);
    });
    socket.on("error", (e) => (tlsError ??= (e as NodeJS.ErrnoException).code ?? e.message));
    socket.on("close", () => (closedAt ??= performance.now()));
    socket.on("end", () => socket.end());
    socket.once("secureConnect", async () => {
      connected = true;
      alpn = socket.alpnProtocol ?? false;
      for (const s of steps) {
        if (closedAt !== undefined) break;
        if (typeof s === "object" && "pauseMs" in s) await sleep(s.pauseMs);
        else socket.write(s);
      }
      lastWrite = performance.now();
      const deadline = lastWrite + watchMs;
      while (closedAt === undefined && performance.now() < deadline) await sleep(20);
      const closed = closedAt !== undefined;
      socket.destroy();
      const raw = Buffer.concat(chunks).toString("latin1");
      const first = firstByte ?? closedAt;
      const timing: TimingClass = first === undefined ? "waits" : first - lastWrite < FAST_MS ? "immediate" : "slow";
      resolve({ ...parse(raw), raw, closed, timing, alpn, tlsError });
    });
    socket.once("close", () => {
      // The handshake itself failed: nothing above ran.
      if (!connected) {
        resolve({
          statusLine: "",
          headerNames: [],
          stableHeaders: [],
          body: "",
          responses: 0,
          raw: "",
          closed: true,
          timing: "immediate",
          alpn,
          tlsError: tlsError ?? "closed",
        });
      }
    });
  });
}

function parse(raw: string): Pick<ProbeResult, "statusLine" | "headerNames" | "stableHeaders" | "body" | "responses"> {
  const end = raw.indexOf("\r\n\r\n");
  const responses = (raw.match(/(^|\n)HTTP\/1\.[01] \d{3} /g) ?? []).length;
  if (!raw.startsWith("HTTP/") || end < 0) return { statusLine: "", headerNames: [], stableHeaders: [], body: raw, responses };
  const head = parseHead(raw.slice(0, end));
  const stable = head.fields.filter(([name]) => !VOLATILE.has(name.toLowerCase()));
  const body = raw.slice(end + 4).replace(/^(date|etag|last-modified):.*$/gim, "$1:");
  return {
    statusLine: head.statusLine,
    headerNames: head.fields.map(([name]) => name),
    stableHeaders: stable.map(([name, value]) => `${name.toLowerCase()}: ${value}`),
    body,
    responses,
  };
}

/** A request head: request line, then headers, then the blank line. */
export const head = (line: string, headers: string[] = ["Host: localhost"]): string => [line, ...headers, "", ""].join("\r\n");

export const wsKey = (): string => randomBytes(16).toString("base64");

export const upgradeHeaders = (key = wsKey(), version = "13"): string[] => [
  "Host: localhost",
  "Upgrade: websocket",
  "Connection: Upgrade",
  `Sec-WebSocket-Key: ${key}`,
  `Sec-WebSocket-Version: ${version}`,
];

// ---- after a successful upgrade ----

export interface WsFrame {
  opcode: number;
  payload: Buffer;
}

/** A masked client frame (RFC 6455 5.2), FIN set. */
export function wsFrame(opcode: number, payload: Uint8Array | string): Buffer {
  const data = typeof payload === "string" ? Buffer.from(payload, "utf8") : Buffer.from(payload);
  const len = data.length;
  const hdr = len < 126
    ? Buffer.from([0x80 | opcode, 0x80 | len])
    : len < 65536
    ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 255])
    : undefined;
  if (!hdr) throw new Error("frames over 64 KiB are not needed by the probes");
  const mask = randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = data[i]! ^ mask[i & 3]!;
  return Buffer.concat([hdr, mask, masked]);
}

/** Server frames from the bytes after the 101 head (unmasked; lengths up to 64 bits). */
export function wsFrames(bytes: Buffer): WsFrame[] {
  const out: WsFrame[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f;
    let len = bytes[at + 1]! & 0x7f;
    let off = at + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(off));
      off += 8;
    }
    if (off + len > bytes.length) break;
    out.push({ opcode, payload: bytes.subarray(off, off + len) });
    at = off + len;
  }
  return out;
}

export interface SessionProbe {
  /** Text frames' JSON `type` (and `code`/`ok` when present), e.g. "auth_result:false:bad_token". */
  messages: string[];
  /** The close frame's code and reason, if one came. */
  closeCode?: number;
  closeReason?: string;
  /** Did the TCP connection end within watchMs after the last write? */
  closed: boolean;
  timing: TimingClass;
  /** ms from the last write to the close frame. */
  closeAfterMs?: number;
  /** With keepOpen: ends the connection (the caller must). */
  end?: () => void;
  /** Every byte the server sent after the 101 head, as received: its WebSocket frames (unmasked). */
  raw: Buffer;
  /** ms from the last write to the first byte after the 101 head. */
  firstByteAfterMs?: number;
}

/** How session() reaches the gateway: by default TLS from the system's choice of loopback address. */
export interface SessionVia {
  /** Plain TCP (a gateway with GATEWAY_TLS=off). */
  plain?: boolean;
  /** The source address, e.g. 127.0.0.2 to be a peer other than 127.0.0.1. */
  localAddress?: string;
  /** More request header lines ("X-Forwarded-For: …"). */
  headers?: string[];
}

/**
 * Upgrade on `path`, then send `frames` (raw bytes each), and report what the session does.
 * keepOpen leaves the connection up after watchMs (a live session) for the caller to end().
 */
export function session(
  port: number,
  path: string,
  frames: Uint8Array[],
  watchMs = 1500,
  keepOpen = false,
  via: SessionVia = {},
): Promise<SessionProbe> {
  return new Promise((resolve, reject) => {
    const to = { host: "127.0.0.1", port, localAddress: via.localAddress };
    const socket = via.plain ? net.connect(to) : tls.connect({ ...to, rejectUnauthorized: false, servername: "localhost" });
    /** The bytes after the 101 head: the server's WebSocket frames. */
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let lastWrite = 0;
    let closeAt: number | undefined;
    let ended: number | undefined;
    let firstByte: number | undefined;
    const response = new ResponseReader((b) => {
      if (upgraded) firstByte ??= performance.now();
      buf = Buffer.concat([buf, b]);
    });
    socket.on("error", () => {});
    socket.on("close", () => (ended ??= performance.now()));
    socket.on("end", () => socket.end());
    socket.on("data", (b: Buffer) => {
      response.push(b);
      if (!upgraded) {
        if (!response.head) return;
        if (!response.head.statusLine.startsWith("HTTP/1.1 101")) {
          socket.destroy();
          return reject(new Error(`no upgrade: ${response.head.statusLine}`));
        }
        upgraded = true;
        for (const f of frames) socket.write(f);
        lastWrite = performance.now();
      }
      const close = closeAt === undefined ? wsFrames(buf).find((f) => f.opcode === 8) : undefined;
      if (close) {
        closeAt = performance.now();
        socket.write(wsFrame(8, close.payload.subarray(0, 2))); // complete the closing handshake, as a client does
      }
    });
    socket.write(head(`GET ${path} HTTP/1.1`, [...upgradeHeaders(), ...(via.headers ?? [])]));
    const started = performance.now();
    const watch = async () => {
      while (!upgraded && ended === undefined && performance.now() - started < 5000) await sleep(10);
      if (!upgraded) {
        socket.destroy();
        return reject(new Error("no answer to the upgrade"));
      }
      const deadline = lastWrite + watchMs;
      while (ended === undefined && performance.now() < deadline) await sleep(20);
      if (!keepOpen) socket.destroy();
      const all = wsFrames(buf);
      const messages = all
        .filter((f) => f.opcode === 1)
        .map((f) => {
          try {
            const j = JSON.parse(f.payload.toString("utf8")) as { type?: string; ok?: boolean; code?: string };
            return [j.type, j.ok, j.code].filter((x) => x !== undefined).join(":");
          } catch {
            return "unparsable";
          }
        });
      const close = all.find((f) => f.opcode === 8);
      const first = firstByte ?? ended;
      resolve({
        messages,
        closeCode: close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined,
        closeReason: close ? close.payload.subarray(2).toString("utf8") : undefined,
        closed: ended !== undefined,
        timing: first === undefined ? "waits" : first - lastWrite < FAST_MS ? "immediate" : "slow",
        closeAfterMs: closeAt === undefined ? undefined : Math.round(closeAt - lastWrite),
        end: keepOpen ? () => socket.destroy() : undefined,
        raw: buf,
        firstByteAfterMs: firstByte === undefined ? undefined : firstByte - lastWrite,
      });
    };
    void watch();
  });
}

// ---- HTTP/2 ----

export interface H2Request {
  method?: string;
  path: string;
  /** More request headers (lower-case names). */
  headers?: Record<string, string>;
  /** Request body writes, in order. */
  body?: Uint8Array[];
  /**
   * End the request body after the writes (default). false keeps it open, as a session does,
   * until the response body holds `endWhen(body)` (then it ends, as a client answers a close).
   */
  end?: boolean;
  endWhen?: (body: Buffer) => boolean;
  watchMs?: number;
}

export interface H2Result {
  /** 0 when no response came. */
  status: number;
  /** Response headers other than :status and date, `name: value` in the order received. */
  headers: string[];
  body: Buffer;
  /** Did the response end (END_STREAM) within watchMs? */
  ended: boolean;
  /** The RST_STREAM code the server reset the stream with, if it did. */
  rstCode?: number;
  alpn: string | false;
  /** ms from the last write to the first response body byte. */
  firstByteAfterMs?: number;
  error?: string;
}

/** One h2 request on a fresh TLS connection to 127.0.0.1:port (ALPN h2 only). Never rejects. */
export function h2(port: number, r: H2Request): Promise<H2Result> {
  const watchMs = r.watchMs ?? 1500;
  return new Promise((resolve) => {
    const out: H2Result = { status: 0, headers: [], body: Buffer.alloc(0), ended: false, alpn: false };
    const sock = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      rejectUnauthorized: false,
      ALPNProtocols: ["h2"],
    });
    sock.on("error", (e) => (out.error ??= e.message));
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session?.destroy();
      sock.destroy();
      resolve(out);
    };
    const timer = setTimeout(finish, watchMs + 5000);
    let session: http2.ClientHttp2Session | undefined;
    sock.once("secureConnect", () => {
      out.alpn = sock.alpnProtocol ?? false;
      if (out.alpn !== "h2") return finish();
      session = http2.connect(`https://localhost:${port}`, { createConnection: () => sock });
      session.on("error", (e) => (out.error ??= e.message));
      const req = session.request(
        { ":method": r.method ?? "GET", ":path": r.path, ...r.headers },
        { endStream: (r.body?.length ?? 0) === 0 && r.end !== false },
      );
      req.on("error", (e) => (out.error ??= e.message));
      let lastWrite = performance.now();
      let ended = false;
      const endRequest = () => {
        if (ended) return;
        ended = true;
        if (!req.writableEnded) req.end();
      };
      req.on("response", (headers) => {
        out.status = Number(headers[":status"] ?? 0);
        for (const [k, v] of Object.entries(headers)) {
          if (k === ":status" || k === "date") continue;
          out.headers.push(`${k}: ${Array.isArray(v) ? v.join(", ") : v}`);
        }
      });
      req.on("data", (b: Buffer) => {
        out.firstByteAfterMs ??= performance.now() - lastWrite;
        out.body = Buffer.concat([out.body, b]);
        if (r.endWhen?.(out.body)) endRequest();
      });
      req.on("end", () => (out.ended = true));
      req.on("close", () => {
        if (req.rstCode) out.rstCode = req.rstCode;
        setTimeout(finish, 20);
      });
      for (const b of r.body ?? []) req.write(b);
      lastWrite = performance.now();
      if (r.body?.length && r.end !== false) endRequest();
      setTimeout(finish, watchMs);
    });
    sock.once("close", () => setTimeout(finish, 20));
  });
}

// ---- credential refusals (no-oracle.test.ts, bench/auth-timing.ts) ----

/** The five refusals that must look alike (docs/07 "No oracle"), as hellos: [name, device id, token]. */
export async function refusedHellos(api: AdminApi): Promise<Array<[string, string, string]>> {
  const known = await api.device({ name: "known" });
  const disabled = await api.device({ name: "disabled" });
  await api.admin("PATCH", `/api/v1/devices/${disabled.device_id}`, { disabled: true });
  const revoked = await api.device({ name: "revoked" });
  await api.admin("DELETE", `/api/v1/devices/${revoked.device_id}`);
  const expired = await api.device({ name: "expired" });
  await api.admin("PATCH", `/api/v1/devices/${expired.device_id}`, { expires_at: "2020-01-01T00:00:00Z" });
  const other = (d: Device) => d.token.slice(0, -1) + (d.token.endsWith("A") ? "B" : "A");
  return [
    ["unknown device", "5d1c6a52-3f0e-4d7a-9b8c-1e2f3a4b5c6d", known.token],
    ["wrong token", known.device_id, other(known)],
    ["disabled", disabled.device_id, disabled.token],
    ["revoked", revoked.device_id, revoked.token],
    ["expired", expired.device_id, expired.token],
  ];
}

export const helloText = (device_id: string, token: string): string =>
  JSON.stringify({ type: "hello", device_id, token, client_version: "probe", features: ["binary", "flow"], window: 262144 });

/**
 * A session over HTTP/2 on `path` (docs/03 §1.2): the records of `messages` in the request body,
 * kept open as a client keeps it until the gateway's close record arrives.
 */
export function h2Session(port: number, path: string, messages: string[], watchMs = 1500): Promise<H2Result> {
  return h2(port, {
    method: "POST",
    path,
    headers: { "content-type": H2_CONTENT_TYPE },
    body: messages.map((m) => encodeMessage(m)),
    end: false,
    endWhen: hasCloseRecord,
    watchMs,
  });
}

/** Does an HTTP/2 session's response body hold a close record yet? */
export function hasCloseRecord(body: Buffer): boolean {
  for (let at = 0; at + RECORD_HEADER_BYTES <= body.length;) {
    if (body[at] === RECORD_CLOSE) return true;
    at += RECORD_HEADER_BYTES + body.readUInt32BE(at + 1);
  }
  return false;
}
