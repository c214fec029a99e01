// What the journal is told: the rules' decisions and the devices' news shaped into events. Pure functions: the
// caller says what the hub really did (which sirens it has, which rooms its devices are in) and gets the draft.
import type { EventAction, EventDraft } from "../../../protocol/envelope.js";
import type { Reading } from "../devices/device.js";
import type { HubRole } from "../devices/hub-device.js";
import type { DeviceStatus } from "../devices/poller.js";
import type { PairDeviceReport } from "../transports/zigbee/pairing.js";
import type * as gas from "../rules/gas.js";
import type { SmokeDecision } from "../rules/smoke.js";
import type { SosDecision } from "../rules/sos.js";

export const COORDINATOR_ID = "zigbee-coordinator";

/** What shaping an event needs to know of the home. */
export interface ShapingContext {
  /** The room of a device, when the hub knows it. */
  room(id: string): string | undefined;
  /** The sirens the hub has now: a home without one gets no siren action (events say only what the hub did). */
  sirens: readonly { id: string }[];
}

export function sirenActions(sirens: readonly { id: string }[]): EventAction[] {
  return sirens.map((s) => ({ action: "siren_on", target: s.id }));
}

/** The event of one gas/CO decision (`all` is the whole pass, whose commands a raise reports); null when it is only logged. */
export function gasDecisionEvent(d: gas.Decision, all: readonly gas.Decision[], ctx: ShapingContext): EventDraft | null {
  switch (d.do) {
    case "raise": {
      const actions: EventAction[] = all
        .filter((x): x is Extract<gas.Decision, { do: "close_valve" }> => x.do === "close_valve")
        .map((x) => ({ action: "valve_close", target: x.valve, detail: "commanded; verification follows" }));
      if (all.some((x) => x.do === "siren" && x.on)) actions.push(...sirenActions(ctx.sirens));
      return {
        kind: "alarm", type: d.alarm, severity: "critical", device: d.device, room: d.room,
        data: { value: d.value, unit: d.alarm === "gas" ? "%LEL" : "ppm", setpoint: d.setpoint, trigger: d.trigger },
        actions,
      };
    }
    case "clear":
      return { kind: "alarm_cleared", type: d.alarm, severity: "info", device: d.device, room: ctx.room(d.device), data: { since: d.since, peak: d.peak, valve: "stays closed until reopened on site" } };
    case "valve_verified":
      return {
        kind: "device", type: "valve_closed", severity: "high", device: d.valve, room: ctx.room(d.valve),
        data: { afterMs: d.afterMs, attempts: d.attempts },
        actions: [{ action: "valve_closed", target: d.valve, ok: true, detail: `closed limit confirmed after ${d.afterMs} ms` }],
      };
    case "valve_fault":
      return {
        kind: "alarm", type: "valve_fault", severity: "critical", device: d.valve, room: ctx.room(d.valve),
        data: { reason: d.reason, afterMs: d.afterMs },
        actions: [{ action: "valve_closed", target: d.valve, ok: false, detail: d.reason }, ...sirenActions(ctx.sirens)],
      };
    case "valve_fault_cleared":
      return { kind: "alarm_cleared", type: "valve_fault", severity: "info", device: d.valve, room: ctx.room(d.valve), data: { reason: "closed limit confirmed" } };
    case "valve_opened_on_site":
      return { kind: "audit", type: "valve_opened_on_site", severity: "warning", device: d.valve, room: ctx.room(d.valve), data: { how: "opened at the valve by hand (no alarm active)" } };
    case "close_valve":
    case "siren":
    case "open_valve":
      return null;
  }
}

/** `alarmSince` is the smoke alarm's start after the step that decided `d`. */
export function smokeDecisionEvent(d: SmokeDecision, ctx: ShapingContext & { alarmSince?: number }): EventDraft | null {
  if (d.do === "raise") return { kind: "alarm", type: "smoke", severity: "critical", device: d.device, room: d.room, data: { trigger: "detector reports smoke" }, actions: sirenActions(ctx.sirens) };
  if (d.do === "spread") return { kind: "reading", type: "smoke_spread", severity: "high", device: d.device, room: d.room, data: { alarmSince: ctx.alarmSince } };
  if (d.do === "clear") return { kind: "alarm_cleared", type: "smoke", severity: "info", device: d.device, room: ctx.room(d.device), data: { since: d.since, detectors: d.devices } };
  return null;
}

