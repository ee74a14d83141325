// The gateway, composed: TLS listener (runtime adapter) → the apps' config fetches
// (apps/app-config.ts) or the decoy site for plain HTTP, a Session per WebSocket on
// GATEWAY_WS_PATH; the operator endpoints (operator.ts) on their own listener, never the public
// port; auth through the backend with a cache;
// usage reported in batches; one upstream Dialer chosen here, once, from
// GATEWAY_UPSTREAM_MODE. Everything below this file is runtime-free and gets what it needs
// as arguments.
import { GATEWAY_KEY_FILE, readSecretFile } from "../config/secret-files.ts";
import { backendUrl, ConfigError, type Env, metricsListenAddr, publicGatewayAddress } from "../config/config.ts";
import { HTTVPS_VERSION } from "../config/version.ts";
import { createLogger, type Logger } from "../logging/logger.ts";
import { MAX_BAD_FRAMES } from "../protocol/bad-frames.ts";
import * as codec from "../protocol/codec.ts";
import { Code } from "../protocol/errors.ts";
import {
  type DecideUpgrade,
  gatewayTransports,
  type ListeningServer,
  runtime,
  serveGateway,
  serveHttp,
  type SessionHandler,
  type SessionSocket,
  type UpgradeInfo,
  WS_HIGH_WATER,
} from "../runtime/index.ts";
import type { PacketDialer } from "../transport/packet.ts";
import type { Dialer } from "../transport/stream.ts";
import { udpDialer } from "../transport/udp.ts";
import { tcpDialer } from "../transport/tcp.ts";
import { AppAuth } from "./apps/app-auth.ts";
import { appConfigHandler } from "./apps/app-config.ts";
import { type AppSessionAuth, WS_CLOSE_GOING_AWAY } from "./apps/app-session.ts";
import { AppSessions } from "./apps/app-sessions.ts";
import { appUpgrade } from "./apps/app-upgrade.ts";
import { type BackendClient, createBackendClient, DeviceAuth } from "./auth.ts";
import { clientAddress } from "./client-address.ts";
import { decoyFor } from "./decoy.ts";
import { createGatewayMetrics, type GatewayMetrics } from "./metrics.ts";
import { operatorHandler } from "./operator.ts";
import { PreauthCounter } from "./preauth-limit.ts";
import { HelloLimiter } from "./rate-limit.ts";
import { Session, type SessionConfig } from "./session.ts";
import { type Cidr, parseCidrList } from "./upstream/address-guard.ts";
import { directDialer, directPacketDialer } from "./upstream/direct.ts";
import { fakeDialer } from "./upstream/fake.ts";
import { fakePacketDialer } from "./upstream/fake-udp.ts";
import { OutlineUpstream } from "./upstream/outline.ts";
import type { UpstreamFor } from "./upstream/upstream.ts";
import { UsageReporter } from "./usage.ts";
import { GatewayError } from "./gateway-error.ts";
import type { CertificateInfo } from "./tls/certificate.ts";
import { loadCertificates } from "./tls/certificates.ts";

export { GatewayError } from "./gateway-error.ts";

export interface GatewayDeps {
  logger?: Logger;
  /** Replaces the mode's dialer (tests plug a fake or a firehose in here). */
  dialer?: Dialer;
  /** Replaces the mode's UDP dialer; with `dialer` set and this not, sessions get no udp feature. */
  packetDialer?: PacketDialer;
  /** The backend client; by default one for GATEWAY_BACKEND_URL (or the local backend). */
  backend?: BackendClient;
  /** For the default backend client: answer from an in-process app instead of the network. */
  backendFetch?: (req: Request) => Promise<Response>;
  metrics?: GatewayMetrics;
  /** Replaces validate-app and its cache for the apps' connections (tests put a stub here). */
  appAuth?: AppSessionAuth;
  /**
   * This gateway is one worker of several (gateway/worker.ts): it binds the port as
   * `portSharing` says, and leaves the operator and plain-HTTP listeners to the primary.
   */
  worker?: { index: number; portSharing?: "claim" | "join" };
}

export interface RunningGateway {
  port: number;
  hostname: string;
  /** The operator listener's port (metrics, health), when GATEWAY_METRICS or GATEWAY_METRICS_ADDR turns it on. */
  metricsPort?: number;
  /** The plain-HTTP listener's port (ACME HTTP-01, redirects), when GATEWAY_HTTP_ADDR is set. */
  httpPort?: number;
  /** The certificate new connections get. Throws GatewayError `no_certificate` with GATEWAY_TLS=off. */
  readonly certificate: CertificateInfo;
  /** ACME: a new certificate now; files: read them again now. Resolves once it is in use (rejects `no_certificate` with GATEWAY_TLS=off). */
  renewCertificate(): Promise<CertificateInfo>;
  metrics: GatewayMetrics;
  /** Open sessions (including ones still in their handshake). */
  readonly sessions: number;
  /** Open app sessions (docs/08), and their connections. */
  readonly appSessions: number;
  readonly appConnections: number;
  /** Stop now: no goaway, sessions closed with 1001 shutdown. */
  close(): Promise<void>;
  /** Stop accepting, goaway to every session, wait for their streams (at most GATEWAY_DRAIN_TIMEOUT), then close. */
  drain(): Promise<void>;
}

