// The HTTP/2 transport, client side (docs/03-httvps-protocol.md §1): one h2 connection per
// session, one `POST <path>` on it whose request body carries our records and whose response
// body carries the gateway's (runtime/record-socket.ts). node:http2 over node:tls on every
// runtime — it works the same on Node, Bun and Deno, and it takes the TLS socket we made, so
// the pin, SNI and --ca rules are exactly the WebSocket path's (gateway-socket.ts).
import http2 from "node:http2";
import tls from "node:tls";
import type { AccessKey } from "../protocol/access-key.ts";
import { attachNodeStream } from "../runtime/record-socket.ts";
import { H2_CONTENT_TYPE, H2_WINDOW, type SessionSocket, WS_MAX_MESSAGE } from "../runtime/index.ts";
import {
  type Accept,
  cannotOpen,
  GatewaySocketError,
  gatewayTlsOptions,
  gatewayWhere,
  type OpenSocket,
  watchPin,
} from "./gateway-socket.ts";

export const openH2Socket: OpenSocket = (key, tlsOpts, timeoutMs, accept) => {
  const where = gatewayWhere(key);
  return new Promise<SessionSocket>((resolve, reject) => {
    // Offering http/1.1 too, like any browser, lets a gateway without h2 say so by choosing it.
    const sock = tls.connect({ ...gatewayTlsOptions(key, tlsOpts), ALPNProtocols: ["h2", "http/1.1"] });
    sock.setNoDelay(true); // our small records (window_update, ping) must not wait behind Nagle
    const pin = watchPin(sock, key, tlsOpts);
    let session: http2.ClientHttp2Session | undefined;
    let settled = false;
    const fail = (e: GatewaySocketError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session?.destroy();
      sock.destroy();
      reject(e);
    };
    const timer = setTimeout(
      () => fail(new GatewaySocketError("unavailable", `no HTTP/2 session from ${where} after ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.once("error", (e) => fail(pin.error ?? cannotOpen(where, e)));
    sock.once("secureConnect", () => {
      if (settled || pin.error) return;
      if (!pin.ok) {
        return fail(new GatewaySocketError("pin_mismatch", `the certificate of ${where} was not checked against the pin`));
      }
      if (sock.alpnProtocol !== "h2") {
        return fail(
          new GatewaySocketError("unavailable", `${where} does not offer HTTP/2 (ALPN: ${sock.alpnProtocol || "none"})`, true),
        );
      }
      open(key, sock, where, accept, (s) => (session = s)).then(
        (socket) => {
          if (settled) return socket.close(1000, "timed out");
          settled = true;
          clearTimeout(timer);
          resolve(socket);
        },
        fail,
      );
    });
  });
};

/** The session request on an h2 connection; resolves once the gateway answered 200 with our content type. */
function open(
  key: AccessKey,
  sock: tls.TLSSocket,
  where: string,
  accept: Accept,
  started: (s: http2.ClientHttp2Session) => void,
): Promise<SessionSocket> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${where}`, {
      createConnection: () => sock,
      settings: { initialWindowSize: H2_WINDOW },
    });
    started(session);
    session.on("error", (e) => reject(new GatewaySocketError("unavailable", `HTTP/2 with ${where} failed: ${e.message}`)));
    session.once("connect", () => session.setLocalWindowSize(H2_WINDOW));
    const req = session.request({ ":method": "POST", ":path": key.path, "content-type": H2_CONTENT_TYPE }, { endStream: false });
    req.on("error", (e) => reject(new GatewaySocketError("unavailable", `HTTP/2 request to ${where} failed: ${e.message}`)));
    req.once("response", (headers) => {
      const status = headers[":status"];
      if (status !== 200 || headers["content-type"] !== H2_CONTENT_TYPE) {
        req.close(http2.constants.NGHTTP2_CANCEL);
        session.close();
        // What a site without our transport on that path answers: say so, so the client can fall back.
        return reject(
          new GatewaySocketError(
            "unavailable",
            `${where} refused the HTTP/2 session request (status ${status}${
              status === 200 ? `, content-type ${headers["content-type"] ?? "none"}` : ""
            })`,
            true,
          ),
        );
      }
      // One session per connection: when its stream is gone, so is the connection.
      req.once("close", () => session.close());
      resolve(attachNodeStream(req, { remoteAddress: key.host, maxMessageBytes: WS_MAX_MESSAGE }, accept));
    });
  });
}
