// Escalation timers live in the database, so a restart (or another instance) picks up every incident where
// it stood. A timer is claimed with one conditional UPDATE — it succeeds only while the timer is pending and
// unclaimed (or its lease ran out) — which exactly one instance can win on SQLite and PostgreSQL alike.
import type { Kysely } from "kysely";
import type { EscalationTimersTable, LoopDb } from "../store/closed-loop-schema.js";

export type TimerKind = "step" | "end" | "follow_up" | "arrival" | "arrival_end";
export type TimerRow = EscalationTimersTable & {
  /**
   * Set by claimDue when the timer was taken over from an earlier run of this relay that died holding it
   * (released at start by releaseTimerClaims): nothing of that run is still in flight, so a call it had
   * requested but never saw accepted is placed again at once (same attempt id) instead of being presumed
   * under way.
   */
  recovered?: boolean;
};

export const stepTimerId = (incident: string, step: number, round: number) => `${incident}:${step}:${round}`;

/** Adds a timer; the same id twice (a retried transaction, a second instance) is a no-op. */
export interface NewTimer {
  id: string;
  incidentId: string;
  kind: TimerKind;
  step: number;
  round: number;
  dueAt: number;
}

export function addTimer(db: Kysely<LoopDb>, t: NewTimer): Promise<void> {
  return addTimers(db, [t]);
}

/** Several timers in one statement; one that exists already (the same id) is left as it is. */
export async function addTimers(db: Kysely<LoopDb>, list: readonly NewTimer[]): Promise<void> {
  if (list.length === 0) return;
  await db
    .insertInto("escalation_timers")
    .values(list.map((t) => ({ id: t.id, incident_id: t.incidentId, kind: t.kind, step: t.step, round: t.round, due_at: t.dueAt, claimed_by: null, claimed_until: null, done_at: null, result: null })))
    .onConflict((oc) => oc.column("id").doNothing())
    .execute();
}

/**
 * Claims up to `limit` due timers for `owner` until `now + leaseMs`, in one conditional UPDATE over the
 * candidates: one statement, so one fsync on SQLite (one per timer was most of the escalation's time in a
 * burst of alarms) and, on PostgreSQL, row locks held only while it runs, so two instances never wait on
 * each other's pass. Each row's condition is checked again as it is updated: a timer another instance
 * claimed meanwhile is simply not returned.
 */
export async function claimDue(db: Kysely<LoopDb>, owner: string, now: number, leaseMs: number, limit: number): Promise<TimerRow[]> {
  const candidates = await db
    .selectFrom("escalation_timers")
    .selectAll()
    .where("done_at", "is", null)
    .where("due_at", "<=", now)
    .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", now)]))
    .orderBy("due_at")
    .orderBy("id")
    .limit(limit)
    .execute();
  if (candidates.length === 0) return [];
  const won = await db
    .updateTable("escalation_timers")
    .set({ claimed_by: owner, claimed_until: now + leaseMs })
    .where("id", "in", candidates.map((c) => c.id))
    .where("done_at", "is", null)
    .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", now)]))
    .returning("id")
    .execute();
  const ours = new Set(won.map((r) => r.id));
  // In due order; a released claim keeps its old owner with no lease (releaseTimerClaims): that owner is gone.
  return candidates
    .filter((c) => ours.has(c.id))
    .map((c) => ({ ...c, claimed_by: owner, claimed_until: now + leaseMs, ...(c.claimed_by !== null && c.claimed_until === null ? { recovered: true } : {}) }));
}

/**
 * Releases the claims held by owners that `isGone` names (an earlier run of this relay, which died holding
 * them): their lease is dropped, the old owner kept, so the next claimDue of any instance takes them at once
 * and knows they were recovered. Claims of other owners are untouched until their lease runs out.
 */
export async function releaseTimerClaims(db: Kysely<LoopDb>, isGone: (claimedBy: string) => boolean): Promise<{ released: number; owners: string[] }> {
  const held = await db.selectFrom("escalation_timers").select("claimed_by").distinct().where("done_at", "is", null).where("claimed_by", "is not", null).execute();
  const owners = held.map((r) => r.claimed_by as string).filter(isGone);
  if (owners.length === 0) return { released: 0, owners };
  const r = await db
    .updateTable("escalation_timers")
    .set({ claimed_until: null })
    .where("done_at", "is", null)
    .where("claimed_by", "in", owners)
    .where("claimed_until", "is not", null)
    .executeTakeFirst();
  return { released: Number(r.numUpdatedRows), owners };
}

/** Marks a claimed timer done; false if this owner no longer holds it (its lease ran out and another took it). */
export async function finishTimer(db: Kysely<LoopDb>, id: string, owner: string, at: number, result: "ran" | "skipped"): Promise<boolean> {
  const r = await db.updateTable("escalation_timers").set({ done_at: at, result }).where("id", "=", id).where("claimed_by", "=", owner).where("done_at", "is", null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Cancels an incident's pending timers (all, or of the given kinds). */
export async function cancelTimers(db: Kysely<LoopDb>, incidentId: string, at: number, kinds?: TimerKind[]): Promise<number> {
  let q = db.updateTable("escalation_timers").set({ done_at: at, result: "cancelled" }).where("incident_id", "=", incidentId).where("done_at", "is", null);
  if (kinds) q = q.where("kind", "in", kinds);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** Brings a pending timer forward to `at` (the step it waits on has already run its course). */
export async function pullTimer(db: Kysely<LoopDb>, id: string, at: number): Promise<boolean> {
  const r = await db.updateTable("escalation_timers").set({ due_at: at }).where("id", "=", id).where("done_at", "is", null).where("due_at", ">", at).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function pendingTimers(db: Kysely<LoopDb>, incidentId?: string): Promise<TimerRow[]> {
  let q = db.selectFrom("escalation_timers").selectAll().where("done_at", "is", null);
  if (incidentId !== undefined) q = q.where("incident_id", "=", incidentId);
  return q.orderBy("due_at").execute();
}
