// Reads of hub rows by id, many answered by one query. After an outage every hub of a district logs in and
// sends at once, and each needs its row (its password hash, its signing key) before anything else happens. One
// query per hub queued thousands deep on PostgreSQL's small pool, past its wait, and events were refused as
// `key_unavailable` (docs/benchmarks.md). Here the ids asked for while a query runs go together in the next one,
// so the batch grows with the load and at most one query is out at a time.
//
// A read asked for now is answered by a query that starts after it was asked for, never by one already under
// way: a change made just before (a revocation, a new key) is always seen.

interface Waiter<V> {
  resolve(v: V | undefined): void;
  reject(err: unknown): void;
}

/** Largest number of ids in one query (PostgreSQL's bind parameters and SQLite's variables stay far below their limits). */
export const MAX_IDS_PER_READ = 500;

export class BatchedReads<V> {
  private waiting = new Map<string, Waiter<V>[]>();
  private running = false;

  /** `read` answers a set of ids with the rows it found; an id without a row is answered with undefined. */
  constructor(
    private readonly read: (ids: string[]) => Promise<Map<string, V>>,
    private readonly maxIds = MAX_IDS_PER_READ,
  ) {}

  get(id: string): Promise<V | undefined> {
    return new Promise<V | undefined>((resolve, reject) => {
      const list = this.waiting.get(id);
      if (list) list.push({ resolve, reject });
      else this.waiting.set(id, [{ resolve, reject }]);
      if (!this.running) {
        this.running = true;
        // After this turn: the other messages read from the same socket chunk join the first query.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.size > 0) {
        const batch = new Map<string, Waiter<V>[]>();
        for (const [id, list] of this.waiting) {
          if (batch.size >= this.maxIds) break;
          batch.set(id, list);
        }
        for (const id of batch.keys()) this.waiting.delete(id);
        try {
          const rows = await this.read([...batch.keys()]);
          for (const [id, list] of batch) for (const w of list) w.resolve(rows.get(id));
        } catch (err) {
          for (const list of batch.values()) for (const w of list) w.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
