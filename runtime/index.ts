// The one place that asks which runtime this is, once, by capability. Only the chosen adapter
// is loaded: Node never parses Bun or Deno code, and on Bun and Deno only the client's
// pinned-TLS path (client/gateway-socket.ts) loads `ws`. Everything else imports
// serveHttp/serveGateway/wsConnect/onSignal from here.
import type { RuntimeAdapter } from "./types.ts";

const g = globalThis as { Bun?: unknown; Deno?: unknown };

const adapter: RuntimeAdapter = g.Bun !== undefined
  ? await import("./bun.ts")
  : g.Deno !== undefined
  ? await import("./deno.ts")
  : await import("./node.ts");

export const runtime = adapter.runtime;
export const gatewayTransports = adapter.gatewayTransports;
export const acmeTlsAlpn = adapter.acmeTlsAlpn;
export const tlsSwapKeepsSessions = adapter.tlsSwapKeepsSessions;
export const serveHttp = adapter.serveHttp;
export const serveGateway = adapter.serveGateway;
export const wsConnect = adapter.wsConnect;
export const onSignal = adapter.onSignal;
export const workerPortSharing = adapter.workerPortSharing;
export const forkWorker = adapter.forkWorker;

export * from "./types.ts";
