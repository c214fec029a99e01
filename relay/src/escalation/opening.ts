// Opening incidents, inside ingest's transaction: an alarm and its incident, frozen policy, first timer and
// forwards commit together or not at all. A repeated alarm of the same hub and type joins the open incident;
// when it is new evidence (evidence.ts) the confirmation opens again. Many alarms opening incidents in one
// commit (a district reconnecting after an outage) are opened together, a few statements for all of them
// (openFresh), rather than ten round trips each while every hub's acks wait on the commit.
import type { Kysely } from "kysely";
import { ulid } from "ulid";
import { pooledRandom } from "../../../lib/ids/pooled-random.js";
import type { Envelope } from "../../../protocol/envelope.js";
import type { CarePlan } from "../careplans/schema.js";
import { addTimeline, addTimelines, getIncidentRow, openKeyOf, toIncident, type NewTimelineEntry, type TimelineEntry } from "../incidents/repo.js";
import type { IncidentsTable, LoopDb } from "../store/closed-loop-schema.js";
import { carePlanFor, carePlansFor, type EscalationContext } from "./context.js";
import { devicesSeen, evidenceOf, EVIDENCE_READINGS, recordNewEvidence } from "./evidence.js";
import { expandPlan, type EscalationPlan } from "./plan.js";
import { policyFor } from "./policy.js";
import { exhaust } from "./steps.js";
import { addTimer, addTimers, stepTimerId, type NewTimer } from "./timers.js";

/** What opens or joins an incident: an alarm, or supervision's hub_offline (no event). */
export interface Opening {
  hub: string;
  type: string;
  severity: string;
  eventId?: string;
  sourceRef?: string;
  device: string | null;
  model?: string;
  cause: string;
}

/** A new incident before it is inserted. */
interface Prepared {
  a: Opening;
  care: CarePlan | undefined;
  plan: EscalationPlan;
  row: IncidentsTable;
}

/** Alarms opened together per statement: 25 columns each stays far below either store's parameter limit. */
const FRESH_CHUNK = 200;

/** The events withinCommit acts on: alarms, cleared alarms, and readings that are evidence for an incident. */
export function reachesIncidents(env: Pick<Envelope, "kind" | "type" | "test">): boolean {
  // A commissioning test (the installer pressing a test button) is stored and acked, never a call tree.
  if (env.test === true) return false;
  return env.kind === "alarm" || env.kind === "alarm_cleared" || (env.kind === "reading" && env.type in EVIDENCE_READINGS);
}

export class IncidentOpener {
  constructor(private readonly c: EscalationContext) {}

  /** ingest's withinCommit: alarms open (or join) incidents; a cleared alarm is noted on its incident. */
  async withinCommit(trx: Kysely<LoopDb>, inserted: Envelope[]): Promise<void> {
    for (const env of inserted) {
      if (!reachesIncidents(env)) continue; // commissioning tests included: stored, never an incident
      if (env.kind === "alarm") {
        await this.openOrJoin(trx, alarmOpening(env));
      } else if (env.kind === "alarm_cleared") {
        // Noted only: a detector or radar no longer flagging (a fall flag dropping, vital signs read again)
        // is not the elder confirmed safe. The calls stop when a person acknowledges, never on this.
        const open = await trx.selectFrom("incidents").select("id").where("open_key", "=", openKeyOf(env.hub, env.type)).executeTakeFirst();
        if (open) await addTimeline(trx, open.id, { at: this.c.now(), actor: `hub:${env.hub}`, kind: "alarm_cleared", cause: `event ${env.id}`, detail: { eventId: env.id, device: env.device ?? null } });
      } else if (env.kind === "reading" && env.type in EVIDENCE_READINGS) {
        await this.evidenceReading(trx, env, EVIDENCE_READINGS[env.type] as string);
      }
    }
  }

  /** A reading that is evidence (smoke reaching another detector) for the open incident of `type`, if any. */
  private async evidenceReading(trx: Kysely<LoopDb>, env: Envelope, type: string): Promise<void> {
    const at = this.c.now();
    const open = await trx.selectFrom("incidents").select("id").where("open_key", "=", openKeyOf(env.hub, type)).executeTakeFirst();
    if (!open) return; // no incident to add to: a reading never opens one
    // Taken first, so two instances' concurrent joins decide one after the other.
    await trx.updateTable("incidents").set({ updated_at: at }).where("id", "=", open.id).execute();
    const row = await getIncidentRow(trx, open.id);
    if (!row) return;
    const j = { kind: "reading" as const, eventId: env.id, device: env.device ?? null, severity: env.severity };
    const why = evidenceOf(row, await devicesSeen(trx, row, j.device), j);
    if (why.length > 0) await recordNewEvidence(this.c, trx, row, { ...j, type, cause: `reading ${env.id} (${env.type})` }, why, at);
  }

