// Shadowsocks key derivation: the password becomes a master key once (EVP_BytesToKey),
// and every salt turns the master key into a session subkey (HKDF-SHA1, info "ss-subkey").
// node:crypto's md5 and hkdfSync exist and agree on Node, Bun and Deno (kdf.test.ts checks
// all three against vectors computed with OpenSSL and Python); both are synchronous,
// which keeps key setup off the promise path.
import { createHash, hkdfSync } from "node:crypto";

const utf8 = new TextEncoder();
const SUBKEY_INFO = utf8.encode("ss-subkey");

/** OpenSSL EVP_BytesToKey with MD5, no salt, one round; only the key part. */
export function evpBytesToKey(password: string | Uint8Array, keyLen: number): Uint8Array {
  const pw = typeof password === "string" ? utf8.encode(password) : password;
  const key = new Uint8Array(keyLen);
  let filled = 0;
  let prev: Uint8Array = new Uint8Array(0);
  while (filled < keyLen) {
    const h = createHash("md5");
    h.update(prev);
    h.update(pw);
    prev = new Uint8Array(h.digest());
    const take = Math.min(prev.length, keyLen - filled);
    key.set(prev.subarray(0, take), filled);
    filled += take;
  }
  return key;
}

export function hkdfSha1(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return new Uint8Array(hkdfSync("sha1", ikm, salt, info, length));
}

/** The per-connection (TCP, per direction) or per-packet (UDP) key. */
export function sessionSubkey(masterKey: Uint8Array, salt: Uint8Array): Uint8Array {
  return hkdfSha1(masterKey, salt, SUBKEY_INFO, masterKey.length);
}
