// The answers to ACME challenges while they are pending, where the listeners look them up: the
// HTTP-01 key authorizations by token (GATEWAY_HTTP_ADDR, http-listener.ts) and the TLS-ALPN-01
// certificates by domain (the gateway's own port, runtime/*.ts's acmeTlsChallenge).
import type { TlsFiles } from "../../runtime/types.ts";

export class PendingChallenges {
  private readonly http = new Map<string, string>();
  private readonly tls = new Map<string, TlsFiles>();

  setHttp(token: string, keyAuthorization: string): void {
    this.http.set(token, keyAuthorization);
  }

  deleteHttp(token: string): void {
    this.http.delete(token);
  }

  /** The key authorization to answer GET /.well-known/acme-challenge/<token> with. */
  httpAnswer(token: string): string | undefined {
    return this.http.get(token);
  }

  setTls(domain: string, files: TlsFiles): void {
    this.tls.set(domain.toLowerCase(), files);
  }

  deleteTls(domain: string): void {
    this.tls.delete(domain.toLowerCase());
  }

  /** The certificate for a handshake offering acme-tls/1 with this server name. */
  readonly tlsAnswer = (serverName: string): TlsFiles | undefined => this.tls.get(serverName.toLowerCase());
}
