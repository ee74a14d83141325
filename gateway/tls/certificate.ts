// What the gateway needs to know about a certificate it is about to serve: that its key belongs
// to it, when it is valid, which names it covers and its pin. node:crypto's X509Certificate
// (Node, Bun and Deno all have it) reads the leaf; the chain after it is served as it is.
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { TlsFiles } from "../../runtime/types.ts";
import { certificatePin, pemToDer } from "../certs.ts";
import { GatewayError } from "../gateway-error.ts";

export interface CertificateInfo {
  notBefore: Date;
  notAfter: Date;
  /** DNS names of the subjectAltName, lowercase. */
  names: string[];
  /** SHA-256 of the leaf's DER, lowercase hex. */
  sha256: string;
  selfSigned: boolean;
}

/** The leaf of `tls.cert`, checked against `tls.key`. Throws GatewayError bad_certificate. */
export async function describeCertificate(tls: TlsFiles, source: string): Promise<CertificateInfo> {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(tls.cert);
  } catch (e) {
    throw new GatewayError("bad_certificate", `${source}: no PEM certificate (${(e as Error).message})`);
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(tls.key));
  } catch (e) {
    throw new GatewayError("bad_certificate", `${source}: the key is not a PEM private key (${(e as Error).message})`);
  }
  if (!matches) throw new GatewayError("bad_certificate", `${source}: the key does not belong to the certificate`);
  const names = (leaf.subjectAltName ?? "")
    .split(", ")
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4).toLowerCase());
  return {
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    names,
    sha256: await certificatePin(pemToDer(tls.cert)!),
    selfSigned: leaf.issuer === leaf.subject,
  };
}

/** Whether the certificate names every domain (exactly; the gateway asks for no wildcards). */
export function covers(info: CertificateInfo, domains: readonly string[]): boolean {
  return domains.every((d) => info.names.includes(d.toLowerCase()));
}
