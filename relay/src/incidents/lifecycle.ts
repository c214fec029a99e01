// The incident lifecycle as a pure function: state + action (+ a little context) → the next state, or a
// refusal that says why. No clock, no database: the repository records the result with its time, actor and
// cause, so every rule about which step may follow which lives here and is unit-tested on its own.
//
//   received → confirming → confirmed | false_alarm
//   confirmed → responding (dispatches) → coordinated (ops-centre tickets) → resolved → follow_up_due → closed
//   false_alarm → closed
import { z } from "zod";

export const INCIDENT_STATES = [
  "received",
  "confirming",
  "confirmed",
  "false_alarm",
  "responding",
  "coordinated",
  "resolved",
  "follow_up_due",
  "closed",
] as const;
export type IncidentState = (typeof INCIDENT_STATES)[number];

/** States in which a repeated alarm of the same type joins the incident instead of opening a new one. */
export const JOINABLE_STATES: ReadonlySet<IncidentState> = new Set(["received", "confirming", "confirmed", "responding", "coordinated"]);

export const FALSE_ALARM_REASONS = [
  "cooking_smoke",
  "device_test",
  "device_fault",
  "pressed_by_mistake",
  // The radar alarms (fall, vital_absent, vital_abnormal, inactivity): named so the per-model report shows
  // which false alarms a radar's placement or settings could avoid, rather than lumping them under "other".
  "lying_down_to_rest",
  "out_of_radar_range",
  "visitor",
  "pet",
  "other",
] as const;
export type FalseAlarmReason = (typeof FALSE_ALARM_REASONS)[number];

/** Who was sent: the public services, the gas company, or a person going to the door. */
export const DISPATCH_SERVICES = ["police_110", "fire_119", "ambulance_120", "gas_company", "door"] as const;
export type DispatchService = (typeof DISPATCH_SERVICES)[number];

export const OPS_CENTRES = ["district", "street"] as const;
export type OpsCentre = (typeof OPS_CENTRES)[number];

export const falseAlarmReasonSchema = z.enum(FALSE_ALARM_REASONS);
export const dispatchServiceSchema = z.enum(DISPATCH_SERVICES);
export const opsCentreSchema = z.enum(OPS_CENTRES);

export type IncidentAction =
  /** The first call or message of the escalation went out. */
  | { kind: "start_confirming" }
  | { kind: "confirm" }
  | { kind: "mark_false_alarm"; reason: FalseAlarmReason }
  | { kind: "record_dispatch"; service: DispatchService }
  | { kind: "record_ticket"; centre: OpsCentre; ref: string }
  | { kind: "resolve" }
  /** The follow-up (return visit) falls due some time after resolution. */
  | { kind: "follow_up_due" }
  | { kind: "record_follow_up" }
  | { kind: "close" };

export interface LifecycleContext {
  /** The incident's type: `hub_offline` is maintenance, resolved when the hub returns, no return visit. */
  type: string;
  followUpRecorded: boolean;
}

export type TransitionResult =
  | { ok: true; to: IncidentState; changed: boolean }
  | { ok: false; error: string };

const MAINTENANCE_TYPES = new Set(["hub_offline"]);

export function isMaintenance(type: string): boolean {
  return MAINTENANCE_TYPES.has(type);
}

const move = (from: IncidentState, to: IncidentState): TransitionResult => ({ ok: true, to, changed: from !== to });
const refuse = (from: IncidentState, what: string): TransitionResult => ({ ok: false, error: `cannot ${what} an incident that is ${from}` });

export function transition(from: IncidentState, action: IncidentAction, ctx: LifecycleContext): TransitionResult {
  const maintenance = isMaintenance(ctx.type);
  switch (action.kind) {
    case "start_confirming":
      // Only the first call moves it; later calls (or a call after an operator already confirmed) do not.
      return from === "received" ? move(from, "confirming") : { ok: true, to: from, changed: false };
    case "confirm":
      if (from === "received" || from === "confirming") return move(from, "confirmed");
      if (from === "confirmed") return move(from, from);
      return refuse(from, "confirm");
    case "mark_false_alarm":
      if (maintenance) return { ok: false, error: "a hub_offline incident is not an alarm; resolve it instead" };
      // Also after confirmation: whoever reaches the door may find burnt toast.
      if (from === "received" || from === "confirming" || from === "confirmed") return move(from, "false_alarm");
      return refuse(from, "mark as a false alarm");
    case "record_dispatch":
      // Dispatching help is itself the confirmation: in a fire nobody waits for the paperwork.
      if (from === "received" || from === "confirming" || from === "confirmed" || from === "responding") return move(from, "responding");
      if (from === "coordinated") return move(from, from);
      return refuse(from, "record a dispatch on");
    case "record_ticket":
      if (from === "confirmed" || from === "responding" || from === "coordinated") return move(from, "coordinated");
      return refuse(from, "record an operations-centre ticket on");
    case "resolve":
      if (from === "confirmed" || from === "responding" || from === "coordinated") return move(from, "resolved");
      // A hub coming back resolves its offline incident whatever stage the calls reached.
      if (maintenance && (from === "received" || from === "confirming")) return move(from, "resolved");
      return refuse(from, "resolve");
    case "follow_up_due":
      if (from === "resolved") return maintenance ? { ok: false, error: "maintenance incidents have no follow-up visit" } : move(from, "follow_up_due");
      return refuse(from, "set a follow-up due on");
    case "record_follow_up":
      if (from === "resolved" || from === "follow_up_due") return move(from, "follow_up_due");
      return refuse(from, "record a follow-up visit on");
    case "close":
      if (from === "false_alarm") return move(from, "closed");
      if (from === "resolved" && maintenance) return move(from, "closed");
      if (from === "resolved" || from === "follow_up_due")
        return ctx.followUpRecorded ? move(from, "closed") : { ok: false, error: "record the follow-up visit before closing" };
      return refuse(from, "close");
  }
}

/** Whether the escalation (calls) should stop once this state is reached. */
export function stopsEscalation(state: IncidentState): boolean {
  return state !== "received" && state !== "confirming";
}
