// Opening the WebSocket to a gateway with the access key's TLS policy.
//
// Two ways, both runtime-free from the caller's side:
// - system CAs or --insecure: the runtime's own WebSocket client (runtime/index.ts wsConnect),
//   the fastest one each runtime has;
// - a pin, an SNI override or a --ca file: the `ws` package over node:tls. None of the native
//   clients can pin (Bun's WebSocket ignores tls.checkServerIdentity, Deno's only takes extra
//   CAs through Deno.createHttpClient, and those are added to the system roots rather than
//   replacing them), nor send an SNI other than the URL's host. node:tls behaves the same on
//   Node, Bun and Deno, so this one path gives identical pin/SNI/CA semantics on all three.
//
// The pin is checked on the TLS socket's secureConnect, before the WebSocket opens. Nothing
// secret has been sent by then (the token only travels in hello, after open), and the open
// handler refuses a socket whose pin was not confirmed, so a library that skipped our
// createConnection hook fails closed instead of talking to an unverified peer.
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import tls from "node:tls";
import type { IncomingMessage } from "node:http";
import { WebSocket } from "ws";
import { RuntimeError, type SessionHandler, type SessionSocket, WS_MAX_MESSAGE, wsConnect } from "../runtime/index.ts";
import type { AccessKey } from "../protocol/access-key.ts";
import { formatHostPort } from "../protocol/ip-address.ts";

export interface GatewayTls {
  /** PEM of a CA (or of the gateway's own certificate) to trust instead of the system roots. */
  ca?: string;
  /** No verification at all, pin included (development only). */
  insecure?: boolean;
}

/**
 * Why a socket could not be opened: `pin_mismatch`, or `unavailable` (network, TLS, HTTP);
 * `transportRefused` when the gateway answered but not with this transport (no h2 by ALPN, a refused request).
 */
export class GatewaySocketError extends Error {
  constructor(
    readonly code: "pin_mismatch" | "unavailable",
    message: string,
    readonly transportRefused = false,
    /** The TCP connection was refused: nothing listens there, for either transport (the port is the same). */
    readonly nothingListens = false,
  ) {
    super(message);
    this.name = "GatewaySocketError";
  }
}

/** The error for a socket that failed to open: `nothingListens` when the TCP connect was refused. */
export function cannotOpen(where: string, e: Error): GatewaySocketError {
  const refused = (e as { code?: string }).code === "ECONNREFUSED";
  return new GatewaySocketError("unavailable", `cannot open ${where}: ${e.message}`, false, refused);
}

export type Accept = (socket: SessionSocket) => SessionHandler;
export type OpenSocket = (key: AccessKey, tlsOpts: GatewayTls, timeoutMs: number, accept: Accept) => Promise<SessionSocket>;

export function gatewayUrl(key: AccessKey): string {
  return `wss://${formatHostPort(key.host, key.port)}${key.path}`;
}

/** The sha256 (lowercase hex) of a certificate's DER bytes, as access keys pin it. */
export function certificateSha256(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}

export const openGatewaySocket: OpenSocket = (key, tlsOpts, timeoutMs, accept) => {
  const viaNodeTls = !tlsOpts.insecure && (key.pin !== undefined || key.sni !== undefined || tlsOpts.ca !== undefined);
  if (viaNodeTls) return openViaNodeTls(key, tlsOpts, timeoutMs, accept);
  return wsConnect(gatewayUrl(key), { insecure: tlsOpts.insecure, timeoutMs }, accept).catch((e: unknown) => {
    throw new GatewaySocketError(
      "unavailable",
      e instanceof RuntimeError ? e.message : `cannot open ${gatewayWhere(key)}: ${(e as Error).message}`,
    );
  });
};

/** host:port as people write it, for messages. */
export function gatewayWhere(key: AccessKey): string {
  return formatHostPort(key.host, key.port);
}

/**
 * The node:tls options for the gateway under the key's policy: its SNI, the --ca file or the
 * pin (which makes the chain irrelevant), or none of it with --insecure.
 */
export function gatewayTlsOptions(key: AccessKey, tlsOpts: GatewayTls): tls.ConnectionOptions {
  // SNI must be a DNS name; an IP host without an sni parameter sends none.
  const servername = key.sni ?? (isIP(key.host) ? undefined : key.host);
  if (tlsOpts.insecure) return { host: key.host, port: key.port, servername, rejectUnauthorized: false };
  const pin = key.pin;
  return {
    host: key.host,
    port: key.port,
    servername,
    ca: pin === undefined ? tlsOpts.ca : undefined,
    // With a pin the chain is irrelevant: exactly one certificate is acceptable.
    rejectUnauthorized: pin === undefined,
    checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(key.sni ?? key.host, cert),
  };
}

