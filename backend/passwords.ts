// Admin passwords, hashed with scrypt (RFC 7914) from node:crypto: memory-hard, no dependency,
// and the same on Node, Bun and Deno (passwords.test.ts checks RFC 7914's own test vector on
// each). Unlike the 256-bit tokens (secrets.ts), a password is chosen by a person and can be
// guessed, so each guess must cost memory and time: N = 2^15, r = 8, p = 3 is one of OWASP's
// equivalent scrypt settings (32 MiB, about a third of a second here). The stored text carries
// its parameters, so raising them later leaves old hashes readable; a sign-in rehashes a
// password whose hash used other parameters.
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT_COST: ScryptCost = { N: 2 ** 15, r: 8, p: 3 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;

/** At most this many hashes at once: each holds 128·N·r bytes (32 MiB at the default). */
const MAX_PARALLEL = 2;
let running = 0;
const waiting: (() => void)[] = [];

async function derive(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  if (running >= MAX_PARALLEL) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      scrypt(
        password.normalize("NFC"),
        salt,
        KEY_BYTES,
        { ...cost, maxmem: 256 * cost.N * cost.r + 1024 * 1024 },
        (e, k) => e ? reject(e) : resolve(k),
      )
    );
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** "scrypt$N$r$p$salt$hash", salt and hash in base64url. */
export async function hashPassword(password: string, cost: ScryptCost = DEFAULT_SCRYPT_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, cost);
  return ["scrypt", cost.N, cost.r, cost.p, salt.toString("base64url"), key.toString("base64url")].join("$");
}

function parse(stored: string): { cost: ScryptCost; salt: Buffer; key: Buffer } | undefined {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (!m) return undefined;
  const cost = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  // Bounds, so a tampered row cannot make a sign-in allocate gigabytes.
  if (cost.N < 2 || cost.N > 2 ** 20 || (cost.N & (cost.N - 1)) !== 0 || cost.r < 1 || cost.r > 32 || cost.p < 1 || cost.p > 16) {
    return undefined;
  }
  return { cost, salt: Buffer.from(m[4]!, "base64url"), key: Buffer.from(m[5]!, "base64url") };
}

/** Whether `password` is the one `stored` was made from; compared in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parse(stored);
  if (!h || h.key.length !== KEY_BYTES) return false;
  const key = await derive(password, h.salt, h.cost);
  return timingSafeEqual(key, h.key);
}

/** Whether a hash was made with other parameters than `cost` (then a sign-in rehashes it). */
export function needsRehash(stored: string, cost: ScryptCost = DEFAULT_SCRYPT_COST): boolean {
  const h = parse(stored);
  return !h || h.cost.N !== cost.N || h.cost.r !== cost.r || h.cost.p !== cost.p;
}

/**
 * A hash no password matches, with the current parameters: a sign-in with an unknown name
 * verifies against it, so it takes as long as one with a known name.
 */
const decoys = new Map<string, Promise<string>>();
export function decoyHash(cost: ScryptCost = DEFAULT_SCRYPT_COST): Promise<string> {
  const key = `${cost.N}/${cost.r}/${cost.p}`;
  let h = decoys.get(key);
  if (!h) decoys.set(key, h = hashPassword(randomBytes(16).toString("hex"), cost));
  return h;
}
