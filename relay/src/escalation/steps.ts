// Running a claimed timer: a step (place its calls, then schedule the next round or step), the end of the
// tree (nobody acknowledged: operator alert), or a resolved incident's follow-up falling due.
import type { Kysely } from "kysely";
import type { CarePlan } from "../careplans/schema.js";
import { isMaintenance } from "../incidents/lifecycle.js";
import { addTimeline, getIncidentRow, toIncident } from "../incidents/repo.js";
import type { IncidentsTable, LoopDb } from "../store/closed-loop-schema.js";
import { TelephonyRejected, TelephonyUnavailable } from "../telephony/types.js";
import { carePlanFor, nextOf, stepOver, SYSTEM, type EscalationContext } from "./context.js";
import { GATHER_DIGITS } from "./keys.js";
import { buildMessage } from "./messages.js";
import { numberFor, type EscalationPlan, type PlannedStep, type PlannedTarget } from "./plan.js";
import { addTimer, finishTimer, stepTimerId, type TimerRow } from "./timers.js";

export class StepRunner {
  constructor(private readonly c: EscalationContext) {}

  async runTimer(t: TimerRow): Promise<void> {
    try {
      if (t.kind === "follow_up") return await this.runFollowUp(t);
      if (t.kind === "end") return await this.runEnd(t);
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
    if (!inc || !plan || !step || inc.escalation !== "running" || inc.closed_at !== null) {
      await finishTimer(this.c.db, t.id, this.c.instanceId, this.c.now(), "skipped");
      return;
    }
    const care = await carePlanFor(this.c, this.c.db, inc.hub, "call", inc.id);
    // The state change is bookkeeping: it runs beside the first calls rather than before them.
    const confirming =
      inc.state === "received"
        ? this.c.incidents.act(inc.id, { kind: "start_confirming" }, { actor: SYSTEM, cause: `step ${t.step + 1}: ${step.name}` }).then(
            () => undefined,
            () => undefined, // someone moved it first (an operator confirming): nothing to do
          )
        : undefined;
    // Every call is let finish before a failure is reported: the timer counts as in flight until then.
    const settled = await Promise.allSettled([...step.targets.map((target) => this.placeOne(inc, t, step, target, care)), confirming]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    await this.scheduleNext(inc, plan, t);
  }

  private async placeOne(inc: IncidentsTable, t: TimerRow, step: PlannedStep, target: PlannedTarget, care: CarePlan | undefined): Promise<void> {
    const attemptId = `${stepTimerId(inc.id, t.step, t.round)}:${target.ref}`;
    const at = this.c.now();
    const inserted = await this.c.db
      .insertInto("call_attempts")
      .values({
        id: attemptId,
        incident_id: inc.id,
        step: t.step,
        round: t.round,
        role: target.role,
        target: target.ref,
        channel: target.channel,
        status: "requested",
        digits: null,
        provider_ref: null,
        requested_at: at,
        placed_at: null,
        outcome_at: null,
        detail: null,
      })
      .onConflict((oc) => oc.column("id").doNothing())
      .returning("id")
      .execute();
    if (inserted.length === 0) {
      // Run before (a crash after placing, or a lost claim): place again only if it never got through, and
      // the provider sees the same attemptId as its idempotency key.
      const prev = await this.c.db.selectFrom("call_attempts").select(["status", "requested_at"]).where("id", "=", attemptId).executeTakeFirst();
      if (!prev || prev.status !== "requested" || prev.requested_at > at - this.c.claimMs) return;
    }
    const maintenance = isMaintenance(inc.type);
    const to = numberFor(care, target.ref);
    const finish = async (status: string, detail: string | null, providerRef: string | null = null) => {
      await this.c.db.transaction().execute(async (trx) => {
        await trx
          .updateTable("call_attempts")
          .set({ status, detail, provider_ref: providerRef, ...(status === "placed" ? { placed_at: this.c.now() } : { outcome_at: this.c.now() }) })
          .where("id", "=", attemptId)
          .where("status", "=", "requested")
          .execute();
        await addTimeline(trx, inc.id, {
          at: this.c.now(),
          actor: SYSTEM,
          kind: "call",
          cause: `step ${t.step + 1}${t.round ? ` round ${t.round + 1}` : ""}: ${step.name}`,
          detail: { attemptId, role: target.role, target: target.ref, channel: target.channel, status, ...(detail ? { error: detail } : {}) },
        });
        if (status === "unavailable")
          await this.c.alerts.raise(trx, { kind: "telephony_down", detail: `${this.c.telephony.name}: ${detail ?? "unavailable"}; calls are not going out — call by hand`, at: this.c.now(), key: this.c.telephony.name, hub: inc.hub });
        if (status === "failed" && detail?.startsWith("rejected"))
          await this.c.alerts.raise(trx, { kind: "call_rejected", detail: `the provider refused a call to ${target.role} ${target.ref} (check the care plan's number)`, at: this.c.now(), incidentId: inc.id, hub: inc.hub });
      });
      this.c.meters?.calls.inc({ channel: target.channel, result: status });
    };
    if (!to) return finish("failed", "no number in the care plan");
    try {
      const { providerRef } = await this.c.telephony.place({
        attemptId,
        to,
        channel: target.channel,
        message: buildMessage({ type: inc.type, role: target.role, channel: target.channel, care, maintenance }),
        ...(target.channel === "voice" ? { gatherDigits: GATHER_DIGITS } : {}),
      });
      if (t.step === 0 && t.round === 0) this.c.meters?.firstCall.observe(Math.max(0, this.c.now() - inc.opened_at) / 1000);
      await finish("placed", null, providerRef);
    } catch (err) {
      if (err instanceof TelephonyRejected) return finish("failed", `rejected: ${err.message}`);
      const why = err instanceof TelephonyUnavailable ? err.message : `error: ${(err as Error).message}`;
      this.c.log.warn({ incident: inc.id, attemptId, provider: this.c.telephony.name, err: why }, "escalation: call could not be placed");
      await finish("unavailable", why);
    }
  }

  /** After a step ran: the next round, the next step, or the end of the tree — after the wait, or at once if every call of this step already failed. */
  private async scheduleNext(inc: IncidentsTable, plan: EscalationPlan, t: TimerRow): Promise<void> {
    let dueNow = false;
    await this.c.db.transaction().execute(async (trx) => {
      const at = this.c.now();
      if (!(await finishTimer(trx, t.id, this.c.instanceId, at, "ran"))) return; // lost the claim: the new owner schedules
      const cur = await trx.selectFrom("incidents").select(["escalation"]).where("id", "=", inc.id).executeTakeFirst();
      if (cur?.escalation !== "running") return;
      const step = plan.steps[t.step] as PlannedStep;
      const next = nextOf(plan, t.step, t.round);
      const statuses = await trx.selectFrom("call_attempts").select(["status", "channel"]).where("incident_id", "=", inc.id).where("step", "=", t.step).where("round", "=", t.round).execute();
      const allFailed = stepOver(statuses, step.targets.length);
      const dueAt = allFailed ? at : at + step.waitS * 1000;
      dueNow = dueAt <= at;
      if (next) await addTimer(trx, { id: stepTimerId(inc.id, next.step, next.round), incidentId: inc.id, kind: "step", step: next.step, round: next.round, dueAt });
      else await addTimer(trx, { id: `${inc.id}:end`, incidentId: inc.id, kind: "end", step: t.step, round: t.round, dueAt });
    });
    if (dueNow) this.c.kick();
  }

  private async runEnd(t: TimerRow): Promise<void> {
    await this.c.db.transaction().execute(async (trx) => {
      const at = this.c.now();
      if (!(await finishTimer(trx, t.id, this.c.instanceId, at, "ran"))) return;
      await exhaust(this.c, trx, t.incident_id, at, "every step of the call tree ran and nobody acknowledged");
    });
  }

  private async runFollowUp(t: TimerRow): Promise<void> {
    await this.c.db.transaction().execute(async (trx) => {
      const at = this.c.now();
      if (!(await finishTimer(trx, t.id, this.c.instanceId, at, "ran"))) return;
      const row = await getIncidentRow(trx, t.incident_id);
      if (row?.state !== "resolved") return;
      await this.c.incidents.actIn(trx, t.incident_id, { kind: "follow_up_due" }, { actor: "system", cause: "return visit due" });
      await this.c.alerts.raise(trx, { kind: "follow_up_due", detail: `incident ${t.incident_id}: the follow-up visit is due`, at, incidentId: t.incident_id, hub: row.hub });
    });
  }
}

/** The tree ran out (or had nobody to call): the operator must act. */
export async function exhaust(c: EscalationContext, trx: Kysely<LoopDb>, id: string, at: number, why: string): Promise<void> {
  const r = await trx.updateTable("incidents").set({ escalation: "exhausted", updated_at: at }).where("id", "=", id).where("escalation", "=", "running").executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) return;
  const row = await getIncidentRow(trx, id);
  const entry = await addTimeline(trx, id, { at, actor: SYSTEM, kind: "escalation", cause: `exhausted: ${why}` });
  await c.alerts.raise(trx, { kind: "nobody_reached", detail: `incident ${id} (${row?.type ?? "?"} at hub ${row?.hub ?? "?"}): ${why}; the operator must act`, at, incidentId: id, hub: row?.hub });
  if (row) await c.forwarding.push(trx, toIncident(row), entry);
}
