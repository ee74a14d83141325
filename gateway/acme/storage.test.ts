import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GatewayError } from "../gateway-error.ts";
import { AcmeStorage, directoryFolder } from "./storage.ts";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "httvps-acme-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("each CA directory gets its own folder, so staging and production never mix", () => {
  assert.equal(directoryFolder("https://acme-v02.api.letsencrypt.org/directory"), "acme-v02.api.letsencrypt.org_directory");
  assert.equal(
    directoryFolder("https://acme-staging-v02.api.letsencrypt.org/directory"),
    "acme-staging-v02.api.letsencrypt.org_directory",
  );
  assert.equal(directoryFolder("https://127.0.0.1:14000/dir"), "127.0.0.1_14000_dir");
  assert.equal(directoryFolder("https://ca.test/../../etc"), "ca.test_etc");
});

test("account and certificate round-trip, every file 0600 and every folder 0700, nothing left behind", async () => {
  const s = new AcmeStorage(dir, "https://ca.test/dir");
  assert.equal(await s.accountKey(), undefined);
  assert.equal(await s.accountUrl(), undefined);
  assert.equal(await s.certificate(["gw.example.test"]), undefined);
  await s.saveAccount("ACCOUNT KEY", "https://ca.test/acct/1");
  await s.saveCertificate(["gw.example.test", "www.example.test"], { cert: "CERT", key: "KEY" });
  assert.equal(await s.accountKey(), "ACCOUNT KEY");
  assert.equal(await s.accountUrl(), "https://ca.test/acct/1");
  assert.deepEqual(await s.certificate(["gw.example.test", "www.example.test"]), { cert: "CERT", key: "KEY" });
  await s.saveCertificate(["gw.example.test"], { cert: "CERT 2", key: "KEY 2" });
  assert.deepEqual(await s.certificate(["gw.example.test"]), { cert: "CERT 2", key: "KEY 2" });
  const certDir = join(s.dir, "gw.example.test");
  for (const f of ["account.key", "account.json"]) assert.equal((await stat(join(s.dir, f))).mode & 0o777, 0o600, f);
  for (const f of ["cert.pem", "key.pem"]) assert.equal((await stat(join(certDir, f))).mode & 0o777, 0o600, f);
  for (const d of [s.dir, certDir]) assert.equal((await stat(d)).mode & 0o777, 0o700, d);
  assert.deepEqual((await readdir(certDir)).sort(), ["cert.pem", "key.pem"], "no temporary files remain");
  // a damaged account.json costs only the URL: the CA finds the account again by its key
  await writeFile(join(s.dir, "account.json"), "{not json");
  assert.equal(await s.accountUrl(), undefined);
});

test("a place it cannot write is a typed error", async () => {
  const file = join(dir, "a-file");
  await writeFile(file, "x");
  const s = new AcmeStorage(file, "https://ca.test/dir");
  await assert.rejects(s.saveAccount("k", undefined), (e: unknown) => e instanceof GatewayError && e.code === "tls_unwritable");
});
