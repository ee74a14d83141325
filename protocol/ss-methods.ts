// The Shadowsocks AEAD methods HTTVPS speaks: the four Outline accepts, by their canonical
// names, and the other spellings clients write for them. One list for the backend's API, the
// app links, the Outline fake and the cipher specs (shadowsocks/ciphers.ts, which implements
// exactly these). Pure: no I/O.

export const SHADOWSOCKS_METHODS = ["chacha20-ietf-poly1305", "aes-256-gcm", "aes-192-gcm", "aes-128-gcm"] as const;
export type ShadowsocksMethod = (typeof SHADOWSOCKS_METHODS)[number];

export function isShadowsocksMethod(m: string): m is ShadowsocksMethod {
  return (SHADOWSOCKS_METHODS as readonly string[]).includes(m);
}

// outline-sdk accepts the spec's AEAD_* spellings too, case-insensitively.
const SPELLINGS: Record<string, ShadowsocksMethod> = {
  "chacha20-ietf-poly1305": "chacha20-ietf-poly1305",
  "aead_chacha20_poly1305": "chacha20-ietf-poly1305",
  "aes-256-gcm": "aes-256-gcm",
  "aead_aes_256_gcm": "aes-256-gcm",
  "aes-192-gcm": "aes-192-gcm",
  "aead_aes_192_gcm": "aes-192-gcm",
  "aes-128-gcm": "aes-128-gcm",
  "aead_aes_128_gcm": "aes-128-gcm",
};

/** The canonical name of a method written in any accepted spelling, or undefined. */
export function shadowsocksMethod(spelling: string): ShadowsocksMethod | undefined {
  const key = spelling.trim().toLowerCase();
  return Object.hasOwn(SPELLINGS, key) ? SPELLINGS[key] : undefined;
}
