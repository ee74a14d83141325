// The gateway's own start-up and certificate failures, one class with a stable code each.
export class GatewayError extends Error {
  constructor(
    readonly code:
      | "tls_unreadable"
      | "tls_unwritable"
      | "bad_certificate"
      | "acme_failed"
      | "upstream_unavailable"
      | "no_certificate"
      | "worker_failed",
    message: string,
  ) {
    super(message);
    this.name = "GatewayError";
  }
}
