// A freshly initialised PGlite cluster, committed beside this file as a brotli'd tar
// (pglite-template-<version>.tar.br, made by scripts/pglite-template.ts). A new data directory
// is this tar unpacked instead of initdb run in WebAssembly, which took 10–25 s and a second
// PostgreSQL instance's memory (peak RSS ~770 MB on Node) on every first start (docs/06).
// The cluster belongs to one PGlite release, named in the file: a test fails when the installed
// PGlite is another, and a cluster PostgreSQL refuses to start falls back to initdb (pglite.ts).
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { brotliDecompressSync } from "node:zlib";

/** The PGlite release the committed template was made with (scripts/pglite-template.ts checks it). */
export const TEMPLATE_PGLITE_VERSION = "0.5.16";
export const TEMPLATE_FILE = `pglite-template-${TEMPLATE_PGLITE_VERSION}.tar.br`;

const BLOCK = 512;

export class PgliteTemplateError extends Error {
  readonly code = "pglite_template_invalid";
}

/** The template's tar, or undefined when it is not there (a checkout without it, a different layout). */
export async function readTemplate(load?: () => Promise<Uint8Array>): Promise<Uint8Array | undefined> {
  try {
    const packed = load ? await load() : await readFile(new URL(`./${TEMPLATE_FILE}`, import.meta.url));
    // One output buffer larger than the tar (40 MB): no chunks to concatenate, so the peak is
    // the tar once, and it goes back to the system as soon as it is collected.
    const tar = brotliDecompressSync(packed, { chunkSize: 64 * 1024 * 1024 });
    // Deno's brotli answers garbage with nothing rather than an error; no cluster is that small.
    return tar.length >= 2 * BLOCK ? tar : undefined;
  } catch {
    return undefined;
  }
}

/** Only a missing or empty directory is seeded: anything else is PGlite's to open or refuse, as before. */
export function isEmptyDir(dir: string): boolean {
  try {
    return readdirSync(dir).length === 0;
  } catch {
    return true;
  }
}

/** The fields of a ustar header we use: NUL-terminated text and octal numbers. */
function field(h: Uint8Array, at: number, len: number): string {
  const bytes = h.subarray(at, at + len);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/**
 * Unpack a ustar archive (PGlite's dumpDataDir format: directories and regular files, paths
 * from the cluster's root) into `dir`. Anything else, or a path leaving `dir`, is refused.
 */
export function untar(tar: Uint8Array, dir: string): number {
  let files = 0;
  for (let at = 0; at + BLOCK <= tar.length;) {
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break; // the end-of-archive blocks
    const name = [field(h, 345, 155), field(h, 0, 100)].filter(Boolean).join("/");
    const size = parseInt(field(h, 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(h[156]!);
    const parts = name.split("/").filter((p) => p && p !== ".");
    if (!Number.isFinite(size) || size < 0 || parts.includes("..") || at + BLOCK + size > tar.length) {
      throw new PgliteTemplateError(`bad tar entry "${name}"`);
    }
    const path = join(dir, ...parts);
    if (type === "5") mkdirSync(path, { recursive: true });
    else if (type === "0" || type === "\0") {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, tar.subarray(at + BLOCK, at + BLOCK + size));
      files++;
    } else throw new PgliteTemplateError(`unexpected tar entry type "${type}" for "${name}"`);
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return files;
}
