import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ServerSaltMarker } from "./server-salt.ts";
import { AeadDecryptor, AeadEncryptor } from "./aead-stream.ts";
import { cipherSpec } from "./ciphers.ts";
import { evpBytesToKey } from "./kdf.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));

describe("ServerSaltMarker (outline-ss-server's marked server salts)", () => {
  test("the mark matches HKDF-SHA1 + HMAC-SHA1 computed independently (Python hmac/hashlib)", () => {
    const m = new ServerSaltMarker("Secret0");
    assert.equal(m.isServerSalt(hex("000102030405060708090a0bfdf48a98")), true);
    assert.equal(m.isServerSalt(hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b7bb9e96d")), true);
    assert.equal(m.isServerSalt(hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b7bb9e96c")), false);
    assert.equal(new ServerSaltMarker("Secret1").isServerSalt(hex("000102030405060708090a0bfdf48a98")), false);
  });

  test("its own salts are recognised by any marker with the same secret; random salts are not", () => {
    const a = new ServerSaltMarker("pw");
    const b = new ServerSaltMarker("pw");
    for (const len of [16, 24, 32]) {
      const s1 = a.makeSalt(len);
      const s2 = a.makeSalt(len);
      assert.equal(s1.length, len);
      assert.notDeepEqual(s1, s2, "random");
      assert.equal(b.isServerSalt(s1), true);
      assert.equal(new ServerSaltMarker("other").isServerSalt(s1), false);
    }
    let marked = 0;
    for (let i = 0; i < 10_000; i++) if (a.isServerSalt(crypto.getRandomValues(new Uint8Array(32)))) marked++;
    assert.equal(marked, 0);
    assert.equal(a.isServerSalt(new Uint8Array(4)), false, "too short to carry a mark");
  });

  test("a reflected server stream decrypts with the same key, and its salt gives it away", () => {
    const spec = cipherSpec("chacha20-ietf-poly1305");
    const key = evpBytesToKey("pw", spec.keyLen);
    const marker = new ServerSaltMarker("pw");
    const downstream = new AeadEncryptor(spec, key, { salt: marker.makeSalt(spec.saltLen) }).seal(
      new TextEncoder().encode("HTTP/1.1 200 OK"),
    );
    const asUpstream = new AeadDecryptor(spec, key);
    assert.ok(Array.isArray(asUpstream.push(downstream)), "reflection decrypts");
    assert.equal(marker.isServerSalt(asUpstream.salt!), true);
  });
});
