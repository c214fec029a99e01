// The gas and CO rule: pure (state + input + clock → new state + decisions), so every path is
// testable with a clock the test controls. It never decides to open a valve except in `reopen`,
// which only the on-site command reaches (invariant 2).
import type { Signals } from "../devices/signals.js";

export type GasKind = "gas" | "co";

export interface CoTier {
  ppm: number;
  forMs: number;
}

export interface ValveParams {
  readonly ratedCloseMs: number;
  readonly retryMs: number;
}

/** Read only: the caller derives a new object when the home changes (a valve joins or leaves), never edits one. */
export interface GasRuleParams {
  readonly gas: { readonly setpointLel: number; readonly hysteresisLel: number; readonly clearHoldMs: number };
  readonly co: { readonly tiers: readonly CoTier[]; readonly hysteresisPpm: number; readonly clearHoldMs: number };
  /** A reading older than this cannot prove the air is clear. */
  readonly staleMs: number;
  readonly valves: Readonly<Record<string, ValveParams>>;
  readonly hasSiren: boolean;
}

export interface DetectorState {
  kind: GasKind;
  room?: string;
  value: number | null;
  flag: boolean;
  over: boolean;
  /** What made it `over`, for the event. */
  trigger: string | null;
  fault: boolean;
  offline: boolean;
  at: number;
  /** Per CO tier: since when the concentration has been at or above it. */
  tierSince: Array<number | null>;
  /**
   * Reports on change only (a Zigbee IAS detector): its last report stays true until it says otherwise, so
   * age does not make it stale; its availability window (offline) is what says it has gone silent.
   */
  eventDriven?: boolean;
}

export interface AlarmState {
  since: number;
  device: string;
  trigger: string;
  peak: number | null;
  belowSince: number | null;
}

export interface ValveState {
  /** Set when the rule first commanded the close; cleared only by an on-site reopen. */
  commandedAt: number | null;
  lastSentAt: number | null;
  attempts: number;
  closed: boolean | null;
  verifiedAt: number | null;
  fault: string | null;
  offline: boolean;
}

export interface GasRuleState {
  detectors: Record<string, DetectorState>;
  alarms: Partial<Record<GasKind, AlarmState>>;
  valves: Record<string, ValveState>;
  sirenOn: boolean;
}

export type Decision =
  | { do: "close_valve"; valve: string; attempt: number }
  | { do: "open_valve"; valve: string }
  | { do: "siren"; on: boolean; reason: string }
  | { do: "raise"; alarm: GasKind; device: string; room?: string; trigger: string; value: number | null; setpoint: number }
  | { do: "clear"; alarm: GasKind; device: string; since: number; peak: number | null }
  | { do: "valve_verified"; valve: string; afterMs: number; attempts: number }
  | { do: "valve_fault"; valve: string; reason: string; afterMs: number | null }
  | { do: "valve_fault_cleared"; valve: string }
  | { do: "valve_opened_on_site"; valve: string };

export type RuleInput =
  | { type: "detector"; device: string; kind: GasKind; room?: string; signals: Signals; eventDriven?: boolean }
  | { type: "valve"; device: string; signals: Signals }
  | { type: "status"; device: string; online: boolean }
  | { type: "tick" };

export interface Step {
  state: GasRuleState;
  decisions: Decision[];
}

export function initialState(valves: string[]): GasRuleState {
  const v: Record<string, ValveState> = {};
  for (const id of valves) v[id] = freshValve();
  return { detectors: {}, alarms: {}, valves: v, sirenOn: false };
}

function freshValve(): ValveState {
  return { commandedAt: null, lastSentAt: null, attempts: 0, closed: null, verifiedAt: null, fault: null, offline: false };
}

const isTrue = (v: number | boolean | undefined) => v === true || (typeof v === "number" && v !== 0);

/** The set point that triggers at once: the install's, or the device's own if that is lower (more protective). */
export function instantSetpoint(kind: GasKind, p: GasRuleParams, signals: Signals): number {
  const own = kind === "gas" ? signals.gas_setpoint_lel : signals.co_setpoint_ppm;
  const base = kind === "gas" ? p.gas.setpointLel : Math.min(...p.co.tiers.filter((t) => t.forMs === 0).map((t) => t.ppm), Infinity);
  return typeof own === "number" && own > 0 ? Math.min(base, own) : base;
}

/** Below this (and no alarm flag, fresh reading) the air counts as clear. */
function clearLevel(kind: GasKind, p: GasRuleParams): number {
  if (kind === "gas") return p.gas.setpointLel - p.gas.hysteresisLel;
  return Math.min(...p.co.tiers.map((t) => t.ppm)) - p.co.hysteresisPpm;
}