  /** Opens an incident, or adds the alarm to the open one of the same hub and type. */
  async openOrJoin(trx: Kysely<LoopDb>, a: Opening): Promise<{ id: string; opened: boolean }> {
    const at = this.c.now();
    const key = openKeyOf(a.hub, a.type);
    const join = async (id: string) => {
      // The update comes first: it takes the row, so concurrent joins (two instances) decide one at a time.
      await trx.updateTable("incidents").set((eb) => ({ alarms: eb("alarms", "+", 1), updated_at: at })).where("id", "=", id).execute();
      const row = a.eventId ? await getIncidentRow(trx, id) : undefined; // supervision's joins carry no evidence
      const j = { kind: "alarm" as const, eventId: a.eventId ?? "", device: a.device, severity: a.severity };
      const why = row ? evidenceOf(row, await devicesSeen(trx, row, j.device), j) : [];
      if (row && why.length > 0) await recordNewEvidence(this.c, trx, row, { ...j, type: a.type, cause: a.cause }, why, at);
      else await addTimeline(trx, id, { at, actor: `hub:${a.hub}`, kind: "joined", cause: a.cause, detail: { eventId: a.eventId ?? null, device: a.device } });
      return { id, opened: false };
    };
    const existing = await trx.selectFrom("incidents").select("id").where("open_key", "=", key).executeTakeFirst();
    if (existing) return join(existing.id);

    const care = await carePlanFor(this.c, trx, a.hub, "incident_open");
    const p = this.prepare(a, care, at);
    const got = await trx.insertInto("incidents").values(p.row).onConflict((oc) => oc.column("open_key").doNothing()).returning("id").execute();
    if (got.length === 0) {
      // Another instance opened it between our look and our insert: join theirs.
      const theirs = await trx.selectFrom("incidents").select("id").where("open_key", "=", key).executeTakeFirstOrThrow();
      return join(theirs.id);
    }
    const entry = await addTimeline(trx, p.row.id, openedEntry(p));
    const timer = firstTimer(p);
    if (timer) await addTimer(trx, timer);
    await this.afterOpened(trx, p, entry);
    this.c.meters?.opened.inc({ type: a.type });
    return { id: p.row.id, opened: true };
  }

  /**
   * Opens, together, the incidents of the alarms in `inserted` that open one: the first event of its hub and
   * type in the batch, with no incident of that hub and type open. Each gets exactly what openOrJoin gives
   * a new incident. Returns the ids of the events it handled; withinCommit then takes the rest (joins,
   * clearings, evidence) in their order, so each hub and type still sees its events in order. Run it under
   * a savepoint: if it fails, the caller rolls back and opens each alarm on its own.
   */
  async openFresh(trx: Kysely<LoopDb>, inserted: readonly Envelope[]): Promise<Set<string>> {
    const handled = new Set<string>();
    const firstOfKey = new Map<string, Envelope>();
    for (const env of inserted) {
      if (!reachesIncidents(env)) continue;
      const type = env.kind === "reading" ? (EVIDENCE_READINGS[env.type] as string) : env.type;
      const key = openKeyOf(env.hub, type);
      if (!firstOfKey.has(key)) firstOfKey.set(key, env);
    }
    const candidates = [...firstOfKey].filter(([, env]) => env.kind === "alarm");
    // One alarm costs the same either way.
    if (candidates.length < 2) return handled;
    for (let i = 0; i < candidates.length; i += FRESH_CHUNK) {
      const part = candidates.slice(i, i + FRESH_CHUNK);
      const open = await trx.selectFrom("incidents").select("open_key").where("open_key", "in", part.map(([key]) => key)).execute();
      const taken = new Set(open.map((r) => r.open_key));
      const fresh = part.filter(([key]) => !taken.has(key)).map(([, env]) => alarmOpening(env));
      if (fresh.length === 0) continue;
      const at = this.c.now();
      const care = await carePlansFor(this.c, trx, fresh.map((a) => a.hub), "incident_open");
      const prepared = fresh.map((a) => this.prepare(a, care.get(a.hub), at));
      const got = await trx.insertInto("incidents").values(prepared.map((p) => p.row)).onConflict((oc) => oc.column("open_key").doNothing()).returning("id").execute();
      // One another instance opened meanwhile is left to withinCommit, which joins it.
      const insertedIds = new Set(got.map((r) => r.id));
      const opened = prepared.filter((p) => insertedIds.has(p.row.id));
      const entries = await addTimelines(trx, opened.map((p) => ({ incidentId: p.row.id, e: openedEntry(p) })));
      await addTimers(trx, opened.map(firstTimer).filter((t): t is NewTimer => t !== undefined));
      for (const [j, p] of opened.entries()) await this.afterOpened(trx, p, entries[j] as TimelineEntry);
      for (const p of opened) handled.add(p.a.eventId as string);
    }
    // Counted once nothing more can fail: a rolled-back attempt is opened again one by one.
    for (const env of inserted) if (handled.has(env.id)) this.c.meters?.opened.inc({ type: env.type });
    return handled;
  }

