// What `httvps device create` needs to print a ready access key: where devices reach the
// gateway (GATEWAY_PUBLIC_URL, else the first ACME domain or localhost, and the listen port) and, for a self-signed
// certificate, its sha256 pin — a dev gateway then works without --insecure. A CA-issued
// certificate is not pinned: it changes on every renewal. The apps' links (`device create`,
// `device links`) point at the same address; they carry no pin (the apps check certificates
// against their system's authorities, docs/08-clients.md).
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { type Env, publicGatewayAddress } from "../config/config.ts";
import { formatAccessKey } from "../protocol/access-key.ts";
import { appLinks } from "../protocol/app-links/subscription.ts";

export function gatewayAddress(env: Env): { host: string; port: number; path: string } {
  if (env.GATEWAY_PUBLIC_URL) {
    const { host, port, path } = publicGatewayAddress(env.GATEWAY_PUBLIC_URL);
    return { host, port, path: path === "/" ? env.GATEWAY_WS_PATH : path };
  }
  const host = env.GATEWAY_ACME_DOMAINS?.[0] ?? "localhost";
  return { host, port: env.GATEWAY_LISTEN_ADDR.port, path: env.GATEWAY_WS_PATH };
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
      // With ACME the files are not what the gateway serves, and its certificate is a CA's;
      // with GATEWAY_TLS=off the certificate devices see is the proxy's, not these files.
      pin: env.GATEWAY_ACME_DOMAINS || !env.GATEWAY_TLS ? undefined : selfSignedPin(env.GATEWAY_TLS_CERT),
      name: d.name,
    });
  };
}

/** The Outline key, the ss:// link and the subscription URL for a device's app identity. */
export function appLinksHook(env: Env) {
  return (d: { name: string; app: { path: string; cipher: string; secret: string } }) => {
    const { host, port } = gatewayAddress(env);
    return appLinks({ name: d.name, host, port, ...d.app });
  };
}
