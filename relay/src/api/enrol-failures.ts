// @fastify/rate-limit's store for the enrolment limit: it counts failed enrolments per client key in fixed
// windows that start at the first failure. The plugin keys, reads and answers; this store only counts, on the
// relay's clock (tests move it), and stays bounded under a flood from many addresses.
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from "@fastify/rate-limit";

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

const MAX_KEYS = 100_000;

export function failureStore(now: () => number): FastifyRateLimitStoreCtor {
  return class FailureStore implements FastifyRateLimitStore {
    private readonly seen = new Map<string, { count: number; until: number }>();

    /** Counts one failure. */
    incr(key: string, cb: Callback, timeWindow: number): void {
      const t = now();
      let e = this.seen.get(key);
      if (!e || e.until <= t) {
        if (this.seen.size >= MAX_KEYS) this.prune(t);
        this.seen.set(key, (e = { count: 0, until: t + timeWindow }));
      }
      e.count++;
      cb(null, { current: e.count, ttl: e.until - t });
    }

    /** The failures so far in the key's window, without counting. */
    read(key: string, cb: Callback): void {
      const t = now();
      const e = this.seen.get(key);
      cb(null, !e || e.until <= t ? { current: 0, ttl: 0 } : { current: e.count, ttl: e.until - t });
    }

    child(): FastifyRateLimitStore {
      return new FailureStore();
    }

    private prune(t: number): void {
      for (const [k, v] of this.seen) if (v.until <= t) this.seen.delete(k);
      // Still full (a flood from many addresses): forget the oldest half rather than grow without bound.
      if (this.seen.size >= MAX_KEYS) [...this.seen.keys()].slice(0, MAX_KEYS / 2).forEach((k) => this.seen.delete(k));
    }
  };
}
