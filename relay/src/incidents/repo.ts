// Incidents and their timeline in the store. Every state change is one conditional UPDATE on (id, state),
// so two operators (or two relay instances) acting at once cannot both move the same incident; the
// loser gets a conflict and reads the new state. The rules themselves are in lifecycle.ts.
import type { Kysely } from "kysely";
import { monotonicFactory } from "ulid";
import { pooledRandom } from "../../../lib/ids/pooled-random.js";
import { hubsOnStreets } from "../households/street-scope.js";
import type { IncidentsTable, LoopDb } from "../store/closed-loop-schema.js";
import { JOINABLE_STATES, type IncidentState } from "./lifecycle.js";

export interface Incident {
  id: string;
  hub: string;
  type: string;
  state: IncidentState;
  severity: string;
  eventId: string | null;
  sourceRef: string | null;
  device: string | null;
  deviceModel: string | null;
  policyName: string;
  policyVersion: number;
  escalation: EscalationStatus;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
  falseAlarmReason: string | null;
  followUpRecorded: boolean;
  alarms: number;
  openedAt: number;
  updatedAt: number;
  closedAt: number | null;
}

export type EscalationStatus = "running" | "acknowledged" | "exhausted" | "stopped";

export interface TimelineEntry {
  id: string;
  at: number;
  actor: string;
  kind: string;
  from: string | null;
  to: string | null;
  cause: string | null;
  detail: Record<string, unknown> | null;
}

export function toIncident(r: IncidentsTable): Incident {
  return {
    id: r.id,
    hub: r.hub,
    type: r.type,
    state: r.state as IncidentState,
    severity: r.severity,
    eventId: r.event_id,
    sourceRef: r.source_ref,
    device: r.device,
    deviceModel: r.device_model,
    policyName: r.policy_name,
    policyVersion: r.policy_version,
    escalation: r.escalation as EscalationStatus,
    acknowledgedAt: r.acknowledged_at,
    acknowledgedBy: r.acknowledged_by,
    falseAlarmReason: r.false_alarm_reason,
    followUpRecorded: r.follow_up_recorded === 1,
    alarms: r.alarms,
    openedAt: r.opened_at,
    updatedAt: r.updated_at,
    closedAt: r.closed_at,
  };
}

// Entries of one incident made in the same millisecond (a fake clock in tests, a fast step) must still sort
// in the order they were written: the timeline is read ordered by (at, id).
const timelineId = monotonicFactory(pooledRandom);

export const openKeyOf = (hub: string, type: string) => `${hub}/${type}`;

export async function getIncidentRow(db: Kysely<LoopDb>, id: string): Promise<IncidentsTable | undefined> {
  return db.selectFrom("incidents").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function getIncident(db: Kysely<LoopDb>, id: string): Promise<Incident | undefined> {
  const r = await getIncidentRow(db, id);
  return r ? toIncident(r) : undefined;
}

/** `streets`: only incidents of the homes on these (a street-limited caller, households/street-scope.ts); absent: every hub. */
export async function listIncidents(db: Kysely<LoopDb>, q: { openOnly?: boolean; hub?: string; streets?: readonly string[]; limit?: number } = {}): Promise<Incident[]> {
  let query = db.selectFrom("incidents").selectAll();
  if (q.openOnly) query = query.where("closed_at", "is", null);
  if (q.hub !== undefined) query = query.where("hub", "=", q.hub);
  if (q.streets !== undefined) query = query.where("hub", "in", hubsOnStreets(db, q.streets));
  const rows = await query.orderBy("opened_at", "desc").orderBy("id", "desc").limit(q.limit ?? 200).execute();
  return rows.map(toIncident);
}

/** What a timeline entry is made of; the id and row are made by addTimeline(s). */
export interface NewTimelineEntry {
  at: number;
  actor: string;
  kind: string;
  from?: string | null;
  to?: string | null;
  cause?: string | null;
  detail?: Record<string, unknown> | null;
}

export async function addTimeline(db: Kysely<LoopDb>, incidentId: string, e: NewTimelineEntry): Promise<TimelineEntry> {
  const [entry] = await addTimelines(db, [{ incidentId, e }]);
  return entry as TimelineEntry;
}

/** Several entries (of one incident or many) in one statement, in the order given. */
export async function addTimelines(db: Kysely<LoopDb>, list: ReadonlyArray<{ incidentId: string; e: NewTimelineEntry }>): Promise<TimelineEntry[]> {
  if (list.length === 0) return [];
  const rows = list.map(({ incidentId, e }) => ({
    id: timelineId(e.at),
    incident_id: incidentId,
    at: e.at,
    actor: e.actor,
    kind: e.kind,
    from_state: e.from ?? null,
    to_state: e.to ?? null,
    cause: e.cause ?? null,
    detail: e.detail ? JSON.stringify(e.detail) : null,
  }));
  await db.insertInto("incident_timeline").values(rows).execute();
  return rows.map((row, i) => ({ id: row.id, at: row.at, actor: row.actor, kind: row.kind, from: row.from_state, to: row.to_state, cause: row.cause, detail: list[i]?.e.detail ?? null }));
}

export async function getTimeline(db: Kysely<LoopDb>, incidentId: string): Promise<TimelineEntry[]> {
  const rows = await db.selectFrom("incident_timeline").selectAll().where("incident_id", "=", incidentId).orderBy("at").orderBy("id").execute();
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    actor: r.actor,
    kind: r.kind,
    from: r.from_state,
    to: r.to_state,
    cause: r.cause,
    detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
  }));
}

/** Moves an incident from `from` to `to` only if it is still in `from`; false if someone else moved it first. */
export async function setState(
  db: Kysely<LoopDb>,
  id: string,
  from: IncidentState,
  to: IncidentState,
  at: number,
  extra: Partial<Pick<IncidentsTable, "false_alarm_reason" | "follow_up_recorded" | "escalation" | "acknowledged_at" | "acknowledged_by">> = {},
): Promise<boolean> {
  const r = await db
    .updateTable("incidents")
    .set({
      state: to,
      updated_at: at,
      ...extra,
      // Once past the active stages a repeated alarm opens a new incident (a real fire after burnt toast).
      ...(JOINABLE_STATES.has(to) ? {} : { open_key: null }),
      ...(to === "closed" ? { closed_at: at } : {}),
    })
    .where("id", "=", id)
    .where("state", "=", from)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
