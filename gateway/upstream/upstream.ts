// What a gateway session dials through — chosen once per session from the auth answer (the
// mode: fake, direct, outline; see gateway.ts) — and what the session offers it in return.
import type { Logger } from "../../logging/logger.ts";
import type { PacketDialer } from "../../transport/packet.ts";
import type { Dialer, Target } from "../../transport/stream.ts";
import type { AuthOutcome } from "../auth.ts";

/** How this session reaches the outside world, chosen once per session from the auth answer (outline needs its node). */
export interface Upstream {
  dialer: Dialer;
  /** UDP streams (the udp feature); without one the feature is not granted. */
  packetDialer?: PacketDialer;
  /** Used when stream_open has no target (only the fake echo has one). */
  defaultTarget?: Target;
  /**
   * The session's own bound on one dial, when the dialer needs longer than the configured
   * dial timeout (outline: a failed node, a re-validation and a second node in one dial).
   */
  dialTimeoutMs?: number;
}

/** What a session offers its upstream beyond the auth answer: outline's failover needs all of it. */
export interface UpstreamContext {
  readonly session_id: string;
  readonly logger: Logger;
  /**
   * Ask the control plane about this device again, past the cache (with the nodes to avoid).
   * If the answer is that access has ended, the session closes as on its periodic re-check.
   */
  revalidate(opts?: { exclude_node_ids?: string[] }): Promise<AuthOutcome>;
  /** The session's streams now go to this node. */
  nodeChanged(node_id: string): void;
}
export type UpstreamFor = (grant: Extract<AuthOutcome, { ok: true }>, ctx: UpstreamContext) => Upstream;
