// The system's OpenSSL (libcrypto) called through the runtime's FFI (runtime/ffi.ts): native
// chacha20-poly1305 on Bun, whose node:crypto lacks it, and native AES-GCM on Deno, whose
// node:crypto AES-GCM is slow. Node has no FFI; its node:crypto is this same OpenSSL already.
//
// One EVP_CIPHER_CTX per direction used per subkey, keyed once; each block then re-initialises
// only the nonce: seal = init + update + final + get-tag, open = init + set-tag + update +
// final (4 FFI calls; the per-call cost shows at small writes, see docs/06). The contexts are
// freed when the key is garbage-collected.
import { type FfiSymbols, openNativeLibrary } from "../runtime/ffi.ts";
import type { AeadKey, AeadProvider, CipherSpec } from "./aead.ts";
import { TAG_LEN } from "./aead.ts";

/** OpenSSL 3 by soname (Linux, macOS). 1.1 is not listed: untested here. */
export const LIBCRYPTO_NAMES = ["libcrypto.so.3", "libcrypto.3.dylib"] as const;

const symbols = {
  EVP_CIPHER_CTX_new: { args: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { args: ["pointer"], result: "void" },
  EVP_chacha20_poly1305: { args: [], result: "pointer" },
  EVP_aes_128_gcm: { args: [], result: "pointer" },
  EVP_aes_192_gcm: { args: [], result: "pointer" },
  EVP_aes_256_gcm: { args: [], result: "pointer" },
  // (ctx, cipher, engine, key, iv, enc: 1 seal, 0 open, -1 unchanged)
  EVP_CipherInit_ex: { args: ["pointer", "pointer", "pointer", "buffer", "buffer", "i32"], result: "i32" },
  // (ctx, out, &outl, in, inl)
  EVP_CipherUpdate: { args: ["pointer", "buffer", "buffer", "buffer", "i32"], result: "i32" },
  EVP_CipherFinal_ex: { args: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { args: ["pointer", "i32", "i32", "buffer"], result: "i32" },
} as const satisfies FfiSymbols;

// openssl/evp.h: EVP_CTRL_AEAD_GET_TAG, EVP_CTRL_AEAD_SET_TAG.
const GET_TAG = 0x10;
const SET_TAG = 0x11;

const cipherGetter = {
  "chacha20-ietf-poly1305": "EVP_chacha20_poly1305",
  "aes-256-gcm": "EVP_aes_256_gcm",
  "aes-192-gcm": "EVP_aes_192_gcm",
  "aes-128-gcm": "EVP_aes_128_gcm",
} as const;

/** A libcrypto provider over the first of `names` that loads; not ready() when none does. */
export function libcryptoProvider(names: readonly string[] = LIBCRYPTO_NAMES): AeadProvider {
  const lib = openNativeLibrary(names, symbols);
  const f = lib?.symbols;
  // Output length of each update/final; GCM and ChaCha20 are stream modes, so it is known already.
  const outl = new Int32Array(1);
  const noOutput = new Uint8Array(16);
  const contexts = new FinalizationRegistry<unknown[]>((ctxs) => {
    for (const c of ctxs) f!.EVP_CIPHER_CTX_free(c);
  });

  function context(spec: CipherSpec, key: Uint8Array, enc: 0 | 1): unknown {
    const ctx = f!.EVP_CIPHER_CTX_new();
    if (!ctx) throw new Error("libcrypto: EVP_CIPHER_CTX_new failed");
    if (f!.EVP_CipherInit_ex(ctx, f![cipherGetter[spec.method]](), null, key, null, enc) !== 1) {
      f!.EVP_CIPHER_CTX_free(ctx);
      throw new Error(`libcrypto: cannot key ${spec.method}`);
    }
    return ctx;
  }

  return {
    name: "libcrypto-ffi",
    ready: () => lib !== null,
    key(spec: CipherSpec, key: Uint8Array): AeadKey {
      if (!f) throw new Error("libcrypto is not loaded");
      if (key.length !== spec.keyLen) throw new Error(`libcrypto: ${spec.method} needs a ${spec.keyLen}-byte key`);
      // Each context is made on first use: a stream's encryptor only seals and its decryptor
      // only opens, so most keys need one. `owned` is what the finalizer frees.
      const keyCopy = Uint8Array.from(key);
      const owned: unknown[] = [];
      let sealCtx: unknown = null;
      let openCtx: unknown = null;
      const aead: AeadKey = {
        sealInto(nonce, plaintext, out, offset) {
          if (!sealCtx) owned.push(sealCtx = context(spec, keyCopy, 1));
          const n = plaintext.length;
          let ok = f.EVP_CipherInit_ex(sealCtx, null, null, null, nonce, -1) === 1;
          if (n > 0) ok &&= f.EVP_CipherUpdate(sealCtx, out.subarray(offset, offset + n), outl, plaintext, n) === 1;
          ok &&= f.EVP_CipherFinal_ex(sealCtx, noOutput, outl) === 1;
          ok &&= f.EVP_CIPHER_CTX_ctrl(sealCtx, GET_TAG, TAG_LEN, out.subarray(offset + n, offset + n + TAG_LEN)) === 1;
          if (!ok) throw new Error(`libcrypto: ${spec.method} seal failed`);
        },
        open(nonce, sealed) {
          const n = sealed.length - TAG_LEN;
          if (n < 0) return null;
          if (!openCtx) owned.push(openCtx = context(spec, keyCopy, 0));
          const pt = new Uint8Array(n);
          if (f.EVP_CipherInit_ex(openCtx, null, null, null, nonce, -1) !== 1) return null;
          if (f.EVP_CIPHER_CTX_ctrl(openCtx, SET_TAG, TAG_LEN, sealed.subarray(n)) !== 1) return null;
          if (n > 0 && f.EVP_CipherUpdate(openCtx, pt, outl, sealed.subarray(0, n), n) !== 1) return null;
          return f.EVP_CipherFinal_ex(openCtx, noOutput, outl) === 1 ? pt : null;
        },
      };
      contexts.register(aead, owned);
      return aead;
    },
  };
}
