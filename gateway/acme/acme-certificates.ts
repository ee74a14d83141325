// The gateway's certificate from ACME: what to serve from the first second (the one kept in
// DATA_DIR when it still fits, else a self-signed stand-in for the few seconds until the CA
// answers — the listener must be up for the CA to validate it), then a new one now and before
// each expiry, stored and handed to `apply` (the listener's setTls).
import type { Logger } from "../../logging/logger.ts";
import type { TlsFiles } from "../../runtime/types.ts";
import { createDevCertificate } from "../certs.ts";
import { type CertificateInfo, covers, describeCertificate } from "../tls/certificate.ts";
import { type AcmeIssuer, type ChallengeType, createAcmeIssuer } from "./acme-issuer.ts";
import type { PendingChallenges } from "./challenges.ts";
import { RenewalScheduler } from "./renewal.ts";
import { AcmeStorage } from "./storage.ts";

export interface AcmeCertificatesOptions {
  domains: readonly string[];
  directoryUrl: string;
  email?: string;
  caFile?: string;
  dataDir: string;
  challenge: ChallengeType;
  challenges: PendingChallenges;
  logger: Logger;
}

export interface AcmeCertificates {
  /** What to serve until the CA's certificate arrives. */
  initial: { tls: TlsFiles; info: CertificateInfo };
  /** Whether `initial` came from the CA (else it is the self-signed stand-in). */
  stored: boolean;
  /** Plan the renewals (the first one now, without a stored certificate); each new one goes to `apply`. */
  start(apply: (tls: TlsFiles, info: CertificateInfo) => Promise<void>): void;
  /** Renew now; resolves with the new certificate once it is in use. */
  renew(): Promise<CertificateInfo>;
  /** When the next renewal is planned (ms since the epoch), if one is. */
  readonly nextRenewal: number | undefined;
  stop(): void;
}

/** Self-signed for the domains, a week long, never stored: served only until the CA's arrives. */
async function standIn(domains: readonly string[]): Promise<AcmeCertificates["initial"]> {
  const c = await createDevCertificate({ hostnames: [...domains], ips: [], days: 7 });
  const tls = { cert: c.certPem, key: c.keyPem };
  return { tls, info: await describeCertificate(tls, "the stand-in certificate") };
}

export async function prepareAcmeCertificates(opts: AcmeCertificatesOptions): Promise<AcmeCertificates> {
  const log = opts.logger;
  const storage = new AcmeStorage(opts.dataDir, opts.directoryUrl);
  const issuer: AcmeIssuer = await createAcmeIssuer({
    directoryUrl: opts.directoryUrl,
    email: opts.email,
    caFile: opts.caFile,
    storage,
    challenges: opts.challenges,
    challenge: opts.challenge,
    logger: log,
  });

  let found: AcmeCertificates["initial"] | undefined;
  const kept = await storage.certificate(opts.domains);
  if (kept) {
    try {
      const info = await describeCertificate(kept, storage.dir);
      if (covers(info, opts.domains) && info.notAfter.getTime() > Date.now()) found = { tls: kept, info };
      else log.info("the stored certificate does not fit; asking for a new one", { names: info.names.join(",") });
    } catch (e) {
      log.warn("the stored certificate is unusable; asking for a new one", { error: (e as Error).message });
    }
  }
  const stored = found !== undefined;
  const initial = found ?? await standIn(opts.domains);

  let scheduler: RenewalScheduler | undefined;
  return {
    initial,
    stored,
    start(apply) {
      scheduler = new RenewalScheduler({
        logger: log,
        renew: async () => {
          const started = Date.now();
          const tls = await issuer.issue(opts.domains);
          const info = await describeCertificate(tls, `the certificate from ${opts.directoryUrl}`);
          await storage.saveCertificate(opts.domains, tls);
          await apply(tls, info);
          log.info("certificate issued", {
            names: opts.domains.join(","),
            challenge: opts.challenge,
            sha256: info.sha256,
            not_after: info.notAfter.toISOString(),
            took_ms: Date.now() - started,
          });
          return info;
        },
      });
      scheduler.plan(stored ? initial.info : undefined);
    },
    renew() {
      if (!scheduler) return Promise.reject(new Error("ACME certificates are not started"));
      return scheduler.renewNow();
    },
    get nextRenewal() {
      return scheduler?.nextAt;
    },
    stop() {
      scheduler?.stop();
    },
  };
}
