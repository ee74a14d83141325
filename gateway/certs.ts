// Self-signed development certificates made with Web Crypto and a tiny DER writer, so
// `httvps gateway` can start on a fresh machine (or in a single-file binary) on Node, Bun
// and Deno without an openssl binary. ECDSA P-256: every TLS stack accepts it and keys
// are generated in milliseconds.
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseIP } from "../protocol/ip-address.ts";

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

// --- a DER writer: just the universal types an X.509 certificate needs ---
type Der = Uint8Array<ArrayBuffer>;

function concat(parts: Der[]): Der {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function tlv(tag: number, ...content: Der[]): Der {
  const body = concat(content);
  const n = body.length;
  let len: number[];
  if (n < 0x80) len = [n];
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = [0x80 | bytes.length, ...bytes];
  }
  return concat([Uint8Array.of(tag, ...len), body]);
}

const seq = (...items: Der[]) => tlv(0x30, ...items);
const set = (...items: Der[]) => tlv(0x31, ...items);
const octets = (b: Der) => tlv(0x04, b);
const bitString = (b: Der) => tlv(0x03, Uint8Array.of(0), b);
const explicit = (n: number, inner: Der) => tlv(0xa0 | n, inner);
const utf8 = (s: string) => tlv(0x0c, new TextEncoder().encode(s));
const bool = (v: boolean) => tlv(0x01, Uint8Array.of(v ? 0xff : 0));

/** A non-negative big-endian integer: minimal length, with a 0x00 pad when the top bit is set. */
function uint(bytes: Der): Der {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const b = bytes.subarray(i);
  return tlv(0x02, b[0]! & 0x80 ? concat([Uint8Array.of(0), b]) : b);
}

function oid(dotted: string): Der {
  const arcs = dotted.split(".").map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const b7: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) b7.unshift(0x80 | (v & 0x7f));
    out.push(...b7);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(d: Date): Der {
  const p = (n: number) => String(n).padStart(2, "0");
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${
    p(d.getUTCSeconds())
  }Z`;
  const y = d.getUTCFullYear();
  return y < 2050
    ? tlv(0x17, new TextEncoder().encode(p(y % 100) + rest))
    : tlv(0x18, new TextEncoder().encode(String(y) + rest));
}

// --- names and addresses ---
const dnsName = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function pem(label: string, der: Der): string {
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

/** Web Crypto signs ECDSA as raw r||s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }. */
function ecdsaRawToDer(raw: Der): Der {
  const half = raw.length / 2;
  return seq(uint(raw.subarray(0, half)), uint(raw.subarray(half)));
}

export async function createDevCertificate(opts: DevCertificateOptions = {}): Promise<DevCertificate> {
  const hostnames = opts.hostnames ?? ["localhost"];
  const ips = opts.ips ?? ["127.0.0.1", "::1"];
  const days = opts.days ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new CertError("bad_cert_request", "days must be a whole number 1-3650");
  }
  if (hostnames.length + ips.length === 0) throw new CertError("bad_cert_request", "at least one hostname or IP is required");
  const sans: Der[] = [];
  for (const h of hostnames) {
    if (h.length > 253 || !dnsName.test(h)) throw new CertError("bad_cert_request", `not a DNS name: ${JSON.stringify(h)}`);
    sans.push(tlv(0x82, new TextEncoder().encode(h.toLowerCase())));
  }
  for (const ip of ips) {
    const b = parseIP(ip);
    if (!b) throw new CertError("bad_cert_request", `not an IP address: ${JSON.stringify(ip)}`);
    sans.push(tlv(0x87, b));
  }

  const subtle = globalThis.crypto.subtle;
  const keys = (await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const spki = new Uint8Array(await subtle.exportKey("spki", keys.publicKey));
  const pkcs8 = new Uint8Array(await subtle.exportKey("pkcs8", keys.privateKey));
  // RFC 5280 4.2.1.2 method 1: SHA-1 of the public key BIT STRING (the last 65 bytes of a P-256 SPKI).
  const keyId = new Uint8Array(await subtle.digest("SHA-1", spki.subarray(spki.length - 65)));

  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0]! &= 0x7f; // serials are positive (RFC 5280 4.1.2.2)
  serial[0]! |= 0x01;
  const name = seq(set(seq(oid("2.5.4.3"), utf8(hostnames[0] ?? ips[0]!))));
  const now = Date.now();
  const ecdsaSha256 = seq(oid("1.2.840.10045.4.3.2"));
  const ext = (id: string, critical: boolean, value: Der) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
  const tbs = seq(
    explicit(0, uint(Uint8Array.of(2))), // v3
    uint(serial),
    ecdsaSha256,
    name,
    seq(time(new Date(now - 3_600_000)), time(new Date(now + days * 86_400_000))),
    name,
    spki,
    explicit(
      3,
      seq(
        ext("2.5.29.17", false, seq(...sans)),
        ext("2.5.29.19", true, seq()), // CA:FALSE
        ext("2.5.29.15", true, bitString(Uint8Array.of(0x80))), // digitalSignature
        ext("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))), // serverAuth
        ext("2.5.29.14", false, octets(keyId)),
      ),
    ),
  );
  const sig = new Uint8Array(await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, tbs));
  const cert = seq(tbs, ecdsaSha256, bitString(ecdsaRawToDer(sig)));
  return {
    certPem: pem("CERTIFICATE", cert),
    keyPem: pem("PRIVATE KEY", pkcs8),
    sha256: hex(await subtle.digest("SHA-256", cert)),
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
      return { certPath, keyPath, written: false, sha256: hex(await crypto.subtle.digest("SHA-256", der)) };
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
