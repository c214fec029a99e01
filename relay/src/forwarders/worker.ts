// Delivers the outbox. Each row is claimed with one conditional UPDATE (it succeeds for exactly one
// instance on SQLite and PostgreSQL alike), so two relay instances never deliver the same row at the same
// time; the claim is a lease, so a crashed instance's rows come back by themselves.
import axios, { type AxiosInstance } from "axios";
import type { Kysely } from "kysely";
import { signedHeaders } from "../telephony/signature.js";
import type { BackoffConfig, ForwardDestination } from "./config.js";
import type { RelayDbHandle } from "../store/closed-loop-schema.js";
import type { ForwardDb, ForwardOutboxTable } from "./table.js";

/** What onDeadLetter receives. */
export interface ForwardItem {
  id: string;
  destination: string;
  idempotencyKey: string;
  payload: unknown;
  attempts: number;
  createdAt: number;
  lastError: string | null;
}

export interface ForwarderCounters {
  delivered: number;
  /** Failed tries that will be tried again. */
  retried: number;
  dead: number;
}

interface WorkerLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface ForwarderWorkerOptions {
  db: RelayDbHandle;
  destinations: ForwardDestination[];
  log: WorkerLog;
  /** Raise the operator alert. Retried on later runs until it resolves. */
  onDeadLetter(item: ForwardItem, reason: string): Promise<void>;
  now?: () => number;
  /** Names the claim owner; unique per relay instance (e.g. relay.id plus a random suffix). */
  instanceId: string;
  /** [0, 1); tests pass a constant to make the jitter predictable. */
  random?: () => number;
  /** Rows claimed per run; default 50. */
  batchSize?: number;
  /** Deliveries in flight at once per run; default 8. */
  concurrency?: number;
  /** Added to a destination's timeout for the claim's lease (forwarders.leaseMarginMs); default 60 s. */
  leaseMarginMs?: number;
  http?: AxiosInstance;
}

/** Delay before try `attempt + 1` after `attempt` failed tries (attempt ≥ 1). */
export function backoffDelay(b: BackoffConfig, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(b.maxMs, b.initialMs * b.factor ** Math.max(0, attempt - 1));
  return Math.max(0, Math.round(base * (1 - b.jitter + 2 * b.jitter * random())));
}

/**
 * Whether a stored payload says it carries free text (`"freeText": true` at its top level). Rows are built
 * per destination, so this only trips when a destination's freeText was turned off while rows written under
 * the old setting were still waiting: they are not sent.
 */
export function declaresFreeText(payload: string): boolean {
  try {
    const p = JSON.parse(payload) as { freeText?: unknown } | null;
    return typeof p === "object" && p !== null && p.freeText === true;
  } catch {
    return false;
  }
}

/** How long a dead row whose alert failed waits before the alert is tried again. */
export const DEAD_ALERT_RETRY_MS = 5000;

type Result = { kind: "delivered" } | { kind: "retry"; error: string } | { kind: "dead"; error: string };

export class ForwarderWorker {
  readonly counters: ForwarderCounters = { delivered: 0, retried: 0, dead: 0 };
  private readonly db: Kysely<ForwardDb>;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly byName: Map<string, ForwardDestination>;
  private readonly http: AxiosInstance;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = true;
  private pollMs = 1000;

  constructor(private readonly o: ForwarderWorkerOptions) {
    this.db = o.db as unknown as Kysely<ForwardDb>;
    this.now = o.now ?? Date.now;
    this.random = o.random ?? Math.random;
    this.byName = new Map(o.destinations.map((d) => [d.name, d]));
    this.http = o.http ?? axios.create();
  }

  /**
   * Claims the due rows and tries each once; also re-reports dead rows whose onDeadLetter failed before.
   * Resolves with the number of rows it tried. Concurrent calls share one run.
   */
  runDue(): Promise<number> {
    return (this.running ??= this.runOnce().finally(() => (this.running = undefined)));
  }

