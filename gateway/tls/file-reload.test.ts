import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { until } from "../../client/testing.ts";
import { memoryLogger } from "../../logging/logger.ts";
import { createDevCertificate, type DevCertificate } from "../certs.ts";
import { GatewayError } from "../gateway-error.ts";
import { covers, describeCertificate } from "./certificate.ts";
import { loadCertificateFiles, type LoadedFiles, watchCertificateFiles } from "./file-reload.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Write `text` to `path` in one step, as an editor or `install` does. */
async function replace(path: string, text: string): Promise<void> {
  await writeFile(path + ".new", text);
  await rename(path + ".new", path);
}

let dir: string;
let a: DevCertificate;
let b: DevCertificate;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "httvps-tls-"));
  [a, b] = await Promise.all([
    createDevCertificate({ hostnames: ["gw.example.test", "www.example.test"], days: 30 }),
    createDevCertificate({ hostnames: ["gw.example.test"] }),
  ]);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("describeCertificate", () => {
  test("names, validity and pin of the leaf, with its key checked", async () => {
    const info = await describeCertificate({ cert: a.certPem, key: a.keyPem }, "a");
    assert.deepEqual(info.names, ["gw.example.test", "www.example.test"]);
    assert.equal(info.sha256, a.sha256);
    assert.equal(info.selfSigned, true);
    assert.ok(info.notBefore.getTime() < Date.now() && info.notAfter.getTime() > Date.now() + 29 * 86_400_000);
    assert.equal(covers(info, ["www.example.test", "GW.example.test"]), true);
    assert.equal(covers(info, ["other.example.test"]), false);
  });

  test("junk, a foreign key or junk for a key are bad_certificate", async () => {
    for (const tls of [{ cert: "junk", key: a.keyPem }, { cert: a.certPem, key: b.keyPem }, { cert: a.certPem, key: "junk" }]) {
      await assert.rejects(
        describeCertificate(tls, "x"),
        (e: unknown) => e instanceof GatewayError && e.code === "bad_certificate",
      );
    }
  });
});

describe("watchCertificateFiles", () => {
  test("a new pair is applied once, a half-written one only when whole, a broken one logged once", async () => {
    const files = { certPath: join(dir, "cert.pem"), keyPath: join(dir, "key.pem") };
    await writeFile(files.certPath, a.certPem);
    await writeFile(files.keyPath, a.keyPem);
    const loaded = await loadCertificateFiles(files);
    const applied: LoadedFiles[] = [];
    const log = memoryLogger("info");
    const stop = watchCertificateFiles({
      ...files,
      intervalMs: 20,
      loaded,
      apply: async (l) => void applied.push(l),
      logger: log,
    });
    try {
      await sleep(100);
      assert.equal(applied.length, 0, "unchanged files are not applied again");
      // the certificate first, then (a few polls later) its key, each replaced whole (written
      // aside and renamed: a poll during a plain write would see a third, truncated version)
      await replace(files.certPath, b.certPem);
      await sleep(100);
      assert.equal(applied.length, 0);
      assert.equal(log.lines.filter((l) => l.includes("not usable yet")).length, 1);
      await replace(files.keyPath, b.keyPem);
      await until(() => applied.length === 1, "the new pair");
      assert.equal(applied[0]!.info.sha256, b.sha256);
      assert.equal(applied[0]!.tls.key, b.keyPem);
      await sleep(100);
      assert.equal(applied.length, 1);
      assert.ok(log.lines.some((l) => l.includes("TLS certificate reloaded") && l.includes(b.sha256)));
    } finally {
      stop();
    }
  });

  test("certbot's layout: live/ symlinks switched to new files in archive/", async () => {
    const root = join(dir, "letsencrypt");
    await mkdir(join(root, "archive"), { recursive: true });
    await mkdir(join(root, "live"), { recursive: true });
    const put = async (n: number, c: DevCertificate) => {
      await writeFile(join(root, "archive", `fullchain${n}.pem`), c.certPem);
      await writeFile(join(root, "archive", `privkey${n}.pem`), c.keyPem);
      for (const [link, target] of [["fullchain.pem", `fullchain${n}.pem`], ["privkey.pem", `privkey${n}.pem`]]) {
        const tmp = join(root, "live", `${link}.new`);
        await symlink(join("..", "archive", target!), tmp);
        await rename(tmp, join(root, "live", link!));
      }
    };
    await put(1, a);
    const files = { certPath: join(root, "live", "fullchain.pem"), keyPath: join(root, "live", "privkey.pem") };
    const loaded = await loadCertificateFiles(files);
    assert.equal(loaded.info.sha256, a.sha256);
    const applied: string[] = [];
    const stop = watchCertificateFiles({
      ...files,
      intervalMs: 20,
      loaded,
      apply: async (l) => void applied.push(l.info.sha256),
      logger: memoryLogger("error"),
    });
    try {
      await put(2, b);
      await until(() => applied.length === 1, "the renewed pair");
      assert.deepEqual(applied, [b.sha256]);
    } finally {
      stop();
    }
  });

  test("a pair the listener refuses is reported once and not retried until the files change", async () => {
    const sub = join(dir, "refused");
    await mkdir(sub);
    const files = { certPath: join(sub, "cert.pem"), keyPath: join(sub, "key.pem") };
    await writeFile(files.certPath, a.certPem);
    await writeFile(files.keyPath, a.keyPem);
    const loaded = await loadCertificateFiles(files);
    let tries = 0;
    const log = memoryLogger("warn");
    const stop = watchCertificateFiles({
      ...files,
      intervalMs: 20,
      loaded,
      apply: async () => {
        tries++;
        throw new Error("refused");
      },
      logger: log,
    });
    try {
      await writeFile(files.certPath, b.certPem);
      await writeFile(files.keyPath, b.keyPem);
      await until(() => tries === 1, "one try");
      await sleep(150);
      assert.equal(tries, 1);
      assert.equal(log.lines.filter((l) => l.includes("reload failed")).length, 1);
    } finally {
      stop();
    }
  });

  test("missing files at start are tls_unreadable", async () => {
    await assert.rejects(
      loadCertificateFiles({ certPath: join(dir, "none.pem"), keyPath: join(dir, "none-key.pem") }),
      (e: unknown) => e instanceof GatewayError && e.code === "tls_unreadable" && e.message.includes("none.pem"),
    );
  });
});
