// What the hub knows of its cellular path, and the maintenance event a change of it makes. Pure: the caller
// polls the modem (at-modem.ts) and journals the draft. A broken second path is a warning (someone should fix
// it before the broadband fails), never an alarm.
import type { EventDraft } from "../../../protocol/envelope.js";
import type { RegState, SimState } from "./at-parse.js";

export interface ModemStatus {
  sim: SimState;
  registration: RegState;
  /** -113…-51 dBm, null when the module does not know. */
  rssiDbm: number | null;
  operator: string | null;
  checkedAt: number;
}

/** The device id the events name. */
export const CELLULAR_DEVICE_ID = "cellular-modem";

export type CellularHealth = "no_sim" | "no_service" | "ok";

export function cellularHealth(s: ModemStatus): CellularHealth {
  if (s.sim !== "ready") return "no_sim";
  if (s.registration !== "home" && s.registration !== "roaming") return "no_service";
  return "ok";
}

/** What was last reported of the path: a health, or `fault` (the module does not answer or its port is gone). */
export type ReportedHealth = CellularHealth | "fault";

/**
 * The event for going from `prev` to `next`, or null when nothing a person must know changed. At the first
 * check (`prev` null) only a problem is reported: a path that works from the start needs no news.
 */
export function cellularStatusEvent(prev: ModemStatus | null, next: ModemStatus): EventDraft | null {
  return cellularHealthEvent(prev === null ? null : cellularHealth(prev), next);
}

/** As cellularStatusEvent, from what was last reported (a fault included) rather than the last status. */
export function cellularHealthEvent(before: ReportedHealth | null, next: ModemStatus): EventDraft | null {
  const now = cellularHealth(next);
  if (now === before || (before === null && now === "ok")) return null;
  const data = { sim: next.sim, registration: next.registration, rssiDbm: next.rssiDbm, operator: next.operator, checkedAt: next.checkedAt };
  return {
    kind: "device",
    type: `cellular_${now}`,
    severity: now === "ok" ? "info" : "warning",
    device: CELLULAR_DEVICE_ID,
    data: before === null ? data : { ...data, was: before },
  };
}

/** The module stopped answering (or its port vanished): a maintenance event, once until it answers again. */
export function cellularFaultEvent(reason: string): EventDraft {
  return { kind: "device", type: "cellular_fault", severity: "warning", device: CELLULAR_DEVICE_ID, data: { reason } };
}
