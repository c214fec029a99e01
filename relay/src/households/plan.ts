// The kit for a home, derived from its risk level, its rooms and gas appliances, and the elder's consent; and
// the district plan's minimums every plan must meet unless a reason is recorded. Pure functions: the store
// and the API decide when to call them.
import type { Assessment, ConsentDevice, DeviceKind, PlanItem, RiskLevel } from "./schema.js";
import { CONSENT_DEVICES, DEVICE_KINDS } from "./schema.js";

/** The elder's current consent per sensitive device (absent or withdrawn: false). */
export type Consents = Record<ConsentDevice, boolean>;
export const NO_CONSENT: Consents = { camera: false, vital_radar: false };

export interface Withheld {
  kind: ConsentDevice;
  room: string;
  reason: string;
}

export interface DerivedPlan {
  items: PlanItem[];
  /** Devices the level calls for but the elder has not consented to: not installed. */
  withheld: Withheld[];
}

export interface Shortfall {
  kind: DeviceKind;
  required: number;
  planned: number;
}

/** Assumed: a fall in the last year or walking with an aid or a wheelchair is a high risk of falling. */
export const fallRiskHigh = (a: Assessment) => a.fallsLastYear >= 1 || a.mobility === "walking_aid" || a.mobility === "wheelchair";
/** District plan: fall and vital-sign radars for those at high risk of falling or bed-bound. */
export const needsRadars = (a: Assessment) => fallRiskHigh(a) || a.mobility === "bedbound";

const roomsOf = (a: Assessment, kind: string) => a.rooms.filter((r) => r.kind === kind).map((r) => r.id);
const first = (a: Assessment) => (a.rooms[0] as { id: string }).id;
/** Where the elder sleeps: the bedrooms, or in a one-room home the living room (or the first room). */
const sleeping = (a: Assessment) => {
  const b = roomsOf(a, "bedroom");
  return b.length ? b : [roomsOf(a, "living")[0] ?? first(a)];
};
/** A shared room for a camera: never a bathroom; a bedroom only when the home has nothing else. */
const commonRoom = (a: Assessment): string => roomsOf(a, "living")[0] ?? a.rooms.find((r) => r.kind !== "bathroom" && r.kind !== "bedroom")?.id ?? (sleeping(a)[0] as string);

/** The district's minimums for a home (counts of active devices; kinds not named have none). */
export function districtMinimums(a: Assessment, level: RiskLevel, consent: Consents): Partial<Record<DeviceKind, number>> {
  const m: Partial<Record<DeviceKind, number>> = {
    // "smoke detection for everyone and more of it for medium and high risk" (assumed: more = at least two)
    smoke_detector: level === "low" ? 1 : 2,
    // "gas detection with automatic shut-off and a one-key call terminal for everyone"
    gas_detector: 1,
    gas_valve: 1,
    sos_button: 1,
  };
  // "a camera for high risk" and the vital-sign radar: only ever with the elder's consent.
  if (level === "high" && consent.camera) m.camera = 1;
  if (needsRadars(a)) {
    m.fall_radar = 1;
    if (consent.vital_radar) m.vital_radar = 1;
  }
  return m;
}