  /** Runs every `pollMs` (sooner while a full batch was due) until stop(). */
  start(pollMs: number): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.pollMs = pollMs;
    this.schedule(0);
  }

  /** A row was just enqueued: look now rather than at the next poll. */
  wake(): void {
    if (!this.stopped) this.schedule(0);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    let n = 0;
    try {
      n = await this.runDue();
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, "forwarder run failed");
    }
    if (!this.stopped) this.schedule(n >= (this.o.batchSize ?? 50) ? 0 : this.pollMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => {});
  }

  private async runOnce(): Promise<number> {
    const now = this.now();
    const limit = this.o.batchSize ?? 50;
    const due = await this.db
      .selectFrom("forward_outbox")
      .select(["id", "destination"])
      .where("state", "=", "pending")
      .where("next_attempt_at", "<=", now)
      .where("claimed_until", "<=", now)
      .orderBy("next_attempt_at")
      .limit(limit)
      .execute();
    const queue = [...due];
    let tried = 0;
    const workers = Array.from({ length: Math.min(this.o.concurrency ?? 8, queue.length) }, async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        const row = await this.claim(r.id, r.destination, "pending", now);
        if (!row) continue; // another instance has it
        tried++;
        await this.attempt(row);
      }
    });
    await Promise.all(workers);
    await this.reportDead(now, limit);
    return tried;
  }

  private async claim(id: string, destination: string, state: "pending" | "dead", runStart: number): Promise<ForwardOutboxTable | undefined> {
    const lease = (this.byName.get(destination)?.timeoutMs ?? 10_000) + (this.o.leaseMarginMs ?? 60_000);
    // The lease runs from the claim, not from the start of the run: a row claimed late in a long run (slow
    // receivers ahead of it) must still be ours for a whole lease, however short the margin is configured.
    const now = Math.max(runStart, this.now());
    return this.db
      .updateTable("forward_outbox")
      .set({ claimed_by: this.o.instanceId, claimed_until: now + lease })
      .where("id", "=", id)
      .where("state", "=", state)
      .where("claimed_until", "<=", now)
      .returningAll()
      .executeTakeFirst();
  }

  private async attempt(row: ForwardOutboxTable): Promise<void> {
    const dest = this.byName.get(row.destination);
    const attempts = row.attempts + 1;
    const result: Result = !dest
      ? { kind: "dead", error: `unknown destination "${row.destination}" (not configured on ${this.o.instanceId})` }
      : !dest.freeText && declaresFreeText(row.payload)
        ? { kind: "dead", error: `the update carries free text and "${row.destination}" may not receive it (forwarders.destinations[].freeText is not true here); not sent` }
        : await this.deliver(dest, row);
    const at = this.now();
    const mine = (q: ReturnType<typeof this.update>) => q.where("id", "=", row.id).where("claimed_by", "=", this.o.instanceId);
    const logCtx = { forward: row.id, destination: row.destination, attempts };
    if (result.kind === "delivered") {
      this.counters.delivered++;
      await mine(this.update({ state: "delivered", attempts, delivered_at: at, last_error: null, claimed_by: null, claimed_until: 0 })).execute();
      this.o.log.debug(logCtx, "forward delivered");
      return;
    }
    const max = dest?.maxAttempts ?? 1;
    if (result.kind === "retry" && attempts < max && dest) {
      this.counters.retried++;
      const next = at + backoffDelay(dest.backoff, attempts, this.random);
      await mine(this.update({ attempts, last_error: result.error, next_attempt_at: next, claimed_by: null, claimed_until: 0 })).execute();
      this.o.log.warn({ ...logCtx, error: result.error, retryInMs: next - at }, "forward failed; will retry");
      return;
    }
    this.counters.dead++;
    const reason = result.kind === "dead" ? result.error : `${result.error} (after ${attempts} attempts)`;
    // Keep the claim while reporting: no other instance reports the same dead row meanwhile.
    await mine(this.update({ state: "dead", attempts, last_error: reason })).execute();
    this.o.log.error({ ...logCtx, error: reason }, "forward dead");
    await this.notifyDead({ ...row, state: "dead", attempts, last_error: reason }, reason);
  }

  private update(values: Partial<ForwardOutboxTable>) {
    return this.db.updateTable("forward_outbox").set(values);
  }

  /** Dead rows whose alert did not go out (onDeadLetter threw, or the instance died before it ran). */
  private async reportDead(now: number, limit: number): Promise<void> {
    const rows = await this.db
      .selectFrom("forward_outbox")
      .select(["id", "destination"])
      .where("state", "=", "dead")
      .where("dead_reported_at", "is", null)
      .where("claimed_until", "<=", now)
      .limit(limit)
      .execute();
    for (const r of rows) {
      const row = await this.claim(r.id, r.destination, "dead", now);
      if (row) await this.notifyDead(row, row.last_error ?? "dead");
    }
  }

  private async notifyDead(row: ForwardOutboxTable, reason: string): Promise<void> {
    const item: ForwardItem = {
      id: row.id,
      destination: row.destination,
      idempotencyKey: row.idempotency_key,
      payload: JSON.parse(row.payload) as unknown,
      attempts: row.attempts,
      createdAt: row.created_at,
      lastError: row.last_error,
    };
    try {
      await this.o.onDeadLetter(item, reason);
      await this.update({ dead_reported_at: this.now(), claimed_by: null, claimed_until: 0 })
        .where("id", "=", row.id)
        .where("claimed_by", "=", this.o.instanceId)
        .execute();
    } catch (err) {
      // Left unreported: a run (here or on another instance) tries again a little later.
      this.o.log.error({ forward: row.id, err: (err as Error).message }, "dead-letter alert failed; will retry");
      await this.update({ claimed_by: null, claimed_until: this.now() + DEAD_ALERT_RETRY_MS })
        .where("id", "=", row.id)
        .where("claimed_by", "=", this.o.instanceId)
        .execute()
        .catch(() => {});
    }
  }

  private async deliver(dest: ForwardDestination, row: ForwardOutboxTable): Promise<Result> {
    const body = row.payload;
    try {
      const res = await this.http.post(dest.url, body, {
        headers: {
          "Content-Type": "application/json",
          "Idempotency-Key": row.idempotency_key,
          "User-Agent": "anxin-relay",
          ...signedHeaders(dest.secret, this.now(), body),
        },
        timeout: dest.timeoutMs,
        // The body goes out byte for byte as signed.
        transformRequest: [(d: unknown) => d],
        responseType: "text",
        maxRedirects: 0,
        maxContentLength: 64 * 1024,
        validateStatus: () => true,
      });
      const s = res.status;
      if (s >= 200 && s < 300) return { kind: "delivered" };
      const error = `HTTP ${s}`;
      // A 4xx says this request is wrong and will stay wrong, except "too slow" and "too many".
      if (s >= 400 && s < 500 && s !== 408 && s !== 429) return { kind: "dead", error };
      return { kind: "retry", error };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return { kind: "retry", error: e.code === "ECONNABORTED" || e.code === "ETIMEDOUT" ? `timeout after ${dest.timeoutMs} ms` : `network: ${e.code ?? e.message ?? "error"}` };
    }
  }
}