export function step(prev: GasRuleState, p: GasRuleParams, input: RuleInput, now: number): Step {
  const state = structuredClone(prev);
  const decisions: Decision[] = [];
  switch (input.type) {
    case "detector":
      updateDetector(state, p, input, now);
      break;
    case "valve":
      updateValve(state, input.device, input.signals, now, decisions);
      break;
    case "status":
      if (state.detectors[input.device]) state.detectors[input.device]!.offline = !input.online;
      if (state.valves[input.device]) state.valves[input.device]!.offline = !input.online;
      break;
    case "tick":
      break;
  }
  evaluateAlarms(state, p, now, decisions);
  superviseValves(state, p, now, decisions);
  settleSiren(state, decisions);
  return { state, decisions };
}

function updateDetector(state: GasRuleState, p: GasRuleParams, input: Extract<RuleInput, { type: "detector" }>, now: number): void {
  const s = input.signals;
  const value = input.kind === "gas" ? s.gas_lel : s.co_ppm;
  const prev = state.detectors[input.device];
  const d: DetectorState = {
    kind: input.kind,
    room: input.room,
    value: typeof value === "number" ? value : null,
    flag: isTrue(s.alarm),
    over: false,
    trigger: null,
    fault: isTrue(s.fault),
    offline: false,
    at: now,
    tierSince: input.kind === "co" ? p.co.tiers.map((_, i) => prev?.tierSince[i] ?? null) : [],
  };
  if (input.eventDriven) d.eventDriven = true;
  const sp = instantSetpoint(input.kind, p, s);
  if (d.flag) d.trigger = "device alarm output";
  else if (d.value !== null && d.value >= sp) d.trigger = `${d.value} ${input.kind === "gas" ? "%LEL" : "ppm"} ≥ set point ${sp}`;
  if (input.kind === "co") {
    p.co.tiers.forEach((t, i) => {
      const above = d.value !== null && d.value >= t.ppm;
      d.tierSince[i] = above ? (d.tierSince[i] ?? now) : null;
      const since = d.tierSince[i];
      if (!d.trigger && since != null && t.forMs > 0 && now - since >= t.forMs)
        d.trigger = `${d.value} ppm ≥ ${t.ppm} ppm for ${Math.round((now - since) / 60000)} min`;
    });
  }
  d.over = d.trigger !== null;
  state.detectors[input.device] = d;
}

function evaluateAlarms(state: GasRuleState, p: GasRuleParams, now: number, out: Decision[]): void {
  for (const kind of ["gas", "co"] as const) {
    const dets = Object.entries(state.detectors).filter(([, d]) => d.kind === kind);
    const over = dets.find(([, d]) => d.over);
    const active = state.alarms[kind];
    if (over && !active) {
      const [device, d] = over;
      state.alarms[kind] = { since: now, device, trigger: d.trigger!, peak: d.value, belowSince: null };
      out.push({ do: "raise", alarm: kind, device, room: d.room, trigger: d.trigger!, value: d.value, setpoint: kind === "gas" ? p.gas.setpointLel : Math.min(...p.co.tiers.map((t) => t.ppm)) });
      for (const [valve, v] of Object.entries(state.valves)) {
        if (v.commandedAt === null) {
          v.commandedAt = now;
          v.closed = v.closed === true ? true : false;
        }
        // Re-send even to a valve already commanded: a new alarm is no time to trust old state.
        v.lastSentAt = now;
        v.attempts++;
        out.push({ do: "close_valve", valve, attempt: v.attempts });
      }
      continue;
    }
    if (!active) continue;
    for (const [, d] of dets) if (d.value !== null && (active.peak === null || d.value > active.peak)) active.peak = d.value;
    const clear = dets.length > 0 && dets.every(([, d]) => !d.over && !d.flag && !d.offline && (d.eventDriven || now - d.at <= p.staleMs) && (d.value === null || d.value < clearLevel(kind, p)));
    if (!clear) {
      active.belowSince = null;
      continue;
    }
    active.belowSince ??= now;
    const hold = kind === "gas" ? p.gas.clearHoldMs : p.co.clearHoldMs;
    if (now - active.belowSince >= hold) {
      out.push({ do: "clear", alarm: kind, device: active.device, since: active.since, peak: active.peak });
      delete state.alarms[kind];
    }
  }
}

