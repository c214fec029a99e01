// The upkeep sweep as a database timer, like the retention sweep (retention/schedule.ts): one pending row in
// upkeep_runs, claimed with one conditional UPDATE that exactly one instance wins on SQLite and PostgreSQL
// alike, with a lease; a claim an earlier run of this relay left behind is taken back at start (claims.ts).
// A sweep recomputes every household's upkeep from the store (a test arriving or a new assessment moves its
// due date), keeps it in upkeep_items, raises one `upkeep_overdue` operator alert per item that went overdue
// (a conditional update on the item decides which instance raises it, so there is only ever one) and
// acknowledges that alert when the item is no longer overdue (the test arrived, the elder was re-assessed).
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { ulid } from "ulid";
import { ackOperatorAlert, raiseOperatorAlert } from "../alerts/operator-alerts.js";
import { ClaimedSweepRunner } from "../store/claimed-sweep-runner.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { loadLedgerFacts, upkeepFacts } from "./ledger.js";
import { day } from "./ledger-export.js";
import { describeUpkeep, upkeepItems, type UpkeepConfig, type UpkeepItem } from "./upkeep.js";
import { PENDING_UPKEEP, upkeepDb, type UpkeepDb, type UpkeepItemsTable, type UpkeepRunsTable } from "./upkeep-table.js";

/** The first sweep after the first start: not in the middle of the relay's own start. */
export const FIRST_UPKEEP_DELAY_MS = 60_000;
/** How often each instance looks whether the sweep is due. */
export const UPKEEP_CHECK_EVERY_MS = 60_000;
/** Who acknowledges an alert whose item is no longer overdue. */
export const UPKEEP_ACTOR = "system:upkeep";

function pendingRow(dueAt: number): UpkeepRunsTable {
  return { id: ulid(dueAt), pending_key: PENDING_UPKEEP, due_at: dueAt, claimed_by: null, claimed_until: null, started_at: null, finished_at: null, result: null, items: null, overdue: null, alerts: null, error: null };
}

/** Makes sure a sweep is scheduled; a second call, from any instance, adds nothing. */
export async function scheduleUpkeep(db: Kysely<UpkeepDb>, dueAt: number): Promise<void> {
  await db.insertInto("upkeep_runs").values(pendingRow(dueAt)).onConflict((oc) => oc.column("pending_key").doNothing()).execute();
}

export async function pendingUpkeep(db: Kysely<UpkeepDb>): Promise<UpkeepRunsTable | undefined> {
  return db.selectFrom("upkeep_runs").selectAll().where("pending_key", "=", PENDING_UPKEEP).executeTakeFirst();
}

/** Claims the pending sweep if it is due and unheld (or its lease ran out); undefined when another won. */
export async function claimUpkeep(db: Kysely<UpkeepDb>, owner: string, now: number, leaseMs: number): Promise<UpkeepRunsTable | undefined> {
  const r = await db
    .updateTable("upkeep_runs")
    .set({ claimed_by: owner, claimed_until: now + leaseMs, started_at: now })
    .where("pending_key", "=", PENDING_UPKEEP)
    .where("due_at", "<=", now)
    .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", now)]))
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) return undefined;
  return db.selectFrom("upkeep_runs").selectAll().where("pending_key", "=", PENDING_UPKEEP).where("claimed_by", "=", owner).executeTakeFirst();
}

/** Records the finished sweep and schedules the next, in one transaction; false if `owner` lost the claim. */
export async function finishUpkeep(
  db: Kysely<UpkeepDb>,
  id: string,
  owner: string,
  now: number,
  o: { result: "done" | "failed"; items: number; overdue: number; alerts: number; error?: string },
  nextDueAt: number,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable("upkeep_runs")
      .set({ pending_key: null, claimed_until: null, finished_at: now, result: o.result, items: o.items, overdue: o.overdue, alerts: o.alerts, error: o.error ?? null })
      .where("id", "=", id)
      .where("pending_key", "=", PENDING_UPKEEP)
      .where("claimed_by", "=", owner)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    await trx.insertInto("upkeep_runs").values(pendingRow(nextDueAt)).onConflict((oc) => oc.column("pending_key").doNothing()).execute();
    return true;
  });
}

