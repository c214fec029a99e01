// Placing one call or SMS of the escalation (a step's, or an arrival check's) and recording it: the attempt
// row (its id is the provider's idempotency key), the timeline entry, and the operator alerts a provider
// outage or refusal calls for.
import type { CarePlan } from "../careplans/schema.js";
import { addTimeline } from "../incidents/repo.js";
import type { IncidentsTable } from "../store/closed-loop-schema.js";
import { TelephonyRejected, TelephonyUnavailable } from "../telephony/types.js";
import { SYSTEM, type EscalationContext } from "./context.js";
import { GATHER_DIGITS } from "./keys.js";
import { numberFor, type PlannedTarget } from "./plan.js";

export interface CallSpec {
  attemptId: string;
  /** The planned step and round the call belongs to (an arrival check: the responder's). */
  step: number;
  round: number;
  target: PlannedTarget;
  /** The timeline entry's cause, e.g. `step 2: emergency contacts in turn`. */
  cause: string;
  message: string;
  /** The incident's very first call (the first-call latency metric). */
  first?: boolean;
  /**
   * The claim this call runs under was taken over from an earlier run of this relay that died (TimerRow's
   * `recovered`): a request it left unanswered is not in flight any more, so it is placed again at once.
   */
  recovered?: boolean;
}

/**
 * Places the call and records it. Resolves with the attempt's status (`placed`, `failed`, `unavailable`), or
 * undefined when an earlier run got it through already (a crash after placing, a lost claim): it is then
 * placed again only if it never reached the provider, under the same idempotency key.
 */
export async function placeCall(c: EscalationContext, inc: IncidentsTable, spec: CallSpec, care: CarePlan | undefined): Promise<string | undefined> {
  const { attemptId, target } = spec;
  const at = c.now();
  const inserted = await c.db
    .insertInto("call_attempts")
    .values({
      id: attemptId,
      incident_id: inc.id,
      step: spec.step,
      round: spec.round,
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
    const prev = await c.db.selectFrom("call_attempts").select(["status", "requested_at"]).where("id", "=", attemptId).executeTakeFirst();
    if (!prev || prev.status !== "requested" || (prev.requested_at > at - c.claimMs && !spec.recovered)) return undefined;
  }
  const to = numberFor(care, target.ref);
  const finish = async (status: string, detail: string | null, providerRef: string | null = null): Promise<string> => {
    await c.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("call_attempts")
        .set({ status, detail, provider_ref: providerRef, ...(status === "placed" ? { placed_at: c.now() } : { outcome_at: c.now() }) })
        .where("id", "=", attemptId)
        .where("status", "=", "requested")
        .execute();
      await addTimeline(trx, inc.id, {
        at: c.now(),
        actor: SYSTEM,
        kind: "call",
        cause: spec.cause,
        detail: { attemptId, role: target.role, target: target.ref, channel: target.channel, status, ...(detail ? { error: detail } : {}) },
      });
      if (status === "unavailable")
        await c.alerts.raise(trx, {
          kind: "telephony_down",
          detail: `${c.telephony.name}: ${detail ?? "unavailable"}; calls are not going out — call by hand the people this alert lists (their numbers: GET /v1/alerts/{id}/calls, audited)`,
          at: c.now(),
          key: c.telephony.name,
          hub: inc.hub,
          attempts: [attemptId], // the alert names each call it stands for (alerts/operator-alerts.ts)
        });
      if (status === "failed" && detail?.startsWith("rejected"))
        await c.alerts.raise(trx, { kind: "call_rejected", detail: `the provider refused a call to ${target.role} ${target.ref} (check the care plan's number)`, at: c.now(), incidentId: inc.id, hub: inc.hub });
    });
    c.meters?.calls.inc({ channel: target.channel, result: status });
    return status;
  };
  if (!to) return finish("failed", "no number in the care plan");
  try {
    const { providerRef } = await c.telephony.place({
      attemptId,
      to,
      channel: target.channel,
      message: spec.message,
      ...(target.channel === "voice" ? { gatherDigits: GATHER_DIGITS } : {}),
    });
    if (spec.first) c.meters?.firstCall.observe(Math.max(0, c.now() - inc.opened_at) / 1000);
    return await finish("placed", null, providerRef);
  } catch (err) {
    if (err instanceof TelephonyRejected) return finish("failed", `rejected: ${err.message}`);
    const why = err instanceof TelephonyUnavailable ? err.message : `error: ${(err as Error).message}`;
    c.log.warn({ incident: inc.id, attemptId, provider: c.telephony.name, err: why }, "escalation: call could not be placed");
    return finish("unavailable", why);
  }
}
