// What the backend app is made from: the caller's options, and the same with defaults filled
// in as the routes see them.
import type { DeviceLinks } from "./console/page-types.ts";
import type { Database } from "./db/database.ts";
import type { Logger } from "../logging/logger.ts";
import type { BackendMetrics } from "./metrics.ts";
import type { OutlineKeys } from "./outline-keys.ts";
import type { ScryptCost } from "./passwords.ts";
import type { SignInLimits } from "./sign-in.ts";
import type { SessionTimes } from "./store/admin-sessions.ts";

export interface BackendOptions {
  db: Database;
  adminToken: string;
  gatewayApiKey: string;
  /** Sessions not reported for this long stop counting towards limits and load. */
  sessionStaleAfterMs?: number;
  logger?: Logger;
  metrics?: BackendMetrics;
  /** Called after a device is revoked or changed (its Outline keys are already handled by outlineKeys). */
  onDeviceChanged?: (deviceId: string, change: "revoked" | "updated") => void;
  /** Called after a node is added or changed (the health checker looks at it at once). */
  onNodesChanged?: () => void;
  /** Per-device keys on nodes with an Outline management API; default: one with no timers. */
  outlineKeys?: OutlineKeys;
  version?: string;
  /** The time limits are judged at, buckets filled at and sessions expire at; tests move it. Default: the wall clock. */
  now?: () => Date;
  /** Admin sessions: ADMIN_SESSION_IDLE and ADMIN_SESSION_MAX (default 30 minutes and 12 hours). */
  adminSessionIdleMs?: number;
  adminSessionMaxMs?: number;
  /** Password hashing cost (default passwords.ts's DEFAULT_SCRYPT_COST; tests use a cheaper one). */
  scryptCost?: ScryptCost;
  signInLimits?: SignInLimits;
  /** The console's access key and app links of a new device (where the gateways are); without it, it shows id and token. */
  deviceLinks?: DeviceLinks;
}

/** The options with their defaults filled in, as the routes see them. */
export interface BackendDeps extends BackendOptions {
  sessions: SessionTimes;
  scryptCost: ScryptCost;
  signInLimits: SignInLimits;
}
