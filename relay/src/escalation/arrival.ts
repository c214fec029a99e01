// The arrival check. A responder who answered "I will go to the door" stopped the call tree; the policy's
// `arrival` asks them `checkAfterS` later to confirm they are with the elder (key 1, or 1 as the reply to an
// SMS). Confirmed: the timeline records the arrival and the tree stays stopped. Not confirmed within
// `giveUpAfterS` of the check (no answer, key 2, a call that could not go out): the tree resumes at the step
// after the responder's and the operator is alerted. Both moments are escalation timers in the store
// (`arrival`, then `arrival_end`), claimed like every other, so a restart loses neither.
//
// Ids: the check (timer and call attempt) is `<incident>:arrival:<the acknowledging attempt's id after the
// incident>`, its give-up timer the same with `:end`; neither can be mistaken for a step's attempt.
import type { Kysely } from "kysely";
import { JOINABLE_STATES, type IncidentState } from "../incidents/lifecycle.js";
import { addTimeline, getIncidentRow, toIncident } from "../incidents/repo.js";
import type { CallAttemptsTable, IncidentsTable, LoopDb } from "../store/closed-loop-schema.js";
import { placeCall } from "./calls.js";
import { carePlanFor, lockIncident, SYSTEM, type EscalationContext } from "./context.js";
import { arrivalMeaningOf, type ArrivalMeaning } from "./keys.js";
import { buildArrivalMessage } from "./messages.js";
import { startPass } from "./passes.js";
import type { EscalationPlan, TargetRole } from "./plan.js";
import { exhaust } from "./steps.js";
import { addTimer, finishTimer, pullTimer, type TimerRow } from "./timers.js";

const prefix = (incident: string) => `${incident}:arrival:`;
export const arrivalTimerId = (incident: string, ackAttemptId: string): string => `${prefix(incident)}${ackAttemptId.slice(incident.length + 1)}`;
export const isArrivalAttempt = (incident: string, attemptId: string): boolean => attemptId.startsWith(prefix(incident));
const ackAttemptOf = (incident: string, arrivalId: string): string => `${incident}:${arrivalId.slice(prefix(incident).length)}`;
const giveUpTimerId = (arrivalId: string): string => `${arrivalId}:end`;

/** Call outcomes after which nobody can confirm on this attempt any more. */
const ENDED = new Set(["no_answer", "busy", "failed", "undelivered"]);

const responderOf = (a: Pick<CallAttemptsTable, "role" | "target">) => `${a.role}:${a.target}`;
/** Resolution, a false alarm or closing ends the check (their timers are cancelled too). */
const checking = (inc: IncidentsTable) => inc.closed_at === null && JOINABLE_STATES.has(inc.state as IncidentState);

/** What an arrival-check attempt's answer means: a key on a voice call, or digits carried by an SMS reply. */
export function arrivalMeaning(channel: string, status: string, digits: string | null): ArrivalMeaning | undefined {
  return status === "answered" || channel === "sms" ? arrivalMeaningOf(digits ?? undefined) : undefined;
}

export class ArrivalCheck {
  constructor(private readonly c: EscalationContext) {}

  /**
   * In the transaction acknowledging a "going to the door": schedules the check, if the incident's frozen
   * policy has one. Resolves with when it falls due.
   */
  async schedule(trx: Kysely<LoopDb>, inc: IncidentsTable, ack: CallAttemptsTable, at: number): Promise<number | undefined> {
    const arrival = (JSON.parse(inc.plan) as EscalationPlan).arrival;
    if (!arrival) return undefined;
    const dueAt = at + arrival.checkAfterS * 1000;
    await addTimer(trx, { id: arrivalTimerId(inc.id, ack.id), incidentId: inc.id, kind: "arrival", step: ack.step, round: ack.round, dueAt });
    return dueAt;
  }

  /** The `arrival` timer: call (or text) the responder and ask. */
  async runCheck(t: TimerRow): Promise<void> {
    const db = this.c.db;
    const inc = await getIncidentRow(db, t.incident_id);
    const ack = inc ? await db.selectFrom("call_attempts").selectAll().where("id", "=", ackAttemptOf(inc.id, t.id)).executeTakeFirst() : undefined;
    const arrival = inc ? (JSON.parse(inc.plan) as EscalationPlan).arrival : undefined;
    if (!inc || !ack || !arrival || !checking(inc)) {
      await finishTimer(db, t.id, this.c.instanceId, this.c.now(), "skipped");
      return;
    }
    // The give-up timer goes in before the call, so an answer arriving at once always finds it.
    const giveUp = giveUpTimerId(t.id);
    await addTimer(db, { id: giveUp, incidentId: inc.id, kind: "arrival_end", step: ack.step, round: ack.round, dueAt: this.c.now() + arrival.giveUpAfterS * 1000 });
    const care = await carePlanFor(this.c, db, inc.hub, "arrival_check", inc.id);
    const target = { ref: ack.target, role: ack.role as TargetRole, channel: arrival.channel };
    const status = await placeCall(this.c, inc, { attemptId: t.id, step: ack.step, round: ack.round, target, cause: `arrival check: ${responderOf(ack)}`, recovered: t.recovered, message: buildArrivalMessage({ channel: arrival.channel, care }) }, care);
    // No number, or refused for good: nobody can confirm on this attempt, so give up now rather than wait.
    const now = this.c.now();
    const pulled = status === "failed" && (await pullTimer(db, giveUp, now));
    await finishTimer(db, t.id, this.c.instanceId, now, "ran");
    if (pulled) this.c.kick();
  }

