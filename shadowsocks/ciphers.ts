// The four AEAD methods Outline accepts, and the crypto providers that implement them.
// Every stream and packet goes through one small synchronous interface (AeadKey), so the
// hot path never awaits a promise. Which provider serves a method is decided by trying it
// once (a known-answer test), never by asking which runtime we are on: Bun's node:crypto
// has no chacha20-poly1305 and Deno's has no aes-192-gcm, and either may change; the
// system's libcrypto through FFI (libcrypto.ts) loads only where the runtime has FFI and the
// library is installed.
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from "node:crypto";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { gcm } from "@noble/ciphers/aes.js";
import { type ShadowsocksMethod, shadowsocksMethod } from "../protocol/ss-methods.ts";
import { StreamError } from "../protocol/errors.ts";
import { type AeadProvider, type CipherSpec, NONCE_LEN, TAG_LEN } from "./aead.ts";
import { libcryptoProvider } from "./libcrypto.ts";
import { loadSodium, sodiumProvider } from "./sodium.ts";

// Keyed by protocol/ss-methods.ts's list: a method added there without a spec here does not compile.
const specs: Record<ShadowsocksMethod, CipherSpec> = {
  "chacha20-ietf-poly1305": {
    method: "chacha20-ietf-poly1305",
    keyLen: 32,
    saltLen: 32,
    nodeName: "chacha20-poly1305",
    family: "chacha",
  },
  "aes-256-gcm": { method: "aes-256-gcm", keyLen: 32, saltLen: 32, nodeName: "aes-256-gcm", family: "gcm" },
  "aes-192-gcm": { method: "aes-192-gcm", keyLen: 24, saltLen: 24, nodeName: "aes-192-gcm", family: "gcm" },
  "aes-128-gcm": { method: "aes-128-gcm", keyLen: 16, saltLen: 16, nodeName: "aes-128-gcm", family: "gcm" },
};

export const METHODS = Object.keys(specs) as ShadowsocksMethod[];

/** The spec of a method name (any accepted spelling); StreamError `ss_unsupported_method` otherwise. */
export function cipherSpec(method: string): CipherSpec {
  const name = shadowsocksMethod(method);
  if (!name) {
    throw new StreamError(
      "ss_unsupported_method",
      `unsupported Shadowsocks method "${method.slice(0, 40)}" (expected one of ${METHODS.join(", ")})`,
    );
  }
  return specs[name];
}

/** OpenSSL through node:crypto: the fastest path where the runtime has the cipher. */
export const nodeCryptoProvider: AeadProvider = {
  name: "node:crypto",
  key(spec, key) {
    const name = spec.nodeName;
    // A KeyObject spares node:crypto re-importing the raw key for every block.
    const k: KeyObject = createSecretKey(key);
    const opts = { authTagLength: TAG_LEN } as const;
    return {
      sealInto(nonce, plaintext, out, offset) {
        const c = createCipheriv(name as "chacha20-poly1305", k, nonce, opts);
        const ct = c.update(plaintext);
        c.final();
        out.set(ct, offset);
        out.set(c.getAuthTag(), offset + plaintext.length);
      },
      open(nonce, sealed) {
        const n = sealed.length - TAG_LEN;
        if (n < 0) return null;
        const d = createDecipheriv(name as "chacha20-poly1305", k, nonce, opts);
        d.setAuthTag(sealed.subarray(n));
        const pt = d.update(sealed.subarray(0, n));
        try {
          d.final();
        } catch {
          return null;
        }
        return pt;
      },
    };
  },
};