function updateValve(state: GasRuleState, id: string, s: Signals, now: number, out: Decision[]): void {
  const v = state.valves[id];
  if (!v) return;
  v.offline = false;
  const closed = s.valve_closed === undefined ? null : isTrue(s.valve_closed);
  const wasClosed = v.closed;
  v.closed = closed;
  if (v.commandedAt === null) return;
  if (closed === true && wasClosed !== true) {
    v.verifiedAt = now;
    out.push({ do: "valve_verified", valve: id, afterMs: now - v.commandedAt, attempts: v.attempts });
    if (v.fault) {
      v.fault = null;
      out.push({ do: "valve_fault_cleared", valve: id });
    }
    return;
  }
  if (closed === false && wasClosed === true && v.verifiedAt !== null) {
    // It was proven closed and now reads open: someone reset it by hand at the valve.
    const alarm = Object.keys(state.alarms).length > 0;
    if (!alarm) {
      state.valves[id] = { ...freshValve(), closed: false };
      out.push({ do: "valve_opened_on_site", valve: id });
      return;
    }
    v.verifiedAt = null;
    v.lastSentAt = now;
    v.attempts++;
    out.push({ do: "close_valve", valve: id, attempt: v.attempts });
  }
  if (isTrue(s.valve_fault) && !v.fault && closed !== true) {
    v.fault = "actuator reports jammed or obstructed";
    out.push({ do: "valve_fault", valve: id, reason: v.fault, afterMs: now - v.commandedAt });
  }
}

function superviseValves(state: GasRuleState, p: GasRuleParams, now: number, out: Decision[]): void {
  for (const [id, v] of Object.entries(state.valves)) {
    if (v.commandedAt === null || v.closed === true) continue;
    const cfg = p.valves[id] ?? { ratedCloseMs: 15000, retryMs: 2000 };
    if (v.lastSentAt !== null && now - v.lastSentAt >= cfg.retryMs) {
      v.lastSentAt = now;
      v.attempts++;
      out.push({ do: "close_valve", valve: id, attempt: v.attempts });
    }
    if (!v.fault && now - v.commandedAt > cfg.ratedCloseMs) {
      v.fault = v.offline ? "valve not reachable on the bus" : `not confirmed closed within its rated ${cfg.ratedCloseMs} ms`;
      out.push({ do: "valve_fault", valve: id, reason: v.fault, afterMs: now - v.commandedAt });
    }
  }
}

function settleSiren(state: GasRuleState, out: Decision[]): void {
  const alarms = Object.keys(state.alarms);
  const faults = Object.entries(state.valves).filter(([, v]) => v.fault);
  const want = alarms.length > 0 || faults.length > 0;
  if (want !== state.sirenOn) {
    state.sirenOn = want;
    out.push({ do: "siren", on: want, reason: want ? [...alarms, ...faults.map(([id]) => `valve_fault:${id}`)].join(", ") : "all clear" });
  }
}

/**
 * A valve that joined after start (a Zigbee valve paired or restored). During an active gas/CO alarm it is
 * commanded closed at once, like every other valve.
 */
export function addValve(prev: GasRuleState, id: string, now: number): Step {
  const state = structuredClone(prev);
  const decisions: Decision[] = [];
  if (state.valves[id]) return { state, decisions };
  const v = freshValve();
  state.valves[id] = v;
  if (Object.keys(state.alarms).length > 0) {
    v.commandedAt = now;
    v.closed = false;
    v.lastSentAt = now;
    v.attempts = 1;
    decisions.push({ do: "close_valve", valve: id, attempt: 1 });
  }
  return { state, decisions };
}

/**
 * A device that left the network (a Zigbee detector or valve). Its last report no longer speaks for the air
 * or the valve: a detector that said "clear" must not keep counting as clear, and a valve that comes back is
 * added afresh (and commanded closed if an alarm is still on). An alarm it raised stays until the detectors
 * that remain prove the air clear; with none left of that kind it does not clear on its own.
 */
export function removeDevice(prev: GasRuleState, id: string): GasRuleState {
  if (!prev.detectors[id] && !prev.valves[id]) return prev;
  const state = structuredClone(prev);
  delete state.detectors[id];
  delete state.valves[id];
  return state;
}

/** Why an on-site reopen must be refused now; empty when it may go ahead. */
export function reopenBlockers(state: GasRuleState): string[] {
  const out: string[] = [];
  for (const [kind, a] of Object.entries(state.alarms)) out.push(`${kind} alarm active since ${new Date(a.since).toISOString()} (${a.device})`);
  for (const [id, d] of Object.entries(state.detectors)) {
    if (d.fault) out.push(`detector ${id} reports a fault`);
    if (d.offline) out.push(`detector ${id} is offline`);
    if (d.over) out.push(`detector ${id} is over its set point`);
  }
  return out;
}

