// Self-signed development certificates, made with @peculiar/x509 on Web Crypto (the X.509
// library acme-client brings for ACME; gateway/acme/), so `httvps gateway` can start on a
// fresh machine (or in a single-file binary) on Node, Bun and Deno without an openssl binary.
// ECDSA P-256: every TLS stack accepts it and keys are generated in milliseconds.
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { formatIPv6, parseIP } from "../protocol/ip-address.ts";

export class CertError extends Error {
  constructor(readonly code: "bad_cert_request" | "cert_io", message: string) {
    super(message);
    this.name = "CertError";
  }
}

export interface DevCertificateOptions {
  hostnames?: string[];
  ips?: string[];
  /** Validity from now; notBefore is set an hour back to tolerate clock skew. */
  days?: number;
}

export interface DevCertificate {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the certificate's DER, lowercase hex: what a client pins. */
  sha256: string;
}

const dnsName = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function pem(label: string, der: Uint8Array): string {
  const b64 = btoa(Array.from(der, (c) => String.fromCharCode(c)).join(""));
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`;
}

/** The DER inside the first PEM block with this label, or undefined. */
export function pemToDer(text: string, label = "CERTIFICATE"): Uint8Array<ArrayBuffer> | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(text);
  if (!m) return undefined;
  try {
    return Uint8Array.from(atob(m[1]!.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

const hex = (b: ArrayBuffer | Uint8Array) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");

/** SHA-256 of a certificate's DER, lowercase hex: the pin a client checks. */
export async function certificatePin(der: Uint8Array<ArrayBuffer>): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", der));
}

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

export async function createDevCertificate(opts: DevCertificateOptions = {}): Promise<DevCertificate> {
  const hostnames = opts.hostnames ?? ["localhost"];
  const ips = opts.ips ?? ["127.0.0.1", "::1"];
  const days = opts.days ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new CertError("bad_cert_request", "days must be a whole number 1-3650");
  }
  if (hostnames.length + ips.length === 0) throw new CertError("bad_cert_request", "at least one hostname or IP is required");
  const sans: x509.JsonGeneralName[] = [];
  for (const h of hostnames) {
    if (h.length > 253 || !dnsName.test(h)) throw new CertError("bad_cert_request", `not a DNS name: ${JSON.stringify(h)}`);
    sans.push({ type: "dns", value: h.toLowerCase() });
  }
  for (const ip of ips) {
    const b = parseIP(ip);
    if (!b) throw new CertError("bad_cert_request", `not an IP address: ${JSON.stringify(ip)}`);
    // All eight groups written out: the library's own IPv6 parser misreads the ::ffff:a.b.c.d form.
    sans.push({ type: "ip", value: b.length === 4 ? b.join(".") : formatIPv6(b, "expanded") });
  }

  const keys = (await crypto.subtle.generateKey(ECDSA_P256, true, ["sign", "verify"])) as CryptoKeyPair;
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0]! &= 0x7f; // serials are positive (RFC 5280 4.1.2.2) and keep their full 16 bytes
  serial[0]! |= 0x01;
  const now = Date.now();
  x509.cryptoProvider.set(crypto);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: hex(serial),
    name: [{ CN: [hostnames[0] ?? ips[0]!] }],
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + days * 86_400_000),
    signingAlgorithm: ECDSA_P256,
    keys,
    extensions: [
      new x509.SubjectAlternativeNameExtension(sans),
      new x509.BasicConstraintsExtension(false, undefined, true), // CA:FALSE
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const der = new Uint8Array(cert.rawData);
  return {
    certPem: pem("CERTIFICATE", der),
    keyPem: pem("PRIVATE KEY", new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey))),
    sha256: await certificatePin(der),
  };
}

export interface WrittenCertificate {
  certPath: string;
  keyPath: string;
  /** False when both files already existed and were left alone. */
  written: boolean;
  sha256: string;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/** Write cert.pem (0644) and key.pem (0600) into `dir` unless both exist already (or `force`). */
export async function writeDevCertificate(
  dir: string,
  opts: DevCertificateOptions & { force?: boolean } = {},
): Promise<WrittenCertificate> {
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  try {
    if (!opts.force && (await exists(certPath)) && (await exists(keyPath))) {
      const der = pemToDer(await readFile(certPath, "utf8"));
      if (!der) throw new CertError("cert_io", `${certPath} holds no PEM certificate`);
      return { certPath, keyPath, written: false, sha256: await certificatePin(der) };
    }
    const c = await createDevCertificate(opts);
    await mkdir(dir, { recursive: true });
    // The key first and private from its first byte; chmod too, since `mode` only applies on create.
    await writeFile(keyPath, c.keyPem, { mode: 0o600 });
    await chmod(keyPath, 0o600);
    await writeFile(certPath, c.certPem, { mode: 0o644 });
    await chmod(certPath, 0o644);
    return { certPath, keyPath, written: true, sha256: c.sha256 };
  } catch (e) {
    if (e instanceof CertError) throw e;
    throw new CertError("cert_io", `cannot write certificate files in ${dir}: ${(e as Error).message}`);
  }
}
