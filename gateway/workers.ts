// GATEWAY_WORKERS > 1: this process is the primary of that many gateway workers
// (gateway/worker.ts), each a whole gateway with its own sessions on the one public port. How
// they share it is the runtime's (runtime/*.ts workerPortSharing): Node's node:cluster hands
// each connection to a worker in turn; Bun and Deno bind the port in every worker with
// SO_REUSEPORT and the kernel spreads connections by their addresses. The primary serves no
// session. It holds what must exist once: the operator listener (metrics summed over the
// workers, readiness), the plain-HTTP listener (redirects), the decoy seed made before any
// worker reads it, and the drain, which reaches every worker. Each worker keeps its own auth
// cache (a device on two workers is validated once by each) and reports its own sessions
// under GATEWAY_ID, so the backend counts each session once. Certificate files are watched by
// every worker; ACME (one issuer, challenges answered by whichever process the CA reaches)
// keeps the gateway to one process, see cli/main.ts.
import { AggregatorRegistry, Gauge, type MetricObjectWithValues, type MetricValue, Registry } from "prom-client";
import { type Env, metricsListenAddr, publicGatewayAddress } from "../config/config.ts";
import type { Logger } from "../logging/logger.ts";
import { forkWorker, type ListeningServer, serveHttp, workerPortSharing, type WorkerProcess } from "../runtime/index.ts";
import { ensureDecoySeed } from "./decoy.ts";
import { GatewayError } from "./gateway-error.ts";
import { operatorHandler } from "./operator.ts";
import { loadCertificates } from "./tls/certificates.ts";
import { type FromWorker, type ToWorker, type WorkerRole, workerRoleValue } from "./worker.ts";

export interface RunningWorkers {
  port: number;
  hostname: string;
  metricsPort?: number;
  httpPort?: number;
  /** The worker processes now running. */
  readonly pids: number[];
  /** Every worker drains (goaway, GATEWAY_DRAIN_TIMEOUT), then the primary's listeners close. */
  drain(): Promise<void>;
}

/** How long a worker may take to answer a metrics request before the scrape goes on without it. */
const METRICS_TIMEOUT_MS = 2000;
/** A worker that died is started again after this long (not at once: a crash loop would spin). */
const RESTART_DELAY_MS = 1000;

interface Worker {
  role: WorkerRole;
  process: WorkerProcess;
}