const noCertificate = () => new GatewayError("no_certificate", "GATEWAY_TLS=off: the proxy in front holds the certificate");

/** The fake echo has no real target; this one is what its dials report. */
const FAKE_TARGET = { host: "echo.invalid", port: 7 };

/**
 * The one switch on GATEWAY_UPSTREAM_MODE. Each mode is a Dialer (or a Dialer per session when
 * it depends on the backend's assignment); nothing deeper asks which mode is on.
 * `reportFailure` queues an outline node_failure for the backend.
 */
function upstreamForMode(
  env: Env,
  deps: GatewayDeps,
  log: Logger,
  reportFailure: (node_id: string, error: string) => void,
): UpstreamFor {
  const mode = env.GATEWAY_UPSTREAM_MODE;
  if (mode === "fake") {
    const dialer = deps.dialer ?? fakeDialer();
    const packetDialer = deps.packetDialer ?? (deps.dialer ? undefined : fakePacketDialer());
    return () => ({ dialer, packetDialer, defaultTarget: FAKE_TARGET });
  }
  if (deps.dialer) {
    const { dialer, packetDialer } = deps;
    return () => ({ dialer, packetDialer });
  }
  switch (mode) {
    case "outline": {
      const outline = new OutlineUpstream({
        dialTimeoutMs: env.GATEWAY_DIAL_TIMEOUT,
        backendTimeoutMs: env.GATEWAY_BACKEND_TIMEOUT,
        reportFailure,
        logger: log,
      });
      return (grant, ctx) => outline.forSession(grant.assignment, ctx);
    }
    case "direct": {
      let allow: Cidr[];
      try {
        allow = parseCidrList(env.GATEWAY_DIRECT_ALLOW);
      } catch (e) {
        throw new ConfigError(
          "GATEWAY_DIRECT_ALLOW",
          `${(e as Error).message}; expected IP ranges like 10.0.0.0/8, fd00::/8 (comma-separated)`,
        );
      }
      const dialer = directDialer(tcpDialer({ connectTimeoutMs: env.GATEWAY_DIAL_TIMEOUT }), { allow });
      const packetDialer = directPacketDialer(udpDialer(), { allow });
      return () => ({ dialer, packetDialer });
    }
  }
  throw new GatewayError("upstream_unavailable", `upstream mode ${mode as string} not available`);
}

