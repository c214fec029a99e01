// New evidence on an open incident (design invariant 10: never absorbed silently). An alarm joining an open
// incident is new evidence when it comes from a device not yet part of it, is more severe than the incident,
// or comes after the call tree stopped (acknowledged — "I am fine" included —, stopped by an operator, or run
// out): a new episode. A smoke_spread reading (smoke reaching another detector during the hub's smoke alarm)
// is evidence from another device too. Then the confirmation opens again: the tree restarts at the step the
// frozen policy names (`onNewEvidence`), the operator is alerted, the timeline records it and it is forwarded.
//
// The same device raising the same alarm again while the tree still runs unacknowledged is the same emergency
// and only joins; so does a resend (deduplicated by event id before it gets here) and any other reading.
import type { Kysely } from "kysely";
import { SEVERITY_RANK, type Severity } from "../../../protocol/envelope.js";
import { addTimeline, getIncidentRow, toIncident } from "../incidents/repo.js";
import type { IncidentsTable, LoopDb } from "../store/closed-loop-schema.js";
import type { EscalationContext } from "./context.js";
import { passOf, startPass } from "./passes.js";
import type { EscalationPlan } from "./plan.js";

export type EvidenceReason = "another_device" | "higher_severity" | "new_episode";

/** Readings that are evidence for an open incident of the given type (docs/wire-protocol.md). */
export const EVIDENCE_READINGS: Readonly<Record<string, string>> = { smoke_spread: "smoke" };

export interface Joining {
  kind: "alarm" | "reading";
  /** The event that joins (its id is in the timeline). */
  eventId: string;
  device: string | null;
  severity: string;
}

const rank = (s: string) => SEVERITY_RANK[s as Severity] ?? SEVERITY_RANK.info;

/** Why `j` joining `inc` is new evidence; empty when it is the same emergency. */
export function evidenceOf(inc: Pick<IncidentsTable, "escalation" | "severity">, devicesSeen: ReadonlyArray<string | null>, j: Pick<Joining, "kind" | "device" | "severity">): EvidenceReason[] {
  const why: EvidenceReason[] = [];
  if (!devicesSeen.includes(j.device)) why.push("another_device");
  // A reading is never an episode of its own, nor does its severity rank against an alarm's.
  if (j.kind === "alarm") {
    if (rank(j.severity) < rank(inc.severity)) why.push("higher_severity");
    if (inc.escalation !== "running") why.push("new_episode");
  }
  return why;
}

/**
 * The devices already part of an incident: the one that opened it and every one that joined since. When the
 * `joining` device is the one that opened it (a detector repeating its alarm, the usual join), that is all
 * evidenceOf needs, and the timeline is not read: reading it on every join made a long drain of one
 * detector's repeats cost the square of their number.
 */
export async function devicesSeen(db: Kysely<LoopDb>, inc: Pick<IncidentsTable, "id" | "device">, joining?: string | null): Promise<Array<string | null>> {
  if (joining !== undefined && joining === inc.device) return [inc.device];
  const rows = await db.selectFrom("incident_timeline").select("detail").where("incident_id", "=", inc.id).where("kind", "in", ["joined", "new_evidence"]).execute();
  const joined = rows.map((r) => (r.detail ? ((JSON.parse(r.detail) as { device?: string | null }).device ?? null) : null));
  return [inc.device, ...joined];
}

const SAID: Record<EvidenceReason, string> = { another_device: "from another device", higher_severity: "of a higher severity", new_episode: "a new episode" };

/**
 * Records new evidence inside the ingest commit: the timeline entry (forwarded), a higher severity kept on
 * the incident, the tree restarted, and a `new_evidence` operator alert. While the tree still runs and has
 * not yet got past the restart step, those people are being called anyway: it is not restarted then.
 */
export async function recordNewEvidence(c: EscalationContext, trx: Kysely<LoopDb>, inc: IncidentsTable, j: Joining & { type: string; cause: string }, why: EvidenceReason[], at: number): Promise<void> {
  const plan = JSON.parse(inc.plan) as EscalationPlan;
  const restartAt = plan.restartAt ?? 0;
  const step = plan.steps[restartAt];
  let restart = step !== undefined;
  if (restart && inc.escalation === "running") {
    const pending = await trx.selectFrom("escalation_timers").select(["id", "step"]).where("incident_id", "=", inc.id).where("kind", "=", "step").where("done_at", "is", null).execute();
    if (pending.some((p) => passOf(inc.id, p.id) === Number(inc.escalation_pass) && p.step <= restartAt)) restart = false;
  }
  if (why.includes("higher_severity")) await trx.updateTable("incidents").set({ severity: j.severity, updated_at: at }).where("id", "=", inc.id).execute();
  const entry = await addTimeline(trx, inc.id, {
    at,
    actor: `hub:${inc.hub}`,
    kind: "new_evidence",
    cause: j.cause,
    detail: { eventId: j.eventId, device: j.device, severity: j.severity, why, escalation: inc.escalation, restartAtStep: restart ? restartAt + 1 : null },
  });
  if (restart) await startPass(c, trx, inc.id, restartAt, at, `new evidence (${why.join(", ")})`);
  const what = j.kind === "reading" ? `${j.type} reported by another device (${j.device ?? "unknown"})` : `a new ${j.severity} ${j.type} alarm from device ${j.device ?? "unknown"}`;
  const after =
    inc.escalation === "running" ? "while the calls were running" : inc.escalation === "exhausted" ? "after nobody was reached" : `after the calls stopped (${inc.acknowledged_by ? `acknowledged by ${inc.acknowledged_by}` : `escalation ${inc.escalation}`})`;
  const then = restart ? `the call tree restarts at step ${restartAt + 1} (${step?.name})` : step ? `the call tree is already on its way to step ${restartAt + 1}` : "there is nobody to call in this home";
  await c.alerts.raise(trx, {
    kind: "new_evidence",
    detail: `incident ${inc.id} (${inc.type} at hub ${inc.hub}): ${what} joined ${after} — ${why.map((w) => SAID[w]).join(", ")}; ${then}`,
    at,
    incidentId: inc.id,
    hub: inc.hub,
  });
  const row = await getIncidentRow(trx, inc.id);
  if (row) await c.forwarding.push(trx, toIncident(row), entry);
}
