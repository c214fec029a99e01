// The retention sweep as a database timer: one pending row in retention_runs (table.ts), claimed with one
// conditional UPDATE that exactly one instance can win on SQLite and PostgreSQL alike, like an escalation
// timer (escalation/timers.ts). Claims are named `<relay.id>#<boot>` (daemon/claims.ts) and carry a lease the
// running sweep renews after every batch; a holder that died is replaced when its lease runs out, or at once
// when the same relay starts again (releaseSweepClaims).
import type { Kysely } from "kysely";
import { ulid } from "ulid";
import { PENDING_SWEEP, type RetentionDb, type RetentionRunsTable } from "./table.js";

export type SweepResult = "done" | "failed" | "interrupted";

/** Makes sure a sweep is scheduled (due at `dueAt` if none was); a second call, from any instance, adds nothing. */
export async function scheduleSweep(db: Kysely<RetentionDb>, dueAt: number): Promise<void> {
  await db
    .insertInto("retention_runs")
    .values(pendingRow(dueAt))
    .onConflict((oc) => oc.column("pending_key").doNothing())
    .execute();
}

function pendingRow(dueAt: number): RetentionRunsTable {
  return { id: ulid(dueAt), pending_key: PENDING_SWEEP, due_at: dueAt, claimed_by: null, claimed_until: null, started_at: null, finished_at: null, result: null, deleted: null, total: null, error: null };
}

/** The scheduled (or running) sweep, if any. */
export async function pendingSweep(db: Kysely<RetentionDb>): Promise<RetentionRunsTable | undefined> {
  return db.selectFrom("retention_runs").selectAll().where("pending_key", "=", PENDING_SWEEP).executeTakeFirst();
}

/**
 * Claims the pending sweep for `owner` until `now + leaseMs` if it is due and nobody holds it (or its lease
 * ran out). Resolves the claimed row, or undefined when there was nothing to claim or another won.
 */
export async function claimSweep(db: Kysely<RetentionDb>, owner: string, now: number, leaseMs: number): Promise<RetentionRunsTable | undefined> {
  const r = await db
    .updateTable("retention_runs")
    .set({ claimed_by: owner, claimed_until: now + leaseMs, started_at: now })
    .where("pending_key", "=", PENDING_SWEEP)
    .where("due_at", "<=", now)
    .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", now)]))
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) return undefined;
  return db.selectFrom("retention_runs").selectAll().where("pending_key", "=", PENDING_SWEEP).where("claimed_by", "=", owner).executeTakeFirst();
}

/** Extends a held claim; false if `owner` no longer holds it (its lease ran out and another took it). */
export async function renewSweep(db: Kysely<RetentionDb>, id: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
  const r = await db
    .updateTable("retention_runs")
    .set({ claimed_until: now + leaseMs })
    .where("id", "=", id)
    .where("pending_key", "=", PENDING_SWEEP)
    .where("claimed_by", "=", owner)
    .where("claimed_until", "is not", null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export interface SweepOutcome {
  result: SweepResult;
  deleted: Record<string, number>;
  error?: string;
}

/**
 * Records a finished sweep and schedules the next one at `nextDueAt`, in one transaction, so there is always
 * exactly one pending sweep. False (and nothing written) if `owner` no longer holds the claim.
 */
export async function finishSweep(db: Kysely<RetentionDb>, id: string, owner: string, now: number, outcome: SweepOutcome, nextDueAt: number): Promise<boolean> {
  const total = Object.values(outcome.deleted).reduce((a, b) => a + b, 0);
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable("retention_runs")
      .set({ pending_key: null, claimed_until: null, finished_at: now, result: outcome.result, deleted: JSON.stringify(outcome.deleted), total, error: outcome.error ?? null })
      .where("id", "=", id)
      .where("pending_key", "=", PENDING_SWEEP)
      .where("claimed_by", "=", owner)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    await trx.insertInto("retention_runs").values(pendingRow(nextDueAt)).onConflict((oc) => oc.column("pending_key").doNothing()).execute();
    return true;
  });
}

/**
 * Releases a claim on the pending sweep held by an owner `isGone` names (an earlier run of this relay that
 * died mid-sweep), so the sweep is taken up at once instead of after its lease.
 */
export async function releaseSweepClaims(db: Kysely<RetentionDb>, isGone: (claimedBy: string) => boolean): Promise<string[]> {
  const row = await pendingSweep(db);
  if (!row?.claimed_by || row.claimed_until === null || !isGone(row.claimed_by)) return [];
  const r = await db
    .updateTable("retention_runs")
    .set({ claimed_until: null })
    .where("id", "=", row.id)
    .where("pending_key", "=", PENDING_SWEEP)
    .where("claimed_by", "=", row.claimed_by)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1 ? [row.claimed_by] : [];
}

/** Makes the pending sweep due at `now` (the operator's `anxin-relay retention run`); false if none is scheduled. */
export async function pullSweep(db: Kysely<RetentionDb>, now: number): Promise<boolean> {
  const r = await db.updateTable("retention_runs").set({ due_at: now }).where("pending_key", "=", PENDING_SWEEP).where("due_at", ">", now).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export interface RetentionRun {
  id: string;
  claimedBy: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  result: SweepResult | null;
  deleted: Record<string, number>;
  total: number;
  error: string | null;
}

/** Finished sweeps, newest first. */
export async function listRuns(db: Kysely<RetentionDb>, limit = 20): Promise<RetentionRun[]> {
  const rows = await db.selectFrom("retention_runs").selectAll().where("pending_key", "is", null).orderBy("finished_at", "desc").orderBy("id", "desc").limit(limit).execute();
  return rows.map((r) => ({
    id: r.id,
    claimedBy: r.claimed_by,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    result: r.result as SweepResult | null,
    deleted: r.deleted ? (JSON.parse(r.deleted) as Record<string, number>) : {},
    total: Number(r.total ?? 0),
    error: r.error,
  }));
}
