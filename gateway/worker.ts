// One worker of a gateway with GATEWAY_WORKERS > 1 (gateway/workers.ts starts them): a whole
// gateway (startGateway) with its own sessions, auth cache and usage reporter, bound to the
// shared port, with no operator or plain-HTTP listener of its own. It answers its primary over
// the IPC channel: its metrics when asked, a drain when told, and it drains by itself on SIGINT
// or SIGTERM, or when the primary goes away.
import { Gauge, type MetricObjectWithValues, type MetricValue } from "prom-client";
import type { Env } from "../config/config.ts";
import type { Logger } from "../logging/logger.ts";
import { onSignal } from "../runtime/index.ts";
import { startGateway } from "./gateway.ts";

/** Primary → worker. */
export type ToWorker = { type: "metrics"; id: number } | { type: "drain" };
/** Worker → primary. */
export type FromWorker =
  | { type: "listening"; port: number }
  | { type: "metrics"; id: number; metrics: MetricObjectWithValues<MetricValue<string>>[] };

export interface WorkerRole {
  index: number;
  portSharing?: "claim" | "join";
}

/** HTTVPS_GATEWAY_WORKER ("<index>[:claim|:join]", validated by the config schema) as a role. */
export function workerRole(value: string): WorkerRole {
  const [index, sharing] = value.split(":");
  return { index: Number(index), portSharing: sharing as WorkerRole["portSharing"] };
}

/** HTTVPS_GATEWAY_WORKER for a role. */
export const workerRoleValue = (r: WorkerRole): string => (r.portSharing ? `${r.index}:${r.portSharing}` : String(r.index));

const send = (msg: FromWorker) => process.send?.(msg);

/** Run until drained; resolves then, and the process may exit. */
export async function runGatewayWorker(env: Env, log: Logger, role: WorkerRole): Promise<void> {
  const gw = await startGateway(env, { logger: log.child({ worker: role.index }), worker: role });
  // Per worker (a label each, so the primary's sum keeps them apart): how the kernel or the
  // cluster spread the sessions, and which process holds them.
  const labels = { worker: String(role.index), pid: String(process.pid) };
  new Gauge({
    name: "httvps_gateway_worker_sessions",
    help: "Open sessions (handshakes included) per gateway worker process.",
    labelNames: ["worker", "pid"] as const,
    registers: [gw.metrics.registry],
    collect() {
      this.set(labels, gw.sessions);
    },
  });

  let stopped: Promise<void> | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const stop = () => (stopped ??= gw.drain().finally(finish));
  process.on("message", (m: ToWorker) => {
    if (m?.type === "metrics") {
      void gw.metrics.registry.getMetricsAsJSON().then((metrics) => send({ type: "metrics", id: m.id, metrics }));
    } else if (m?.type === "drain") void stop();
  });
  // The primary died (or closed the channel): nothing would tell this worker to stop.
  process.on("disconnect", () => void stop());
  onSignal(["SIGINT", "SIGTERM"], () => void stop());
  send({ type: "listening", port: gw.port });
  await finished;
  process.disconnect?.();
}
