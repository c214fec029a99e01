// Runs the retention sweep when its database timer falls due: claim it (one instance at a time across the
// store), run every rule in bounded batches (each its own short statement or transaction, the claim renewed
// after each), count what went, record the run and schedule the next. Counts only: no row's contents reach
// a log line, a metric or the run record.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import { ClaimedSweepRunner } from "../store/claimed-sweep-runner.js";
import type { RelayDbHandle } from "../store/closed-loop-schema.js";
import type { RetentionConfig } from "./config.js";
import { DAY_MS, keepsForever, retentionRules, type RetentionRule } from "./rules.js";
import { claimSweep, finishSweep, releaseSweepClaims, renewSweep, scheduleSweep, type SweepResult } from "./schedule.js";
import { retentionDb, type RetentionDb } from "./table.js";

/** How long after the first start the first sweep falls due: not in the middle of the relay's own start. */
export const FIRST_SWEEP_DELAY_MS = 60_000;
/** How often each instance looks whether the sweep is due: one cheap conditional UPDATE. */
export const CHECK_EVERY_MS = 60_000;

export interface RetentionSweeperOptions {
  db: RelayDbHandle;
  config: RetentionConfig;
  /** This instance's claim owner, `<relay.id>#<boot>` (daemon/claims.ts). */
  owner: string;
  /** Claims of the pending sweep this names as gone (an earlier run of this relay) are taken back at start. */
  isEarlierRun?: (claimedBy: string) => boolean;
  log: Logger;
  now?: () => number;
  /** Rows deleted, by kind (`anxin_relay_retention_deleted_total`). */
  deletedCounter?: Counter<"kind">;
  /** Sweeps run here, by result (`anxin_relay_retention_sweeps_total`). */
  sweepsCounter?: Counter<"result">;
  /** A pause between batches, so on SQLite the relay's one thread serves ingest in between. Default 10 ms. */
  pauseMs?: number;
  checkEveryMs?: number;
  /** Replaces the rules (tests). */
  rules?: RetentionRule[];
}

export interface SweepReport {
  id: string;
  result: SweepResult;
  deleted: Record<string, number>;
  total: number;
  batches: number;
  error?: string;
}

class LostClaim extends Error {}

export class RetentionSweeper extends ClaimedSweepRunner<SweepReport> {
  private readonly db: Kysely<RetentionDb>;
  private readonly now: () => number;
  private readonly rules: RetentionRule[];

  constructor(private readonly o: RetentionSweeperOptions) {
    super({ name: "retention", disabledMessage: "retention disabled: nothing is deleted", config: o.config, checkEveryMs: o.checkEveryMs ?? CHECK_EVERY_MS, log: o.log });
    this.db = retentionDb(o.db);
    this.now = o.now ?? Date.now;
    this.rules = o.rules ?? retentionRules(o.config);
  }

  protected schedule(): Promise<void> {
    return scheduleSweep(this.db, this.now() + FIRST_SWEEP_DELAY_MS);
  }

  protected releaseEarlier(): Promise<string[]> {
    return this.o.isEarlierRun ? releaseSweepClaims(this.db, this.o.isEarlierRun) : Promise.resolve([]);
  }

  /** A sweep a stop() interrupts ends after its current batch and is recorded as interrupted. */
  protected async claimAndSweep(): Promise<SweepReport | undefined> {
    const leaseMs = this.o.config.leaseS * 1000;
    const started = this.now();
    const run = await claimSweep(this.db, this.o.owner, started, leaseMs);
    if (!run) return undefined;

    const deleted: Record<string, number> = {};
    let batches = 0;
    let result: SweepResult = "done";
    let error: string | undefined;
    try {
      for (const rule of this.rules) {
        if (keepsForever(rule.days)) continue;
        // One cut for the whole sweep: ages are measured from when it started.
        const cut = started - (rule.days as number) * DAY_MS;
        for (;;) {
          if (this.stopping) {
            result = "interrupted";
            break;
          }
          const b = await rule.batch(this.db, cut, this.o.config.batchSize);
          batches++;
          for (const [kind, count] of Object.entries(b.deleted)) {
            if (count === 0) continue;
            deleted[kind] = (deleted[kind] ?? 0) + count;
            this.o.deletedCounter?.inc({ kind }, count);
          }
          if (!(await renewSweep(this.db, run.id, this.o.owner, this.now(), leaseMs))) throw new LostClaim();
          if (!b.more) break;
          await pause(this.o.pauseMs ?? 10);
        }
        if (result === "interrupted") break;
      }
    } catch (e) {
      if (e instanceof LostClaim) {
        // Another instance took the sweep over after our lease ran out; it records the run, not us.
        const total = sum(deleted);
        this.o.log.warn({ run: run.id, deleted, total }, "retention sweep lost its claim to another instance; stopped");
        this.o.sweepsCounter?.inc({ result: "lost" });
        return { id: run.id, result: "interrupted", deleted, total, batches };
      }
      result = "failed";
      error = (e as Error).message.slice(0, 500);
    }

    const finishedAt = this.now();
    // An interrupted sweep (a stop) is due again at once, for whichever instance is still running.
    const next = result === "interrupted" ? finishedAt : finishedAt + this.o.config.everyS * 1000;
    const total = sum(deleted);
    const recorded = await finishSweep(this.db, run.id, this.o.owner, finishedAt, { result, deleted, ...(error ? { error } : {}) }, next);
    this.o.sweepsCounter?.inc({ result });
    const ctx = { run: run.id, result, deleted, total, batches, ms: finishedAt - started, ...(recorded ? {} : { recorded: false }) };
    if (result === "failed") this.o.log.error({ ...ctx, err: error }, "retention sweep failed; retried at the next sweep");
    else this.o.log.info(ctx, "retention sweep finished");
    return { id: run.id, result, deleted, total, batches, ...(error ? { error } : {}) };
  }
}

function sum(d: Record<string, number>): number {
  return Object.values(d).reduce((a, b) => a + b, 0);
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
}