/** The plan for a home: devices with counts and rooms, the district minimums met, consent respected. */
export function derivePlan(a: Assessment, level: RiskLevel, consent: Consents): DerivedPlan {
  const items: PlanItem[] = [];
  const withheld: Withheld[] = [];
  const add = (kind: DeviceKind, room: string, why: string, count = 1) => {
    const it = items.find((i) => i.kind === kind && i.room === room);
    if (it) it.count += count;
    else items.push({ kind, room, count, why });
  };
  const sensitive = (kind: ConsentDevice, room: string, why: string) => {
    if (consent[kind]) add(kind, room, why);
    else withheld.push({ kind, room, reason: "no consent recorded" });
  };
  const min = districtMinimums(a, level, consent);

  // Smoke: where the elder sleeps at every level; living rooms from medium; kitchens and other rooms at high.
  for (const r of sleeping(a)) add("smoke_detector", r, "where the elder sleeps");
  if (level !== "low") for (const r of roomsOf(a, "living")) add("smoke_detector", r, "escape route and living area");
  if (level === "high") for (const r of [...roomsOf(a, "kitchen"), ...roomsOf(a, "other")]) add("smoke_detector", r, "high risk: every room but the bathroom");
  const smoke = items.filter((i) => i.kind === "smoke_detector").reduce((s, i) => s + i.count, 0);
  if (smoke < (min.smoke_detector ?? 0)) add("smoke_detector", sleeping(a)[0] as string, "district minimum", (min.smoke_detector ?? 0) - smoke);

  // Gas: a detector in every room with a gas appliance; without any listed, the kitchen (the minimum holds).
  const gasRooms = [...new Set(a.gasAppliances.map((g) => g.room))];
  const kitchen = roomsOf(a, "kitchen")[0] ?? first(a);
  for (const r of gasRooms.length ? gasRooms : [kitchen]) add("gas_detector", r, "gas appliance in this room");
  const stove = a.gasAppliances.find((g) => g.kind === "stove")?.room ?? gasRooms[0] ?? kitchen;
  add("gas_valve", stove, "automatic shut-off on the gas inlet");
  // CO (assumed): where a gas water heater or heater burns, the usual cause of CO poisoning at home.
  for (const r of new Set(a.gasAppliances.filter((g) => g.kind === "water_heater" || g.kind === "space_heater").map((g) => g.room))) add("co_detector", r, "flued gas appliance");

  // One-key call: by the bed; from medium also in the bathroom, where falls happen (assumed).
  add("sos_button", sleeping(a)[0] as string, "within reach of the bed");
  if (level !== "low") for (const r of roomsOf(a, "bathroom")) add("sos_button", r, "falls happen here");

  if (level === "high") sensitive("camera", commonRoom(a), "high risk: lets the duty operator confirm an alarm");

  if (needsRadars(a)) {
    const bed = sleeping(a)[0] as string;
    if (a.mobility !== "bedbound") for (const r of roomsOf(a, "bathroom")) add("fall_radar", r, "high risk of falling");
    add("fall_radar", bed, a.mobility === "bedbound" ? "bed-bound: a fall from the bed" : "high risk of falling");
    sensitive("vital_radar", bed, a.mobility === "bedbound" ? "bed-bound: breathing and heartbeat in bed" : "high risk of falling: breathing and heartbeat in bed");
  }
  items.sort((x, y) => DEVICE_KINDS.indexOf(x.kind) - DEVICE_KINDS.indexOf(y.kind));
  return { items, withheld };
}

const active = (items: PlanItem[]) => items.filter((i) => i.retiredAt === undefined);

/** Where a plan falls below the minimums (active devices only); empty when it meets them. */
export function shortfalls(items: PlanItem[], minimums: Partial<Record<DeviceKind, number>>): Shortfall[] {
  const out: Shortfall[] = [];
  for (const kind of DEVICE_KINDS) {
    const required = minimums[kind] ?? 0;
    const planned = active(items)
      .filter((i) => i.kind === kind)
      .reduce((s, i) => s + i.count, 0);
    if (planned < required) out.push({ kind, required, planned });
  }
  return out;
}

/** Sensitive devices a plan names without the elder's consent: each one a problem. */
export function consentProblems(items: PlanItem[], consent: Consents): string[] {
  return active(items)
    .filter((i) => (CONSENT_DEVICES as readonly string[]).includes(i.kind) && !consent[i.kind as ConsentDevice])
    .map((i) => `${i.kind} in ${i.room}: the elder's consent is not recorded`);
}

/** Consent withdrawn: every active device of that kind is retired (kept in the plan, marked, not installed). */
export function retire(items: PlanItem[], kind: ConsentDevice, at: number, reason: string): PlanItem[] {
  return items.map((i) => (i.kind === kind && i.retiredAt === undefined ? { ...i, retiredAt: at, retiredReason: reason } : i));
}

/** Consent given: the derived plan's devices of that kind join the plan where none is active yet. */
export function addConsented(items: PlanItem[], derived: PlanItem[], kind: ConsentDevice): PlanItem[] {
  const have = new Set(active(items).filter((i) => i.kind === kind).map((i) => i.room));
  return [...items, ...derived.filter((d) => d.kind === kind && !have.has(d.room))];
}
