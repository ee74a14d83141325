import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { StreamError } from "../transport/stream.ts";
import { TAG_LEN } from "./aead.ts";
import {
  cipherSpec,
  loadWasmProviders,
  METHODS,
  nativeLibcryptoProvider,
  nobleProvider,
  nodeCryptoProvider,
  providerFor,
  PROVIDERS,
  usable,
} from "./ciphers.ts";
import { expectedFallback, expectedProvider, runtimeName } from "./ciphers.testing.ts";
import { libcryptoProvider } from "./libcrypto.ts";
import { sodiumProvider } from "./sodium.ts";
import { toHex } from "./test-vectors.ts";

// Every provider that can load here takes part, so libsodium is checked on Node and Deno too.
await loadWasmProviders();

describe("cipherSpec", () => {
  test("key and salt lengths of the four methods", () => {
    assert.deepEqual(
      METHODS.map((m) => [m, cipherSpec(m).keyLen, cipherSpec(m).saltLen]),
      [
        ["chacha20-ietf-poly1305", 32, 32],
        ["aes-256-gcm", 32, 32],
        ["aes-192-gcm", 24, 24],
        ["aes-128-gcm", 16, 16],
      ],
    );
  });

  test("accepts the spec's AEAD_* names, case-insensitively", () => {
    assert.equal(cipherSpec("AEAD_CHACHA20_POLY1305").method, "chacha20-ietf-poly1305");
    assert.equal(cipherSpec("AES-256-GCM").method, "aes-256-gcm");
    assert.equal(cipherSpec("aead_aes_128_gcm").method, "aes-128-gcm");
  });

  test("an unsupported method is a typed error", () => {
    for (const m of ["bf-cfb", "aes-256-cfb", "", "chacha20"]) {
      assert.throws(() => cipherSpec(m), (e: unknown) => e instanceof StreamError && e.code === "ss_unsupported_method");
    }
  });
});

