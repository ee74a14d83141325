import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { evpBytesToKey, hkdfSha1, sessionSubkey } from "./kdf.ts";
import { fromHex, readVectorJson, toHex } from "./test-vectors.ts";

interface KdfVectors {
  evpBytesToKey: { password: string; passwordUtf8Hex: string; keyLen: number; keyHex: string }[];
  hkdfSha1: { keyHex: string; saltHex: string; info: string; subkeyHex: string }[];
}

const vectors = readVectorJson<KdfVectors>("kdf.json");

describe("EVP_BytesToKey", () => {
  test("the vector file has vectors for 16-, 24- and 32-byte keys", () => {
    assert.deepEqual(new Set(vectors.evpBytesToKey.map((v) => v.keyLen)), new Set([16, 24, 32]));
  });

  for (const v of vectors.evpBytesToKey) {
    test(`${JSON.stringify(v.password)} → ${v.keyLen} bytes`, () => {
      assert.equal(toHex(new TextEncoder().encode(v.password)), v.passwordUtf8Hex, "the password's UTF-8 bytes");
      assert.equal(toHex(evpBytesToKey(v.password, v.keyLen)), v.keyHex);
      assert.equal(toHex(evpBytesToKey(fromHex(v.passwordUtf8Hex), v.keyLen)), v.keyHex);
    });
  }
});

describe("HKDF-SHA1 subkeys", () => {
  for (const v of vectors.hkdfSha1) {
    test(`${v.keyHex.length / 2}-byte key, salt ${v.saltHex.slice(0, 8)}…`, () => {
      const key = fromHex(v.keyHex);
      const salt = fromHex(v.saltHex);
      assert.equal(v.info, "ss-subkey");
      assert.equal(toHex(sessionSubkey(key, salt)), v.subkeyHex);
      assert.equal(toHex(hkdfSha1(key, salt, new TextEncoder().encode(v.info), key.length)), v.subkeyHex);
    });
  }

  test("testdata/README.md's worked example (chacha20 capture salt)", () => {
    const master = evpBytesToKey("shadowsocks-test-password", 32);
    assert.equal(toHex(master), "71d4036549890b4c6d1ad44c6ce4eeecad8ce5de32ed6de0ecc79e168d5ea441");
    const salt = fromHex("c4d9395b033aab4aff673ae663ef83e4dc8d9377d7f8b1a3e158fb1c6c4096b0");
    assert.equal(toHex(sessionSubkey(master, salt)), "8baa8b5287b17f663a9c5c4d16ce71570f3ae03eaa50a3ae96c03e704c79823b");
  });
});
