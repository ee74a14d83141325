// Backend metrics (prom-client) in their own registry, so tests and several apps in one
// process never collide on the global one.
import { Counter, Histogram, Registry } from "prom-client";

export function createBackendMetrics() {
  const registry = new Registry();
  return {
    registry,
    requests: new Counter({
      name: "httvps_backend_http_requests_total",
      help: "HTTP requests by route pattern and status",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: "httvps_backend_http_request_duration_seconds",
      help: "HTTP request latency by route pattern",
      labelNames: ["method", "route"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    validations: new Counter({
      name: "httvps_backend_validations_total",
      help: "validate-device outcomes (valid or the reason)",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    reportEvents: new Counter({
      name: "httvps_backend_report_events_total",
      help: "Session and usage events reported by gateways",
      labelNames: ["type"] as const,
      registers: [registry],
    }),
  };
}
export type BackendMetrics = ReturnType<typeof createBackendMetrics>;