  /**
   * An outcome of the check's attempt, inside onOutcome's transaction. Resolves true when the give-up was
   * brought forward (the loop should look now).
   */
  async onOutcome(trx: Kysely<LoopDb>, inc: IncidentsTable, a: CallAttemptsTable, status: string, meaning: ArrivalMeaning | undefined, at: number): Promise<boolean> {
    const giveUp = giveUpTimerId(a.id);
    if (meaning === "with_elder") {
      await trx.updateTable("escalation_timers").set({ done_at: at, result: "cancelled" }).where("id", "=", giveUp).where("done_at", "is", null).execute();
      const entry = await addTimeline(trx, inc.id, { at, actor: responderOf(a), kind: "arrival", cause: "with the elder", detail: { role: a.role, target: a.target, attemptId: a.id } });
      const row = await getIncidentRow(trx, inc.id);
      if (row) await this.c.forwarding.push(trx, toIncident(row), entry);
      return false;
    }
    // Key 2, or the call ended without a confirming key (an SMS only once it could not be delivered).
    const ended = meaning === "could_not_get_there" || ENDED.has(status) || (status === "answered" && a.channel === "voice");
    return ended && (await pullTimer(trx, giveUp, at));
  }

  /** The `arrival_end` timer: no confirmation. Alert; resume the tree if this responder's answer is what stopped it. */
  async runGiveUp(t: TimerRow): Promise<void> {
    let resumed = false;
    await this.c.db.transaction().execute(async (trx) => {
      await lockIncident(trx, t.incident_id);
      const at = this.c.now();
      if (!(await finishTimer(trx, t.id, this.c.instanceId, at, "ran"))) return;
      const inc = await getIncidentRow(trx, t.incident_id);
      if (!inc || !checking(inc)) return;
      const arrivalId = t.id.slice(0, -":end".length);
      const check = await trx.selectFrom("call_attempts").selectAll().where("id", "=", arrivalId).executeTakeFirst();
      if (check && arrivalMeaning(check.channel, check.status, check.digits) === "with_elder") return; // confirmed meanwhile
      const ack = await trx.selectFrom("call_attempts").selectAll().where("id", "=", ackAttemptOf(inc.id, arrivalId)).executeTakeFirst();
      if (!ack) return;
      const plan = JSON.parse(inc.plan) as EscalationPlan;
      const responder = responderOf(ack);
      const why = whyUnconfirmed(check);
      // Someone else acknowledged since, an operator stopped the calls, or new evidence restarted the tree:
      // that decision stands; the operator is told.
      const ours = inc.escalation === "acknowledged" && inc.acknowledged_by === responder;
      const next = ack.step + 1 < plan.steps.length ? ack.step + 1 : undefined;
      const entry = await addTimeline(trx, inc.id, {
        at,
        actor: SYSTEM,
        kind: "arrival_unconfirmed",
        cause: `${responder}: ${why}`,
        detail: { role: ack.role, target: ack.target, attemptId: arrivalId, status: check?.status ?? null, resumeAtStep: ours && next !== undefined ? next + 1 : null },
      });
      let then: string;
      if (ours && next !== undefined) {
        await startPass(this.c, trx, inc.id, next, at, `${responder} did not confirm arriving`);
        resumed = true;
        then = `the call tree resumes at step ${next + 1} (${plan.steps[next]?.name ?? "?"})`;
      } else if (ours) {
        await exhaust(this.c, trx, inc.id, at, `${responder} did not confirm arriving and nobody is left to call`, ["acknowledged"]);
        then = "nobody is left to call";
      } else then = `the call tree is not resumed (escalation ${inc.escalation}${inc.acknowledged_by ? `, acknowledged by ${inc.acknowledged_by}` : ""})`;
      await this.c.alerts.raise(trx, {
        kind: "arrival_unconfirmed",
        detail: `incident ${inc.id} (${inc.type} at hub ${inc.hub}): ${ack.role} ${ack.target} said they would go to the door and has not confirmed arriving (${why}); ${then}`,
        at,
        incidentId: inc.id,
        hub: inc.hub,
      });
      const row = await getIncidentRow(trx, inc.id);
      if (row) await this.c.forwarding.push(trx, toIncident(row), entry);
    });
    if (resumed) this.c.kick();
  }
}

function whyUnconfirmed(check: CallAttemptsTable | undefined): string {
  if (!check) return "the check could not be made";
  if (arrivalMeaningOf(check.digits ?? undefined) === "could_not_get_there") return "answered: could not get there";
  if (check.status === "placed" || check.status === "delivered") return "no answer to the check in time";
  if (check.status === "answered") return "answered without a key";
  return `the check ended ${check.status.replace(/_/g, " ")}`;
}