/** `chirped` are the sirens that gave the caller local feedback; `callerRoom` the room of the button pressed. */
export function sosDecisionEvent(d: SosDecision, o: { chirped: readonly { id: string }[]; callerRoom?: string }): EventDraft | null {
  if (d.do === "raise")
    return { kind: "alarm", type: "sos", severity: "critical", device: d.device, room: d.room, data: { action: d.action }, actions: o.chirped.map((s) => ({ action: "siren_chirp", target: s.id, detail: "local feedback to the caller" })) };
  if (d.do === "repeat") return { kind: "reading", type: "sos_repeat", severity: "high", device: d.device, room: o.callerRoom, data: { presses: d.presses, since: d.since } };
  return null;
}

// ---- device news ---------------------------------------------------------------------------------------------

interface Where {
  id: string;
  room?: string;
}

export function busEvent(bus: string, up: boolean, reason?: string): EventDraft {
  return up
    ? { kind: "device", type: "online", severity: "info", device: bus, data: { component: "bus" } }
    : { kind: "device", type: "offline", severity: "warning", device: bus, data: { component: "bus", reason } };
}

export function badValueEvent(d: Where, problems: unknown): EventDraft {
  return { kind: "device", type: "bad_value", severity: "warning", device: d.id, room: d.room, data: { problems } };
}

/** An RS-485 device's poller status. */
export function pollerStatusEvent(d: Where, status: Exclude<DeviceStatus, "starting">, reason: string, roles: readonly string[]): EventDraft {
  return { kind: "device", type: status, severity: status === "offline" ? "warning" : "info", device: d.id, room: d.room, data: { reason, roles } };
}

/** A Zigbee or UART device coming and going; `extra` is what its transport adds. */
export function onlineEvent(d: Where, online: boolean, data: { reason: string; roles: HubRole[]; transport: "zigbee" | "uart" } & Record<string, unknown>): EventDraft {
  return { kind: "device", type: online ? "online" : "offline", severity: online ? "info" : "warning", device: d.id, room: d.room, data };
}

export function faultEvent(d: Where, fault: boolean, values: Reading["values"]): EventDraft {
  return { kind: "device", type: fault ? "fault" : "fault_cleared", severity: fault ? "warning" : "info", device: d.id, room: d.room, data: { values } };
}

/** tamper / battery_low appearing (a warning) or going away (info). */
export function flagEvent(d: Where & { model: string }, type: "tamper" | "battery_low", on: boolean, battery: unknown): EventDraft {
  return {
    kind: "device", type: on ? type : type === "tamper" ? "tamper_cleared" : "battery_ok", severity: on ? "warning" : "info", device: d.id, room: d.room,
    data: { model: d.model, ...(typeof battery === "number" ? { battery } : {}) },
  };
}

export function detectorLevelEvent(d: Where, signals: Reading["signals"]): EventDraft {
  return { kind: "reading", type: "detector_level", severity: "info", device: d.id, room: d.room, data: { ...signals } };
}

export function breathingRateEvent(d: Where, value: unknown): EventDraft {
  return { kind: "reading", type: "breathing_rate", severity: "info", device: d.id, room: d.room, data: { breathing_rate: value } };
}

export function leftEvent(d: Where & { ieee: string; model: string }, reason: string): EventDraft {
  return { kind: "device", type: "left", severity: "warning", device: d.id, room: d.room, data: { ieee: d.ieee, model: d.model, reason } };
}

export function unsupportedEvent(r: PairDeviceReport): EventDraft {
  return {
    kind: "device", type: "unsupported", severity: "warning", device: r.id ?? `zb-${r.ieee.slice(-6)}`,
    data: { ieee: r.ieee, outcome: r.outcome, model: r.model, vendor: r.vendor, reason: r.reason },
  };
}

export interface CoordinatorChange {
  up: boolean;
  reason?: string;
  retryInMs?: number;
  attempt: number;
  downForMs?: number | null;
}

/** The coordinator going down is a fault; coming back after being down clears it; a first start is not news. */
export function coordinatorEvent(c: CoordinatorChange): EventDraft | null {
  if (!c.up) return { kind: "device", type: "fault", severity: "warning", device: COORDINATOR_ID, data: { component: "zigbee", reason: c.reason, attempt: c.attempt, retryInMs: c.retryInMs } };
  if (c.downForMs != null) return { kind: "device", type: "fault_cleared", severity: "info", device: COORDINATOR_ID, data: { component: "zigbee", attempt: c.attempt, downForMs: c.downForMs } };
  return null;
}
