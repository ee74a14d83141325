// What `httvps device create` needs to print a ready access key: where devices reach the
// gateway (GATEWAY_PUBLIC_URL, else localhost and the listen port) and, for a self-signed
// certificate, its sha256 pin — a dev gateway then works without --insecure. A CA-issued
// certificate is not pinned: it changes on every renewal.
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { type Env, publicGatewayAddress } from "../config/config.ts";
import { formatAccessKey } from "../protocol/access-key.ts";

export function gatewayAddress(env: Env): { host: string; port: number; path: string } {
  if (env.GATEWAY_PUBLIC_URL) {
    const { host, port, path } = publicGatewayAddress(env.GATEWAY_PUBLIC_URL);
    return { host, port, path: path === "/" ? env.GATEWAY_WS_PATH : path };
  }
  return { host: "localhost", port: env.GATEWAY_LISTEN_ADDR.port, path: env.GATEWAY_WS_PATH };
}

/** sha256 (hex) of the gateway certificate's DER when it is self-signed; otherwise undefined. */
export function selfSignedPin(certPath: string): string | undefined {
  try {
    const cert = new X509Certificate(readFileSync(certPath));
    if (cert.issuer !== cert.subject) return undefined;
    return createHash("sha256").update(cert.raw).digest("hex");
  } catch {
    return undefined;
  }
}

export function accessKeyHook(env: Env) {
  return (d: { device_id: string; token: string; name: string }) => {
    const { host, port, path } = gatewayAddress(env);
    return formatAccessKey({
      host,
      port,
      path,
      deviceId: d.device_id,
      token: d.token,
      pin: selfSignedPin(env.GATEWAY_TLS_CERT),
      name: d.name,
    });
  };
}
