// Prometheus metrics for one gateway instance. Each gateway gets its own Registry rather
// than prom-client's global one, so tests (and a process running two gateways) never
// collide on "metric already registered".
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface GatewayMetrics {
  readonly registry: Registry;
  readonly sessionsActive: Gauge;
  /** outcome: ok, or the auth failure / early-close code (bad_token, hello_timeout, …). */
  readonly sessionsTotal: Counter<"outcome">;
  readonly streamsActive: Gauge;
  /** direction: up (client → upstream) or down (upstream → client); payload bytes only. */
  readonly bytesTotal: Counter<"direction">;
  readonly handshakeSeconds: Histogram;
  readonly upstreamDialSeconds: Histogram;
  readonly framesRejectedTotal: Counter<"code">;
  readonly reportEventsDroppedTotal: Counter;
  readonly udpDatagramsDroppedTotal: Counter;
  readonly reportFailuresTotal: Counter;
  /** App sessions (docs/08): one device's connections from one address. */
  readonly appSessionsActive: Gauge;
  /** flavour: outline, v2ray-plugin, mux, v2ray-core-mux, udp (gateway/apps/tcp-connection.ts). */
  readonly appConnectionsActive: Gauge<"flavour">;
  readonly appConnectionsTotal: Counter<"flavour">;
  readonly appBytesTotal: Counter<"flavour" | "direction">;
  /** App connections absorbed as probes, by what gave them away (ss_auth_failed, ss_replay, …). */
  readonly appProbesTotal: Counter<"code">;
  /** The text exposition and its content type, for a /metrics response. */
  render(): Promise<{ body: string; contentType: string }>;
}

export function createGatewayMetrics(): GatewayMetrics {
  const registry = new Registry();
  const registers = [registry];
  const sessionsActive = new Gauge({ name: "httvps_gateway_sessions_active", help: "Open authenticated sessions.", registers });
  const sessionsTotal = new Counter({
    name: "httvps_gateway_sessions_total",
    help: "WebSocket sessions by outcome of the handshake.",
    labelNames: ["outcome"] as const,
    registers,
  });
  const streamsActive = new Gauge({ name: "httvps_gateway_streams_active", help: "Open streams over all sessions.", registers });
  const bytesTotal = new Counter({
    name: "httvps_gateway_bytes_total",
    help: "Stream payload bytes; up = client to upstream, down = upstream to client.",
    labelNames: ["direction"] as const,
    registers,
  });
  const handshakeSeconds = new Histogram({
    name: "httvps_gateway_handshake_seconds",
    help: "Time from hello to auth_result.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers,
  });
  const upstreamDialSeconds = new Histogram({
    name: "httvps_gateway_upstream_dial_seconds",
    help: "Time to open an upstream stream.",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const framesRejectedTotal = new Counter({
    name: "httvps_gateway_frames_rejected_total",
    help: "Client frames answered with an error, by error code.",
    labelNames: ["code"] as const,
    registers,
  });
  const reportEventsDroppedTotal = new Counter({
    name: "httvps_gateway_report_events_dropped_total",
    help: "Usage events dropped because the report queue was full while the backend was unreachable.",
    registers,
  });
  const reportFailuresTotal = new Counter({
    name: "httvps_gateway_report_failures_total",
    help: "Usage report requests that failed and will be retried.",
    registers,
  });
  const udpDatagramsDroppedTotal = new Counter({
    name: "httvps_gateway_udp_datagrams_dropped_total",
    help:
      "Datagrams of UDP streams dropped by a full bounded queue, a size limit or a failed reply check (counted when the stream ends).",
    registers,
  });
  const appSessionsActive = new Gauge({
    name: "httvps_gateway_app_sessions_active",
    help: "Open app sessions (a device's app connections from one address).",
    registers,
  });
  const appConnectionsActive = new Gauge({
    name: "httvps_gateway_app_connections_active",
    help: "Open app WebSockets by flavour (counted once the flavour is known).",
    labelNames: ["flavour"] as const,
    registers,
  });
  const appConnectionsTotal = new Counter({
    name: "httvps_gateway_app_connections_total",
    help: "App WebSockets by flavour (counted once the flavour is known).",
    labelNames: ["flavour"] as const,
    registers,
  });
  const appBytesTotal = new Counter({
    name: "httvps_gateway_app_bytes_total",
    help: "App payload bytes by flavour; up = app to target, down = target to app.",
    labelNames: ["flavour", "direction"] as const,
    registers,
  });
  const appProbesTotal = new Counter({
    name: "httvps_gateway_app_probes_total",
    help: "App connections read and discarded until the probe timeout, by the reason.",
    labelNames: ["code"] as const,
    registers,
  });
  return {
    registry,
    appSessionsActive,
    appConnectionsActive,
    appConnectionsTotal,
    appBytesTotal,
    appProbesTotal,
    udpDatagramsDroppedTotal,
    sessionsActive,
    sessionsTotal,
    streamsActive,
    bytesTotal,
    handshakeSeconds,
    upstreamDialSeconds,
    framesRejectedTotal,
    reportEventsDroppedTotal,
    reportFailuresTotal,
    async render() {
      return { body: await registry.metrics(), contentType: registry.contentType };
    },
  };
}
