// What both auth caches in front of the backend keep (DeviceAuth in auth.ts, AppAuth in
// apps/app-auth.ts): positive answers for a TTL in a bounded map, and one request in flight per
// question, its answer shared by everyone who asked meanwhile.

/** A TTL map with a size bound; the oldest entries go first. */
export class AnswerCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(private readonly ttlMs: number, private readonly maxEntries: number, private readonly now: () => number) {}

  /** The value while it is fresh; an expired one is dropped. */
  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V): void {
    this.entries.delete(key); // re-insert so Map order is insertion = age order
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
    if (this.entries.size <= this.maxEntries) return;
    const now = this.now();
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  get size(): number {
    return this.entries.size;
  }
}

/** One request in flight per key: who asks while it runs gets the same promise (and is no leader). */
export class Flights<V> {
  private readonly inflight = new Map<string, Promise<V>>();

  join(key: string, start: () => Promise<V>): { promise: Promise<V>; leader: boolean } {
    const existing = this.inflight.get(key);
    if (existing) return { promise: existing, leader: false };
    const promise = start().finally(() => this.inflight.delete(key));
    this.inflight.set(key, promise);
    return { promise, leader: true };
  }

  /**
   * For a new session: share the answer in flight, except with an answer the backend must give
   * each asker itself (`counted`: it counts sessions against max_sessions), which a follower
   * then asks for on its own.
   */
  async admit(key: string, start: () => Promise<V>, counted: (answer: V) => boolean): Promise<V> {
    const { promise, leader } = this.join(key, start);
    const r = await promise;
    return !leader && counted(r) ? start() : r;
  }
}

export interface CachedValidationOptions {
  ttlMs: number;
  /** Bound on cached answers; the oldest go first. */
  maxEntries?: number;
  now?: () => number;
}

/**
 * What both auth caches share: the backend call (counted, and `unavailable` instead of a throw),
 * the positive answers and the requests in flight. The subclass decides what is asked, what may
 * be answered from the cache, and under which keys an answer is kept.
 */
export abstract class CachedValidation<Req, Outcome extends { ok: boolean }> {
  readonly ttlMs: number;
  protected readonly cache: AnswerCache<Extract<Outcome, { ok: true }>>;
  protected readonly flights = new Flights<Outcome>();
  /** Requests actually sent to the backend: lets tests (and debugging) see the cache work. */
  backendCalls = 0;

  constructor(
    private readonly validate: (req: Req) => Promise<Outcome>,
    private readonly unavailable: Outcome,
    opts: CachedValidationOptions,
  ) {
    this.ttlMs = opts.ttlMs;
    this.cache = new AnswerCache(opts.ttlMs, opts.maxEntries ?? 10_000, opts.now ?? Date.now);
  }

  /** Cached answers. */
  get size(): number {
    return this.cache.size;
  }

  /** One request to the backend; never throws. */
  protected async ask(req: Req): Promise<Outcome> {
    this.backendCalls++;
    try {
      return await this.validate(req);
    } catch {
      return this.unavailable;
    }
  }
}
