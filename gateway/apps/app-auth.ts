// The gateway's cache in front of validate-app, with DeviceAuth's rules (gateway/auth.ts):
// - keys hold sha256(path), never the path, so a heap dump or a debug print of the map holds
//   nothing a prober could use to find a device;
// - only positive answers are cached, for the TTL, and a negative answer (not `unavailable`)
//   evicts the path, so a revocation takes effect for new connections at once and for live ones
//   within the TTL;
// - a new app session of a device with max_sessions is never admitted from the cache: only the
//   backend counts sessions (it reserves the slot under the device's lock);
// - a config answer never admits a connection: it carries no assignment (a connect answer is
//   also a good config answer, so it fills both).
import { createHash } from "node:crypto";
import { AnswerCache, Flights } from "../answer-cache.ts";
import type { AppAuthOutcome, ValidateApp, ValidateAppRequest } from "../auth.ts";

export interface AppAuthOptions {
  validate: ValidateApp;
  ttlMs: number;
  /** Bound on cached answers (each path takes up to two: config and connect); the oldest go first. */
  maxEntries?: number;
  now?: () => number;
}

interface Common {
  /** What the app says it is (its User-Agent); cut to the contract's 64 characters here. */
  client_version?: string;
}

/** A config or subscription fetch: nothing is reserved. */
export interface AppConfigCheck extends Common {
  purpose: "config";
}

/** An app connection: admit a new app session (new_session_id) or re-validate a live one (session_id). */
export type AppConnectCheck =
  & Common
  & {
    purpose: "connect";
    /** Nodes the gateway could not use: the backend assigns (and pins) another. */
    exclude_node_ids?: string[];
    /** Ask the backend even when the cache holds an answer (the answer still refreshes it). */
    fresh?: boolean;
  }
  & ({ new_session_id: string; session_id?: undefined } | { session_id: string; new_session_id?: undefined });

export type AppCheck = AppConfigCheck | AppConnectCheck;

type Valid = Extract<AppAuthOutcome, { ok: true }>;

const UNAVAILABLE: AppAuthOutcome = {
  ok: false,
  code: "unavailable",
  message: "the control plane is unavailable; retry later",
};

/** Positive-result cache with shared in-flight requests in front of validate-app. */
export class AppAuth {
  readonly ttlMs: number;
  /** Keyed `f\n<sha256>` for config answers, `c\n<sha256>` for connect ones. */
  private readonly cache: AnswerCache<Valid>;
  private readonly flights = new Flights<AppAuthOutcome>();
  private readonly validate: ValidateApp;
  /** Requests actually sent to the backend: lets tests (and debugging) see the cache work. */
  backendCalls = 0;

  constructor(opts: AppAuthOptions) {
    this.validate = opts.validate;
    this.ttlMs = opts.ttlMs;
    this.cache = new AnswerCache(opts.ttlMs, opts.maxEntries ?? 10_000, opts.now ?? Date.now);
  }

  /** What validate-app says about the device path `path` ("/" and 22 characters). Never throws. */
  async check(path: string, check: AppCheck): Promise<AppAuthOutcome> {
    const hash = pathHash(path);
    const base: ValidateAppRequest = { app_path: path, purpose: check.purpose };
    if (check.client_version !== undefined) base.client_version = check.client_version.slice(0, 64);

    if (check.purpose === "config") {
      return this.cache.get(`f\n${hash}`) ?? this.flights.join(`f\n${hash}`, () => this.call(hash, base)).promise;
    }

    const wantsOther = (check.exclude_node_ids?.length ?? 0) > 0;
    const live = check.session_id !== undefined;
    const hit = this.cache.get(`c\n${hash}`);
    if (hit && !wantsOther && !check.fresh && (live || hit.device.max_sessions === null)) return hit;

    const req: ValidateAppRequest = { ...base, session_id: check.session_id ?? check.new_session_id };
    if (wantsOther) req.exclude_node_ids = check.exclude_node_ids;
    if (live || wantsOther || check.fresh) {
      const flight = `r\n${hash}\n${check.session_id ?? ""}\n${check.exclude_node_ids ?? ""}`;
      return this.flights.join(flight, () => this.call(hash, req)).promise;
    }
    const { promise, leader } = this.flights.join(`n\n${hash}`, () => this.call(hash, req));
    const r = await promise;
    // Sharing one answer between concurrent new sessions is only safe when the backend does
    // not count them: otherwise each follower asks on its own and is counted.
    if (!leader && r.ok && r.device.max_sessions !== null) return this.call(hash, req);
    return r;
  }

  /** Forget a path's cached answers (e.g. when a live connection learns its device was revoked). */
  forget(path: string): void {
    const hash = pathHash(path);
    this.cache.delete(`f\n${hash}`);
    this.cache.delete(`c\n${hash}`);
  }

  /** Cached answers (a path's config and connect answers count apart). */
  get size(): number {
    return this.cache.size;
  }

  private async call(hash: string, req: ValidateAppRequest): Promise<AppAuthOutcome> {
    this.backendCalls++;
    let r: AppAuthOutcome;
    try {
      r = await this.validate(req);
    } catch {
      r = UNAVAILABLE;
    }
    if (r.ok) {
      this.cache.set(`f\n${hash}`, r);
      if (req.purpose === "connect") this.cache.set(`c\n${hash}`, r);
    } else if (r.code !== "unavailable") {
      this.cache.delete(`f\n${hash}`);
      this.cache.delete(`c\n${hash}`);
    }
    return r;
  }
}

function pathHash(path: string): string {
  return createHash("sha256").update(path, "utf8").digest("hex");
}
