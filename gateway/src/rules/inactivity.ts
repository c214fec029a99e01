// The inactivity rule: pure (state + params + input + clock → new state + decisions), home-wide. No sign of
// life anywhere for `spanMs` of counted time raises one `inactivity` warning, cleared by the next sign of life.
//
// A sign of life: a reading with motion "moving", or presence turning true on a device (from false or
// unknown): someone appearing. Motion flickering between still and none at the edge of a radar's range is
// not one, so a still body there cannot keep resetting the count. A body lying still under a radar (steady presence,
// steady motion) is not one. What a device last said is kept across its outages: a radar that drops off and
// comes back reporting the same still body has not seen a sign of life.
//
// Counted time is the time since the last sign of life (or since the hub started), minus the night hours
// (`night`, local time in `timeZone`, may wrap past midnight; from == to means no night), and minus any time
// during which no device that can give presence or motion was online (silence is not inactivity). Counting
// starts once the first such device has been heard. `enabled: false` never raises.

import type { InactivityParams } from "./behaviour-params.js";
import type { BehaviourDecision, BehaviourStep, Motion, RadarInput } from "./radar-input.js";

export interface InactivityDeviceState {
  /** The device can give presence or motion (only those keep counting going). */
  senses: boolean;
  online: boolean;
  presence: boolean | null;
  motion: Motion | null;
  room: string | null;
}

export interface InactivityRuleState {
  /** The last sign of life, or the hub's start. */
  lastActivityAt: number;
  lastActivityDevice: string | null;
  lastActivityRoom: string | null;
  /** Inactive time counted since lastActivityAt, up to countedTo. */
  countedMs: number;
  countedTo: number;
  raised: { at: number; device: string; room: string | null } | null;
  devices: Record<string, InactivityDeviceState>;
}

export function initialInactivityState(now: number): InactivityRuleState {
  return { lastActivityAt: now, lastActivityDevice: null, lastActivityRoom: null, countedMs: 0, countedTo: now, raised: null, devices: {} };
}

// --- local time -----------------------------------------------------------------------------------------

const DAY = 86_400_000;
/** Every UTC offset change (DST) happens on a quarter hour, so an offset holds for a whole 15-minute slot. */
const SLOT = 15 * 60_000;
const formatters = new Map<string, Intl.DateTimeFormat>();
const lastOffset = new Map<string, { slot: number; offset: number }>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Local time minus UTC at `t`, in ms. */
function offsetAt(t: number, timeZone: string): number {
  const slot = Math.floor(t / SLOT);
  const c = lastOffset.get(timeZone);
  if (c && c.slot === slot) return c.offset;
  const at = slot * SLOT;
  const n: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(at))) if (p.type !== "literal") n[p.type] = Number(p.value);
  const offset = Date.UTC(n.year ?? 1970, (n.month ?? 1) - 1, n.day ?? 1, n.hour ?? 0, n.minute ?? 0, n.second ?? 0) - at;
  lastOffset.set(timeZone, { slot, offset });
  return offset;
}

const mod = (a: number, m: number): number => ((a % m) + m) % m;

/** Local minute of the day at `t` in `timeZone`. */
export function localMinuteOfDay(t: number, timeZone: string): number {
  return Math.floor(mod(t + offsetAt(t, timeZone), DAY) / 60_000);
}

/** The part of [a, b) outside the night, in ms. */
export function countedBetween(a: number, b: number, night: InactivityParams["night"], timeZone: string): number {
  if (b <= a) return 0;
  if (night === null || mod(night.fromMin, 1440) === mod(night.toMin, 1440)) return b - a;
  const from = mod(night.fromMin, 1440) * 60_000;
  const to = mod(night.toMin, 1440) * 60_000;
  let counted = 0;
  for (let t = a; t < b; ) {
    const ms = mod(t + offsetAt(t, timeZone), DAY);
    const inNight = from < to ? ms >= from && ms < to : ms >= from || ms < to;
    const toBoundary = mod((inNight ? to : from) - ms, DAY) || DAY;
    const end = Math.min(b, t + toBoundary, (Math.floor(t / SLOT) + 1) * SLOT);
    if (!inNight) counted += end - t;
    t = end;
  }
  return counted;
}

