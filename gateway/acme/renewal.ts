// When a certificate is renewed, and the timer that does it: at 2/3 of its lifetime or 30 days
// before it expires, whichever comes first (Let's Encrypt's advice for its 90-day certificates),
// never before half its lifetime (so a short-lived certificate is not renewed the moment it
// arrives), a little earlier by a random jitter (so gateways started together do not ask the CA
// together); a failed renewal is retried with exponential backoff.
import type { Logger } from "../../logging/logger.ts";
import type { CertificateInfo } from "../tls/certificate.ts";

const MINUTE = 60_000;
const DAY = 86_400_000;
/** Renew no later than this before expiry (unless that is before half the lifetime). */
const RENEW_BEFORE = 30 * DAY;
/** The first retry after a failure; it doubles per failure up to RETRY_MAX. */
const RETRY_FIRST = MINUTE;
/** Let's Encrypt allows 5 failed validations per name per hour: a retry every few hours stays clear of it. */
const RETRY_MAX = 6 * 60 * MINUTE;
/** setTimeout takes a signed 32-bit delay (~24.8 days); longer waits are chained. */
const TIMER_MAX = 2 ** 31 - 1;

/** The time (ms since the epoch) to renew a certificate valid from notBefore to notAfter. */
export function renewalTime(notBefore: Date, notAfter: Date, random: () => number = Math.random): number {
  const from = notBefore.getTime();
  const until = notAfter.getTime();
  const lifetime = Math.max(0, until - from);
  const at = Math.min(from + (lifetime * 2) / 3, Math.max(until - RENEW_BEFORE, from + lifetime / 2));
  return at - random() * (lifetime / 30);
}

/** How long to wait after the n-th failure in a row (n ≥ 1): doubling from a minute to six hours, with jitter. */
export function retryDelay(failures: number, random: () => number = Math.random): number {
  const full = Math.min(RETRY_FIRST * 2 ** Math.max(0, failures - 1), RETRY_MAX);
  return full / 2 + random() * (full / 2);
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: Timers = {
  set: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending renewal must not keep the process alive on its own (Node and Bun; Deno has no unref on timer ids).
    (t as { unref?: () => void }).unref?.();
    return t;
  },
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface RenewalOptions {
  /** Obtain and install a new certificate; its description plans the next renewal. */
  renew: () => Promise<CertificateInfo>;
  logger: Logger;
  now?: () => number;
  random?: () => number;
  timers?: Timers;
}

/** Keeps one renewal planned (or running) at a time until stop(). */
export class RenewalScheduler {
  private timer: unknown;
  private running: Promise<CertificateInfo> | undefined;
  private failures = 0;
  private stopped = false;
  /** When the next renewal is planned (ms since the epoch); undefined while one runs or after stop(). */
  nextAt: number | undefined;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly timers: Timers;

  constructor(private readonly opts: RenewalOptions) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.timers = opts.timers ?? realTimers;
  }

  /** Plan the renewal of the certificate in use; without one, renew now. */
  plan(current: CertificateInfo | undefined): void {
    if (!current) return void this.renewNow().catch(() => {}); // failures are logged and retried by run()
    this.at(renewalTime(current.notBefore, current.notAfter, this.random));
  }

  /** Renew now (joining a renewal already running); the next one is planned from the result. */
  renewNow(): Promise<CertificateInfo> {
    this.cancel();
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private async run(): Promise<CertificateInfo> {
    try {
      const info = await this.opts.renew();
      this.failures = 0;
      // A certificate already due (a CA handing out very short ones) waits a minute, not a loop.
      this.at(Math.max(renewalTime(info.notBefore, info.notAfter, this.random), this.now() + RETRY_FIRST));
      return info;
    } catch (e) {
      this.failures++;
      const delay = retryDelay(this.failures, this.random);
      this.opts.logger.warn("certificate renewal failed; retrying", {
        error: (e as Error).message,
        failures: this.failures,
        retry_in_s: Math.round(delay / 1000),
      });
      this.at(this.now() + delay);
      throw e;
    }
  }

  private at(when: number): void {
    this.cancel();
    if (this.stopped) return;
    this.nextAt = when;
    const wait = () => {
      const left = when - this.now();
      this.timer = left <= 0
        ? this.timers.set(() => void this.renewNow().catch(() => {}), 0)
        : this.timers.set(wait, Math.min(left, TIMER_MAX));
    };
    wait();
  }

  private cancel(): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    this.nextAt = undefined;
  }
}
