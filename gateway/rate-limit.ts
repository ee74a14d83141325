// Failed-hello rate limits: a token bucket per source address and per claimed device id.
//
// Why: every hello with a wrong token costs a backend round trip (validate-device, a sha256,
// a query) and gives a guesser one try. After `limit` failures within `windowMs` from one
// address (or against one device id), further hellos from it are answered `rate_limited` by
// the gateway itself, without asking the backend. Buckets refill continuously, so a client
// that fixes its key is let in again once the window has passed.
//
// Only credential failures count (unknown_device, bad_token): a backend outage
// (`unavailable`) or a device at its session limit is not the client guessing.
//
// Memory is bounded: at most `maxKeys` buckets per kind, least recently touched evicted
// first, and a bucket that has refilled completely is the same as no bucket, so it is dropped.
// An attacker with many addresses can evict older buckets; a cap trades that for bounded
// memory, and IPv6 addresses are keyed by their /64 so one host's prefix is one bucket.
import type { AuthOutcome, CheckOptions, Credentials } from "./auth.ts";
import type { SessionAuth } from "./session-access.ts";
import { parseIP, unmapIPv4 } from "../protocol/ip-address.ts";

export interface BucketOptions {
  /** Failures allowed within windowMs; 0 turns the limit off. */
  limit: number;
  windowMs: number;
  /** Buckets kept at most (least recently used evicted). */
  maxKeys: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets keyed by string: capacity `limit`, refilled at limit/windowMs per ms. */
export class FailureBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly opts: BucketOptions) {
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** True when `key` has no failure left to spend. */
  blocked(key: string): boolean {
    if (this.opts.limit <= 0) return false;
    const b = this.refilled(key);
    return b !== undefined && b.tokens < 1;
  }

  /** Spend one token for a failure. */
  fail(key: string): void {
    if (this.opts.limit <= 0) return;
    const b = this.refilled(key) ?? { tokens: this.opts.limit, at: this.now() };
    b.tokens = Math.max(0, b.tokens - 1);
    // Re-insert: Map order is then least recently used first.
    this.buckets.delete(key);
    this.buckets.set(key, b);
    while (this.buckets.size > this.opts.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
  }

  private refilled(key: string): Bucket | undefined {
    const b = this.buckets.get(key);
    if (!b) return undefined;
    const t = this.now();
    b.tokens = Math.min(this.opts.limit, b.tokens + ((t - b.at) * this.opts.limit) / this.opts.windowMs);
    b.at = t;
    if (b.tokens >= this.opts.limit) {
      this.buckets.delete(key);
      return undefined;
    }
    return b;
  }
}

/** The part of an address one client controls: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6 by /64. */
export function addressKey(address: string): string {
  const a = address.trim().toLowerCase().replace(/%.*$/, "");
  const ip = parseIP(a);
  if (!ip) return a;
  const v4 = ip.length === 4 ? ip : unmapIPv4(ip);
  if (v4) return v4.join(".");
  const groups = [0, 2, 4, 6].map((i) => ((ip[i]! << 8) | ip[i + 1]!).toString(16));
  return groups.join(":") + "::/64";
}

export interface HelloLimitOptions {
  /** Failed hellos per source address (IPv6: per /64) within windowMs; 0 = off. */
  perAddress: number;
  /** Failed hellos per claimed device id within windowMs; 0 = off. */
  perDevice: number;
  windowMs: number;
  /** Buckets kept per kind. */
  maxKeys: number;
  now?: () => number;
}

/** Outcomes that mean "wrong credentials" — the only ones a guesser produces. */
const COUNTED = new Set(["unknown_device", "bad_token"]);

export const RATE_LIMITED: AuthOutcome = Object.freeze({
  ok: false,
  code: "rate_limited",
  message: "too many failed attempts; retry later",
});

/** Both kinds of bucket for one gateway; `wrap` gives each session an auth that consults them. */
export class HelloLimiter {
  readonly byAddress: FailureBuckets;
  readonly byDevice: FailureBuckets;
  /** Hellos answered rate_limited without asking the backend. */
  refused = 0;

  constructor(opts: HelloLimitOptions) {
    this.byAddress = new FailureBuckets({
      limit: opts.perAddress,
      windowMs: opts.windowMs,
      maxKeys: opts.maxKeys,
      now: opts.now,
    });
    this.byDevice = new FailureBuckets({ limit: opts.perDevice, windowMs: opts.windowMs, maxKeys: opts.maxKeys, now: opts.now });
  }

  /**
   * The session's auth for a client at `remoteAddress`. Only new sessions are limited:
   * re-validations of a live session (session_id set) go straight through.
   */
  wrap(auth: SessionAuth, remoteAddress: string): SessionAuth {
    const addr = addressKey(remoteAddress);
    // deno-lint-ignore no-this-alias -- the method below counts on this limiter
    const limiter = this;
    // Method shorthand, not an arrow: every session keeps this object (docs/06 "Memory per session").
    return {
      ttlMs: auth.ttlMs,
      async check(creds: Credentials, opts: CheckOptions = {}): Promise<AuthOutcome> {
        if (opts.session_id !== undefined) return auth.check(creds, opts);
        // The device key is the claimed id, which need not exist: the map is capped all the same.
        const dev = creds.device_id;
        if (limiter.byAddress.blocked(addr) || limiter.byDevice.blocked(dev)) {
          limiter.refused++;
          return RATE_LIMITED;
        }
        const r = await auth.check(creds, opts);
        if (!r.ok && COUNTED.has(r.code)) {
          limiter.byAddress.fail(addr);
          limiter.byDevice.fail(dev);
        }
        return r;
      },
    };
  }
}
