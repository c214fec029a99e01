// Call outcomes from the telephony callback: recorded on the attempt and the timeline; a confirming key
// acknowledges the incident (the calls stop); a step where everyone said no moves on at once. Answers to an
// arrival check go to arrival.ts.
import type { Kysely } from "kysely";
import { isMaintenance } from "../incidents/lifecycle.js";
import { addTimeline, getIncidentRow, toIncident } from "../incidents/repo.js";
import type { CallAttemptsTable, IncidentsTable, LoopDb } from "../store/closed-loop-schema.js";
import type { CallOutcome } from "../telephony/types.js";
import { arrivalMeaning, isArrivalAttempt, type ArrivalCheck } from "./arrival.js";
import { lockIncident, nextOf, stepOver, type EscalationContext } from "./context.js";
import { acknowledges, meaningOf, type ArrivalMeaning, type KeyMeaning } from "./keys.js";
import { passEndTimerId, passOf, passTimerId } from "./passes.js";
import type { EscalationPlan, TargetRole } from "./plan.js";
import { cancelTimers, pullTimer } from "./timers.js";

export class OutcomeHandler {
  constructor(
    private readonly c: EscalationContext,
    private readonly arrival: ArrivalCheck,
  ) {}

  /** A call's outcome from the telephony callback. Idempotent: the same outcome twice changes nothing more. */
  async onOutcome(o: CallOutcome): Promise<void> {
    const a = await this.c.db.selectFrom("call_attempts").selectAll().where("id", "=", o.attemptId).executeTakeFirst();
    if (!a) {
      this.c.log.warn({ attemptId: o.attemptId, status: o.status }, "escalation: outcome for an unknown call attempt ignored");
      return;
    }
    const inc = await getIncidentRow(this.c.db, a.incident_id);
    if (!inc) return;
    const maintenance = isMaintenance(inc.type);
    const arrivalCheck = isArrivalAttempt(inc.id, a.id);
    let pull = false;
    await this.c.db.transaction().execute(async (trx) => {
      await lockIncident(trx, inc.id);
      const at = this.c.now();
      const cur = await trx.selectFrom("call_attempts").selectAll().where("id", "=", a.id).executeTakeFirstOrThrow();
      const digits = cur.digits ?? o.digits ?? null;
      // A later, lesser status (the call's "completed" after its key press) never undoes an answer.
      const status = cur.status === "answered" && o.status !== "answered" ? "answered" : o.status;
      if (status === cur.status && digits === cur.digits) return; // a repeated callback
      await trx.updateTable("call_attempts").set({ status, digits, provider_ref: cur.provider_ref ?? o.providerRef ?? null, outcome_at: at }).where("id", "=", a.id).execute();
      const meaning: KeyMeaning | ArrivalMeaning | undefined = arrivalCheck
        ? arrivalMeaning(a.channel, status, digits)
        : status === "answered"
          ? meaningOf(a.role as TargetRole, digits ?? undefined, maintenance)
          : undefined;
      await addTimeline(trx, inc.id, {
        at,
        actor: a.role === "elder" ? "elder" : `${a.role}:${a.target}`,
        kind: "outcome",
        cause: meaning ?? status,
        detail: { attemptId: a.id, role: a.role, target: a.target, channel: a.channel, status, ...(digits ? { digits } : {}), ...(meaning ? { meaning } : {}), ...(o.detail ? { provider: o.detail } : {}) },
      });
      if (arrivalCheck) {
        pull = await this.arrival.onOutcome(trx, inc, a, status, meaning as ArrivalMeaning | undefined, at);
        return;
      }
      if (acknowledges(meaning as KeyMeaning | undefined)) {
        await this.acknowledgeByCall(trx, inc, a, meaning as KeyMeaning, at);
        return;
      }
      // Everyone in this step (of this pass) has answered "no" one way or another: move on without waiting.
      const stepTimer = a.id.slice(0, -(a.target.length + 1));
      const siblings = await trx.selectFrom("call_attempts").select(["status", "channel"]).where("incident_id", "=", inc.id).where("id", "like", `${stepTimer}:%`).execute();
      const plan = JSON.parse(inc.plan) as EscalationPlan;
      const expected = plan.steps[a.step]?.targets.length ?? 0;
      if (stepOver(siblings, expected)) {
        const next = nextOf(plan, a.step, a.round);
        const pass = passOf(inc.id, a.id);
        await pullTimer(trx, next ? passTimerId(inc.id, pass, next.step, next.round) : passEndTimerId(inc.id, pass), at);
        pull = true;
      }
    });
    if (pull) this.c.kick();
  }

  private async acknowledgeByCall(trx: Kysely<LoopDb>, inc: IncidentsTable, a: CallAttemptsTable, meaning: KeyMeaning, at: number): Promise<void> {
    const { role, target } = a;
    const by = role === "elder" ? "elder" : `${role}:${target}`;
    const r = await trx
      .updateTable("incidents")
      .set({ escalation: "acknowledged", acknowledged_at: at, acknowledged_by: by, updated_at: at })
      .where("id", "=", inc.id)
      .where("escalation", "in", ["running", "exhausted"])
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return;
    await cancelTimers(trx, inc.id, at, ["step", "end"]);
    // Someone on the way stops the tree only until the arrival check says whether they got there.
    const arrivalCheckAt = meaning === "going_to_door" ? await this.arrival.schedule(trx, inc, a, at) : undefined;
    const entry = await addTimeline(trx, inc.id, { at, actor: by, kind: "acknowledged", cause: meaning, detail: { role, target, ...(arrivalCheckAt !== undefined ? { arrivalCheckAt } : {}) } });
    const row = await getIncidentRow(trx, inc.id);
    if (row) await this.c.forwarding.push(trx, toIncident(row), entry);
    if (meaning === "help_needed" && (row?.state === "received" || row?.state === "confirming"))
      await this.c.incidents.actIn(trx, inc.id, { kind: "confirm" }, { actor: "elder", cause: "the elder pressed 1: needs help" });
  }
}
