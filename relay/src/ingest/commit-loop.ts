// Commits sealed batches one at a time, urgent ones first and each lane in batch order (batches.ts), so each
// hub's events of a lane are stored and acknowledged in the order they were accepted. A failed commit is not
// acknowledged (the events stay in the hubs' journals whatever happens to this process) and is retried with
// backoff, ahead of everything after it in its lane. Once closing, a failed commit is given up instead: those
// events come back when the hubs resend them.
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { Backlog } from "./backlog.js";
import type { Batch, BatchCollector } from "./batches.js";
import type { Stored } from "./transaction.js";

export const RETRY_FIRST_MS = 100;
export const RETRY_MAX_MS = 5_000;

export interface CommitSteps {
  /** The transaction; throws if it failed. */
  store(batch: Batch): Promise<Stored>;
  /** Acks, callbacks and metrics once committed. */
  afterCommit(batch: Batch, stored: Stored, commitSeconds: number): void;
}

export class CommitLoop {
  private inflight: Batch | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_FIRST_MS;
  private failures = 0;
  private closing = false;
  private doneWaiters: Array<{ no: number; resolve: () => void }> = [];

  constructor(
    private readonly batches: BatchCollector,
    private readonly steps: CommitSteps,
    private readonly backlog: Backlog,
    private readonly log: Logger,
  ) {}

  /** Starts the next commit if one is due and none is in flight (or waiting to be retried). */
  pump(): void {
    if (this.inflight || this.retryTimer) return;
    const batch = this.batches.takeDue();
    if (!batch) return;
    this.inflight = batch;
    void this.commit(batch).then((ok) => this.committed(batch, ok));
  }

  /** Resolves once every batch numbered ≤ `no` is committed (or given up while closing). */
  async done(no: number): Promise<void> {
    if (this.batches.settledUpTo(no)) return;
    await new Promise<void>((resolve) => this.doneWaiters.push({ no, resolve }));
  }

  /** From now on a failed commit is given up, not retried; a retry waiting for its time goes now. */
  close(): void {
    this.closing = true;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
  }

  private committed(batch: Batch, ok: boolean): void {
    this.inflight = null;
    if (ok) {
      this.finished(batch);
    } else if (this.closing) {
      this.backlog.release(batch.items.length);
      this.log.warn({ events: batch.items.length }, "ingest: closing with a failed commit; those events stay unacked and will be resent");
      this.finished(batch);
    } else {
      this.batches.putBack(batch);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.pump();
      }, this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    }
    // The next commit starts on a later turn of the event loop, not in this one's microtasks: a SQLite commit
    // settles as a microtask, so back-to-back commits would otherwise hold one turn for as long as batches
    // keep coming, and the broker would accept one connection per turn (a reconnect storm then waits on
    // TCP's retry delays for the hubs' logins).
    setImmediate(() => this.pump());
  }

  private finished(batch: Batch): void {
    this.batches.settle(batch);
    this.doneWaiters = this.doneWaiters.filter((w) => {
      if (!this.batches.settledUpTo(w.no)) return true;
      w.resolve();
      return false;
    });
  }

  /** True once committed (acks and callbacks done); false if the transaction failed. Never throws. */
  private async commit(batch: Batch): Promise<boolean> {
    const t0 = performance.now();
    let stored: Stored;
    try {
      stored = await this.steps.store(batch);
    } catch (err) {
      this.failures++;
      this.log.error(
        { err, events: batch.items.length, backlog: this.backlog.size, attempt: this.failures, retryInMs: this.closing ? null : this.retryDelay },
        "ingest: batch commit failed; not acknowledged, will retry",
      );
      return false;
    }
    if (this.failures > 0) this.log.warn({ afterFailures: this.failures }, "ingest: commits succeed again");
    this.failures = 0;
    this.retryDelay = RETRY_FIRST_MS;
    this.backlog.release(batch.items.length);
    try {
      this.steps.afterCommit(batch, stored, (performance.now() - t0) / 1000);
    } catch (err) {
      // Committed is committed: an error here must not send the batch round again.
      this.log.error({ err }, "ingest: internal error after commit");
    }
    return true;
  }
}