export async function startGatewayWorkers(env: Env, count: number, log: Logger): Promise<RunningWorkers> {
  // Read once here so a bad certificate stops the start before any worker is forked
  // (none with GATEWAY_TLS=off: the proxy in front holds it).
  const certificates = env.GATEWAY_TLS ? await loadCertificates(env, log) : undefined;
  ensureDecoySeed(env);
  const workers = new Map<number, Worker>();
  let stopping = false;
  let nextMetricsId = 1;
  const metricsReplies = new Map<number, (m: MetricObjectWithValues<MetricValue<string>>[]) => void>();
  let port = env.GATEWAY_LISTEN_ADDR.port;

  /** Start worker `role`; resolves with its port once it listens, rejects if it exits first. */
  const start = (role: WorkerRole): Promise<number> => {
    const vars: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) vars[k] = v;
    vars.HTTVPS_GATEWAY_WORKER = workerRoleValue(role);
    if (role.portSharing === "join") vars.GATEWAY_LISTEN_ADDR = hostPort(env.GATEWAY_LISTEN_ADDR.host, port);
    const proc = forkWorker(vars);
    const w: Worker = { role, process: proc };
    workers.set(role.index, w);
    return new Promise((resolve, reject) => {
      let listening = false;
      proc.onMessage((m) => {
        const msg = m as FromWorker;
        if (msg?.type === "listening") {
          listening = true;
          resolve(msg.port);
        } else if (msg?.type === "metrics") metricsReplies.get(msg.id)?.(msg.metrics);
      });
      void proc.exited.then(({ code, signal }) => {
        if (workers.get(role.index) === w) workers.delete(role.index);
        if (!listening) {
          reject(new GatewayError("worker_failed", `gateway worker ${role.index} exited before listening (${signal ?? code})`));
          return;
        }
        if (stopping) return;
        log.error("gateway worker exited; starting another", { worker: role.index, pid: proc.pid, code, signal });
        setTimeout(() => {
          if (stopping) return;
          const again = { index: role.index, portSharing: role.portSharing && "join" as const };
          start(again).catch((e) => log.error("gateway worker did not start again", { worker: role.index, error: e }));
        }, RESTART_DELAY_MS);
      });
    });
  };

  const stopAll = async () => {
    stopping = true;
    for (const w of workers.values()) w.process.send({ type: "drain" } satisfies ToWorker);
    const left = [...workers.values()].map((w) => w.process);
    // Past the drain timeout (and some slack for the last reports) a worker is killed.
    const kill = setTimeout(() => left.forEach((p) => p.kill("SIGKILL")), env.GATEWAY_DRAIN_TIMEOUT + 10_000);
    await Promise.all(left.map((p) => p.exited));
    clearTimeout(kill);
  };

  try {
    // Reuse-port workers: the first claims the port (port 0 becomes a real one), the rest join it.
    // Cluster workers all ask the primary for the same address, port 0 included.
    if (workerPortSharing === "reusePort") {
      port = await start({ index: 0, portSharing: "claim" });
      await Promise.all(Array.from({ length: count - 1 }, (_, i) => start({ index: i + 1, portSharing: "join" })));
    } else {
      port = (await Promise.all(Array.from({ length: count }, (_, i) => start({ index: i }))))[0]!;
    }
  } catch (e) {
    await stopAll();
    throw e;
  }

  const primaryRegistry = new Registry();
  new Gauge({
    name: "httvps_gateway_workers",
    help: "Gateway worker processes running.",
    registers: [primaryRegistry],
    collect() {
      this.set(workers.size);
    },
  });
  const collect = (w: Worker) =>
    new Promise<MetricObjectWithValues<MetricValue<string>>[]>((resolve) => {
      const id = nextMetricsId++;
      const timer = setTimeout(() => done([]), METRICS_TIMEOUT_MS);
      const done = (m: MetricObjectWithValues<MetricValue<string>>[]) => {
        clearTimeout(timer);
        metricsReplies.delete(id);
        resolve(m);
      };
      metricsReplies.set(id, done);
      w.process.send({ type: "metrics", id } satisfies ToWorker);
    });
  const metrics = {
    async render() {
      const perWorker = await Promise.all([...workers.values()].map(collect));
      const summed = AggregatorRegistry.aggregate([
        ...perWorker.filter((m) => m.length),
        await primaryRegistry.getMetricsAsJSON(),
      ]);
      return { body: await summed.metrics(), contentType: summed.contentType };
    },
  };

  let operatorServer: ListeningServer | undefined;
  let httpServer: ListeningServer | undefined;
  const operatorAddr = metricsListenAddr(env);
  try {
    if (operatorAddr) {
      const handler = operatorHandler({ metrics, ready: () => !stopping && workers.size > 0 });
      operatorServer = await serveHttp({ hostname: operatorAddr.host, port: operatorAddr.port, fetch: handler });
    }
    if (env.GATEWAY_HTTP_ADDR && certificates) { // with GATEWAY_TLS=off the config refuses GATEWAY_HTTP_ADDR
      const httpsPort = env.GATEWAY_PUBLIC_URL ? publicGatewayAddress(env.GATEWAY_PUBLIC_URL).port : port;
      httpServer = await serveHttp({
        hostname: env.GATEWAY_HTTP_ADDR.host,
        port: env.GATEWAY_HTTP_ADDR.port,
        fetch: certificates.httpHandler(httpsPort),
      });
    }
  } catch (e) {
    await operatorServer?.close();
    await stopAll();
    throw e;
  }
  log.info("gateway listening", {
    address: hostPort(env.GATEWAY_LISTEN_ADDR.host, port),
    workers: count,
    pids: [...workers.values()].map((w) => w.process.pid).join(","),
    operator: operatorAddr ? `${operatorAddr.host}:${operatorServer!.port}` : "off",
    http: httpServer ? `${env.GATEWAY_HTTP_ADDR!.host}:${httpServer.port}` : "off",
  });

  let drained: Promise<void> | undefined;
  return {
    port,
    hostname: env.GATEWAY_LISTEN_ADDR.host,
    metricsPort: operatorServer?.port,
    httpPort: httpServer?.port,
    get pids() {
      return [...workers.values()].map((w) => w.process.pid);
    },
    drain: () =>
      drained ??= (async () => {
        log.info("draining the gateway workers", { workers: workers.size });
        await stopAll();
        await operatorServer?.close();
        await httpServer?.close();
        log.info("gateway stopped");
      })(),
  };
}

const hostPort = (host: string, port: number) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);
