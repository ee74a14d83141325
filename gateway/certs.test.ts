import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import tls from "node:tls";
import { CertError, createDevCertificate, type DevCertificate, pemToDer, writeDevCertificate } from "./certs.ts";

/** SAN entries in one spelling whichever runtime printed them ("IP Address:0:0:0:0:0:0:0:1" vs "IP Address:::1"). */
function sans(x: X509Certificate): string[] {
  return (x.subjectAltName ?? "").split(", ").map((s) => {
    const ip = /^IP Address:(.*)$/.exec(s);
    if (!ip) return s;
    return "IP:" + (net.isIPv6(ip[1]!) ? expand6(ip[1]!) : ip[1]);
  });
}
function expand6(a: string): string {
  const v4 = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) a = v4[1]! + ((+v4[2]! << 8) | +v4[3]!).toString(16) + ":" + ((+v4[4]! << 8) | +v4[5]!).toString(16);
  const [h, t] = a.split("::") as [string, string | undefined];
  const head = h ? h.split(":") : [];
  const tail = t ? t.split(":") : [];
  const mid = t === undefined ? [] : new Array(8 - head.length - tail.length).fill("0");
  return [...head, ...mid, ...tail].map((g) => parseInt(g, 16).toString(16)).join(":");
}

function handshake(port: number, opts: tls.ConnectionOptions): Promise<{ ok: boolean; authorized?: boolean; error?: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port, ...opts }, () => {
      const authorized = s.authorized;
      s.end();
      s.destroy();
      resolve({ ok: true, authorized });
    });
    s.on("error", (e) => {
      s.destroy();
      resolve({ ok: false, error: e.message });
    });
  });
}