export async function startGateway(env: Env, deps: GatewayDeps = {}): Promise<RunningGateway> {
  const log = deps.logger ?? createLogger(env.LOG_LEVEL, { service: "gateway", gateway_id: env.GATEWAY_ID });
  // First, so a bad GATEWAY_DIRECT_ALLOW stops the start before anything else happens. The
  // usage reporter it reports node failures to comes later; a failure needs a session first.
  const upstreamFor = upstreamForMode(env, deps, log, (node_id, error) => usage.nodeFailure(node_id, error));
  // GATEWAY_TLS=off: the proxy in front holds the certificate; this listener speaks plain HTTP.
  const certificates = env.GATEWAY_TLS ? await loadCertificates(env, log) : undefined;
  const metrics = deps.metrics ?? createGatewayMetrics();

  const backendBase = env.GATEWAY_BACKEND_URL ?? backendUrl(env);
  // Unset, the key the embedded backend generated into DATA_DIR is used, so `httvps dev`
  // needs no set-up; a real deployment sets GATEWAY_API_KEY.
  const apiKey = env.GATEWAY_API_KEY ?? readSecretFile(env.DATA_DIR, GATEWAY_KEY_FILE);
  if (!deps.backend && !apiKey) {
    log.warn("GATEWAY_API_KEY is not set: the backend will refuse every validation", { backend: backendBase });
  }
  const backend = deps.backend ??
    createBackendClient({
      baseUrl: backendBase,
      apiKey,
      timeoutMs: env.GATEWAY_BACKEND_TIMEOUT,
      logger: log,
      fetch: deps.backendFetch,
    });
  const auth = new DeviceAuth({ validate: backend.validateDevice, ttlMs: env.GATEWAY_AUTH_CACHE_TTL });
  const appAuth = new AppAuth({ validate: backend.validateApp, ttlMs: env.GATEWAY_AUTH_CACHE_TTL });
  // Wrong credentials from one address or against one device id are answered here, not by the backend.
  const helloLimiter = new HelloLimiter({
    perAddress: env.GATEWAY_HELLO_FAIL_LIMIT,
    perDevice: env.GATEWAY_HELLO_FAIL_DEVICE_LIMIT,
    windowMs: env.GATEWAY_HELLO_FAIL_WINDOW,
    maxKeys: env.GATEWAY_HELLO_FAIL_ENTRIES,
  });
  const usage = new UsageReporter({
    gatewayId: env.GATEWAY_ID,
    identity: { version: HTTVPS_VERSION, runtime },
    report: (body) => backend.report(body),
    flushIntervalMs: env.GATEWAY_USAGE_FLUSH_INTERVAL,
    metrics,
    logger: log,
  });

  const sessionConfig: SessionConfig = {
    helloTimeoutMs: env.GATEWAY_HELLO_TIMEOUT,
    pingIntervalMs: env.GATEWAY_PING_INTERVAL,
    idleTimeoutMs: env.GATEWAY_IDLE_TIMEOUT,
    udpIdleTimeoutMs: env.GATEWAY_UDP_IDLE_TIMEOUT,
    dialTimeoutMs: env.GATEWAY_DIAL_TIMEOUT,
    maxStreams: env.GATEWAY_MAX_STREAMS,
    window: codec.DEFAULT_WINDOW,
    socketHighWater: WS_HIGH_WATER,
    maxConsecutiveErrors: MAX_BAD_FRAMES,
    authFailureDelayMs: env.GATEWAY_AUTH_FAIL_DELAY,
    padding: env.GATEWAY_PADDING,
    earlyData: env.GATEWAY_EARLY_DATA,
  };

  const decoy = decoyFor(env);
  const appConfig = appConfigHandler({
    auth: appAuth,
    publicUrl: env.GATEWAY_PUBLIC_URL,
    updateIntervalHours: env.GATEWAY_APP_SUB_UPDATE_HOURS,
    logger: log,
  });
  // Every other path on the public port is the decoy's, /metrics and /healthz included.
  const fetch = async (req: Request): Promise<Response> => (await appConfig(req)) ?? decoy(req);
  // Behind a trusted proxy, the client is who its X-Forwarded-For says; everywhere below takes this address.
  const clientOf = (peer: string, headers: Headers) => clientAddress(peer, headers, env.GATEWAY_TRUSTED_PROXIES);

  const sessions = new Set<Session>();
  let accepting = true;
  const apps = new AppSessions({
    auth: deps.appAuth ?? appAuth,
    upstreamFor,
    usage,
    metrics,
    log,
    lingerMs: env.GATEWAY_APP_SESSION_LINGER,
    maxConnections: env.GATEWAY_MAX_STREAMS,
    replayHistory: env.GATEWAY_APP_REPLAY_HISTORY,
  });
  const appUpgradeTo = appUpgrade({
    sessions: apps,
    metrics,
    log,
    probeTimeoutMs: env.GATEWAY_APP_PROBE_TIMEOUT,
    dialTimeoutMs: env.GATEWAY_DIAL_TIMEOUT,
    udpIdleTimeoutMs: env.GATEWAY_UDP_IDLE_TIMEOUT,
    highWater: WS_HIGH_WATER,
    accepting: () => accepting,
  });
  const upgrade: DecideUpgrade = (path, headers, peer) => appUpgradeTo(path, headers, clientOf(peer, headers));
  // One function for every session, not a closure each (docs/06 "Memory per session").
  const forget = (s: Session) => void sessions.delete(s);
  const accept = (socket: SessionSocket, info: UpgradeInfo): SessionHandler => {
    if (!accepting) {
      // Between drain() and the listener closing: the socket is already upgraded, so say why.
      setTimeout(() => socket.close(1001, Code.shutdown), 0);
      return { message() {}, drain() {}, close() {} };
    }
    const client = clientOf(info.remoteAddress, info.headers);
    const session = new Session({
      socket,
      remoteAddress: client,
      auth: helloLimiter.wrap(auth, client),
      upstreamFor,
      config: sessionConfig,
      logger: log,
      metrics,
      usage,
      onClose: forget,
    });
    sessions.add(session);
    return session;
  };

  let operatorServer: ListeningServer | undefined;
  let httpServer: ListeningServer | undefined;
  const server = await serveGateway({
    hostname: env.GATEWAY_LISTEN_ADDR.host,
    port: env.GATEWAY_LISTEN_ADDR.port,
    tls: certificates?.tls,
    acmeTlsChallenge: certificates?.acmeTlsChallenge,
    wsPath: env.GATEWAY_WS_PATH,
    h2: env.GATEWAY_H2,
    fetch,
    accept,
    upgrade,
    portSharing: deps.worker?.portSharing,
    preauth: {
      tlsHandshakeTimeoutMs: env.GATEWAY_TLS_HANDSHAKE_TIMEOUT,
      requestHeadTimeoutMs: env.GATEWAY_REQUEST_HEAD_TIMEOUT,
      gate: new PreauthCounter(env.GATEWAY_PREAUTH_PER_ADDRESS, env.GATEWAY_TRUSTED_PROXIES),
    },
  });
  const operatorAddr = deps.worker ? undefined : metricsListenAddr(env);
  const httpAddr = deps.worker ? undefined : env.GATEWAY_HTTP_ADDR;
  try {
    if (operatorAddr) {
      const handler = operatorHandler({ metrics, ready: () => accepting });
      operatorServer = await serveHttp({ hostname: operatorAddr.host, port: operatorAddr.port, fetch: handler });
    }
    if (httpAddr && certificates) { // with GATEWAY_TLS=off the config refuses GATEWAY_HTTP_ADDR
      const httpsPort = env.GATEWAY_PUBLIC_URL ? publicGatewayAddress(env.GATEWAY_PUBLIC_URL).port : server.port;
      httpServer = await serveHttp({
        hostname: httpAddr.host,
        port: httpAddr.port,
        fetch: certificates.httpHandler(httpsPort),
      });
    }
  } catch (e) {
    await operatorServer?.close();
    await server.close();
    throw e;
  }
  certificates?.start(server);
  usage.start();
  const transports = gatewayTransports.filter((t) => t === "ws" || env.GATEWAY_H2);
  if (env.GATEWAY_H2 && !gatewayTransports.includes("h2")) {
    log.warn(`the HTTP/2 transport is not served on ${runtime} (no HTTP/2 server); h2 clients fall back to ws`, { runtime });
  }
  log.info(deps.worker ? "gateway worker listening" : "gateway listening", {
    address: `${env.GATEWAY_LISTEN_ADDR.host}:${server.port}`,
    ws_path: env.GATEWAY_WS_PATH,
    transports: transports.join(","),
    upstream: env.GATEWAY_UPSTREAM_MODE,
    backend: backendBase,
    operator: operatorAddr ? `${operatorAddr.host}:${operatorServer!.port}` : "off",
    http: httpServer ? `${httpAddr!.host}:${httpServer.port}` : "off",
    certificate: !certificates
      ? "none: plain HTTP for a proxy (GATEWAY_TLS=off)"
      : env.GATEWAY_ACME_DOMAINS
      ? `acme ${env.GATEWAY_ACME_DOMAINS.join(",")}`
      : env.GATEWAY_TLS_CERT,
    trusted_proxies: env.GATEWAY_TRUSTED_PROXIES.map((c) => c.text).join(",") || "none",
  });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      accepting = false;
      await server.close();
      for (const s of [...sessions]) s.terminate(Code.shutdown);
      sessions.clear();
      apps.closeAll(Code.shutdown, WS_CLOSE_GOING_AWAY);
      certificates?.stop();
      await usage.stop();
      await operatorServer?.close();
      await httpServer?.close();
      log.info("gateway stopped");
    })();
    return closed;
  };

  let draining: Promise<void> | undefined;
  const drain = (): Promise<void> => {
    draining ??= (async () => {
      accepting = false;
      await server.close();
      log.info("draining", { sessions: sessions.size, app_connections: apps.connections, timeout_ms: env.GATEWAY_DRAIN_TIMEOUT });
      for (const s of [...sessions]) s.goaway(Code.shutdown, "the gateway is shutting down", env.GATEWAY_DRAIN_TIMEOUT);
      // App connections have no goaway: each runs to its end (one TCP connection each, or a
      // mux the app closes when idle) until the timeout closes what is left.
      const deadline = Date.now() + env.GATEWAY_DRAIN_TIMEOUT;
      const busy = () => sessions.size > 0 || apps.connections > 0;
      while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      if (busy()) {
        log.warn("drain timeout; closing the remaining sessions", { sessions: sessions.size, app_connections: apps.connections });
      }
      await close();
    })();
    return draining;
  };

  return {
    port: server.port,
    hostname: server.hostname,
    metricsPort: operatorServer?.port,
    httpPort: httpServer?.port,
    get certificate() {
      if (!certificates) throw noCertificate();
      return certificates.current;
    },
    renewCertificate: () => certificates ? certificates.renew() : Promise.reject(noCertificate()),
    metrics,
    get sessions() {
      return sessions.size;
    },
    get appSessions() {
      return apps.size;
    },
    get appConnections() {
      return apps.connections;
    },
    close,
    drain,
  };
}