  /** The new incident's row, its policy frozen and expanded against the care plan. */
  private prepare(a: Opening, care: CarePlan | undefined, at: number): Prepared {
    const policy = policyFor(this.c.policies, a.type);
    const plan = expandPlan(policy, this.c.policies.groups, care);
    const row: IncidentsTable = {
      id: ulid(at, pooledRandom),
      hub: a.hub,
      type: a.type,
      state: "received",
      open_key: openKeyOf(a.hub, a.type),
      severity: a.severity,
      event_id: a.eventId ?? null,
      source_ref: a.sourceRef ?? null,
      device: a.device,
      device_model: a.model ?? (a.device ? (care?.devices[a.device]?.model ?? null) : null),
      policy: JSON.stringify(policy),
      policy_name: policy.name,
      policy_version: policy.version,
      plan: JSON.stringify(plan),
      escalation: "running",
      escalation_pass: 0,
      acknowledged_at: null,
      acknowledged_by: null,
      false_alarm_reason: null,
      follow_up_recorded: 0,
      alarms: 1,
      opened_at: at,
      updated_at: at,
      closed_at: null,
    };
    return { a, care, plan, row };
  }

  /** After the incident, its opening entry and its first timer: the operator told of a missing plan, an empty tree ended, the opening forwarded. */
  private async afterOpened(trx: Kysely<LoopDb>, p: Prepared, entry: TimelineEntry): Promise<void> {
    const { a, care, row } = p;
    const at = row.opened_at;
    if (!care) await this.c.alerts.raise(trx, { kind: "no_care_plan", detail: `hub ${a.hub} has no care plan: nobody can be called for this ${a.type} incident`, at, incidentId: row.id, hub: a.hub });
    // An empty tree ends at once, which changes the row: read it again for the forward.
    let current: IncidentsTable | undefined = row;
    if (p.plan.steps.length === 0) {
      await exhaust(this.c, trx, row.id, at, "the policy has no one to call in this home");
      current = await getIncidentRow(trx, row.id);
    }
    if (current) await this.c.forwarding.push(trx, toIncident(current), entry, { address: care?.elder.address, riskLevel: care?.elder.riskLevel });
  }
}

function alarmOpening(env: Envelope): Opening {
  // Whatever its severity: an inactivity alarm comes as "warning" and still needs its welfare check.
  // The type picks the policy; the severity is only carried along (incident, forwards).
  const model = typeof env.data?.model === "string" ? env.data.model : undefined;
  return { hub: env.hub, type: env.type, severity: env.severity, eventId: env.id, device: env.device ?? null, model, cause: `alarm ${env.id}` };
}

function openedEntry(p: Prepared): NewTimelineEntry {
  const { a, row, plan } = p;
  return {
    at: row.opened_at,
    actor: a.eventId ? `hub:${a.hub}` : "system:supervision",
    kind: "transition",
    from: null,
    to: "received",
    cause: a.cause,
    detail: { eventId: a.eventId ?? null, device: a.device, policy: row.policy_name, policyVersion: row.policy_version, steps: plan.steps.length },
  };
}

function firstTimer(p: Prepared): NewTimer | undefined {
  if (p.plan.steps.length === 0) return undefined;
  return { id: stepTimerId(p.row.id, 0, 0), incidentId: p.row.id, kind: "step", step: 0, round: 0, dueAt: p.row.opened_at + p.plan.startDelayS * 1000 };
}