/**
 * Check the key's pin on a TLS socket's secureConnect, destroying the socket on a mismatch.
 * `ok` is true once checked (or when there is nothing to check), `error` says why not.
 */
export function watchPin(
  sock: tls.TLSSocket,
  key: AccessKey,
  tlsOpts: GatewayTls,
): { readonly ok: boolean; readonly error: GatewaySocketError | undefined } {
  const state = { ok: key.pin === undefined || tlsOpts.insecure === true, error: undefined as GatewaySocketError | undefined };
  if (state.ok) return state;
  sock.once("secureConnect", () => {
    const raw = sock.getPeerCertificate(false)?.raw;
    const got = raw ? certificateSha256(raw) : "none";
    if (got === key.pin) state.ok = true;
    else {
      state.error = new GatewaySocketError(
        "pin_mismatch",
        `the certificate of ${gatewayWhere(key)} (sha256 ${got.slice(0, 16)}…) does not match the access key's pin (${
          key.pin!.slice(0, 16)
        }…)`,
      );
      sock.destroy(state.error);
    }
  });
  return state;
}

function openViaNodeTls(key: AccessKey, tlsOpts: GatewayTls, timeoutMs: number, accept: Accept): Promise<SessionSocket> {
  const where = gatewayWhere(key);
  const pin = key.pin;
  return new Promise((resolve, reject) => {
    let pinState: ReturnType<typeof watchPin> | undefined;
    const ws = new WebSocket(gatewayUrl(key), {
      perMessageDeflate: false,
      maxPayload: WS_MAX_MESSAGE,
      handshakeTimeout: timeoutMs,
      // ws's own Host header carries the URL host; the TLS layer below is entirely ours.
      createConnection: ((opts: tls.ConnectionOptions) => {
        const sock = tls.connect({ ...opts, ...gatewayTlsOptions(key, tlsOpts) });
        pinState = watchPin(sock, key, tlsOpts);
        return sock;
      }) as never,
    });
    let raw: import("node:net").Socket | undefined;
    ws.once("upgrade", (res: IncomingMessage) => (raw = res.socket));
    const fail = (e: Error) => {
      ws.off("open", open);
      ws.removeAllListeners("error");
      ws.on("error", () => {});
      ws.terminate();
      if (pinState?.error) return reject(pinState.error);
      reject(cannotOpen(where, e));
    };
    const open = () => {
      ws.off("error", fail);
      if (pin !== undefined && !pinState?.ok) {
        return fail(new GatewaySocketError("pin_mismatch", `the certificate of ${where} was not checked against the pin`));
      }
      resolve(adoptWs(ws, raw, key.host, accept));
    };
    ws.once("error", fail);
    ws.once("open", open);
  });
}

/**
 * A `ws` client socket as a SessionSocket; `raw` is the TLS socket whose 'drain' says its queue
 * emptied. The session re-checks bufferedAmount itself, so every drain is passed on.
 */
function adoptWs(
  ws: WebSocket,
  raw: import("node:net").Socket | undefined,
  remoteAddress: string,
  accept: Accept,
): SessionSocket {
  let handler: SessionHandler | undefined;
  let closing = false;
  // A bug in the session closes this one socket instead of escaping into the event loop.
  const guarded = (fn: () => void) => {
    try {
      fn();
    } catch {
      closing = true;
      ws.terminate();
    }
  };
  const socket: SessionSocket = {
    send(msg) {
      if (ws.readyState === WebSocket.OPEN) ws.send(msg);
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    close(code, reason) {
      closing = true;
      try {
        ws.close(code, reason);
      } catch {
        ws.terminate();
      }
    },
    ping() {
      if (ws.readyState === WebSocket.OPEN) ws.ping();
    },
    remoteAddress,
  };
  raw?.on("drain", () => guarded(() => handler?.drain()));
  ws.on("error", () => {}); // a 'close' always follows
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (closing || !handler) return;
    const msg = isBinary ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data.toString("utf8");
    guarded(() => handler!.message(msg));
  });
  ws.once("close", (code: number, reason: Buffer) => guarded(() => handler?.close(code, reason.toString("utf8"))));
  guarded(() => (handler = accept(socket)));
  return socket;
}
