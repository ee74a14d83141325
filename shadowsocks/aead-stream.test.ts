import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { StreamError } from "../transport/stream.ts";
import { AeadDecryptor, AeadEncryptor, MAX_PAYLOAD } from "./aead-stream.ts";
import { type CipherSpec, TAG_LEN } from "./aead.ts";
import { cipherSpec, loadWasmProviders, METHODS, PROVIDERS, usable } from "./ciphers.ts";
import { evpBytesToKey, sessionSubkey } from "./kdf.ts";
import { captures, concatBytes, readHexLines, toHex } from "./test-vectors.ts";

// The captures are checked with every provider that can load here, libsodium included.
await loadWasmProviders();

function decryptAll(spec: CipherSpec, key: Uint8Array, wire: Uint8Array, step?: number | "random"): Uint8Array[] | StreamError {
  const dec = new AeadDecryptor(spec, key);
  const pieces: Uint8Array[] = [];
  let pos = 0;
  while (pos < wire.length) {
    const n = step === undefined ? wire.length : step === "random" ? 1 + Math.floor(Math.random() * 600) : step;
    const r = dec.push(wire.subarray(pos, pos + n));
    if (r instanceof StreamError) return r;
    pieces.push(...r);
    pos += n;
  }
  assert.ok(dec.atBoundary, "the stream ended on a chunk boundary");
  return pieces;
}

function isCode(code: string) {
  return (e: unknown) => e instanceof StreamError && e.code === code;
}

const tcp = captures().filter((c) => c.transport === "tcp");

describe("TCP captures from shadowsocks-libev", () => {
  test("there are TCP captures for all four methods", () => {
    assert.deepEqual(new Set(tcp.map((c) => cipherSpec(c.cipher).method)), new Set(METHODS));
  });

  for (const cap of tcp) {
    const spec = cipherSpec(cap.cipher);
    const key = evpBytesToKey(cap.password, spec.keyLen);
    for (const dir of ["c2s", "s2c"] as const) {
      const wire = readHexLines(cap.files[dir])[0]!;
      const plain = readHexLines(cap.files[dir === "c2s" ? "c2sPlain" : "s2cPlain"])[0]!;

      describe(`${cap.name} ${dir}`, () => {
        test("master key matches the index", () => {
          assert.equal(toHex(key), cap.masterKeyHex);
        });

        test("decrypts to the expected plaintext (whole, byte by byte, random fragments)", () => {
          const whole = decryptAll(spec, key, wire);
          assert.ok(Array.isArray(whole));
          assert.equal(toHex(concatBytes(whole)), toHex(plain));
          if (dir === "c2s") assert.equal(toHex(whole[0]!), cap.target.socksAddrHex, "libev sends the address as its own chunk");
          const bytewise = decryptAll(spec, key, wire, 1);
          assert.ok(Array.isArray(bytewise));
          assert.equal(toHex(concatBytes(bytewise)), toHex(plain));
          const random = decryptAll(spec, key, wire, "random");
          assert.ok(Array.isArray(random));
          assert.equal(toHex(concatBytes(random)), toHex(plain));
        });

        test("every usable provider decrypts it", () => {
          for (const p of PROVIDERS.filter((p) => usable(p, spec))) {
            const dec = new AeadDecryptor(spec, key, p);
            const r = dec.push(wire);
            assert.ok(Array.isArray(r), p.name);
            assert.equal(toHex(concatBytes(r)), toHex(plain), p.name);
          }
        });

        test("re-encryption with the captured salt reproduces the capture exactly", () => {
          const pieces = decryptAll(spec, key, wire) as Uint8Array[];
          const salt = wire.subarray(0, spec.saltLen);
          for (const p of PROVIDERS.filter((p) => usable(p, spec))) {
            const enc = new AeadEncryptor(spec, key, { salt, provider: p });
            assert.equal(toHex(concatBytes(pieces.map((x) => enc.seal(x)))), toHex(wire), p.name);
          }
          // libev splits at 0x3FFF exactly like we do, so one big write of the chunks after
          // the first gives the same bytes whenever they are all full but the last.
          const rest = pieces.slice(1);
          if (rest.length > 1 && rest.slice(0, -1).every((x) => x.length === MAX_PAYLOAD)) {
            const enc = new AeadEncryptor(spec, key, { salt });
            assert.equal(toHex(concatBytes([enc.seal(pieces[0]!), enc.seal(concatBytes(rest))])), toHex(wire));
          }
        });

        test("a flipped bit anywhere is rejected with ss_auth_failed", () => {
          const positions = new Set<number>();
          if (wire.length <= 4096) { for (let i = 0; i < wire.length; i++) positions.add(i); }
          else {
            for (let i = 0; i < 256; i++) positions.add(i);
            let o = spec.saltLen;
            for (const p of decryptAll(spec, key, wire) as Uint8Array[]) {
              for (const d of [0, 1, 17, 18, 19, 18 + p.length, 18 + p.length + TAG_LEN - 1]) positions.add(o + d);
              o += 2 + TAG_LEN + p.length + TAG_LEN;
            }
            for (let i = 0; i < 200; i++) positions.add(Math.floor(Math.random() * wire.length));
          }
          for (const i of positions) {
            const bad = wire.slice();
            bad[i]! ^= 1 << (i % 8);
            const r = decryptAll(spec, key, bad);
            assert.ok(r instanceof StreamError && r.code === "ss_auth_failed", `flip at byte ${i} was not rejected`);
          }
        });

        test("the wrong password is rejected", () => {
          const r = decryptAll(spec, evpBytesToKey(cap.password + "x", spec.keyLen), wire);
          assert.ok(r instanceof StreamError && r.code === "ss_auth_failed");
        });
      });
    }
  }
});

