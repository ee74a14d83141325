// Test support: the Shadowsocks vectors captured from shadowsocks-libev 3.3.5, kept in
// shadowsocks/testdata/ (README.md there says how they were made).
// A missing folder is an error, never a skip: tests that silently pass without their
// vectors would prove nothing.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const VECTORS_DIR = fileURLToPath(new URL("./testdata/", import.meta.url));

export function readVector(relPath: string): string {
  const p = join(VECTORS_DIR, relPath);
  if (!existsSync(p)) throw new Error(`test vectors missing: ${p} (shadowsocks/testdata/ is part of the repository)`);
  return readFileSync(p, "utf8");
}

export function readVectorJson<T>(relPath: string): T {
  return JSON.parse(readVector(relPath)) as T;
}

export function fromHex(hex: string): Uint8Array {
  const clean = hex.trim();
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) throw new Error("bad hex in test vector");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface CaptureEntry {
  name: string;
  transport: "tcp" | "udp";
  cipher: string;
  password: string;
  masterKeyHex: string;
  target: { host: string; port: number; socksAddrHex: string };
  files: { c2s: string; s2c: string; c2sPlain: string; s2cPlain: string };
}

export function captures(): CaptureEntry[] {
  const list = readVectorJson<{ captures: CaptureEntry[] }>("captures/index.json").captures;
  if (list.length === 0) throw new Error("test vectors: captures/index.json lists no captures");
  return list;
}

/** A capture file (name as in index.json): one hex line per datagram (UDP) or the whole stream (TCP). */
export function readHexLines(captureFile: string): Uint8Array[] {
  return readVector(`captures/${captureFile}`)
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .map(fromHex);
}
