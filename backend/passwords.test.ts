import { test } from "node:test";
import assert from "node:assert/strict";
import { scrypt } from "node:crypto";
import { decoyHash, hashPassword, needsRehash, verifyPassword } from "./passwords.ts";

const CHEAP = { N: 1024, r: 8, p: 1 };

test("this runtime's scrypt gives RFC 7914's test vector (N=16384, r=8, p=1)", async () => {
  const key = await new Promise<Buffer>((resolve, reject) =>
    scrypt(
      "pleaseletmein",
      "SodiumChloride",
      64,
      { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 },
      (e, k) => e ? reject(e) : resolve(k),
    )
  );
  assert.equal(
    key.toString("hex"),
    "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2" +
      "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887",
  );
});

test("a password verifies against its own hash only; the hash carries its parameters and a fresh salt", async () => {
  const h = await hashPassword("correct horse battery", CHEAP);
  assert.match(h, /^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.equal(await verifyPassword("correct horse battery", h), true);
  assert.equal(await verifyPassword("correct horse batterY", h), false);
  assert.equal(await verifyPassword("", h), false);
  assert.notEqual(await hashPassword("correct horse battery", CHEAP), h, "a new salt each time");
  // Unicode: the composed and decomposed forms of one text are one password.
  const u = await hashPassword("caf\u00e9 au lait!!", CHEAP);
  assert.equal(await verifyPassword("cafe\u0301 au lait!!", u), true);
});

test("the default parameters are OWASP's scrypt equivalent; other hashes ask to be redone", async () => {
  const h = await hashPassword("a default-cost password");
  assert.match(h, /^scrypt\$32768\$8\$3\$/);
  assert.equal(needsRehash(h), false);
  assert.equal(needsRehash(await hashPassword("x", CHEAP)), true);
  assert.equal(await verifyPassword("a default-cost password", h), true);
});

test("a malformed or out-of-bounds stored hash never verifies (and allocates nothing large)", async () => {
  for (
    const bad of [
      "",
      "plain",
      "scrypt$1024$8$1$c2FsdA$",
      "scrypt$1000$8$1$c2FsdA$" + "A".repeat(43), // N not a power of two
      "scrypt$2147483648$8$1$c2FsdA$" + "A".repeat(43), // N far too large
      "scrypt$1024$8$1$c2FsdA$QUJD", // key too short
    ]
  ) {
    assert.equal(await verifyPassword("anything", bad), false, bad);
    assert.equal(needsRehash(bad), true);
  }
  assert.equal(await verifyPassword("anything", await decoyHash(CHEAP)), false);
});
