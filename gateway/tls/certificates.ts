// Where the gateway's certificate comes from, chosen once: an ACME CA (GATEWAY_ACME_DOMAINS)
// or the files GATEWAY_TLS_CERT/KEY (reloaded when they change). Either way the listener starts
// with one certificate and gets the next through the same path, GatewayServer.setTls, with no
// restart. gateway.ts asks this module for the first certificate, the TLS-ALPN-01 answers and
// the plain-HTTP listener's handler, then start()s it once the listener is up.
import { ConfigError, type Env } from "../../config/config.ts";
import type { Logger } from "../../logging/logger.ts";
import {
  acmeTlsAlpn,
  type AcmeTlsChallenge,
  type FetchHandler,
  type GatewayServer,
  runtime,
  type TlsFiles,
  tlsSwapKeepsSessions,
} from "../../runtime/index.ts";
import { type AcmeCertificates, prepareAcmeCertificates } from "../acme/acme-certificates.ts";
import { PendingChallenges } from "../acme/challenges.ts";
import { httpListenerHandler } from "../acme/http-listener.ts";
import type { CertificateInfo } from "./certificate.ts";
import { loadCertificateFiles, type LoadedFiles, watchCertificateFiles } from "./file-reload.ts";

export interface GatewayCertificates {
  /** The certificate to listen with. */
  tls: TlsFiles;
  /** TLS-ALPN-01 answers for the listener, when ACME uses that challenge. */
  acmeTlsChallenge?: AcmeTlsChallenge;
  /** For GATEWAY_HTTP_ADDR: HTTP-01 answers and the redirect to https on `httpsPort`. */
  httpHandler(httpsPort: number): FetchHandler;
  /** Begin renewing (ACME) or watching the files; each new certificate goes to server.setTls. */
  start(server: GatewayServer): void;
  /** The certificate new connections get. */
  readonly current: CertificateInfo;
  /** ACME: a new certificate now. Files: read them again now. Resolves once it is in use. */
  renew(): Promise<CertificateInfo>;
  stop(): void;
}

export async function loadCertificates(env: Env, log: Logger): Promise<GatewayCertificates> {
  const challenges = new PendingChallenges();
  const domains = env.GATEWAY_ACME_DOMAINS;
  const httpHandler = (httpsPort: number) =>
    httpListenerHandler({ challenges, httpsPort, fallbackHost: domains?.[0] ?? env.GATEWAY_LISTEN_ADDR.host });
  let server: GatewayServer | undefined;
  let current: CertificateInfo;
  const use = async (tls: TlsFiles, info: CertificateInfo) => {
    await server!.setTls(tls);
    current = info;
    if (!tlsSwapKeepsSessions) log.info(`new certificate in use; on ${runtime} the open sessions reconnect to it`);
  };

  if (domains) {
    if (!env.GATEWAY_HTTP_ADDR && !acmeTlsAlpn) {
      throw new ConfigError(
        "GATEWAY_HTTP_ADDR",
        `ACME on ${runtime} needs HTTP-01: set it (e.g. :80); ${runtime}'s HTTPS server cannot answer TLS-ALPN-01`,
      );
    }
    const challenge = env.GATEWAY_HTTP_ADDR ? "http-01" : "tls-alpn-01";
    const acme: AcmeCertificates = await prepareAcmeCertificates({
      domains,
      directoryUrl: env.GATEWAY_ACME_DIRECTORY,
      email: env.GATEWAY_ACME_EMAIL,
      caFile: env.GATEWAY_ACME_CA_FILE,
      dataDir: env.DATA_DIR,
      challenge,
      challenges,
      logger: log,
    });
    current = acme.initial.info;
    log.info(acme.stored ? "certificate from DATA_DIR" : "self-signed stand-in until the CA's certificate arrives", {
      names: domains.join(","),
      challenge,
      directory: env.GATEWAY_ACME_DIRECTORY,
      not_after: current.notAfter.toISOString(),
    });
    return {
      tls: acme.initial.tls,
      acmeTlsChallenge: challenge === "tls-alpn-01" ? challenges.tlsAnswer : undefined,
      httpHandler,
      start(s) {
        server = s;
        acme.start(use);
      },
      get current() {
        return current;
      },
      renew: () => acme.renew(),
      stop: () => acme.stop(),
    };
  }

  const files = { certPath: env.GATEWAY_TLS_CERT, keyPath: env.GATEWAY_TLS_KEY };
  const loaded = await loadCertificateFiles(files);
  current = loaded.info;
  const apply = (l: LoadedFiles) => use(l.tls, l.info);
  let stopWatching = () => {};
  return {
    tls: loaded.tls,
    httpHandler,
    start(s) {
      server = s;
      if (env.GATEWAY_TLS_RELOAD_INTERVAL > 0) {
        stopWatching = watchCertificateFiles({
          ...files,
          intervalMs: env.GATEWAY_TLS_RELOAD_INTERVAL,
          loaded,
          apply,
          logger: log,
        });
      }
    },
    get current() {
      return current;
    },
    async renew() {
      const l = await loadCertificateFiles(files);
      await apply(l);
      return l.info;
    },
    stop: () => stopWatching(),
  };
}
