// Passes of a call tree. The first run is pass 0; new evidence (opening.ts, evidence.ts) or an arrival not
// confirmed (arrival.ts) starts the tree again as the next pass. Step timers and call attempts are keyed on
// (step, round), so a second pass over the same steps needs ids of its own: pass 0 keeps the original
// `<incident>:<step>:<round>`, pass n is `<incident>:p<n>:<step>:<round>`. The incident row holds the pass in
// force (`escalation_pass`); a timer of an earlier pass that still falls due is skipped.
import type { Kysely } from "kysely";
import { addTimeline } from "../incidents/repo.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { SYSTEM, type EscalationContext } from "./context.js";
import { addTimer, cancelTimers, stepTimerId } from "./timers.js";

export const passTimerId = (incident: string, pass: number, step: number, round: number): string =>
  pass === 0 ? stepTimerId(incident, step, round) : `${incident}:p${pass}:${step}:${round}`;

export const passEndTimerId = (incident: string, pass: number): string => (pass === 0 ? `${incident}:end` : `${incident}:p${pass}:end`);

/** The pass a step or end timer (or a call attempt placed by one) belongs to. */
export function passOf(incident: string, id: string): number {
  const m = /^p(\d+):/.exec(id.slice(incident.length + 1));
  return m ? Number(m[1]) : 0;
}

/**
 * Starts the next pass of an incident's tree at `step` (due now): the current pass's pending steps are
 * cancelled, the acknowledgement that stopped it is cleared (the confirmation is open again), and the
 * escalation runs. `db` is the caller's transaction; the caller kicks the loop after its commit.
 */
export async function startPass(c: EscalationContext, db: Kysely<LoopDb>, incidentId: string, step: number, at: number, why: string): Promise<number> {
  await cancelTimers(db, incidentId, at, ["step", "end"]);
  await db
    .updateTable("incidents")
    .set((eb) => ({ escalation: "running", escalation_pass: eb("escalation_pass", "+", 1), acknowledged_at: null, acknowledged_by: null, updated_at: at }))
    .where("id", "=", incidentId)
    .execute();
  const row = await db.selectFrom("incidents").select("escalation_pass").where("id", "=", incidentId).executeTakeFirstOrThrow();
  const pass = Number(row.escalation_pass);
  await addTimer(db, { id: passTimerId(incidentId, pass, step, 0), incidentId, kind: "step", step, round: 0, dueAt: at });
  await addTimeline(db, incidentId, { at, actor: SYSTEM, kind: "escalation", cause: `restarted at step ${step + 1}: ${why}`, detail: { pass, step } });
  c.log.info({ incident: incidentId, pass, step }, "escalation: call tree started again");
  return pass;
}
