// One certificate from an ACME CA (RFC 8555) with acme-client: the account (its key kept in
// DATA_DIR), a new ECDSA P-256 key and CSR per certificate, one challenge per name answered by
// the gateway's own listeners (PendingChallenges), the chain back as PEM.
//
// acme-client talks HTTP through its own axios instance (Node's http adapter: node:https, which
// Bun and Deno provide), so GATEWAY_ACME_CA_FILE becomes that instance's https.Agent. The
// library is loaded on first use: a gateway without ACME never parses it.
import https from "node:https";
import { readFile } from "node:fs/promises";
import { rootCertificates } from "node:tls";
import type { Logger } from "../../logging/logger.ts";
import type { TlsFiles } from "../../runtime/types.ts";
import { GatewayError } from "../gateway-error.ts";
import type { PendingChallenges } from "./challenges.ts";
import type { AcmeStorage } from "./storage.ts";

/** The challenge types the gateway can answer itself (no DNS-01: it holds no DNS credentials). */
export type ChallengeType = "tls-alpn-01" | "http-01";

export interface AcmeIssuerOptions {
  directoryUrl: string;
  email?: string;
  /** A PEM file of extra CAs to trust for the ACME server's HTTPS. */
  caFile?: string;
  storage: AcmeStorage;
  challenges: PendingChallenges;
  /** Which challenge to answer, when the CA offers it. */
  challenge: ChallengeType;
  logger: Logger;
}

export interface AcmeIssuer {
  /** A certificate for every domain (the first is its common name); rejects with GatewayError acme_failed. */
  issue(domains: readonly string[]): Promise<TlsFiles>;
}

type AcmeModule = typeof import("acme-client");

async function extraCa(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    throw new GatewayError(
      "tls_unreadable",
      `cannot read GATEWAY_ACME_CA_FILE ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

export async function createAcmeIssuer(opts: AcmeIssuerOptions): Promise<AcmeIssuer> {
  const ca = opts.caFile ? await extraCa(opts.caFile) : undefined;
  const acme: AcmeModule = await import("acme-client");
  const log = opts.logger;
  // Process-wide, like the library's axios instance: one gateway per process configures it.
  acme.setLogger((message) => log.debug("acme", { message }));
  if (ca) acme.axios.defaults.httpsAgent = new https.Agent({ ca: [...rootCertificates, ca] });

  let client: InstanceType<AcmeModule["Client"]> | undefined;
  const account = async () => {
    if (client) return client;
    let accountKey = await opts.storage.accountKey();
    const fresh = accountKey === undefined;
    accountKey ??= (await acme.crypto.createPrivateEcdsaKey("P-256")).toString();
    const accountUrl = fresh ? undefined : await opts.storage.accountUrl();
    const c = new acme.Client({ directoryUrl: opts.directoryUrl, accountKey, accountUrl });
    if (!accountUrl) {
      // newAccount with an existing key answers with that account: a lost account.json costs one request.
      await c.createAccount({
        termsOfServiceAgreed: true,
        ...(opts.email ? { contact: [`mailto:${opts.email}`] } : {}),
      });
      await opts.storage.saveAccount(accountKey, c.getAccountUrl());
      log.info("acme account ready", { directory: opts.directoryUrl, account: c.getAccountUrl() });
    }
    return (client = c);
  };

  const issue = async (domains: readonly string[]): Promise<TlsFiles> => {
    const c = await account();
    const [key, csr] = await acme.crypto.createCsr(
      { commonName: domains[0], altNames: [...domains] },
      await acme.crypto.createPrivateEcdsaKey("P-256"),
    );
    const alpnKey = opts.challenge === "tls-alpn-01" ? await acme.crypto.createPrivateEcdsaKey("P-256") : undefined;
    const cert = await c.auto({
      csr,
      email: opts.email,
      termsOfServiceAgreed: true,
      // The CA validates anyway; a self-check would need this machine's own DNS to agree with the CA's.
      skipChallengeVerification: true,
      challengePriority: [opts.challenge],
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        const domain = authz.identifier.value;
        const type = challenge.type as string; // the library's types know http-01 and dns-01 only
        if (type === "http-01") opts.challenges.setHttp(challenge.token, keyAuthorization);
        else if (type === "tls-alpn-01") {
          const [k, crt] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, alpnKey);
          opts.challenges.setTls(domain, { cert: crt.toString(), key: k.toString() });
        } else throw new Error(`the CA offers no ${opts.challenge} challenge for ${domain} (only ${type})`);
        log.debug("acme challenge ready", { domain, type });
      },
      challengeRemoveFn: async (authz, challenge) => {
        if (challenge.type === "http-01") opts.challenges.deleteHttp(challenge.token);
        else opts.challenges.deleteTls(authz.identifier.value);
      },
    });
    return { cert, key: key.toString() };
  };

  return {
    async issue(domains) {
      try {
        return await issue(domains);
      } catch (e) {
        if (e instanceof GatewayError) throw e;
        const detail = (e as { response?: { data?: { detail?: string } } }).response?.data?.detail;
        throw new GatewayError("acme_failed", `${opts.directoryUrl}: ${detail ?? (e as Error).message}`);
      }
    },
  };
}
