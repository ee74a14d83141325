// An app session (docs/08): the connections of one device (one secret path) from one client
// address. It opens with the first connection — validate-app "connect" with a new session id,
// which reserves a max_sessions slot, and session_open reported — takes in later connections
// from the same address while it is open, and closes GATEWAY_APP_SESSION_LINGER after its last
// connection ended (session_close reported). So a device's max_sessions counts the places it is
// used from at once, however many WebSockets each app opens. Like a native session it has one
// Upstream (UpstreamFor: outline with failover, direct, fake), is re-validated every
// GATEWAY_AUTH_CACHE_TTL (access ended → its live connections close), and counts its bytes.
import type { Logger } from "../../logging/logger.ts";
import { Code } from "../../protocol/errors.ts";
import type { AppAuthOutcome, AuthOutcome } from "../auth.ts";
import type { GatewayMetrics } from "../metrics.ts";
import type { Upstream, UpstreamFor } from "../upstream/upstream.ts";
import type { UsageSink, UsageSource } from "../usage.ts";
import type { AppConnectCheck } from "./app-auth.ts";
import type { DeviceKey } from "./device-key.ts";
import type { Meter } from "./metered.ts";
import type { Flavour } from "./tcp-connection.ts";

/** The one thing app sessions need from app auth: AppAuth (app-auth.ts) implements it. */
export interface AppSessionAuth {
  readonly ttlMs: number;
  check(path: string, check: AppConnectCheck): Promise<AppAuthOutcome>;
}

/** One live connection of the session, whatever its flavour. */
export interface AppConnection {
  /** Close it now with this WebSocket close code. */
  terminate(wsCode: number): void;
}

/** WebSocket close codes for the session's own ends. */
export const WS_CLOSE_ACCESS_ENDED = 1008;
export const WS_CLOSE_GOING_AWAY = 1001;

/** An upgrade that does not complete within this long gives its reserved place back. */
const RESERVATION_MS = 10_000;

export interface AppSessionDeps {
  auth: AppSessionAuth;
  upstreamFor: UpstreamFor;
  usage?: UsageSink;
  metrics?: GatewayMetrics;
  log: Logger;
  lingerMs: number;
  /** Connections (reserved ones included) one app session may have at once. */
  maxConnections: number;
}

export class AppSession implements UsageSource {
  readonly device_id: string;
  bytesUp = 0;
  bytesDown = 0;
  readonly upstream: Upstream;
  readonly log: Logger;
  private readonly connections = new Set<AppConnection>();
  private reserved = 0;
  private lingerTimer: ReturnType<typeof setTimeout> | undefined;
  private revalidateTimer: ReturnType<typeof setTimeout> | undefined;
  private state: "open" | "closed" = "open";
  /** Told once the session closed (the registry forgets it). */
  onClosed?: (s: AppSession) => void;