/** The one way the rule ever opens a valve: an on-site person asked and nothing blocks it. */
export function reopen(prev: GasRuleState, opts: { knownDetectors: number }): { ok: true; step: Step } | { ok: false; reasons: string[] } {
  const reasons = reopenBlockers(prev);
  if (Object.keys(prev.detectors).length < opts.knownDetectors) reasons.push("not every gas/CO detector has reported since start: wait for the first readings");
  if (reasons.length) return { ok: false, reasons };
  const state = structuredClone(prev);
  const decisions: Decision[] = [];
  for (const id of Object.keys(state.valves)) {
    state.valves[id] = freshValve();
    decisions.push({ do: "open_valve", valve: id });
  }
  settleSiren(state, decisions);
  return { ok: true, step: { state, decisions } };
}

/**
 * The state saved before a restart (crash, power cut), made safe to run on; `base` is a fresh state with the
 * valves configured now, `keep` says whether a saved device not among them may still appear (a Zigbee device
 * restored from its own database after the start). Across the downtime:
 *
 * - An alarm stays the same episode (`since`, device, trigger, peak): no second `raise`, and its `clear` names
 *   the original `since`. Its clear hold restarts: it counts only fresh readings after the boot, never the
 *   downtime, so it is never shortened.
 * - A detector's readings are not news: each one is kept only as "known, not heard since the restart" (stale
 *   by age, never event-driven), so it cannot prove clear air or allow a reopen until it is heard again. Its CO
 *   tier windows keep their start (a clock behind the saved times restarts them now).
 * - A valve latched closed stays latched (only an on-site reopen unlatches it). One proven closed keeps its
 *   proof (a read-back showing it open is then a hand reset, or a re-close during an alarm); one not proven
 *   closed restarts its verification window now. During an alarm every valve is commanded closed again, and
 *   a valve not proven closed is too: the decisions say so. A valve fault stays raised until the close is proven.
 * - The siren is wanted on again when an alarm or a valve fault is active (a `siren` decision).
 */
export function restoreState(saved: GasRuleState, base: GasRuleState, p: GasRuleParams, now: number, keep: (id: string) => boolean): Step {
  const state = structuredClone(base);
  state.sirenOn = false;
  const decisions: Decision[] = [];
  const notAfterNow = (t: number): number => Math.min(t, now);
  for (const kind of ["gas", "co"] as const) {
    const a = saved.alarms[kind];
    if (a) state.alarms[kind] = { since: a.since, device: a.device, trigger: a.trigger, peak: a.peak, belowSince: null };
  }
  for (const [id, d] of Object.entries(saved.detectors)) {
    if (!keep(id)) continue;
    const tiers = d.kind === "co" && d.tierSince.length === p.co.tiers.length ? d.tierSince : p.co.tiers.map(() => null);
    state.detectors[id] = {
      kind: d.kind,
      ...(d.room !== undefined ? { room: d.room } : {}),
      value: null,
      flag: false,
      over: false,
      trigger: null,
      fault: false,
      offline: false,
      at: now - p.staleMs - 1,
      tierSince: d.kind === "co" ? tiers.map((t) => (t === null ? null : notAfterNow(t))) : [],
    };
  }
  const alarm = Object.keys(state.alarms).length > 0;
  for (const [id, v] of Object.entries(saved.valves)) {
    if (!state.valves[id] && !keep(id)) continue;
    if (v.commandedAt === null) {
      state.valves[id] = freshValve();
      continue;
    }
    const proven = v.closed === true;
    state.valves[id] = {
      commandedAt: proven ? notAfterNow(v.commandedAt) : now,
      lastSentAt: null,
      attempts: v.attempts,
      closed: proven,
      verifiedAt: proven && v.verifiedAt !== null ? notAfterNow(v.verifiedAt) : null,
      fault: v.fault,
      offline: false,
    };
  }
  for (const [id, v] of Object.entries(state.valves)) {
    if (!alarm && (v.commandedAt === null || v.closed === true)) continue;
    if (v.commandedAt === null) {
      v.commandedAt = now;
      v.closed = v.closed === true;
    }
    v.lastSentAt = now;
    v.attempts++;
    decisions.push({ do: "close_valve", valve: id, attempt: v.attempts });
  }
  settleSiren(state, decisions);
  return { state, decisions };
}
