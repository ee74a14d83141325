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
import { CachedValidation, type CachedValidationOptions } from "../answer-cache.ts";
import { type AppAuthOutcome, BACKEND_UNAVAILABLE, type ValidateApp, type ValidateAppRequest } from "../auth.ts";

/** maxEntries counts answers: a path takes up to two (config and connect). */
export interface AppAuthOptions extends CachedValidationOptions {
  validate: ValidateApp;
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

/**
 * Positive-result cache with shared in-flight requests in front of validate-app; answers are
 * keyed `f\n<sha256>` (config) and `c\n<sha256>` (connect).
 */
export class AppAuth extends CachedValidation<ValidateAppRequest, AppAuthOutcome> {
  constructor(opts: AppAuthOptions) {
    super(opts.validate, BACKEND_UNAVAILABLE, opts);
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
    return this.flights.admit(`n\n${hash}`, () => this.call(hash, req), (r) => r.ok && r.device.max_sessions !== null);
  }

  /** Forget a path's cached answers (e.g. when a live connection learns its device was revoked). */
  forget(path: string): void {
    const hash = pathHash(path);
    this.cache.delete(`f\n${hash}`);
    this.cache.delete(`c\n${hash}`);
  }

  private async call(hash: string, req: ValidateAppRequest): Promise<AppAuthOutcome> {
    const r = await this.ask(req);
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