const hhmm = (m: number): string => `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;

// --- the rule -------------------------------------------------------------------------------------------

function counting(devices: Record<string, InactivityDeviceState>): boolean {
  for (const id in devices) {
    const d = devices[id]!;
    if (d.senses && d.online) return true;
  }
  return false;
}

export function inactivityStep(prev: InactivityRuleState, params: InactivityParams, input: RadarInput, now: number): BehaviourStep<InactivityRuleState> {
  const decisions: BehaviourDecision[] = [];
  const countedTo = Math.max(prev.countedTo, now);
  const countedMs = prev.countedMs + (counting(prev.devices) ? countedBetween(prev.countedTo, now, params.night, params.timeZone) : 0);
  const state: InactivityRuleState = { ...prev, countedMs, countedTo };

  let sign = false;
  if (input.type === "reading") {
    const old = prev.devices[input.device];
    const senses = input.gives.includes("presence") || input.gives.includes("motion");
    if (old || senses) {
      const d: InactivityDeviceState = old ? { ...old } : { senses, online: true, presence: null, motion: null, room: null };
      d.senses = senses;
      d.online = true;
      if (input.room !== undefined) d.room = input.room;
      if (input.motion === "moving") sign = true;
      if (input.presence === true && d.presence !== true) sign = true;
      if (input.presence !== undefined) d.presence = input.presence;
      if (input.motion !== undefined) d.motion = input.motion;
      state.devices = { ...prev.devices, [input.device]: d };
      if (sign) {
        if (state.raised) decisions.push({ do: "clear", alarm: "inactivity", device: state.raised.device, ...(state.raised.room !== null ? { room: state.raised.room } : {}), since: state.raised.at, reason: "sign_of_life" });
        state.raised = null;
        state.lastActivityAt = now;
        state.lastActivityDevice = input.device;
        state.lastActivityRoom = d.room;
        state.countedMs = 0;
      }
    }
  } else if (input.type === "status") {
    const d = prev.devices[input.device];
    if (d && d.online !== input.online) state.devices = { ...prev.devices, [input.device]: { ...d, online: input.online } };
  }

  if (params.enabled && state.raised === null && state.countedMs >= params.spanMs) {
    const device = state.lastActivityDevice ?? "home";
    decisions.push({
      do: "raise",
      alarm: "inactivity",
      severity: "warning",
      device,
      ...(state.lastActivityRoom !== null ? { room: state.lastActivityRoom } : {}),
      since: state.lastActivityAt,
      evidence: {
        trigger: "no_sign_of_life",
        readings: { lastActivityAt: state.lastActivityAt, lastActivityDevice: state.lastActivityDevice, countedMs: state.countedMs, inactiveMs: now - state.lastActivityAt },
        windows: {
          spanMs: params.spanMs,
          night: params.night === null ? null : `${hhmm(params.night.fromMin)}-${hhmm(params.night.toMin)}`,
          timeZone: params.timeZone,
        },
      },
    });
    state.raised = { at: now, device, room: state.lastActivityRoom };
  }
  return { state, decisions };
}

/**
 * The earliest time a tick could raise the alarm: counted time grows at most as fast as the clock, so not
 * before `spanMs - countedMs` after `countedTo`. Infinity while nothing counts (disabled, already raised, no
 * device that senses online). A tick before then changes only the counted time, which the next step adds up
 * the same way (test/unit/behaviour-tick-idle.test.ts).
 */
export function inactivityDueAt(s: Readonly<InactivityRuleState>, params: InactivityParams): number {
  if (!params.enabled || s.raised !== null || !counting(s.devices)) return Number.POSITIVE_INFINITY;
  return s.countedTo + Math.max(0, params.spanMs - s.countedMs);
}

/**
 * The state saved before a restart, made safe to run on. A raised alarm stays the same episode and the last
 * sign of life is kept. The downtime is not counted (nothing was heard: silence is not inactivity) and every
 * device counts as not heard since (counting resumes when one is); what each device last said is kept, as
 * across its own outages. `trustCounted` false: the counted time saved may predate a sign of life that was not
 * saved, so counting restarts from 0 (later, never earlier).
 */
export function restoreInactivityState(saved: InactivityRuleState, now: number, trustCounted: boolean): InactivityRuleState {
  const devices: InactivityRuleState["devices"] = {};
  for (const [id, d] of Object.entries(saved.devices)) devices[id] = { ...d, online: false };
  return {
    ...saved,
    lastActivityAt: Math.min(saved.lastActivityAt, now),
    countedMs: trustCounted ? saved.countedMs : 0,
    countedTo: now,
    raised: saved.raised ? { ...saved.raised } : null,
    devices,
  };
}
