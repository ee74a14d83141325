// A device's access after its session's handshake: the control plane is asked again every auth
// TTL (the periodic re-check), and on the upstream's demand past the cache (outline's failover,
// with the nodes to avoid). An answer that access has ended closes the session; `unavailable`
// (the backend is down) never does: live sessions keep flowing and the check comes again later.
import type { Logger } from "../logging/logger.ts";
import { Code } from "../protocol/errors.ts";
import type { AuthOutcome, CheckOptions, Credentials } from "./auth.ts";
import type { UpstreamContext } from "./upstream/upstream.ts";

/** The one thing a session needs from auth: DeviceAuth implements it. */
export interface SessionAuth {
  readonly ttlMs: number;
  check(creds: Credentials, opts?: CheckOptions): Promise<AuthOutcome>;
}

/** What the access checks need from their session. */
export interface AccessHost {
  readonly isOpen: boolean;
  readonly log: Logger;
  /** The control plane says this device may no longer connect: tell the client why and close. */
  ended(code: string, message: string): void;
  /** The upstream moved the session's streams to another node. */
  nodeChanged(node_id: string): void;
}

export class SessionAccess {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly auth: SessionAuth,
    private readonly creds: Credentials,
    private readonly session_id: string,
    private readonly host: AccessHost,
  ) {}

  /** What the session offers its upstream. */
  upstreamContext(): UpstreamContext {
    const host = this.host;
    // deno-lint-ignore no-this-alias -- the methods below read this access's state when called
    const access = this;
    // Method shorthand, not arrows: the upstream keeps this for the session's life (docs/06
    // "Memory per session").
    return {
      session_id: this.session_id,
      get logger() {
        return host.log;
      },
      async revalidate(opts = {}) {
        if (access.stopped) return { ok: false, code: Code.session_closed, message: "the session is closed" };
        const r = await access.auth.check(access.creds, {
          session_id: access.session_id,
          exclude_node_ids: opts.exclude_node_ids,
          fresh: true,
        });
        if (!r.ok && r.code !== Code.unavailable) host.ended(r.code, r.message);
        return r;
      },
      nodeChanged(node_id) {
        host.nodeChanged(node_id);
      },
    };
  }

  /** The periodic re-check, once per auth TTL while the session is open. */
  schedule(): void {
    if (this.stopped || !this.host.isOpen) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.host.isOpen) return;
      this.auth.check(this.creds, { session_id: this.session_id }).then(
        (r) => {
          if (!this.host.isOpen) return;
          if (r.ok || r.code === Code.unavailable) return this.schedule();
          this.host.ended(r.code, r.message);
        },
        () => this.schedule(),
      );
    }, this.auth.ttlMs);
  }

  /** The session is over. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
