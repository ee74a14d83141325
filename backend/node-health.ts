// Periodic health checks of the Outline node pool. Each enabled node gets a TCP connect
// and, when NODE_PROBE_TARGET is set, a real Shadowsocks round trip through it (a wrong
// password only shows there: Shadowsocks servers accept the TCP connection and then go
// silent). Results land in the nodes table, where assignment reads them.
import type { Database } from "./db/database.ts";
import type { Logger } from "../logging/logger.ts";
import { shadowsocksDialer } from "../shadowsocks/dialer.ts";
import { prefixBytes } from "../protocol/ss-url.ts";
import { tcpDialer } from "../transport/tcp.ts";
import { type Dialer, StreamError, type Target } from "../transport/stream.ts";
import { listNodes, type NodeRow, recordNodeHealth } from "./store/nodes.ts";

export interface HealthResult {
  status: "up" | "down";
  latency_ms: number | null;
  last_error: string | null;
}

export interface NodeHealthOptions {
  /** host:port reached through the node for the round trip; none → TCP connect only. */
  probeTarget?: Target;
  timeoutMs?: number;
  /** The TCP dialer to reach nodes with (tests may wrap it). */
  tcp?: Dialer;
}

function errorText(e: unknown): string {
  return e instanceof StreamError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
}

/** One check of one node. Never throws. */
export async function checkNode(
  node: Pick<NodeRow, "host" | "port" | "method" | "password" | "prefix">,
  opts: NodeHealthOptions = {},
): Promise<HealthResult> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const tcp = opts.tcp ?? tcpDialer({ connectTimeoutMs: timeoutMs });
  const t0 = performance.now();
  try {
    const conn = await tcp.dial({ host: node.host, port: node.port }, AbortSignal.timeout(timeoutMs));
    conn.close();
  } catch (e) {
    return { status: "down", latency_ms: null, last_error: errorText(e) };
  }
  const connectMs = Math.round(performance.now() - t0);
  if (!opts.probeTarget) return { status: "up", latency_ms: connectMs, last_error: null };

  const t1 = performance.now();
  try {
    const ss = shadowsocksDialer(
      {
        host: node.host,
        port: node.port,
        method: node.method,
        password: node.password,
        prefix: node.prefix ? prefixBytes(node.prefix) : undefined,
        timeoutMs,
        trustWindowMs: 0,
      },
      tcp,
    );
    const target = opts.probeTarget;
    const stream = await ss.dial(target, AbortSignal.timeout(timeoutMs));
    await new Promise<void>((resolve, reject) => {
      // The dialer's own first-byte timeout normally fires first; this is the backstop.
      const timer = setTimeout(() => {
        reject(new StreamError("upstream_timeout", `no answer through the node within ${timeoutMs} ms`));
        stream.close();
      }, timeoutMs + 1000);
      let got = false;
      stream.start({
        data() {
          if (got) return;
          got = true;
          clearTimeout(timer);
          stream.close();
          resolve();
        },
        end() {},
        drain() {},
        close(err) {
          clearTimeout(timer);
          if (!got) reject(err ?? new StreamError("upstream_reset", "closed before answering"));
        },
      });
      stream.write(new TextEncoder().encode(`HEAD / HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n\r\n`));
    });
    return { status: "up", latency_ms: Math.round(performance.now() - t1), last_error: null };
  } catch (e) {
    return { status: "down", latency_ms: connectMs, last_error: `round trip: ${errorText(e)}` };
  }
}

export interface NodeHealthChecker {
  /** Check every enabled node now; resolves when all results are stored. */
  checkAll(): Promise<void>;
  /** No more checks; resolves when a check in progress has stored its results. */
  stop(): Promise<void>;
}

export function startNodeHealth(
  db: Database,
  opts: NodeHealthOptions & { intervalMs: number; logger?: Logger; staleAfterSec?: number },
): NodeHealthChecker {
  let running: Promise<void> | undefined;
  let stopped = false;
  const checkAll = (): Promise<void> =>
    stopped ? Promise.resolve() : (running ??= (async () => {
      try {
        const nodes = (await listNodes(db, opts.staleAfterSec ?? 180)).filter((n) => n.enabled);
        await Promise.all(
          nodes.map(async (n) => {
            const h = await checkNode(n, opts);
            if (h.status !== n.status) {
              opts.logger?.info("node health changed", {
                node_id: n.id,
                name: n.name,
                from: n.status,
                to: h.status,
                error: h.last_error,
              });
            }
            await recordNodeHealth(db, n.id, h);
          }),
        );
      } catch (e) {
        opts.logger?.warn("node health check failed", { error: e });
      } finally {
        running = undefined;
      }
    })());
  const timer = setInterval(() => void checkAll(), opts.intervalMs);
  (timer as { unref?: () => void }).unref?.();
  void checkAll();
  return {
    checkAll,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
