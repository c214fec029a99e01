// The vital-signs rule: pure (state + room params + input + clock → new state + decisions), per device whose
// profile gives heart rate and/or breathing (other devices are ignored: no state, no cost).
//
// - `vital_absent` (critical): someone in bed (the last `inBed`; a device without `inBed` uses presence) and
//   neither a heart rate nor a breathing reading for `vitals.absentMs` while the radar is online. A non-null
//   reading of either, or body movement ("moving"), restarts the window; out of bed ends it. Clears when a
//   reading returns or the person leaves the bed. A radar that falls silent is not an absence: the hub marks
//   it offline (its check-in window is shorter than absentMs) and the window is dropped.
// - `vital_abnormal` (high): a signal out of its range on every reading of it for `vitals.abnormalMs`, and on
//   at least 3 readings (an in-range reading restarts; null readings neither extend nor restart). One alarm per
//   device whichever signal; it clears when every abnormal signal has been in range on 3 consecutive readings.
// - `trend`: per device, one summary per `vitals.trendEveryMs` interval that had a reading, emitted on the
//   first step (reading or tick) at or after the interval's end. Intervals are contiguous from the device's
//   first reading; after an interval without any reading the next one starts at the next reading.
//
// 0 (or any non-positive or non-finite value) is "no reading", like null: the radars send 0 for "nothing".
// Offline (`status` online:false) drops the absence window and any abnormal run (`withdrawn`, "offline") and
// forgets the last heart rate and breathing; raised alarms stay raised.

import { paramsForRoom, type BehaviourParams, type Range, type RoomParams } from "./behaviour-params.js";
import { statusChange } from "./device-status.js";
import type { BehaviourDecision, BehaviourStep, RadarInput, Stat } from "./radar-input.js";

export type VitalSignal = "heartRate" | "breathing";

/** Out-of-range tracking of one signal. */
export interface SignalWatch {
  /** First out-of-range reading of the current run; null when the last reading was in range. */
  since: number | null;
  /** Out-of-range readings in the run, and the extremes among them. */
  n: number;
  min: number | null;
  max: number | null;
  /** The run lasted abnormalMs: this signal keeps `vital_abnormal` raised until 3 in-range readings. */
  abnormal: boolean;
  inRange: number;
}

export interface Accumulator {
  n: number;
  sum: number;
  min: number;
  max: number;
}

export interface TrendInterval {
  from: number;
  /** Readings (of any kind) from the device in this interval. */
  readings: number;
  heartRate: Accumulator | null;
  breathing: Accumulator | null;
}

export interface VitalsDeviceState {
  room: string | null;
  online: boolean;
  givesInBed: boolean;
  inBed: boolean | null;
  presence: boolean | null;
  /** Latest value of each signal; null = no reading. */
  heartRate: number | null;
  breathing: number | null;
  lastVitalAt: number | null;
  /** Start of the absence window (in bed, no reading, no movement since). */
  absentSince: number | null;
  absent: { at: number; since: number } | null;
  hr: SignalWatch;
  br: SignalWatch;
  abnormal: { at: number; since: number; signal: VitalSignal } | null;
  trend: TrendInterval | null;
}

export interface VitalsRuleState {
  devices: Record<string, VitalsDeviceState>;
}

export function initialVitalsState(): VitalsRuleState {
  return { devices: {} };
}

const noWatch = (abnormal = false): SignalWatch => ({ since: null, n: 0, min: null, max: null, abnormal, inRange: 0 });

function fresh(): VitalsDeviceState {
  return {
    room: null,
    online: true,
    givesInBed: false,
    inBed: null,
    presence: null,
    heartRate: null,
    breathing: null,
    lastVitalAt: null,
    absentSince: null,
    absent: null,
    hr: noWatch(),
    br: noWatch(),
    abnormal: null,
    trend: null,
  };
}


const roomOf = (d: VitalsDeviceState): { room?: string } => (d.room === null ? {} : { room: d.room });

