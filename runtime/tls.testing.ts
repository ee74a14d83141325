// One TLS handshake against a listener, reporting what it answered with: the certificate (as
// its SHA-256 pin) and the ALPN protocol. Verification is off: the tests compare pins.
import { createHash } from "node:crypto";
import tls from "node:tls";

export interface Peer {
  ok: boolean;
  /** SHA-256 of the certificate the server sent. */
  sha256?: string;
  alpn?: string | false | null;
  error?: string;
}

/** One handshake; what the server answered with. */
export function handshake(
  port: number,
  opts: { servername?: string; ALPNProtocols?: string[] } = {},
): Promise<Peer> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false, ...opts }, () => {
      const raw = s.getPeerCertificate().raw;
      resolve({ ok: true, sha256: createHash("sha256").update(raw).digest("hex"), alpn: s.alpnProtocol });
      s.destroy();
    });
    s.on("error", (e) => {
      s.destroy();
      resolve({ ok: false, error: e.message });
    });
  });
}