describe("AeadEncryptor / AeadDecryptor", () => {
  for (const m of METHODS) {
    const spec = cipherSpec(m);
    const providers = PROVIDERS.filter((p) => usable(p, spec));
    test(`${m}: round trip of random writes across providers with random fragmentation`, () => {
      const key = crypto.getRandomValues(new Uint8Array(spec.keyLen));
      const writes = [1, 2, 100, MAX_PAYLOAD - 1, MAX_PAYLOAD, MAX_PAYLOAD + 1, 3 * MAX_PAYLOAD + 5, 65536].map((n) =>
        crypto.getRandomValues(new Uint8Array(n))
      );
      for (const ps of providers) {
        for (const po of providers) {
          const enc = new AeadEncryptor(spec, key, { provider: ps });
          const wire = concatBytes(writes.map((w) => enc.seal(w)));
          const chunks = writes.reduce((n, w) => n + Math.ceil(w.length / MAX_PAYLOAD), 0);
          assert.equal(wire.length, spec.saltLen + writes.reduce((n, w) => n + w.length, 0) + chunks * (2 + 2 * TAG_LEN));
          const dec = new AeadDecryptor(spec, key, po);
          const out: Uint8Array[] = [];
          for (let pos = 0; pos < wire.length;) {
            const n = 1 + Math.floor(Math.random() * 20000);
            const r = dec.push(wire.subarray(pos, pos + n));
            assert.ok(Array.isArray(r));
            out.push(...r);
            pos += n;
          }
          assert.ok(out.every((p) => p.length >= 1 && p.length <= MAX_PAYLOAD));
          assert.equal(toHex(concatBytes(out)), toHex(concatBytes(writes)), `${ps.name} → ${po.name}`);
        }
      }
    });
  }

  test("an empty write produces nothing (and keeps the salt for the first real chunk)", () => {
    const spec = cipherSpec("aes-128-gcm");
    const enc = new AeadEncryptor(spec, new Uint8Array(16));
    assert.equal(enc.seal(new Uint8Array(0)).length, 0);
    const first = enc.seal(new Uint8Array([7]));
    assert.equal(first.length, 16 + 18 + 1 + 16);
    assert.equal(toHex(first.subarray(0, 16)), toHex(enc.salt));
  });

  test("the salt is random, and starts with the prefix when one is given", () => {
    const spec = cipherSpec("chacha20-ietf-poly1305");
    const key = new Uint8Array(32);
    const prefix = new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xa8, 0x01, 0x01]);
    const a = new AeadEncryptor(spec, key, { prefix });
    const b = new AeadEncryptor(spec, key, { prefix });
    assert.equal(toHex(a.salt.subarray(0, 7)), toHex(prefix));
    assert.notEqual(toHex(a.salt), toHex(b.salt));
    assert.notEqual(toHex(new AeadEncryptor(spec, key).salt), toHex(new AeadEncryptor(spec, key).salt));
    assert.throws(() => new AeadEncryptor(spec, key, { prefix: new Uint8Array(32) }), isCode("ss_bad_prefix"));
    assert.throws(() => new AeadEncryptor(spec, key, { salt: new Uint8Array(16) }), isCode("ss_bad_salt"));
  });

  test("a length of 0 or above 0x3FFF that authenticates is ss_bad_length", () => {
    for (const m of METHODS) {
      const spec = cipherSpec(m);
      const key = crypto.getRandomValues(new Uint8Array(spec.keyLen));
      const salt = crypto.getRandomValues(new Uint8Array(spec.saltLen));
      for (const len of [0, 0x4000, 0xffff]) {
        const block = new Uint8Array(2 + TAG_LEN);
        const aead = PROVIDERS.find((p) => usable(p, spec))!.key(spec, sessionSubkey(key, salt));
        aead.sealInto(new Uint8Array(12), new Uint8Array([len >> 8, len & 0xff]), block, 0);
        const dec = new AeadDecryptor(spec, key);
        const r = dec.push(concatBytes([salt, block]));
        assert.ok(r instanceof StreamError && r.code === "ss_bad_length", `${m} length ${len}`);
        const again = dec.push(new Uint8Array(100));
        assert.ok(again instanceof StreamError && again.code === "ss_bad_length", "errors are sticky");
      }
    }
  });

  test("atBoundary tells a clean end from a truncated chunk", () => {
    const spec = cipherSpec("aes-256-gcm");
    const key = new Uint8Array(32);
    const wire = new AeadEncryptor(spec, key).seal(new Uint8Array(100));
    const dec = new AeadDecryptor(spec, key);
    assert.ok(dec.atBoundary);
    dec.push(wire.subarray(0, 10));
    assert.ok(!dec.atBoundary);
    dec.push(wire.subarray(10, wire.length - 1));
    assert.ok(!dec.atBoundary);
    const r = dec.push(wire.subarray(wire.length - 1));
    assert.ok(Array.isArray(r) && r.length === 1 && r[0]!.length === 100);
    assert.ok(dec.atBoundary);
  });
});