function windows(rp: RoomParams): Record<string, number | boolean> {
  const v = rp.vitals;
  return {
    absentMs: v.absentMs,
    abnormalMs: v.abnormalMs,
    heartRateMin: v.heartRate.min,
    heartRateMax: v.heartRate.max,
    breathingMin: v.breathing.min,
    breathingMax: v.breathing.max,
    dangerous: rp.stillness.dangerous,
  };
}

/** undefined: the frame does not carry the signal; null: "no reading" (null, 0, nonsense). */
function value(v: number | null | undefined): number | null | undefined {
  if (v === undefined) return undefined;
  return v !== null && Number.isFinite(v) && v > 0 ? v : null;
}

const inBedOf = (d: VitalsDeviceState): boolean => (d.givesInBed ? d.inBed === true : d.presence === true);

function watch(w: SignalWatch, v: number, r: Range, now: number): SignalWatch {
  if (v < r.min || v > r.max) {
    if (w.since === null) return { ...w, since: now, n: 1, min: v, max: v, inRange: 0 };
    return { ...w, n: w.n + 1, min: Math.min(w.min ?? v, v), max: Math.max(w.max ?? v, v), inRange: 0 };
  }
  return { since: null, n: 0, min: null, max: null, abnormal: w.abnormal, inRange: w.abnormal ? w.inRange + 1 : 0 };
}

function add(a: Accumulator | null, v: number): Accumulator {
  return a === null ? { n: 1, sum: v, min: v, max: v } : { n: a.n + 1, sum: a.sum + v, min: Math.min(a.min, v), max: Math.max(a.max, v) };
}

/** Mean to 0.1 (beats or breaths per minute need no more). */
const stat = (a: Accumulator | null): Stat | null => (a === null ? null : { n: a.n, mean: Math.round((a.sum / a.n) * 10) / 10, min: a.min, max: a.max });

/** Closes the device's trend interval if it has ended. Returns `d` when nothing changed. */
function rollTrend(id: string, d: VitalsDeviceState, rp: RoomParams, now: number, out: BehaviourDecision[]): VitalsDeviceState {
  const every = rp.vitals.trendEveryMs;
  const t = d.trend;
  if (t === null || now < t.from + every) return d;
  if (t.readings === 0) return { ...d, trend: null };
  out.push({ do: "trend", device: id, ...roomOf(d), from: t.from, to: t.from + every, heartRate: stat(t.heartRate), breathing: stat(t.breathing), inBed: d.inBed });
  const from = t.from + Math.floor((now - t.from) / every) * every;
  return { ...d, trend: { from, readings: 0, heartRate: null, breathing: null } };
}

/** Closes what is due on one device (trend interval, absence window, an abnormal run). Returns `d` when nothing changed. */
function evaluate(id: string, d: VitalsDeviceState, rp: RoomParams, now: number, out: BehaviourDecision[]): VitalsDeviceState {
  let c = rollTrend(id, d, rp, now, out);
  if (c.online && c.absent === null && c.absentSince !== null && now >= c.absentSince + rp.vitals.absentMs) {
    const since = c.absentSince;
    out.push({
      do: "raise",
      alarm: "vital_absent",
      severity: "critical",
      device: id,
      ...roomOf(c),
      since,
      evidence: {
        trigger: "no_vital_signs",
        readings: { inBed: c.inBed, presence: c.presence, heartRate: c.heartRate, breathing: c.breathing, lastVitalAt: c.lastVitalAt, absentMs: now - since },
        windows: windows(rp),
      },
    });
    c = { ...c, absent: { at: now, since } };
  }
  if (abnormalDue(c, rp, now)) {
    c = { ...c };
    judgeAbnormal(id, c, rp, now, out);
  }
  return c;
}