/** Releases the pending sweep's claim held by an earlier run of this relay (it died mid-sweep). */
export async function releaseUpkeepClaims(db: Kysely<UpkeepDb>, isGone: (claimedBy: string) => boolean): Promise<string[]> {
  const row = await pendingUpkeep(db);
  if (!row?.claimed_by || row.claimed_until === null || !isGone(row.claimed_by)) return [];
  const r = await db
    .updateTable("upkeep_runs")
    .set({ claimed_until: null })
    .where("id", "=", row.id)
    .where("pending_key", "=", PENDING_UPKEEP)
    .where("claimed_by", "=", row.claimed_by)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1 ? [row.claimed_by] : [];
}

/** Makes the pending sweep due now (`anxin-relay ledger upkeep --run`); false if none is scheduled. */
export async function pullUpkeep(db: Kysely<UpkeepDb>, now: number): Promise<boolean> {
  const r = await db.updateTable("upkeep_runs").set({ due_at: now }).where("pending_key", "=", PENDING_UPKEEP).where("due_at", ">", now).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export interface UpkeepSweeperOptions {
  db: Kysely<LoopDb>;
  config: UpkeepConfig;
  /** `<relay.id>#<boot>` (daemon/claims.ts). */
  owner: string;
  isEarlierRun?: (claimedBy: string) => boolean;
  log: Logger;
  now?: () => number;
  checkEveryMs?: number;
}

export interface UpkeepReport {
  id: string;
  result: "done" | "failed";
  items: number;
  overdue: number;
  /** Alerts raised (items newly overdue). */
  alerts: number;
  /** Alerts acknowledged because their item is no longer overdue. */
  cleared: number;
  error?: string;
}

export class UpkeepSweeper extends ClaimedSweepRunner<UpkeepReport> {
  private readonly db: Kysely<UpkeepDb>;
  private readonly now: () => number;

  constructor(private readonly o: UpkeepSweeperOptions) {
    super({ name: "upkeep", disabledMessage: "upkeep sweep disabled: no overdue alerts (the ledger still shows due dates)", config: o.config, checkEveryMs: o.checkEveryMs ?? UPKEEP_CHECK_EVERY_MS, log: o.log });
    this.db = upkeepDb(o.db);
    this.now = o.now ?? Date.now;
  }

  protected schedule(): Promise<void> {
    return scheduleUpkeep(this.db, this.now() + FIRST_UPKEEP_DELAY_MS);
  }

  protected releaseEarlier(): Promise<string[]> {
    return this.o.isEarlierRun ? releaseUpkeepClaims(this.db, this.o.isEarlierRun) : Promise.resolve([]);
  }

  protected async claimAndSweep(): Promise<UpkeepReport | undefined> {
    const started = this.now();
    const run = await claimUpkeep(this.db, this.o.owner, started, this.o.config.leaseS * 1000);
    if (!run) return undefined;
    let report: Omit<UpkeepReport, "id" | "result" | "error"> = { items: 0, overdue: 0, alerts: 0, cleared: 0 };
    let error: string | undefined;
    try {
      report = await sweepUpkeep(this.db, this.o.config, started, this.o.log);
    } catch (e) {
      error = (e as Error).message.slice(0, 500);
    }
    const result = error ? "failed" : "done";
    const finishedAt = this.now();
    await finishUpkeep(this.db, run.id, this.o.owner, finishedAt, { result, ...report, ...(error ? { error } : {}) }, finishedAt + this.o.config.everyS * 1000);
    if (error) this.o.log.error({ run: run.id, err: error }, "upkeep sweep failed; retried at the next sweep");
    else this.o.log.info({ run: run.id, ...report }, "upkeep sweep finished");
    return { id: run.id, result, ...report, ...(error ? { error } : {}) };
  }
}

const itemId = (household: string, key: string) => `${household}/${key}`;

/**
 * One pass over every household: recompute, store, alert the newly overdue, acknowledge the cleared. Each
 * alert commits with the item change that decided it. Counts only in the result and logs.
 */
export async function sweepUpkeep(db: Kysely<UpkeepDb>, config: UpkeepConfig, now: number, log?: Logger): Promise<{ items: number; overdue: number; alerts: number; cleared: number }> {
  const homes = await loadLedgerFacts(db as unknown as Kysely<LoopDb>, {});
  const stored = new Map((await db.selectFrom("upkeep_items").selectAll().execute()).map((r) => [r.id, r]));
  const seen = new Set<string>();
  let items = 0;
  let overdue = 0;
  let alerts = 0;
  let cleared = 0;
  for (const h of homes) {
    for (const it of upkeepItems(upkeepFacts(h), config, now)) {
      const id = itemId(h.id, it.key);
      seen.add(id);
      items++;
      const before = stored.get(id);
      await upsertItem(db, id, h.id, h.hub, it, now);
      if (it.status === "overdue") {
        overdue++;
        if (await raiseOnce(db, id, h.id, h.hub, it, now)) {
          alerts++;
          log?.warn({ alert: "upkeep_overdue", hub: h.hub, what: it.what }, "operator alert");
        }
      } else if (before?.alert_id && (await clearAlert(db, before, now))) cleared++;
    }
  }
  // Items the plan no longer implies (a device gone from the report, a plan proposed again): dropped, and an
  // open alert about them acknowledged.
  for (const [id, r] of stored) {
    if (seen.has(id)) continue;
    if (r.alert_id && (await clearAlert(db, r, now))) cleared++;
    await db.deleteFrom("upkeep_items").where("id", "=", id).execute();
  }
  return { items, overdue, alerts, cleared };
}

async function upsertItem(db: Kysely<UpkeepDb>, id: string, household: string, hub: string, it: UpkeepItem, now: number): Promise<void> {
  const values = { since: it.since, due_at: it.dueAt, overdue_at: it.overdueAt, status: it.status, hub, updated_at: now };
  await db
    .insertInto("upkeep_items")
    .values({ id, household_id: household, item_key: it.key, what: it.what, device: it.device, kind: it.kind, alerted_due_at: null, alert_id: null, ...values })
    .onConflict((oc) => oc.column("id").doUpdateSet(values))
    .execute();
}

/**
 * Raises the item's overdue alert unless one was raised for this due date: the conditional update is the
 * decision, so two sweeps racing (a lease that ran out under a slow sweep) still raise one.
 */
async function raiseOnce(db: Kysely<UpkeepDb>, id: string, household: string, hub: string, it: UpkeepItem, now: number): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const won = await trx
      .updateTable("upkeep_items")
      .set({ alerted_due_at: it.dueAt })
      .where("id", "=", id)
      .where((eb) => eb.or([eb("alerted_due_at", "is", null), eb("alerted_due_at", "<>", it.dueAt)]))
      .executeTakeFirst();
    if (Number(won.numUpdatedRows) !== 1) return false;
    const alertId = await raiseOperatorAlert(trx as unknown as Kysely<LoopDb>, {
      kind: "upkeep_overdue",
      // Ids and dates only: the ledger (an audited read) has the rest.
      detail: `household ${household} (hub ${hub}): ${describeUpkeep(it)}, overdue since ${day(it.overdueAt)}; see anxin-relay ledger or GET /v1/ledger`,
      at: now,
      key: `${id}@${it.dueAt}`,
    });
    await trx.updateTable("upkeep_items").set({ alert_id: alertId }).where("id", "=", id).execute();
    return true;
  });
}

async function clearAlert(db: Kysely<UpkeepDb>, r: UpkeepItemsTable, now: number): Promise<boolean> {
  const acked = await ackOperatorAlert(db as unknown as Kysely<LoopDb>, r.alert_id as string, UPKEEP_ACTOR, now);
  await db.updateTable("upkeep_items").set({ alert_id: null }).where("id", "=", r.id).where("alert_id", "=", r.alert_id).execute();
  return acked;
}

/** Builds the sweeper for the daemon and starts it; stop() it with the relay. */
export async function startUpkeep(o: UpkeepSweeperOptions): Promise<UpkeepSweeper> {
  const s = new UpkeepSweeper(o);
  await s.start();
  return s;
}
