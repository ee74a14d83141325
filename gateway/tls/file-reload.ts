// GATEWAY_TLS_CERT/KEY read, and read again when they change (certbot renewing them, an operator
// copying new ones in). Polled, not watched: certbot swaps the symlinks in live/ to new files in
// archive/, which fs.watch on the old path never reports, and a stat every minute costs
// nothing. A pair caught half-written (the certificate new, the key still old) fails the
// key check and is simply read again at the next poll.
import { readFile, stat } from "node:fs/promises";
import type { Logger } from "../../logging/logger.ts";
import type { TlsFiles } from "../../runtime/types.ts";
import { GatewayError } from "../gateway-error.ts";
import { type CertificateInfo, describeCertificate } from "./certificate.ts";

export interface CertificateFiles {
  certPath: string;
  keyPath: string;
}

async function readPem(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new GatewayError(
      "tls_unreadable",
      `cannot read the TLS ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

/** What identifies a version of both files (stat follows symlinks: a new target is a new version). */
async function stamp(files: CertificateFiles): Promise<string> {
  const [c, k] = await Promise.all([stat(files.certPath), stat(files.keyPath)]);
  return [c.ino, c.size, c.mtimeMs, k.ino, k.size, k.mtimeMs].join(":");
}

export interface LoadedFiles {
  tls: TlsFiles;
  info: CertificateInfo;
  stamp: string;
}

/** Both files, checked to belong together. Throws GatewayError tls_unreadable or bad_certificate. */
export async function loadCertificateFiles(files: CertificateFiles): Promise<LoadedFiles> {
  const before = await stamp(files).catch(() => "");
  // One after the other, so a missing pair is reported by its certificate on every runtime.
  const cert = await readPem(files.certPath, "certificate");
  const key = await readPem(files.keyPath, "key");
  const tls = { cert, key };
  return { tls, info: await describeCertificate(tls, files.certPath), stamp: before };
}

export interface FileReloadOptions extends CertificateFiles {
  intervalMs: number;
  /** The version already in use. */
  loaded: LoadedFiles;
  /** Install a new pair; a rejection is logged and the pair is tried again at the next change. */
  apply: (loaded: LoadedFiles) => Promise<void>;
  logger: Logger;
}

/** Poll the files every intervalMs and apply each new valid pair. Returns stop(). */
export function watchCertificateFiles(opts: FileReloadOptions): () => void {
  let current = opts.loaded.stamp;
  let failedAt = ""; // the version found unusable: logged once, tried again only once it changes
  let busy = false;
  const poll = async () => {
    if (busy) return;
    busy = true;
    try {
      const now = await stamp(opts).catch(() => current); // a file missing mid-rename: try later
      if (now === current || now === failedAt) return;
      let loaded: LoadedFiles;
      try {
        loaded = await loadCertificateFiles(opts);
        if (loaded.stamp !== now) return; // changed again while being read: the next poll takes it whole
      } catch (e) {
        if (failedAt !== now) opts.logger.warn("new TLS files are not usable yet", { error: (e as Error).message });
        failedAt = now;
        return;
      }
      try {
        await opts.apply(loaded);
      } catch (e) {
        opts.logger.warn("TLS certificate reload failed", { error: (e as Error).message });
        failedAt = now;
        return;
      }
      current = now;
      opts.logger.info("TLS certificate reloaded", {
        cert: opts.certPath,
        sha256: loaded.info.sha256,
        not_after: loaded.info.notAfter.toISOString(),
      });
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void poll(), opts.intervalMs);
  (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}