/** A run out of range for abnormalMs raises; every abnormal signal back in range clears. Mutates `d` (a copy). */
function judgeAbnormal(id: string, d: VitalsDeviceState, rp: RoomParams, now: number, out: BehaviourDecision[]): void {
  const v = rp.vitals;
  for (const [signal, key] of [["heartRate", "hr"], ["breathing", "br"]] as const) {
    const w = d[key];
    if (!w.abnormal && w.since !== null && w.n >= 3 && now - w.since >= v.abnormalMs) {
      d[key] = { ...w, abnormal: true };
      if (!d.abnormal) {
        out.push({
          do: "raise",
          alarm: "vital_abnormal",
          severity: "high",
          device: id,
          ...roomOf(d),
          since: w.since,
          evidence: {
            trigger: signal === "heartRate" ? "heart_rate_out_of_range" : "breathing_out_of_range",
            readings: { signal, heartRate: d.heartRate, breathing: d.breathing, min: w.min, max: w.max, outOfRange: w.n, outOfRangeMs: now - w.since, inBed: d.inBed },
            windows: windows(rp),
          },
        });
        d.abnormal = { at: now, since: w.since, signal };
      }
    } else if (w.abnormal && w.inRange >= 3) d[key] = noWatch();
  }
  if (d.abnormal && !d.hr.abnormal && !d.br.abnormal) {
    out.push({ do: "clear", alarm: "vital_abnormal", device: id, ...roomOf(d), since: d.abnormal.at, reason: "in_range" });
    d.abnormal = null;
  }
}

/** A run whose window has closed since its last reading (readings come every few seconds; the clock does not wait). */
const abnormalDue = (d: VitalsDeviceState, rp: RoomParams, now: number): boolean =>
  d.online && [d.hr, d.br].some((w) => !w.abnormal && w.since !== null && w.n >= 3 && now - w.since >= rp.vitals.abnormalMs);

function applyReading(id: string, old: VitalsDeviceState, input: Extract<RadarInput, { type: "reading" }>, rp: RoomParams, now: number, out: BehaviourDecision[]): VitalsDeviceState {
  const d: VitalsDeviceState = { ...old };
  if (input.room !== undefined) d.room = input.room;
  d.online = true;
  d.givesInBed = input.gives.includes("inBed");
  if (input.presence !== undefined) d.presence = input.presence;
  if (input.inBed !== undefined) d.inBed = input.inBed;
  const hr = value(input.heartRate);
  const br = value(input.breathing);
  if (hr !== undefined) d.heartRate = hr;
  if (br !== undefined) d.breathing = br;
  const vital = typeof hr === "number" || typeof br === "number";
  if (vital) d.lastVitalAt = now;

  // Absence.
  if (!inBedOf(d)) {
    d.absentSince = null;
    if (d.absent) {
      out.push({ do: "clear", alarm: "vital_absent", device: id, ...roomOf(d), since: d.absent.at, reason: "left_bed" });
      d.absent = null;
    }
  } else if (vital) {
    d.absentSince = now;
    if (d.absent) {
      out.push({ do: "clear", alarm: "vital_absent", device: id, ...roomOf(d), since: d.absent.at, reason: "vital_signs_returned" });
      d.absent = null;
    }
  } else if (input.motion === "moving") {
    if (!d.absent) d.absentSince = now;
  } else d.absentSince ??= now;

  // Abnormal.
  const v = rp.vitals;
  if (typeof hr === "number") d.hr = watch(d.hr, hr, v.heartRate, now);
  if (typeof br === "number") d.br = watch(d.br, br, v.breathing, now);
  judgeAbnormal(id, d, rp, now, out);

  // Trend (the interval that ended was closed before this reading, by the caller).
  const t = d.trend ?? { from: now, readings: 0, heartRate: null, breathing: null };
  d.trend = {
    from: t.from,
    readings: t.readings + 1,
    heartRate: typeof hr === "number" ? add(t.heartRate, hr) : t.heartRate,
    breathing: typeof br === "number" ? add(t.breathing, br) : t.breathing,
  };
  return d;
}