/** @noble/ciphers: pure JavaScript, the same on every runtime; the fallback. */
export const nobleProvider: AeadProvider = {
  name: "noble",
  key(spec, key) {
    const k = Uint8Array.from(key);
    if (spec.family === "chacha") {
      return {
        sealInto(nonce, plaintext, out, offset) {
          chacha20poly1305(k, nonce).encrypt(plaintext, out.subarray(offset, offset + plaintext.length + TAG_LEN));
        },
        open(nonce, sealed) {
          if (sealed.length < TAG_LEN) return null;
          try {
            return chacha20poly1305(k, nonce).decrypt(sealed);
          } catch {
            return null;
          }
        },
      };
    }
    return {
      sealInto(nonce, plaintext, out, offset) {
        out.set(gcm(k, nonce).encrypt(plaintext), offset);
      },
      open(nonce, sealed) {
        if (sealed.length < TAG_LEN) return null;
        try {
          return gcm(k, nonce).decrypt(sealed);
        } catch {
          return null;
        }
      },
    };
  },
};

/** The system's libcrypto through FFI (Bun, Deno with --allow-ffi); not ready() on Node or without the library. */
export const nativeLibcryptoProvider: AeadProvider = libcryptoProvider();

/**
 * Preference order, the one selection (providerFor takes the first that passes its probe):
 * OpenSSL through FFI, then node:crypto, then libsodium in WebAssembly, portable JavaScript
 * last. Measured (docs/06, bench/ss-crypto.ts): on Deno the FFI path beats node:crypto for
 * both families; on Bun it is the only native chacha20; on Node it does not load.
 */
export const PROVIDERS: readonly AeadProvider[] = [nativeLibcryptoProvider, nodeCryptoProvider, sodiumProvider, nobleProvider];

// Known answers (key = zeros, nonce = zeros, plaintext "hello"), from OpenSSL 3.
const knownAnswer: Record<ShadowsocksMethod, string> = {
  "chacha20-ietf-poly1305": "f7628bd23adce962340b6fd6a0a4d1fe736f29456f",
  "aes-256-gcm": "a6c22c51228b908f7f62ffcea6a92fabef39bf4d93",
  "aes-192-gcm": "f0824810689260d764a5cf388f5d263ad0543e8809",
  "aes-128-gcm": "6bedb6a20ffc05f3475d29034caa1cc8fa3628c39f",
};

const probed = new Map<string, boolean>();

/** Whether `provider` really does `spec` here: seal matches the known answer, open round-trips, a forged tag fails. */
export function usable(provider: AeadProvider, spec: CipherSpec): boolean {
  if (provider.ready && !provider.ready()) return false;
  const id = `${provider.name}/${spec.method}`;
  let ok = probed.get(id);
  if (ok === undefined) {
    ok = false;
    try {
      const k = provider.key(spec, new Uint8Array(spec.keyLen));
      const nonce = new Uint8Array(NONCE_LEN);
      const pt = new TextEncoder().encode("hello");
      const out = new Uint8Array(pt.length + TAG_LEN);
      k.sealInto(nonce, pt, out, 0);
      const opened = k.open(nonce, out);
      const forged = out.slice();
      forged[forged.length - 1]! ^= 1;
      ok = toHex(out) === knownAnswer[spec.method] && opened !== null && toHex(opened) === toHex(pt) &&
        k.open(nonce, forged) === null;
    } catch {
      ok = false;
    }
    probed.set(id, ok);
  }
  return ok;
}

/** The provider a method will use on this runtime: the first usable one of `providers` (PROVIDERS). */
export function providerFor(spec: CipherSpec, providers: readonly AeadProvider[] = PROVIDERS): AeadProvider {
  for (const p of providers) if (usable(p, spec)) return p;
  throw new StreamError("ss_no_provider", `no crypto provider for ${spec.method} on this runtime`);
}

/**
 * Loads the WebAssembly provider (libsodium) so it takes part everywhere, not only where it
 * is needed: the tests use it to check it against the other providers on every runtime.
 */
export const loadWasmProviders = (): Promise<boolean> => loadSodium();

// Where nothing native does chacha20-poly1305 (Bun without libcrypto or FFI), libsodium is
// loaded before anyone can ask for a provider, so the first stream already gets it.
// Elsewhere it is not loaded at all.
const chacha = specs["chacha20-ietf-poly1305"];
if (!usable(nativeLibcryptoProvider, chacha) && !usable(nodeCryptoProvider, chacha)) await loadSodium();

function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}
