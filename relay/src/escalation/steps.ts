// Running a claimed timer: a step (place its calls, then schedule the next round or step), the end of the
// tree (nobody acknowledged: operator alert), a resolved incident's follow-up falling due, or an arrival
// check (arrival.ts).
import type { Kysely } from "kysely";
import { isMaintenance } from "../incidents/lifecycle.js";
import { addTimeline, getIncidentRow, toIncident } from "../incidents/repo.js";
import type { IncidentsTable, LoopDb } from "../store/closed-loop-schema.js";
import type { ArrivalCheck } from "./arrival.js";
import { placeCall } from "./calls.js";
import { carePlanFor, lockIncident, nextOf, stepOver, SYSTEM, type EscalationContext } from "./context.js";
import { buildMessage } from "./messages.js";
import { passEndTimerId, passOf, passTimerId } from "./passes.js";
import type { EscalationPlan, PlannedStep } from "./plan.js";
import { addTimer, finishTimer, type TimerRow } from "./timers.js";

export class StepRunner {
  constructor(
    private readonly c: EscalationContext,
    private readonly arrival: ArrivalCheck,
  ) {}

  async runTimer(t: TimerRow): Promise<void> {
    try {
      if (t.kind === "follow_up") return await this.runFollowUp(t);
      if (t.kind === "end") return await this.runEnd(t);
      if (t.kind === "arrival") return await this.arrival.runCheck(t);
      if (t.kind === "arrival_end") return await this.arrival.runGiveUp(t);
      await this.runStep(t);
    } catch (err) {
      // The claim runs out and the timer is tried again (by this or another instance).
      this.c.log.error({ err, timer: t.id, incident: t.incident_id }, "escalation: timer failed; will retry after its claim expires");
      // A person should know the tree is stuck, even if the retry then succeeds (one alert per incident).
      const why = (err instanceof Error ? err.message : String(err)).slice(0, 200);
      await this.c.alerts
        .raise(this.c.db, { kind: "escalation_error", detail: `timer ${t.id} failed (${why}); it is retried when its claim expires`, at: this.c.now(), incidentId: t.incident_id })
        .catch(() => undefined);
    }
  }

