// Test support: which provider the selection (ciphers.ts providerFor) must pick on the runtime
// the tests run on, so the capture, vector and ss-server tests can prove they exercise it.
// Bun and Deno (tests run with -A, so --allow-ffi) call the system's libcrypto through FFI;
// Node has no FFI and its node:crypto is OpenSSL already.
import type { ShadowsocksMethod } from "../protocol/ss-methods.ts";

export const runtimeName = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

export function expectedProvider(_method: ShadowsocksMethod): string {
  return runtimeName === "node" ? "node:crypto" : "libcrypto-ffi";
}

/** What is picked when libcrypto cannot be loaded: Bun's node:crypto lacks chacha20, Deno's aes-192-gcm. */
export function expectedFallback(method: ShadowsocksMethod): string {
  if (runtimeName === "bun" && method === "chacha20-ietf-poly1305") return "libsodium-wasm";
  if (runtimeName === "deno" && method === "aes-192-gcm") return "noble";
  return "node:crypto";
}
