// Operator alerts: what a duty operator must look at that no call tree will handle by itself — a telephony
// provider down, a forward that could not be delivered, nobody reached, a hub without a care plan.
// The same kind (and key) while unacknowledged is one row with a count, so an outage is one alert, not
// thousands. Details are written by the relay itself and never carry personal data.
import type { Kysely } from "kysely";
import { ulid } from "ulid";
import type { LoopDb } from "../store/closed-loop-schema.js";

export const ALERT_KINDS = [
  "telephony_down",
  "call_rejected",
  "forward_dead",
  "nobody_reached",
  "no_care_plan",
  "follow_up_due",
  "escalation_error",
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface RaiseAlert {
  kind: AlertKind;
  detail: string;
  at: number;
  incidentId?: string;
  /** Folds repeats: one open alert per kind+key. Default: the incident, or the kind alone. */
  key?: string;
}

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
}

/** Called for every alert raised (a metric, a log line without personal data). */
export type AlertObserver = (a: RaiseAlert) => void;

/** Adds an alert or counts a repeat of an open one. `db` may be a transaction. */
export async function raiseOperatorAlert(db: Kysely<LoopDb>, a: RaiseAlert): Promise<void> {
  const openKey = `${a.kind}/${a.key ?? a.incidentId ?? ""}`;
  await db
    .insertInto("operator_alerts")
    .values({ id: ulid(a.at), kind: a.kind, detail: a.detail, incident_id: a.incidentId ?? null, open_key: openKey, count: 1, first_at: a.at, last_at: a.at, acked_at: null, acked_by: null })
    .onConflict((oc) =>
      oc.column("open_key").doUpdateSet((eb) => ({ count: eb("operator_alerts.count", "+", 1), last_at: a.at, detail: a.detail })),
    )
    .execute();
}

export async function listOperatorAlerts(db: Kysely<LoopDb>, q: { openOnly?: boolean; limit?: number } = {}): Promise<OperatorAlert[]> {
  let query = db.selectFrom("operator_alerts").selectAll();
  if (q.openOnly) query = query.where("acked_at", "is", null);
  const rows = await query.orderBy("last_at", "desc").orderBy("id", "desc").limit(q.limit ?? 200).execute();
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    detail: r.detail,
    incidentId: r.incident_id,
    count: r.count,
    firstAt: r.first_at,
    lastAt: r.last_at,
    ackedAt: r.acked_at,
    ackedBy: r.acked_by,
  }));
}

/** Acknowledges an open alert; a later repeat of the same kind opens a new one. */
export async function ackOperatorAlert(db: Kysely<LoopDb>, id: string, by: string, at: number): Promise<boolean> {
  const r = await db.updateTable("operator_alerts").set({ acked_at: at, acked_by: by, open_key: null }).where("id", "=", id).where("acked_at", "is", null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
