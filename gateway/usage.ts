// Usage reporting to the backend: session_open / session_usage / session_close events (and
// the outline upstream's node_failure) in batches. The data path only bumps counters on the session and pushes events into a
// bounded queue; all network work happens here, off that path, so a slow or dead backend
// can never stall a byte of tunnel traffic. When the backend stays unreachable the queue
// keeps the newest events and drops the oldest (counted in a metric): recent usage and
// the close events matter more for quotas and session counts than stale heartbeats.
import type { Logger } from "../logging/logger.ts";
import type { ReportBody, UsageEvent } from "./auth.ts";
import type { GatewayMetrics } from "./metrics.ts";

/** A session as the reporter sees it: running totals it can read at any time. */
export interface UsageSource {
  readonly session_id: string;
  readonly device_id: string;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

export interface UsageSink {
  open(source: UsageSource, nodeId: string | null): void;
  close(source: UsageSource, reason: string): void;
  /** The session's streams now go to another node (failover). */
  nodeChanged?(source: UsageSource, nodeId: string): void;
}

/** The backend keeps at most this much of a node_failure's error text. */
const MAX_FAILURE_TEXT = 200;

export interface UsageReporterOptions {
  gatewayId: string;
  /** What this gateway runs, sent with every report (the console's gateway list). */
  identity?: { version: string; runtime: string };
  report(body: ReportBody): Promise<number>;
  flushIntervalMs: number;
  /** Most events kept while the backend is unreachable. */
  maxQueue?: number;
  /** Delay before sending open/close events, so a burst of sessions goes in one request. */
  promptDelayMs?: number;
  metrics?: GatewayMetrics;
  logger?: Logger;
}

/** The backend accepts at most this many events per request. */
export const MAX_EVENTS_PER_REPORT = 1000;

interface Tracked {
  source: UsageSource;
  reportedUp: number;
  reportedDown: number;
}

export class UsageReporter implements UsageSink {
  private readonly sessions = new Map<string, Tracked>();
  private queue: UsageEvent[] = [];
  private readonly maxQueue: number;
  private readonly promptDelayMs: number;
  private interval: ReturnType<typeof setInterval> | undefined;
  private prompt: ReturnType<typeof setTimeout> | undefined;
  private sending: Promise<void> | undefined;
  private backoffUntil = 0;
  private failing = false;
  private stopped = false;
  /** Events dropped from a full queue. */
  dropped = 0;

  constructor(private readonly opts: UsageReporterOptions) {
    this.maxQueue = Math.max(MAX_EVENTS_PER_REPORT, opts.maxQueue ?? 20_000);
    this.promptDelayMs = opts.promptDelayMs ?? 50;
  }

  start(): void {
    if (this.interval || this.stopped) return;
    this.interval = setInterval(() => void this.flush(), this.opts.flushIntervalMs);
  }

  open(source: UsageSource, nodeId: string | null): void {
    if (this.stopped) return;
    this.sessions.set(source.session_id, { source, reportedUp: source.bytesUp, reportedDown: source.bytesDown });
    this.push({ type: "session_open", session_id: source.session_id, device_id: source.device_id, node_id: nodeId });
    this.soon();
  }

  close(source: UsageSource, reason: string): void {
    const t = this.sessions.get(source.session_id);
    if (!t) return;
    this.sessions.delete(source.session_id);
    const bytes_up = source.bytesUp - t.reportedUp;
    const bytes_down = source.bytesDown - t.reportedDown;
    this.push({
      type: "session_close",
      session_id: source.session_id,
      device_id: source.device_id,
      reason,
      bytes_up,
      bytes_down,
    });
    this.soon();
  }

  /**
   * Tell the backend about the session's new node. session_open is an upsert on the backend
   * (the row's node_id is replaced, the device's session count is not bumped), so a repeat
   * of it is the move; the node's load then counts this session.
   */
  nodeChanged(source: UsageSource, nodeId: string): void {
    if (this.stopped || !this.sessions.has(source.session_id)) return;
    this.push({ type: "session_open", session_id: source.session_id, device_id: source.device_id, node_id: nodeId });
    this.soon();
  }

