// A protocol client for end-to-end tests (outline.test.ts, direct.test.ts): one session over
// the runtime's own wsConnect, streams with flow control, and raw HTTP/1.1 through a stream.
// Bodies are hashed as they arrive, so a 64 MiB download costs no memory.
import { createHash } from "node:crypto";
import * as codec from "../../protocol/codec.ts";
import type { Feature, Frame } from "../../protocol/frames.ts";
import { type SessionHandler, type SessionSocket, WS_HIGH_WATER, wsConnect } from "../../runtime/index.ts";
import type { Target } from "../../transport/stream.ts";
import { HttpResponse, type HttpResult } from "../http-response.ts";

export interface Rx {
  /** Bytes we may still send (the gateway's window plus its window_updates). */
  credit: number;
  unacked: number;
  received: number;
  ended: boolean;
  close: { code?: string; message?: string; at: number } | null;
  onData(chunk: Uint8Array): void;
}

export interface TunnelHttpResult extends HttpResult {
  /** stream_close code (undefined: a normal close). */
  code?: string;
}

export class TunnelClient implements SessionHandler {
  socket!: SessionSocket;
  frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  streams = new Map<string, Rx>();
  binary = false;
  flow = false;
  gatewayWindow = 0;
  readonly myWindow = codec.DEFAULT_WINDOW;
  private waiters: Array<() => void> = [];
  private nextId = 1;

  /**
   * `ca` undefined: no certificate check (a CA-issued certificate for a name that does not
   * resolve here). `timeoutMs`: longer under load (the soak test opens thousands at once).
   */
  static async connect(port: number, ca: string | undefined, timeoutMs = 10_000): Promise<TunnelClient> {
    const c = new TunnelClient();
    // "localhost", not 127.0.0.1: Deno's WebSocket client does not open wss://127.0.0.1 with a CA (times out).
    const tls = ca === undefined ? { insecure: true } : { ca };
    c.socket = await wsConnect(`wss://localhost:${port}/ws`, { ...tls, timeoutMs }, (s) => {
      c.socket = s;
      return c;
    });
    return c;
  }

  /** Connect and say hello with binary, flow and half_close; throws unless auth_result is ok. */
  static async session(
    port: number,
    ca: string | undefined,
    device: { device_id: string; token: string },
    timeoutMs?: number,
  ): Promise<TunnelClient> {
    const c = await TunnelClient.connect(port, ca, timeoutMs);
    const r = await c.hello(device.device_id, device.token, ["binary", "flow", "half_close"]);
    if (r.type !== "auth_result" || !r.ok) {
      await c.shut();
      throw new Error(`auth failed: ${JSON.stringify(r)}`);
    }
    return c;
  }

  async hello(device_id: string, token: string, features: Feature[] = []): Promise<Frame> {
    this.send({ type: "hello", device_id, token, client_version: "e2e", features, window: this.myWindow });
    await this.until(() => this.frames.some((f) => f.type === "auth_result"), "auth_result");
    const r = this.frames.find((f) => f.type === "auth_result")!;
    if (r.type === "auth_result" && r.ok) {
      this.binary = r.features.includes("binary");
      this.flow = r.features.includes("flow");
      this.gatewayWindow = r.window ?? 0;
    }
    return r;
  }

  newId(): string {
    return `s${this.nextId++}`;
  }

  open(id: string, target?: Target, data?: Uint8Array, onData: (chunk: Uint8Array) => void = () => {}): Rx {
    const rx: Rx = { credit: this.gatewayWindow, unacked: 0, received: 0, ended: false, close: null, onData };
    this.streams.set(id, rx);
    if (data && this.flow) rx.credit -= data.length;
    this.send({ type: "stream_open", stream_id: id, ...(target ? { target } : {}), ...(data ? { data } : {}) });
    return rx;
  }

