// Opening incidents, inside ingest's transaction: an alarm and its incident, frozen policy, first timer and
// forwards commit together or not at all. A repeated alarm of the same hub and type joins the open incident;
// when it is new evidence (evidence.ts) the confirmation opens again.
import type { Kysely } from "kysely";
import { ulid } from "ulid";
import { pooledRandom } from "../../../lib/ids/pooled-random.js";
import type { Envelope } from "../../../protocol/envelope.js";
import { addTimeline, getIncidentRow, openKeyOf, toIncident } from "../incidents/repo.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { carePlanFor, type EscalationContext } from "./context.js";
import { devicesSeen, evidenceOf, EVIDENCE_READINGS, recordNewEvidence } from "./evidence.js";
import { expandPlan } from "./plan.js";
import { policyFor } from "./policy.js";
import { exhaust } from "./steps.js";
import { addTimer, stepTimerId } from "./timers.js";

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
        // Whatever its severity: an inactivity alarm comes as "warning" and still needs its welfare check.
        // The type picks the policy; the severity is only carried along (incident, forwards).
        const model = typeof env.data?.model === "string" ? env.data.model : undefined;
        await this.openOrJoin(trx, { hub: env.hub, type: env.type, severity: env.severity, eventId: env.id, device: env.device ?? null, model, cause: `alarm ${env.id}` });
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
  async openOrJoin(
    trx: Kysely<LoopDb>,
    a: { hub: string; type: string; severity: string; eventId?: string; sourceRef?: string; device: string | null; model?: string; cause: string },
  ): Promise<{ id: string; opened: boolean }> {
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
    const policy = policyFor(this.c.policies, a.type);
    const plan = expandPlan(policy, this.c.policies.groups, care);
    const id = ulid(at, pooledRandom);
    const got = await trx
      .insertInto("incidents")
      .values({
        id,
        hub: a.hub,
        type: a.type,
        state: "received",
        open_key: key,
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
      })
      .onConflict((oc) => oc.column("open_key").doNothing())
      .returning("id")
      .execute();
    if (got.length === 0) {
      // Another instance opened it between our look and our insert: join theirs.
      const theirs = await trx.selectFrom("incidents").select("id").where("open_key", "=", key).executeTakeFirstOrThrow();
      return join(theirs.id);
    }
    const entry = await addTimeline(trx, id, {
      at,
      actor: a.eventId ? `hub:${a.hub}` : "system:supervision",
      kind: "transition",
      from: null,
      to: "received",
      cause: a.cause,
      detail: { eventId: a.eventId ?? null, device: a.device, policy: policy.name, policyVersion: policy.version, steps: plan.steps.length },
    });
    if (!care) await this.c.alerts.raise(trx, { kind: "no_care_plan", detail: `hub ${a.hub} has no care plan: nobody can be called for this ${a.type} incident`, at, incidentId: id, hub: a.hub });
    if (plan.steps.length > 0) await addTimer(trx, { id: stepTimerId(id, 0, 0), incidentId: id, kind: "step", step: 0, round: 0, dueAt: at + plan.startDelayS * 1000 });
    else await exhaust(this.c, trx, id, at, "the policy has no one to call in this home");
    const row = await getIncidentRow(trx, id);
    if (row) await this.c.forwarding.push(trx, toIncident(row), entry, { address: care?.elder.address, riskLevel: care?.elder.riskLevel });
    this.c.meters?.opened.inc({ type: a.type });
    return { id, opened: true };
  }
}