describe("providers", () => {
  test("noble works for every method on every runtime (it is the fallback)", () => {
    for (const m of METHODS) assert.ok(usable(nobleProvider, cipherSpec(m)), m);
  });

  test("libsodium (WebAssembly) loads on every runtime and does chacha20-ietf-poly1305 only", () => {
    assert.ok(usable(sodiumProvider, cipherSpec("chacha20-ietf-poly1305")));
    for (const m of ["aes-256-gcm", "aes-192-gcm", "aes-128-gcm"]) assert.equal(usable(sodiumProvider, cipherSpec(m)), false, m);
  });

  test("libsodium's scratch area grows for a 64 KiB UDP payload and shrinks back to chunk work", () => {
    const spec = cipherSpec("chacha20-ietf-poly1305");
    const k = sodiumProvider.key(spec, new Uint8Array(32).fill(7));
    const nonce = new Uint8Array(12);
    for (const size of [100, 65_000, 3]) {
      const pt = crypto.getRandomValues(new Uint8Array(size));
      const out = new Uint8Array(size + TAG_LEN);
      k.sealInto(nonce, pt, out, 0);
      assert.equal(toHex(nobleProvider.key(spec, new Uint8Array(32).fill(7)).open(nonce, out)!), toHex(pt), `size ${size}`);
      assert.equal(toHex(k.open(nonce, out)!), toHex(pt));
    }
  });

  test("every method has a provider, and the picked one passed its probe", () => {
    for (const m of METHODS) {
      const spec = cipherSpec(m);
      assert.ok(usable(providerFor(spec), spec));
    }
  });

  test(`the selection picks the native provider of this runtime (${runtimeName}) for every method`, () => {
    for (const m of METHODS) assert.equal(providerFor(cipherSpec(m)).name, expectedProvider(m), m);
  });

  test("libcrypto through FFI loads on Bun and Deno and does all four methods; Node has no FFI", () => {
    for (const m of METHODS) assert.equal(usable(nativeLibcryptoProvider, cipherSpec(m)), runtimeName !== "node", m);
  });

  test("without libcrypto (a soname that does not exist) the selection falls back", () => {
    const missing = libcryptoProvider(["libhttvps-no-such-crypto.so.0"]);
    assert.equal(missing.ready?.(), false);
    for (const m of METHODS) {
      const spec = cipherSpec(m);
      assert.equal(usable(missing, spec), false, m);
      assert.throws(() => missing.key(spec, new Uint8Array(spec.keyLen)), /not loaded/);
      const picked = providerFor(spec, [missing, nodeCryptoProvider, sodiumProvider, nobleProvider]);
      assert.equal(picked.name, expectedFallback(m), m);
    }
  });

  test("libcrypto reads and writes subarrays at their own offsets, up to a 64 KiB UDP payload", {
    skip: runtimeName === "node" && "no FFI on Node",
  }, () => {
    for (const m of METHODS) {
      const spec = cipherSpec(m);
      const key = crypto.getRandomValues(new Uint8Array(spec.keyLen));
      const nonce = crypto.getRandomValues(new Uint8Array(12));
      const reference = nobleProvider.key(spec, key);
      const k = nativeLibcryptoProvider.key(spec, key);
      for (const size of [0, 5, 65_000]) {
        // Input and nonce inside larger buffers, output at an odd offset: a pointer that ignored
        // byteOffset would read or write the wrong bytes.
        const pool = crypto.getRandomValues(new Uint8Array(size + 7));
        const pt = pool.subarray(7);
        const nonceView = new Uint8Array(20).fill(0xee);
        nonceView.set(nonce, 5);
        const out = new Uint8Array(size + TAG_LEN + 9).fill(0xaa);
        k.sealInto(nonceView.subarray(5, 17), pt, out, 5);
        assert.deepEqual([...out.subarray(0, 5), ...out.subarray(5 + size + TAG_LEN)], new Array(9).fill(0xaa), "wrote outside");
        const sealed = out.subarray(5, 5 + size + TAG_LEN);
        assert.equal(toHex(reference.open(nonce, sealed)!), toHex(pt), `${m} size ${size}`);
        assert.equal(toHex(k.open(nonce, sealed)!), toHex(pt));
        assert.equal(sealed.length - TAG_LEN, size);
      }
    }
  });

  test("fuzz: random blocks of random lengths never open and never throw, with any provider", () => {
    for (const m of METHODS) {
      const spec = cipherSpec(m);
      for (const p of PROVIDERS.filter((p) => usable(p, spec))) {
        const k = p.key(spec, crypto.getRandomValues(new Uint8Array(spec.keyLen)));
        for (let i = 0; i < 150; i++) {
          const junk = crypto.getRandomValues(new Uint8Array(Math.floor(Math.random() * 70)));
          assert.equal(k.open(crypto.getRandomValues(new Uint8Array(12)), junk), null, `${p.name} ${m} opened junk`);
        }
      }
    }
  });

  for (const m of METHODS) {
    test(`${m}: all usable providers agree, open each other's output and reject forgeries`, () => {
      const spec = cipherSpec(m);
      const ps = PROVIDERS.filter((p) => usable(p, spec));
      const key = crypto.getRandomValues(new Uint8Array(spec.keyLen));
      const nonce = crypto.getRandomValues(new Uint8Array(12));
      for (const size of [0, 1, 2, 15, 16, 17, 1000, 16383]) {
        const pt = crypto.getRandomValues(new Uint8Array(size));
        const sealed = ps.map((p) => {
          const out = new Uint8Array(size + TAG_LEN + 3);
          p.key(spec, key).sealInto(nonce, pt, out, 3);
          return out.subarray(3);
        });
        for (const s of sealed) assert.equal(toHex(s), toHex(sealed[0]!), `size ${size}`);
        for (const p of ps) {
          const k = p.key(spec, key);
          assert.equal(toHex(k.open(nonce, sealed[0]!)!), toHex(pt));
          const bad = sealed[0]!.slice();
          bad[size % bad.length]! ^= 0x40;
          assert.equal(k.open(nonce, bad), null, `${p.name} accepted a forgery`);
          assert.equal(k.open(nonce, sealed[0]!.subarray(0, 15)), null, `${p.name} accepted a short block`);
        }
      }
    });
  }
});
