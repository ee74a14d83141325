// Connections that never authenticate, as a flood sends them (docs/07 "Before authentication"):
// a TCP connection with one byte of a TLS ClientHello, a TLS connection with half a request
// head, and a WebSocket upgraded on the session path that never says hello. Raw node:net and
// node:tls sockets, so every byte is ours and nothing retries. Used by preauth.test.ts and
// test/stress/preauth-flood.stress.ts; no assertions here.
import net from "node:net";
import tls from "node:tls";
import { head, upgradeHeaders } from "./probe-kit.ts";

export type FloodKind = "half-open TLS" | "slow request head" | "silent WebSocket";
export const FLOOD_KINDS: readonly FloodKind[] = ["half-open TLS", "slow request head", "silent WebSocket"];

export interface HeldConnection {
  /** Resolves once the connection reached its silent state (false: it closed or failed first). */
  ready: Promise<boolean>;
  /** Resolves with ms from the start to the server's close (or a reset) of the connection. */
  closed: Promise<number>;
  destroy(): void;
}

export interface HoldOptions {
  /** Connect from this local address (e.g. 127.0.0.2), so a flood is one address and a client another. */
  localAddress?: string;
}

/** The first byte of a TLS record carrying a ClientHello (content type 22, handshake). */
const CLIENT_HELLO_FIRST_BYTE = Uint8Array.of(0x16);
const SLOW_HEAD = "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0\r\n";

/** Open one connection of `kind` to 127.0.0.1:port and hold it silent until the server closes it. */
export function hold(kind: FloodKind, port: number, wsPath: string, opts: HoldOptions = {}): HeldConnection {
  const t0 = performance.now();
  let ready!: (ok: boolean) => void;
  const readyP = new Promise<boolean>((r) => (ready = r));
  const socket: net.Socket = kind === "half-open TLS"
    ? net.connect({ host: "127.0.0.1", port, localAddress: opts.localAddress })
    : tls.connect({
      host: "127.0.0.1",
      port,
      localAddress: opts.localAddress,
      servername: "localhost",
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"],
    } as tls.ConnectionOptions); // localAddress goes to net.connect, which @types/node does not say
  const closed = new Promise<number>((resolve) => {
    socket.once("close", () => {
      ready(false);
      resolve(performance.now() - t0);
    });
  });
  socket.on("error", () => {});
  socket.resume(); // read (and drop) what the server sends, so its close is seen
  if (kind === "half-open TLS") {
    socket.once("connect", () => socket.write(CLIENT_HELLO_FIRST_BYTE, () => ready(true)));
  } else {
    socket.once("secureConnect", () => {
      if (kind === "slow request head") return void socket.write(SLOW_HEAD, () => ready(true));
      socket.write(head(`GET ${wsPath} HTTP/1.1`, upgradeHeaders()));
      let got = "";
      const onData = (b: Buffer) => {
        got += b.toString("latin1");
        if (!got.includes("\r\n\r\n")) return;
        socket.off("data", onData);
        ready(got.startsWith("HTTP/1.1 101"));
      };
      socket.on("data", onData);
    });
  }
  return { ready: readyP, closed, destroy: () => socket.destroy() };
}
