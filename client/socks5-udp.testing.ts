// The application side of SOCKS5 UDP ASSOCIATE (RFC 1928 §7) for tests: a TCP control
// connection that asks for the association, and a node:dgram socket that sends datagrams
// with the request header to the relay the proxy announced and reads the replies.
import dgram from "node:dgram";
import * as net from "node:net";
import { decodeAddress, encodeAddress } from "../protocol/socks-address.ts";
import { StreamError, type Target } from "../transport/stream.ts";

export interface SocksUdpClient {
  /** The relay address from the proxy's reply. */
  relay: Target;
  /** The control connection (closing it ends the association). */
  control: net.Socket;
  /** Send `payload` for `target` (FRAG `frag`, default 0). */
  send(target: Target, payload: Uint8Array, frag?: number): void;
  /** Send raw bytes to the relay (malformed-header tests). */
  sendRaw(bytes: Uint8Array): void;
  /** The next reply: the address in its header and its payload. */
  next(ms?: number): Promise<{ from: Target; payload: Uint8Array }>;
  /** Replies received and not yet taken by next(). */
  readonly queued: number;
  close(): void;
}

/** Reads until `need(buf)` (the total length wanted, or 0 while unknown) is met. */
function readUntil(sock: net.Socket, need: (buf: Uint8Array) => number, ms: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    let buf = new Uint8Array(0);
    const timer = setTimeout(() => finish(new Error(`SOCKS5: no complete reply in ${ms} ms (got ${buf.length} bytes)`)), ms);
    const onData = (d: Uint8Array) => {
      const next = new Uint8Array(buf.length + d.length);
      next.set(buf);
      next.set(d, buf.length);
      buf = next;
      const n = need(buf);
      if (n > 0 && buf.length >= n) finish();
    };
    const onClose = () => finish(new Error(`SOCKS5: connection closed after ${buf.length} bytes`));
    const finish = (err?: Error) => {
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("close", onClose);
      if (err) reject(err);
      else resolve(buf);
    };
    sock.on("data", onData);
    sock.on("close", onClose);
  });
}

/** Greet (no auth), send UDP ASSOCIATE with 0.0.0.0:0, bind a UDP socket on `host` and return the client. */
export async function socksUdpAssociate(port: number, host = "127.0.0.1", ms = 10_000): Promise<SocksUdpClient> {
  const control = net.connect({ host, port });
  control.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    control.once("connect", resolve);
    control.once("error", reject);
  });
  control.write(Uint8Array.of(5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0));
  // Method choice (2) + reply head (4), then an IPv4 or IPv6 BND.ADDR and port.
  const reply = await readUntil(control, (b) => (b.length < 6 ? 0 : b[5] === 4 ? 24 : 12), ms);
  if (reply[0] !== 5 || reply[1] !== 0 || reply[3] !== 0) throw new Error(`SOCKS5 UDP ASSOCIATE refused: reply ${reply[3]}`);
  const addr = decodeAddress(reply, 5);
  if (addr instanceof StreamError) throw addr;
  const relay = { host: addr.host, port: addr.port };
  const sock = dgram.createSocket(relay.host.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((r) => sock.bind(0, host, () => r()));
  const replies: Array<{ from: Target; payload: Uint8Array }> = [];
  const waiters: Array<() => void> = [];
  sock.on("message", (m: Uint8Array) => {
    const a = m.length > 3 ? decodeAddress(m, 3) : new StreamError("short", "short");
    if (a instanceof StreamError) return;
    replies.push({ from: { host: a.host, port: a.port }, payload: new Uint8Array(m.subarray(3 + a.length)) });
    waiters.splice(0).forEach((w) => w());
  });
  const sendRaw = (b: Uint8Array) => sock.send(b, relay.port, relay.host);
  return {
    relay,
    control,
    send(target, payload, frag = 0) {
      const a = encodeAddress(target);
      const out = new Uint8Array(3 + a.length + payload.length);
      out[2] = frag;
      out.set(a, 3);
      out.set(payload, 3 + a.length);
      sendRaw(out);
    },
    sendRaw,
    async next(wait = 10_000) {
      const deadline = Date.now() + wait;
      while (replies.length === 0) {
        if (Date.now() > deadline) throw new Error(`no UDP reply through the SOCKS5 relay in ${wait} ms`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
      return replies.shift()!;
    },
    get queued() {
      return replies.length;
    },
    close() {
      control.destroy();
      sock.close();
    },
  };
}
