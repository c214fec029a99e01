// Operator alerts: what a duty operator must look at that no call tree will handle by itself — a telephony
// provider down, a forward that could not be delivered, nobody reached, a hub without a care plan.
// The same kind (and key) while unacknowledged is one row with a count, so an outage is one alert, not
// thousands. Details are written by the relay itself and never carry personal data.
//
// An alert can name the call attempts it is about (`attempts`): telephony_down lists every call that could
// not be placed while the provider was down, with its incident, hub and the contact's role and care-plan
// id, so the duty operator knows whom to call by hand. The numbers themselves are not in the alert: they
// come from the current care plans through revealAlertCalls, an audited care-plan read like any other.
import type { Kysely, Migration } from "kysely";
import { ulid } from "ulid";
import { pooledRandom } from "../../../lib/ids/pooled-random.js";
import { CarePlanError, readCarePlan } from "../careplans/store.js";
import { numberFor } from "../escalation/plan.js";
import type { LoopDb } from "../store/closed-loop-schema.js";

export const ALERT_KINDS = [
  "telephony_down",
  "call_rejected",
  "forward_dead",
  "nobody_reached",
  "no_care_plan",
  "follow_up_due",
  "escalation_error",
  "new_evidence",
  "arrival_unconfirmed",
  // A household's upkeep (monthly self-test, battery, yearly re-assessment) past due (households/upkeep-sweep.ts).
  "upkeep_overdue",
  // A hub refused to retire a device whose consent was withdrawn (households/retirement-outcomes.ts).
  "device_retire_refused",
  // An alarm came by SMS from a hub whose MQTT session is down: its home's broadband is probably out, though
  // the home is not silent (supervision/primary-path.ts). Once per outage.
  "primary_path_down",
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface RaiseAlert {
  kind: AlertKind;
  detail: string;
  at: number;
  incidentId?: string;
  /** Folds repeats: one open alert per kind+key. Default: the incident, or the kind alone. */
  key?: string;
  /** Call attempts (call_attempts ids) this raise is about; listed with the alert, repeats folded in. */
  attempts?: string[];
}

/** One call an alert names (no number: see revealAlertCalls). */
export interface AlertCall {
  attemptId: string;
  incidentId: string;
  hub: string | null;
  /** The incident's state and escalation now: a call for a closed or acknowledged incident is no longer needed. */
  incidentState: string | null;
  escalation: string | null;
  /** elder, onsite_team or a contact role. */
  role: string;
  /** The contact's care-plan id (elder, onsite_team for those two). */
  target: string;
  channel: string;
  step: number;
  round: number;
  /** The attempt's status now (unavailable, unless a later callback changed it). */
  status: string;
  /** When the alert was raised for it. */
  at: number;
}

/** An AlertCall with the number to dial by hand, from the hub's current care plan. */
export interface AlertCallWithNumber extends AlertCall {
  /** null when the incident is closed (nothing to call for), or the care plan has no such contact any more. */
  number: string | null;
  /** Why there is no number, when there is none. */
  note?: string;
}

/** The link from an alert to the call attempts it names. */
export interface OperatorAlertCallsTable {
  alert_id: string;
  attempt_id: string;
  at: number;
}

type AlertDb = LoopDb & { operator_alert_calls: OperatorAlertCallsTable };

export const alertMigrations: Record<string, Migration> = {
  "0110_operator_alert_calls": {
    async up(db): Promise<void> {
      await db.schema
        .createTable("operator_alert_calls")
        .ifNotExists()
        .addColumn("alert_id", "text", (c) => c.notNull())
        .addColumn("attempt_id", "text", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("operator_alert_calls_pk", ["alert_id", "attempt_id"])
        .execute();
    },
  },
};

export interface OperatorAlert {
  id: string;
  kind: string;
  detail: string;
  incidentId: string | null;
  count: number;
  firstAt: number;
  lastAt: number;
  ackedAt: number | null;
  ackedBy: string | null;
  /** How many calls it names (telephony_down: the calls not placed). */
  callCount: number;
  /** The calls it names, oldest first (in a listing, at most LISTED_CALLS of them). */
  calls: AlertCall[];
}

/** Calls shown per alert in a listing; GET /v1/alerts/{id} has them all. */
export const LISTED_CALLS = 50;

/** Called for every alert raised (a metric, a log line without personal data). */
export type AlertObserver = (a: RaiseAlert) => void;

/** Adds an alert or counts a repeat of an open one, and links the attempts it names. `db` may be a transaction. Resolves with the alert's id. */
export async function raiseOperatorAlert(db: Kysely<LoopDb>, a: RaiseAlert): Promise<string> {
  const openKey = `${a.kind}/${a.key ?? a.incidentId ?? ""}`;
  const row = await db
    .insertInto("operator_alerts")
    .values({ id: ulid(a.at, pooledRandom), kind: a.kind, detail: a.detail, incident_id: a.incidentId ?? null, open_key: openKey, count: 1, first_at: a.at, last_at: a.at, acked_at: null, acked_by: null })
    .onConflict((oc) =>
      oc.column("open_key").doUpdateSet((eb) => ({ count: eb("operator_alerts.count", "+", 1), last_at: a.at, detail: a.detail })),
    )
    .returning("id")
    .executeTakeFirstOrThrow();
  if (a.attempts?.length)
    await (db as unknown as Kysely<AlertDb>)
      .insertInto("operator_alert_calls")
      .values(a.attempts.map((attempt_id) => ({ alert_id: row.id, attempt_id, at: a.at })))
      .onConflict((oc) => oc.columns(["alert_id", "attempt_id"]).doNothing())
      .execute();
  return row.id;
}

/** The calls each alert names, oldest first, `limit` per alert at most; with the count of all. */
async function callsOf(db: Kysely<LoopDb>, alertIds: string[], limit = Infinity): Promise<Map<string, { count: number; calls: AlertCall[] }>> {
  const out = new Map<string, { count: number; calls: AlertCall[] }>();
  if (alertIds.length === 0) return out;
  const rows = await (db as unknown as Kysely<AlertDb>)
    .selectFrom("operator_alert_calls as l")
    .innerJoin("call_attempts as c", "c.id", "l.attempt_id")
    .leftJoin("incidents as i", "i.id", "c.incident_id")
    .select(["l.alert_id", "l.at", "c.id as attemptId", "c.incident_id", "c.role", "c.target", "c.channel", "c.step", "c.round", "c.status", "i.hub", "i.state", "i.escalation"])
    .where("l.alert_id", "in", alertIds)
    .orderBy("l.alert_id")
    .orderBy("l.at")
    .orderBy("l.attempt_id")
    .execute();
  for (const r of rows) {
    let e = out.get(r.alert_id);
    if (!e) out.set(r.alert_id, (e = { count: 0, calls: [] }));
    e.count++;
    if (e.calls.length < limit)
      e.calls.push({
        attemptId: r.attemptId,
        incidentId: r.incident_id,
        hub: r.hub,
        incidentState: r.state,
        escalation: r.escalation,
        role: r.role,
        target: r.target,
        channel: r.channel,
        step: r.step,
        round: r.round,
        status: r.status,
        at: r.at,
      });
  }
  return out;
}

function toAlert(r: LoopDb["operator_alerts"], calls: { count: number; calls: AlertCall[] } | undefined): OperatorAlert {
  return {
    id: r.id,
    kind: r.kind,
    detail: r.detail,
    incidentId: r.incident_id,
    count: r.count,
    firstAt: r.first_at,
    lastAt: r.last_at,
    ackedAt: r.acked_at,
    ackedBy: r.acked_by,
    callCount: calls?.count ?? 0,
    calls: calls?.calls ?? [],
  };
}

export async function listOperatorAlerts(db: Kysely<LoopDb>, q: { openOnly?: boolean; limit?: number } = {}): Promise<OperatorAlert[]> {
  let query = db.selectFrom("operator_alerts").selectAll();
  if (q.openOnly) query = query.where("acked_at", "is", null);
  const rows = await query.orderBy("last_at", "desc").orderBy("id", "desc").limit(q.limit ?? 200).execute();
  const calls = await callsOf(
    db,
    rows.map((r) => r.id),
    LISTED_CALLS,
  );
  return rows.map((r) => toAlert(r, calls.get(r.id)));
}

/** One alert with every call it names; undefined if unknown. */
export async function getOperatorAlert(db: Kysely<LoopDb>, id: string): Promise<OperatorAlert | undefined> {
  const r = await db.selectFrom("operator_alerts").selectAll().where("id", "=", id).executeTakeFirst();
  return r ? toAlert(r, (await callsOf(db, [id])).get(id)) : undefined;
}

/**
 * The calls an alert names with the numbers to dial by hand, from each hub's current care plan (a number
 * corrected since is the one given). Each hub's plan is read through readCarePlan, so every reveal is in
 * the audit log like any care-plan read: `careplan.read` by `by.actor` with the purpose `alert <id>: call by
 * hand`. Calls of closed incidents get no number (and cost no read). Undefined if there is no such alert.
 */
/**
 * The alert's calls with the numbers to dial. `reaches` narrows them to the homes the caller may see (a
 * street-limited operator): the others are left out before any care plan is read.
 */
export async function revealAlertCalls(
  db: Kysely<LoopDb>,
  id: string,
  by: { actor: string; at: number },
  reaches?: (alert: OperatorAlert) => Promise<OperatorAlert>,
): Promise<AlertCallWithNumber[] | undefined> {
  const found = await getOperatorAlert(db, id);
  if (!found) return undefined;
  const alert = reaches ? await reaches(found) : found;
  const open = alert.calls.filter((c) => c.hub !== null && c.incidentState !== "closed");
  const plans = new Map<string, Awaited<ReturnType<typeof readCarePlan>> | CarePlanError>();
  for (const hub of new Set(open.map((c) => c.hub as string))) {
    try {
      plans.set(hub, await readCarePlan(db, hub, { actor: by.actor, purpose: `alert ${id}: call by hand`, at: by.at }));
    } catch (e) {
      if (!(e instanceof CarePlanError)) throw e;
      plans.set(hub, e);
    }
  }
  return alert.calls.map((c): AlertCallWithNumber => {
    if (c.hub === null || c.incidentState === "closed") return { ...c, number: null, note: "the incident is closed" };
    const plan = plans.get(c.hub);
    if (plan instanceof CarePlanError) return { ...c, number: null, note: "the hub's stored care plan is no longer valid; set it again" };
    if (!plan) return { ...c, number: null, note: "the hub has no care plan" };
    const number = numberFor(plan.plan, c.target) ?? null;
    return number ? { ...c, number } : { ...c, number: null, note: `no ${c.target} in the hub's care plan any more` };
  });
}

/** Acknowledges an open alert; a later repeat of the same kind opens a new one. */
export async function ackOperatorAlert(db: Kysely<LoopDb>, id: string, by: string, at: number): Promise<boolean> {
  const r = await db.updateTable("operator_alerts").set({ acked_at: at, acked_by: by, open_key: null }).where("id", "=", id).where("acked_at", "is", null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