  constructor(
    private readonly deps: AppSessionDeps,
    /** The device's secret path ("/" and 22 characters): never logged. */
    readonly path: string,
    readonly remoteAddress: string,
    readonly session_id: string,
    grant: Extract<AppAuthOutcome, { ok: true }>,
    readonly key: DeviceKey,
  ) {
    this.device_id = grant.device.id;
    this.log = deps.log.child({ session_id, device_id: this.device_id, app: true });
    const outcome: Extract<AuthOutcome, { ok: true }> = { ok: true, device: grant.device, assignment: grant.assignment };
    // deno-lint-ignore no-this-alias -- the logger getter reads the session's as it is when called
    const session = this;
    this.upstream = deps.upstreamFor(outcome, {
      session_id,
      get logger() {
        return session.log;
      },
      revalidate: async (opts = {}) => {
        if (this.state === "closed") return { ok: false, code: Code.session_closed, message: "the session is closed" };
        const r = await deps.auth.check(path, {
          purpose: "connect",
          session_id,
          exclude_node_ids: opts.exclude_node_ids,
          fresh: true,
        });
        if (!r.ok && r.code !== Code.unavailable) this.accessEnded(r.code);
        return r.ok ? { ok: true, device: r.device, assignment: r.assignment } : r;
      },
      nodeChanged: (node_id) => {
        if (this.state !== "open") return;
        this.log.info("app session moved to another node", { node_id });
        deps.usage?.nodeChanged?.(this, node_id);
      },
    });
    deps.metrics?.appSessionsActive.inc();
    deps.usage?.open(this, grant.assignment?.node_id ?? null);
    this.log.info("app session open");
    this.scheduleRevalidation();
    this.lingerIfIdle();
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  /** Live and reserved connections. */
  get size(): number {
    return this.connections.size + this.reserved;
  }

  /**
   * Hold a place for a connection whose upgrade is being answered: false when the session is
   * closed or full. The place goes back by itself unless attach() takes it within RESERVATION_MS.
   */
  reserve(): (() => boolean) | undefined {
    if (this.state !== "open" || this.size >= this.deps.maxConnections) return undefined;
    this.reserved++;
    clearTimeout(this.lingerTimer);
    let held = true;
    const release = () => {
      if (!held) return false;
      held = false;
      this.reserved--;
      return true;
    };
    const timer = setTimeout(() => release() && this.lingerIfIdle(), RESERVATION_MS);
    return () => (clearTimeout(timer), release() && this.state === "open");
  }

  /** A connection took its reserved place (the claim returned true). */
  attach(conn: AppConnection): void {
    this.connections.add(conn);
  }

  detach(conn: AppConnection): void {
    if (!this.connections.delete(conn)) return;
    this.lingerIfIdle();
  }

  /** Counting for one connection of `flavour`: the session's totals and the labelled metric. */
  meter(flavour: Flavour): Meter {
    const m = this.deps.metrics?.appBytesTotal;
    const up = m?.labels({ flavour, direction: "up" });
    const down = m?.labels({ flavour, direction: "down" });
    return {
      bytes: (direction, n) => {
        if (direction === "up") {
          this.bytesUp += n;
          up?.inc(n);
        } else {
          this.bytesDown += n;
          down?.inc(n);
        }
      },
    };
  }

  /** End the session and every connection in it (access ended, the gateway stops). */
  close(reason: string, wsCode: number): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.lingerTimer);
    clearTimeout(this.revalidateTimer);
    const conns = [...this.connections];
    this.connections.clear();
    for (const c of conns) c.terminate(wsCode);
    this.deps.metrics?.appSessionsActive.dec();
    this.deps.usage?.close(this, reason);
    this.log.info("app session closed", { reason, bytes_up: this.bytesUp, bytes_down: this.bytesDown });
    this.onClosed?.(this);
  }

  private lingerIfIdle(): void {
    if (this.state !== "open" || this.size > 0) return;
    clearTimeout(this.lingerTimer);
    this.lingerTimer = setTimeout(() => {
      if (this.size === 0) this.close("linger_expired", 1000);
    }, this.deps.lingerMs);
  }

  private accessEnded(code: string): void {
    if (this.state !== "open") return;
    this.log.info("app session no longer authorised", { code });
    this.close(code, WS_CLOSE_ACCESS_ENDED);
  }

  private scheduleRevalidation(): void {
    if (this.state !== "open") return;
    this.revalidateTimer = setTimeout(() => {
      if (this.state !== "open") return;
      this.deps.auth.check(this.path, { purpose: "connect", session_id: this.session_id }).then(
        (r) => {
          if (this.state !== "open") return;
          // unavailable: the backend is down; live connections keep flowing and we ask again later.
          if (r.ok || r.code === Code.unavailable) return this.scheduleRevalidation();
          this.accessEnded(r.code);
        },
        () => this.scheduleRevalidation(),
      );
    }, this.deps.auth.ttlMs);
  }
}