describe("createDevCertificate", () => {
  let c: DevCertificate;
  before(async () => {
    c = await createDevCertificate({ days: 30 });
  });

  test("is an X.509 certificate with the requested names whose key matches", () => {
    const x = new X509Certificate(c.certPem);
    assert.deepEqual(sans(x), ["DNS:localhost", "IP:127.0.0.1", "IP:0:0:0:0:0:0:0:1"]);
    assert.match(x.subject, /CN=localhost/);
    assert.equal(x.issuer, x.subject);
    assert.equal(x.checkPrivateKey(createPrivateKey(c.keyPem)), true);
    assert.equal(x.ca, false);
    const days = (Date.parse(x.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `valid for ${days} days`);
    assert.ok(Date.parse(x.validFrom) < Date.now());
    assert.match(c.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(createPrivateKey(c.keyPem).asymmetricKeyType, "ec");
  });

  test("sha256 is the SHA-256 of the DER, the fingerprint clients pin", () => {
    const der = pemToDer(c.certPem)!;
    assert.equal(c.sha256, createHash("sha256").update(der).digest("hex"));
    assert.equal(c.sha256, new X509Certificate(c.certPem).fingerprint256.replaceAll(":", "").toLowerCase());
  });

  test("every certificate gets a fresh key and serial", async () => {
    const d = await createDevCertificate();
    assert.notEqual(d.sha256, c.sha256);
    assert.notEqual(d.keyPem, c.keyPem);
    assert.notEqual(new X509Certificate(d.certPem).serialNumber, new X509Certificate(c.certPem).serialNumber);
  });

  test("other names and addresses, IPv6 spellings included", async () => {
    const d = await createDevCertificate({
      hostnames: ["gw.example.test", "*.example.test"],
      ips: ["10.1.2.3", "2001:db8::1", "::ffff:192.0.2.1", "fe80:0:0:0:0:0:0:9"],
    });
    assert.deepEqual(sans(new X509Certificate(d.certPem)), [
      "DNS:gw.example.test",
      "DNS:*.example.test",
      "IP:10.1.2.3",
      "IP:2001:db8:0:0:0:0:0:1",
      "IP:0:0:0:0:0:ffff:c000:201",
      "IP:fe80:0:0:0:0:0:0:9",
    ]);
    const ipOnly = await createDevCertificate({ hostnames: [], ips: ["127.0.0.1"] });
    assert.match(new X509Certificate(ipOnly.certPem).subject, /CN=127\.0\.0\.1/);
  });

  test("bad requests are typed errors", async () => {
    for (
      const opts of [
        { hostnames: ["bad host"] },
        { hostnames: ["-x.example"] },
        { hostnames: [""] },
        { ips: ["300.1.1.1"] },
        { ips: ["1::2::3"] },
        { ips: ["1:2:3:4:5:6:7:8:9"] },
        { ips: ["localhost"] },
        { ips: ["12345::"] },
        { days: 0 },
        { days: 1.5 },
        { days: 100_000 },
        { hostnames: [], ips: [] },
      ]
    ) {
      await assert.rejects(
        createDevCertificate(opts),
        (e: unknown) => e instanceof CertError && e.code === "bad_cert_request",
        JSON.stringify(opts),
      );
    }
  });

  test("a TLS client that trusts it as its CA verifies the server, by name and by IP", async () => {
    const srv = tls.createServer({ cert: c.certPem, key: c.keyPem }, (s) => s.end());
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      assert.deepEqual(await handshake(port, { ca: c.certPem, servername: "localhost", rejectUnauthorized: true }), {
        ok: true,
        authorized: true,
      });
      assert.deepEqual(await handshake(port, { ca: c.certPem, rejectUnauthorized: true }), { ok: true, authorized: true }); // 127.0.0.1 SAN
      // and verification is really on: a wrong name or no CA fails
      assert.equal((await handshake(port, { ca: c.certPem, servername: "other.example", rejectUnauthorized: true })).ok, false);
      assert.equal((await handshake(port, { servername: "localhost", rejectUnauthorized: true })).ok, false);
      const other = await createDevCertificate();
      assert.equal((await handshake(port, { ca: other.certPem, servername: "localhost", rejectUnauthorized: true })).ok, false);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  test("openssl agrees, where it is installed", { skip: spawnSync("openssl", ["version"]).status !== 0 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "httvps-cert-"));
    try {
      const file = join(dir, "cert.pem");
      await writeFile(file, c.certPem);
      const text = spawnSync("openssl", ["x509", "-noout", "-text", "-in", file], { encoding: "utf8" });
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, /Version: 3/);
      assert.match(text.stdout, /ecdsa-with-SHA256/);
      assert.match(text.stdout, /DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
      assert.match(text.stdout, /CA:FALSE/);
      assert.match(text.stdout, /Digital Signature/);
      assert.match(text.stdout, /TLS Web Server Authentication/);
      const verify = spawnSync("openssl", ["verify", "-CAfile", file, file], { encoding: "utf8" });
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);
      const key = join(dir, "key.pem");
      await writeFile(key, c.keyPem);
      const check = spawnSync("openssl", ["pkey", "-in", key, "-noout", "-check"], { encoding: "utf8" });
      assert.equal(check.status, 0, check.stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("writeDevCertificate", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "httvps-certs-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("writes cert.pem 0644 and key.pem 0600, creating the directory", async () => {
    const out = join(dir, "a", "certs");
    const r = await writeDevCertificate(out, { days: 7 });
    assert.equal(r.written, true);
    assert.equal(r.certPath, join(out, "cert.pem"));
    assert.equal((await stat(r.certPath)).mode & 0o777, 0o644);
    assert.equal((await stat(r.keyPath)).mode & 0o777, 0o600);
    const x = new X509Certificate(await readFile(r.certPath, "utf8"));
    assert.equal(x.checkPrivateKey(createPrivateKey(await readFile(r.keyPath, "utf8"))), true);
    assert.equal(x.fingerprint256.replaceAll(":", "").toLowerCase(), r.sha256);
  });

  test("leaves existing files alone unless forced", async () => {
    const out = join(dir, "b");
    const first = await writeDevCertificate(out);
    const pem = await readFile(first.certPath, "utf8");
    const again = await writeDevCertificate(out);
    assert.equal(again.written, false);
    assert.equal(again.sha256, first.sha256);
    assert.equal(await readFile(first.certPath, "utf8"), pem);
    const forced = await writeDevCertificate(out, { force: true });
    assert.equal(forced.written, true);
    assert.notEqual(forced.sha256, first.sha256);
  });

  test("a missing key is regenerated together with its certificate", async () => {
    const out = join(dir, "c");
    const first = await writeDevCertificate(out);
    await rm(first.keyPath);
    const again = await writeDevCertificate(out);
    assert.equal(again.written, true);
    assert.notEqual(again.sha256, first.sha256);
  });

  test("I/O problems are typed errors", async () => {
    const file = join(dir, "not-a-dir");
    await writeFile(file, "x");
    await assert.rejects(
      writeDevCertificate(join(file, "certs")),
      (e: unknown) => e instanceof CertError && e.code === "cert_io",
    );
    const junk = join(dir, "junk");
    await writeDevCertificate(junk);
    await writeFile(join(junk, "cert.pem"), "not a certificate");
    await assert.rejects(writeDevCertificate(junk), (e: unknown) => e instanceof CertError && e.code === "cert_io");
  });
});