  /** A node the gateway could not use; the backend marks it down until its next health check. */
  nodeFailure(nodeId: string, error: string): void {
    if (this.stopped) return;
    this.push({ type: "node_failure", node_id: nodeId, error: error.slice(0, MAX_FAILURE_TEXT) });
    this.soon();
  }

  /**
   * Queue a usage delta for every open session (the heartbeat) and send what is queued; with
   * nothing to send, an empty report, so the backend knows the gateway is alive without sessions.
   */
  flush(): Promise<void> {
    for (const t of this.sessions.values()) {
      const up = t.source.bytesUp;
      const down = t.source.bytesDown;
      this.push({
        type: "session_usage",
        session_id: t.source.session_id,
        device_id: t.source.device_id,
        bytes_up: up - t.reportedUp,
        bytes_down: down - t.reportedDown,
      });
      t.reportedUp = up;
      t.reportedDown = down;
    }
    if (this.queue.length === 0 && !this.sending && !this.stopped) return this.heartbeat();
    return this.send(true);
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.opts.report(this.body([]));
    } catch {
      // Nothing was lost; the next flush tries again, and a failure with events in it is logged.
    }
  }

  private body(events: UsageEvent[]): ReportBody {
    const id = this.opts.identity;
    return {
      gateway_id: this.opts.gatewayId,
      ...(id ? { gateway_version: id.version, gateway_runtime: id.runtime } : {}),
      events,
    };
  }

  /** Stop the timers and make one last attempt to deliver what is queued. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.interval) clearInterval(this.interval);
    if (this.prompt) clearTimeout(this.prompt);
    this.interval = this.prompt = undefined;
    await this.sending;
    this.backoffUntil = 0;
    await this.send(true);
  }

  get queued(): number {
    return this.queue.length;
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  private push(ev: UsageEvent): void {
    this.queue.push(ev);
    if (this.queue.length > this.maxQueue) this.trim();
  }

  private trim(): void {
    const excess = this.queue.length - this.maxQueue;
    if (excess <= 0) return;
    this.queue.splice(0, excess);
    this.dropped += excess;
    this.opts.metrics?.reportEventsDroppedTotal.inc(excess);
  }

  private soon(): void {
    if (this.prompt || this.stopped) return;
    this.prompt = setTimeout(() => {
      this.prompt = undefined;
      void this.send(false);
    }, this.promptDelayMs);
  }

  private send(force: boolean): Promise<void> {
    if (this.sending) return this.sending;
    if (this.queue.length === 0) return Promise.resolve();
    // Prompt sends respect the backoff so a dead backend is not hit per session; the
    // periodic flush always tries, which is the retry.
    if (!force && Date.now() < this.backoffUntil) return Promise.resolve();
    this.sending = this.drainQueue().finally(() => {
      this.sending = undefined;
    });
    return this.sending;
  }

  private async drainQueue(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_EVENTS_PER_REPORT);
      try {
        await this.opts.report(this.body(batch));
        if (this.failing) this.opts.logger?.info("usage reports delivered again", { queued: this.queue.length });
        this.failing = false;
      } catch (err) {
        // Back to the front, in order, then trim: the oldest go if the queue overflowed meanwhile.
        this.queue.unshift(...batch);
        this.trim();
        this.opts.metrics?.reportFailuresTotal.inc();
        this.backoffUntil = Date.now() + this.opts.flushIntervalMs;
        if (!this.failing) {
          this.opts.logger?.warn("usage report failed; will retry", {
            code: (err as { code?: string }).code ?? "unknown",
            error: (err as Error)?.message,
            queued: this.queue.length,
          });
        }
        this.failing = true;
        return;
      }
    }
  }
}
