// What a Zigbee device is for, read from its converter definition's exposes (never from its model name
// or raw bits): smoke, gas, CO, SOS, siren, valve, presence, fall, breathing. A device with none of these
// gets a reason instead, so no device is silently ignored.
import type { HubRole } from "../../devices/hub-device.js";
import { sirenCapabilities, type SirenCapabilities } from "./siren-patterns.js";

export { pickSirenMode } from "./siren-patterns.js";

/** The parts of a converter expose this module reads. */
export interface ExposeLike {
  type: string;
  name?: string;
  property?: string;
  access?: number;
  values?: readonly unknown[];
  value_on?: unknown;
  value_off?: unknown;
  value_min?: number;
  value_max?: number;
  features?: readonly ExposeLike[];
}

/** How to read and drive each role of one device: everything here is a converter property name or value. */
export interface RolePlan {
  roles: HubRole[];
  /** Boolean state properties that are the detector's alarm, per detector role. */
  smoke?: string;
  gas?: string;
  co?: string;
  /** `action` values that are a press of the call button. */
  sos?: { property: string; press: string[] };
  siren?: { property: string; modes: string[] };
  /** Every feature of the siren's `warning`: what its alarms can be made of (siren-patterns.ts). */
  sirenCaps?: SirenCapabilities;
  valve?: { property: string; closed: unknown; open: unknown; close: unknown; openCmd: unknown };
  presence?: string;
  fall?: { property: string; fall: string[]; maybe: string[] };
  breathing?: string;
  /** Device events the converter can report. */
  tamper?: string;
  batteryLow?: string;
  battery?: string;
  /** Why the device has no role, or why a configured role cannot be honoured. */
  problems: string[];
}

const ACCESS_SET = 2;

function flatten(exposes: readonly ExposeLike[]): ExposeLike[] {
  const out: ExposeLike[] = [];
  for (const e of exposes) {
    out.push(e);
    if (e.features && e.type !== "composite") out.push(...flatten(e.features));
  }
  return out;
}

const prop = (e: ExposeLike) => e.property ?? e.name ?? "";

// Per-model names for a fall (no common one): the value(s) that mean fall, and those that mean "maybe".
const FALL_PROPERTIES: Record<string, { fall: string[]; maybe: string[] }> = {
  fall_down_status: { fall: ["fall"], maybe: ["maybe_fall"] },
  fall_status: { fall: ["fall_alarm"], maybe: ["fall_warning"] },
  status: { fall: ["falling"], maybe: [] },
};

const NOT_A_PRESS = new Set(["off", "release", "none", "clear"]);

/**
 * Roles from the exposes. `description` is the definition's own description: a plain on/off switch is a
 * valve only when its definition says it is one (or the install says so through `forced`).
 */
export function planRoles(exposes: readonly ExposeLike[], description: string, forced?: readonly HubRole[]): RolePlan {
  const all = flatten(exposes);
  const find = (name: string, type?: string) => all.find((e) => prop(e) === name && (!type || e.type === type));
  const plan: RolePlan = { roles: [], problems: [] };
  const derived = new Set<HubRole>();

  if (find("smoke", "binary")) {
    plan.smoke = "smoke";
    derived.add("smoke_detector");
  }
  if (find("gas", "binary")) {
    plan.gas = "gas";
    derived.add("gas_detector");
  }
  if (find("carbon_monoxide", "binary")) {
    plan.co = "carbon_monoxide";
    derived.add("co_detector");
  }

  const action = find("action", "enum");
  if (action) {
    const values = (action.values ?? []).map(String);
    const press = values.filter((v) => !NOT_A_PRESS.has(v));
    const looksSos = values.some((v) => /^(emergency|sos|panic)$/.test(v)) || /\b(sos|emergency|panic)\b/i.test(description);
    if (press.length) {
      plan.sos = { property: prop(action), press };
      if (looksSos) derived.add("sos_button");
    }
  }

  const warning = all.find((e) => prop(e) === "warning" && e.type === "composite" && ((e.access ?? 0) & ACCESS_SET) !== 0);
  if (warning) {
    const mode = warning.features?.find((f) => prop(f) === "mode");
    plan.siren = { property: "warning", modes: (mode?.values ?? []).map(String) };
    plan.sirenCaps = sirenCapabilities(warning);
    derived.add("siren");
  }

  const gasValve = find("gas_valve_state", "binary");
  const onOff = all.find((e) => prop(e) === "state" && e.type === "binary" && ((e.access ?? 0) & ACCESS_SET) !== 0);
  if (gasValve) {
    plan.valve = { property: prop(gasValve), closed: gasValve.value_off ?? "CLOSE", open: gasValve.value_on ?? "OPEN", close: gasValve.value_off ?? "CLOSE", openCmd: gasValve.value_on ?? "OPEN" };
    derived.add("valve");
  } else if (onOff) {
    // An on/off valve: ON = open (gas flows), OFF = closed.
    plan.valve = { property: "state", closed: onOff.value_off ?? "OFF", open: onOff.value_on ?? "ON", close: onOff.value_off ?? "OFF", openCmd: onOff.value_on ?? "ON" };
    if (/valve/i.test(description)) derived.add("valve");
  }

  const presence = find("presence", "binary") ?? find("occupancy", "binary");
  if (presence) {
    plan.presence = prop(presence);
    derived.add("presence");
  }

  for (const [name, vals] of Object.entries(FALL_PROPERTIES)) {
    const e = find(name, "enum");
    if (e && vals.fall.every((v) => (e.values ?? []).map(String).includes(v))) {
      plan.fall = { property: name, ...vals };
      derived.add("fall_detector");
      break;
    }
  }
  if (find("breathing_rate", "numeric")) {
    plan.breathing = "breathing_rate";
    derived.add("breathing_monitor");
  }

  if (find("tamper", "binary")) plan.tamper = "tamper";
  if (find("battery_low", "binary")) plan.batteryLow = "battery_low";
  if (find("battery", "numeric")) plan.battery = "battery";

  if (forced?.length) {
    // The install's word wins, but only for roles the converter can actually carry.
    const can: Record<HubRole, boolean> = {
      smoke_detector: !!plan.smoke, gas_detector: !!plan.gas, co_detector: !!plan.co, sos_button: !!plan.sos,
      siren: !!plan.siren, valve: !!plan.valve, presence: !!plan.presence, fall_detector: !!plan.fall, breathing_monitor: !!plan.breathing,
    };
    for (const r of forced) {
      if (can[r]) plan.roles.push(r);
      else plan.problems.push(`configured role '${r}' is not possible: the device's converter exposes nothing for it`);
    }
  } else plan.roles = [...derived];

  if (!plan.roles.length && !plan.problems.length) {
    const names = [...new Set(all.map(prop).filter(Boolean))];
    plan.problems.push(`exposes ${names.length ? names.join(", ") : "nothing"}; none of it is a role Anxin uses (smoke, gas, CO, SOS, siren, valve, presence, fall, breathing)`);
  }
  return plan;
}