  private async runStep(t: TimerRow): Promise<void> {
    const inc = await getIncidentRow(this.c.db, t.incident_id);
    const plan = inc ? (JSON.parse(inc.plan) as EscalationPlan) : undefined;
    const step = plan?.steps[t.step];
    // A timer of an earlier pass (the tree was started again meanwhile) is over.
    if (!inc || !plan || !step || inc.escalation !== "running" || inc.closed_at !== null || passOf(inc.id, t.id) !== Number(inc.escalation_pass)) {
      await finishTimer(this.c.db, t.id, this.c.instanceId, this.c.now(), "skipped");
      return;
    }
    const care = await carePlanFor(this.c, this.c.db, inc.hub, "call", inc.id);
    // The state change is bookkeeping: it runs beside the first calls rather than before them, in the
    // escalation's own store (on SQLite its lane commits without an fsync of its own: the step redoes it).
    const confirming =
      inc.state === "received"
        ? this.c.db.transaction().execute((trx) => this.c.incidents.actIn(trx, inc.id, { kind: "start_confirming" }, { actor: SYSTEM, cause: `step ${t.step + 1}: ${step.name}` })).then(
            () => undefined,
            () => undefined, // someone moved it first (an operator confirming): nothing to do
          )
        : undefined;
    // Every call is let finish before a failure is reported: the timer counts as in flight until then.
    const maintenance = isMaintenance(inc.type);
    const cause = `step ${t.step + 1}${t.round ? ` round ${t.round + 1}` : ""}: ${step.name}`;
    const first = t.id === passTimerId(inc.id, 0, 0, 0);
    const calls = step.targets.map((target) =>
      placeCall(this.c, inc, { attemptId: `${t.id}:${target.ref}`, step: t.step, round: t.round, target, cause, first, recovered: t.recovered, message: buildMessage({ type: inc.type, role: target.role, channel: target.channel, care, maintenance }) }, care),
    );
    const settled = await Promise.allSettled([...calls, confirming]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    await this.scheduleNext(inc, plan, t);
  }

  /** After a step ran: the next round, the next step, or the end of the tree — after the wait, or at once if every call of this step already failed. */
  private async scheduleNext(inc: IncidentsTable, plan: EscalationPlan, t: TimerRow): Promise<void> {
    let dueNow = false;
    await this.c.db.transaction().execute(async (trx) => {
      await lockIncident(trx, inc.id);
      const at = this.c.now();
      if (!(await finishTimer(trx, t.id, this.c.instanceId, at, "ran"))) return; // lost the claim: the new owner schedules
      const cur = await trx.selectFrom("incidents").select(["escalation", "escalation_pass"]).where("id", "=", inc.id).executeTakeFirst();
      const pass = passOf(inc.id, t.id);
      if (cur?.escalation !== "running" || Number(cur.escalation_pass) !== pass) return; // stopped, or started again
      const step = plan.steps[t.step] as PlannedStep;
      const next = nextOf(plan, t.step, t.round);
      const statuses = await trx.selectFrom("call_attempts").select(["status", "channel"]).where("incident_id", "=", inc.id).where("id", "like", `${t.id}:%`).execute();
      const allFailed = stepOver(statuses, step.targets.length);
      const dueAt = allFailed ? at : at + step.waitS * 1000;
      dueNow = dueAt <= at;
      if (next) await addTimer(trx, { id: passTimerId(inc.id, pass, next.step, next.round), incidentId: inc.id, kind: "step", step: next.step, round: next.round, dueAt });
      else await addTimer(trx, { id: passEndTimerId(inc.id, pass), incidentId: inc.id, kind: "end", step: t.step, round: t.round, dueAt });
    });
    if (dueNow) this.c.kick();
  }

  private async runEnd(t: TimerRow): Promise<void> {
    await this.c.db.transaction().execute(async (trx) => {
      await lockIncident(trx, t.incident_id);
      const at = this.c.now();
      if (!(await finishTimer(trx, t.id, this.c.instanceId, at, "ran"))) return;
      const row = await getIncidentRow(trx, t.incident_id);
      if (!row || passOf(row.id, t.id) !== Number(row.escalation_pass)) return; // an earlier pass's end
      await exhaust(this.c, trx, t.incident_id, at, "every step of the call tree ran and nobody acknowledged");
    });
  }

  private async runFollowUp(t: TimerRow): Promise<void> {
    await this.c.db.transaction().execute(async (trx) => {
      await lockIncident(trx, t.incident_id);
      const at = this.c.now();
      if (!(await finishTimer(trx, t.id, this.c.instanceId, at, "ran"))) return;
      const row = await getIncidentRow(trx, t.incident_id);
      if (row?.state !== "resolved") return;
      await this.c.incidents.actIn(trx, t.incident_id, { kind: "follow_up_due" }, { actor: "system", cause: "return visit due" });
      await this.c.alerts.raise(trx, { kind: "follow_up_due", detail: `incident ${t.incident_id}: the follow-up visit is due`, at, incidentId: t.incident_id, hub: row.hub });
    });
  }
}

/**
 * The tree ran out (or had nobody to call): the operator must act. `from`: the escalation states this may
 * end (an arrival not confirmed after the last step ends an acknowledged tree).
 */
export async function exhaust(c: EscalationContext, trx: Kysely<LoopDb>, id: string, at: number, why: string, from: string[] = ["running"]): Promise<void> {
  const r = await trx.updateTable("incidents").set({ escalation: "exhausted", updated_at: at }).where("id", "=", id).where("escalation", "in", from).executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) return;
  const row = await getIncidentRow(trx, id);
  const entry = await addTimeline(trx, id, { at, actor: SYSTEM, kind: "escalation", cause: `exhausted: ${why}` });
  await c.alerts.raise(trx, { kind: "nobody_reached", detail: `incident ${id} (${row?.type ?? "?"} at hub ${row?.hub ?? "?"}): ${why}; the operator must act`, at, incidentId: id, hub: row?.hub });
  if (row) await c.forwarding.push(trx, toIncident(row), entry);
}
