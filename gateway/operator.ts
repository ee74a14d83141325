// The operator's endpoints: Prometheus metrics, liveness and readiness. They are served only on
// their own listener (GATEWAY_METRICS_ADDR, loopback by default), never on the public port,
// where any of these paths would tell a prober that the site is a gateway; there they are the
// decoy's like every other path.
import type { GatewayMetrics } from "./metrics.ts";

export interface OperatorOptions {
  /** One gateway's, or (GATEWAY_WORKERS > 1) its workers' summed. */
  metrics: Pick<GatewayMetrics, "render">;
  /** False once the gateway drains or stops: /readyz answers 503 so a load balancer moves on. */
  ready: () => boolean;
}

const text = (status: number, body: string) =>
  new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });

/** The operator listener's fetch handler: /metrics, /healthz, /readyz; 404 for anything else. */
export function operatorHandler(opts: OperatorOptions): (req: Request) => Promise<Response> {
  return async (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") return text(405, "method not allowed\n");
    switch (new URL(req.url).pathname) {
      case "/metrics": {
        const m = await opts.metrics.render();
        return new Response(m.body, { headers: { "content-type": m.contentType } });
      }
      case "/healthz":
        return text(200, "ok\n");
      case "/readyz":
        return opts.ready() ? text(200, "ready\n") : text(503, "draining\n");
      default:
        return text(404, "not found\n");
    }
  };
}