function goOffline(id: string, d: VitalsDeviceState, now: number, out: BehaviourDecision[]): VitalsDeviceState {
  if (d.absentSince !== null && d.absent === null) out.push({ do: "withdrawn", alarm: "vital_absent", device: id, ...roomOf(d), afterMs: now - d.absentSince, reason: "offline" });
  const runs = [d.hr, d.br].filter((w) => !w.abnormal && w.since !== null).map((w) => w.since as number);
  if (runs.length > 0 && d.abnormal === null) out.push({ do: "withdrawn", alarm: "vital_abnormal", device: id, ...roomOf(d), afterMs: now - Math.min(...runs), reason: "offline" });
  return {
    ...d,
    online: false,
    heartRate: null,
    breathing: null,
    absentSince: null,
    hr: noWatch(d.hr.abnormal),
    br: noWatch(d.br.abnormal),
  };
}

export function vitalsStep(prev: VitalsRuleState, params: BehaviourParams, input: RadarInput, now: number): BehaviourStep<VitalsRuleState> {
  const decisions: BehaviourDecision[] = [];
  let devices = prev.devices;
  const put = (id: string, d: VitalsDeviceState): void => {
    if (devices === prev.devices) devices = { ...prev.devices };
    devices[id] = d;
  };

  if (input.type === "reading") {
    const old = prev.devices[input.device];
    if (old || input.gives.includes("heartRate") || input.gives.includes("breathing")) {
      let d = old ?? fresh();
      const room = input.room ?? d.room;
      const rp = paramsForRoom(params, room);
      // Close the interval that ended before this reading joins the next one; the absence window is judged
      // after the reading (a reading that brings a heart rate at the deadline is in time).
      d = rollTrend(input.device, d, rp, now, decisions);
      put(input.device, applyReading(input.device, d, input, rp, now, decisions));
    }
  } else if (input.type === "status") {
    const next = statusChange(prev.devices[input.device], input, (d) => goOffline(input.device, d, now, decisions));
    if (next) put(input.device, next);
  }

  for (const id of Object.keys(devices)) {
    const d = devices[id]!;
    const next = evaluate(id, d, paramsForRoom(params, d.room), now, decisions);
    if (next !== d) put(id, next);
  }
  return { state: devices === prev.devices ? prev : { devices }, decisions };
}

/**
 * True when a tick cannot change the rule's state or decide anything, whatever the time: no device has a
 * trend interval open, an absence window running while online, or an out-of-range run that could become
 * abnormal. Every timed transition in `evaluate` needs one of those. test/unit/behaviour-tick-idle.test.ts
 * holds the rule to this.
 */
export function vitalsTickIdle(s: Readonly<VitalsRuleState>): boolean {
  for (const id in s.devices) {
    const d = s.devices[id]!;
    if (d.trend !== null) return false;
    if (!d.online) continue;
    if (d.absent === null && d.absentSince !== null) return false;
    if ((!d.hr.abnormal && d.hr.since !== null) || (!d.br.abnormal && d.br.since !== null)) return false;
  }
  return true;
}

/**
 * One device's state saved before a restart, made safe to run on. Raised alarms stay the same episodes; an
 * out-of-range run keeps its start; in bed / presence are kept (as across the device's own outages). The heart
 * rate and breathing are forgotten (they must be heard again) and so is the trend interval. The absence window
 * keeps its start only if the vital signs were already absent when the state was saved; if they were still
 * coming, its start is unknown (it restarts with each reading) and it restarts with the first reading after the
 * restart: longer, never shorter. A clock behind the saved times restarts the windows now.
 */
export function restoreVitalsDevice(d: VitalsDeviceState, now: number): VitalsDeviceState {
  const notAfterNow = (t: number | null): number | null => (t === null ? null : Math.min(t, now));
  const flowing = d.heartRate !== null || d.breathing !== null;
  const w = (s: SignalWatch): SignalWatch => ({ ...s, since: notAfterNow(s.since), inRange: 0 });
  return {
    ...d,
    online: true,
    heartRate: null,
    breathing: null,
    absentSince: flowing ? null : notAfterNow(d.absentSince),
    absent: d.absent ? { ...d.absent } : null,
    hr: w(d.hr),
    br: w(d.br),
    abnormal: d.abnormal ? { ...d.abnormal } : null,
    trend: null,
  };
}
