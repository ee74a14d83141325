// The one synchronous AEAD interface every Shadowsocks crypto provider implements (node:crypto,
// libsodium in WebAssembly, @noble/ciphers: ciphers.ts, sodium.ts), and the facts of a method
// it needs. Its own module so the providers and the code that picks among them share it
// without importing each other.
import type { ShadowsocksMethod } from "../protocol/ss-methods.ts";

export interface CipherSpec {
  readonly method: ShadowsocksMethod;
  /** Master key and subkey length; the salt has the same length. */
  readonly keyLen: number;
  readonly saltLen: number;
  /** The name node:crypto knows it by. */
  readonly nodeName: string;
  readonly family: "chacha" | "gcm";
}

export const TAG_LEN = 16;
export const NONCE_LEN = 12;

/** One subkey of one method: seals and opens single AEAD blocks with a caller-managed nonce. */
export interface AeadKey {
  /** Writes ciphertext‖tag (plaintext.length + 16 bytes) into `out` at `offset`. */
  sealInto(nonce: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void;
  /** Opens ciphertext‖tag into a fresh array, or null when the tag does not authenticate. */
  open(nonce: Uint8Array, sealed: Uint8Array): Uint8Array | null;
}

export interface AeadProvider {
  readonly name: string;
  /** False while the provider is still loading (then `usable()` says no without remembering it). */
  ready?(): boolean;
  /** Binds a subkey. May throw when this provider cannot do the method here; `usable()` says beforehand. */
  key(spec: CipherSpec, key: Uint8Array): AeadKey;
}