  /** Send `data` within the gateway's credit and the socket's high-water mark. */
  async write(id: string, data: Uint8Array): Promise<void> {
    const rx = this.streams.get(id)!;
    let off = 0;
    while (off < data.length) {
      await this.until(
        () => rx.close !== null || ((!this.flow || rx.credit > 0) && this.socket.bufferedAmount < WS_HIGH_WATER),
        `credit on ${id}`,
      );
      if (rx.close) return;
      const n = Math.min(codec.MAX_DATA_BYTES, data.length - off, this.flow ? rx.credit : Infinity);
      this.send({ type: "stream_data", stream_id: id, data: data.subarray(off, off + n) });
      if (this.flow) rx.credit -= n;
      off += n;
    }
  }

  /** Send `data` on a new stream (fake upstream: no target), half-close, and collect the echo's sha256. */
  async echo(id: string, data: Uint8Array): Promise<{ sha: string; received: number; ended: boolean; code?: string }> {
    const hash = createHash("sha256");
    const rx = this.open(id, undefined, undefined, (chunk) => hash.update(chunk));
    await this.write(id, data);
    this.send({ type: "stream_end", stream_id: id });
    await this.until(() => rx.close !== null, `stream_close on ${id}`);
    return { sha: hash.digest("hex"), received: rx.received, ended: rx.ended, code: rx.close!.code };
  }

  /**
   * One HTTP/1.1 request on a new stream to `target`; the head travels in stream_open.data.
   * Our stream_end only follows the response's: shadowsocks-libev drops the whole connection
   * at the first FIN.
   */
  async http(target: Target, head: string, body?: Uint8Array, id = this.newId()): Promise<TunnelHttpResult> {
    const response = new HttpResponse();
    const rx = this.open(id, target, new TextEncoder().encode(head), (chunk) => response.push(chunk));
    if (body) await this.write(id, body);
    await this.until(() => rx.close !== null || rx.ended, `the response on ${id}`, 120_000);
    // The response is complete at the target's FIN; close our side as an HTTP client does.
    if (!rx.close) this.send({ type: "stream_end", stream_id: id });
    await this.until(() => rx.close !== null, `stream_close on ${id}`, 10_000);
    return { ...response.result(), code: rx.close!.code };
  }

  send(frame: Frame): void {
    this.socket.send(this.binary && frame.type === "stream_data" ? codec.encodeBinary(frame) : codec.encodeText(frame));
  }

  message(msg: string | Uint8Array): void {
    const r = typeof msg === "string" ? codec.decodeText(msg) : codec.decodeBinary(msg);
    if (!r.ok) throw new Error(`the gateway sent an undecodable frame: ${r.error.message}`);
    const f = r.frame;
    const rx = "stream_id" in f && f.stream_id !== undefined ? this.streams.get(f.stream_id) : undefined;
    if (f.type === "stream_data" && rx) {
      rx.received += f.data.length;
      rx.onData(f.data);
      if (this.flow) {
        rx.unacked += f.data.length;
        // We "consume" at once; batch the credit back like the gateway does.
        if (rx.unacked >= this.myWindow / 4) {
          this.send({ type: "window_update", stream_id: f.stream_id, increment: rx.unacked });
          rx.unacked = 0;
        }
      }
    } else if (f.type === "window_update" && rx) rx.credit += f.increment;
    else if (f.type === "stream_end" && rx) rx.ended = true;
    else if (f.type === "stream_close" && rx) rx.close = { code: f.code, message: f.message, at: performance.now() };
    else if (f.type === "ping") this.send({ type: "pong", id: f.id });
    else this.frames.push(f);
    this.notify();
  }

  drain(): void {
    this.notify();
  }

  close(code: number, reason: string): void {
    this.closed = { code, reason };
    this.notify();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Wait for a condition, woken by every incoming event (and a slow timer as a safety net). */
  async until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async shut(): Promise<void> {
    if (!this.closed) {
      this.socket.close(1000, "done");
      await this.until(() => this.closed !== null, "close", 10_000);
    }
  }
}
