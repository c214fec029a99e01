// What the parts of the escalation share: the store, the telephony adapter, the incident service, the
// policies, the clock, this instance's claim name, metrics, and a way to wake the timer loop.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { Counter, Histogram, type Registry } from "prom-client";
import type { Alerter } from "../alerts/alerter.js";
import type { CarePlan } from "../careplans/schema.js";
import { CarePlanError, readCarePlan, readCarePlans } from "../careplans/store.js";
import type { IncidentForwarding } from "../incidents/forwarding.js";
import type { IncidentService } from "../incidents/service.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import type { Telephony } from "../telephony/types.js";
import type { EscalationPlan } from "./plan.js";
import type { PolicySet } from "./policy.js";

export const SYSTEM = "system:escalation";

/**
 * Attempt statuses that end a call without anyone reached: when every call of a step ends so, the tree moves
 * on at once instead of waiting out the step. `unavailable` (the provider itself is down) is not among them:
 * the step's wait then gives the provider time to come back while the operator, alerted, calls by hand; the
 * tree still moves on after the wait, it never stalls.
 */
const FINISHED = new Set(["failed", "no_answer", "busy", "undelivered"]);

/** Every call of a step is over and nobody was reached (an answered voice call without a confirming key counts). */
export function stepOver(attempts: Array<{ status: string; channel: string }>, expected: number): boolean {
  return attempts.length >= Math.max(1, expected) && attempts.every((s) => FINISHED.has(s.status) || (s.status === "answered" && s.channel === "voice"));
}

export interface Meters {
  calls: Counter<"channel" | "result">;
  firstCall: Histogram;
  opened: Counter<"type">;
}

export function createMeters(registry: Registry | undefined): Meters | undefined {
  if (!registry) return undefined;
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    calls: get("anxin_relay_escalation_calls_total", () => new Counter({ name: "anxin_relay_escalation_calls_total", help: "call and SMS requests made by the escalation", labelNames: ["channel", "result"] as const, registers: [registry] })),
    firstCall: get("anxin_relay_escalation_first_call_seconds", () => new Histogram({ name: "anxin_relay_escalation_first_call_seconds", help: "incident opened → first call request accepted by the provider", buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30], registers: [registry] })),
    opened: get("anxin_relay_incidents_opened_total", () => new Counter({ name: "anxin_relay_incidents_opened_total", help: "incidents opened", labelNames: ["type"] as const, registers: [registry] })),
  };
}

export interface EscalationContext {
  db: Kysely<LoopDb>;
  telephony: Telephony;
  incidents: IncidentService;
  forwarding: IncidentForwarding;
  alerts: Alerter;
  policies: PolicySet;
  log: Logger;
  /** Names this instance's claims; unique per running relay. */
  instanceId: string;
  now: () => number;
  claimMs: number;
  meters: Meters | undefined;
  /** Wake the timer loop (a timer just fell due). */
  kick(): void;
}

/**
 * Takes the incident's row for the rest of the transaction (a row lock on PostgreSQL; SQLite runs one writer
 * anyway). The transactions that move a tree — a step scheduling its successor, an outcome pulling that
 * forward, an arrival giving up — take it first, so they run one after the other and each sees what the
 * other wrote: otherwise a callback could look for a next step not yet committed, and the tree would wait
 * out the whole step instead of moving on at once.
 */
export async function lockIncident(db: Kysely<LoopDb>, id: string): Promise<void> {
  await db.updateTable("incidents").set((eb) => ({ escalation: eb.ref("escalation") })).where("id", "=", id).execute();
}

/** The step (and round) after this one, or undefined after the last. */
export function nextOf(plan: EscalationPlan, step: number, round: number): { step: number; round: number } | undefined {
  const s = plan.steps[step];
  if (s && round < s.repeat) return { step, round: round + 1 };
  return step + 1 < plan.steps.length ? { step: step + 1, round: 0 } : undefined;
}

/**
 * The hub's care plan for the escalation (an audited read). A stored plan that no longer validates must not
 * stop the loop (inside ingest's commit it would hold up every hub's events): the incident goes on without
 * it, and the operator is told.
 */
export async function carePlanFor(c: EscalationContext, db: Kysely<LoopDb>, hub: string, purpose: string, incidentId?: string): Promise<CarePlan | undefined> {
  try {
    return (await readCarePlan(db, hub, { actor: SYSTEM, purpose, at: c.now() }))?.plan;
  } catch (err) {
    if (!(err instanceof CarePlanError)) throw err;
    await planNoLongerValid(c, db, hub, incidentId);
    return undefined;
  }
}

/** carePlanFor for several hubs at once (audited per entry of `hubs`, as that many reads would be). */
export async function carePlansFor(c: EscalationContext, db: Kysely<LoopDb>, hubs: readonly string[], purpose: string): Promise<Map<string, CarePlan | undefined>> {
  const out = new Map<string, CarePlan | undefined>();
  for (const [hub, got] of await readCarePlans(db, hubs, { actor: SYSTEM, purpose, at: c.now() })) {
    if (got instanceof CarePlanError) await planNoLongerValid(c, db, hub);
    out.set(hub, got instanceof CarePlanError ? undefined : got?.plan);
  }
  return out;
}

function planNoLongerValid(c: EscalationContext, db: Kysely<LoopDb>, hub: string, incidentId?: string): Promise<void> {
  return c.alerts.raise(db, { kind: "no_care_plan", detail: `hub ${hub}: the stored care plan is no longer valid; set it again (anxin-relay careplan set)`, at: c.now(), incidentId, key: hub, hub });
}
