// A seeded, deterministic corpus of labelled mmWave radar traces: what an MR60FDA1 (fall) and an MR60BHA1
// (vital signs) would put on their serial lines while an elder lives through a scenario, as timestamped byte
// chunks, with what the hub must raise (and by when) and what it must not.
//
// The traces are synthetic: a behaviour model (where the person is, moving or still, fall flags, heart rate and
// breathing as noisy series) rendered through the real framing (`encodeReport`/`encodeFrame`). Nothing here is
// recorded from people; docs/fall-detection.md says what that means for the figures.
//
// Every label is derived from the bytes actually rendered: an event is the first *intact* frame that says it
// (a frame the noise model corrupted does not count), so a window is measured from what the hub could know.
import { encodeFrame, encodeReport, encodeProductInfo } from "../../gateway/src/transports/uart/seeed-5359.js";
import type { Motion, RadarReport } from "../../gateway/src/transports/uart/codec.js";

// --- vocabulary ---------------------------------------------------------------------------------------------

export const ALARM_TYPES = ["fall", "vital_absent", "vital_abnormal", "inactivity"] as const;
export type AlarmType = (typeof ALARM_TYPES)[number];
export type DeviceEventType = "offline" | "online";
export type ExpectType = AlarmType | DeviceEventType;

export type RadarProfile = "seeed-mr60fda1" | "seeed-mr60bha1";

export interface TraceRadar {
  id: string;
  profile: RadarProfile;
  room: string;
  settleMs?: number;
  offlineAfterMs?: number;
}

export interface Chunk {
  /** ms from the trace's start */
  at: number;
  radar: string;
  bytes: Buffer;
  /**
   * The line paused inside this chunk (line noise: a split write): the radar's next chunk is the rest of the
   * same transmission, and a radar sends nothing else in between (its UART sends a frame whole: a reply to a
   * query waits for the frame being sent).
   */
  continues?: true;
}

export interface PowerChange {
  radar: string;
  on: boolean;
  at: number;
}

export interface Expectation {
  type: ExpectType;
  /** The device that must raise it (alarms: the radar; offline/online: the radar). Undefined: any. */
  device?: string;
  /** evidence.trigger the alarm must carry, when it matters */
  trigger?: string;
  /** When the condition became knowable to the hub (the first intact frame showing it), ms from start. */
  event: number;
  /** The window in force for this expectation, ms (latency beyond it is the hub's own delay). */
  windowMs: number;
  /** Raised before this is wrong (too early). Default: event. */
  earliest?: number;
  /** Raised after this is late: event + window + 2 s (inactivity: the counted-time due + 2 s). */
  by: number;
  /** The condition lasts until here; more alarms of this type before it are repeats, not false alarms. */
  until: number;
  why: string;
}

export interface RulesConfig {
  fall: { confirmMs: number; getUpMs: number };
  stillness: { windowMs: number };
  vitals: { absentMs: number; abnormalMs: number; heartRate: { min: number; max: number }; breathing: { min: number; max: number }; trendEveryMs: number };
  inactivity: { enabled: boolean; spanMs: number; night: { from: string; to: string } | null; timeZone: string };
}

export interface RoomConfig {
  stillness?: { dangerous?: boolean; windowMs?: number };
}

export interface Trace {
  name: string;
  category: Category;
  seed: number;
  /** The virtual wall clock at the trace's start (epoch ms): inactivity's night is read in local time. */
  startAt: number;
  durationMs: number;
  radars: TraceRadar[];
  rooms: Record<string, RoomConfig>;
  rules: RulesConfig;
  chunks: Chunk[];
  power: PowerChange[];
  expect: Expectation[];
  /** Alarm types that must not be raised (outside the expectations' own windows). */
  forbid: AlarmType[];
  /** Radar facts that cannot be told apart from a case with the opposite label: reported, not in the targets. */
  ambiguous?: string;
  notes: string;
  /** Intact frames rendered per radar (the hub's `frames` counter should reach these). */
  framesIntact: Record<string, number>;
  /** Frames the noise model damaged, per radar. */
  framesDamaged: Record<string, number>;
}

export const CATEGORIES = [
  "fall_stays_down",
  "fall_get_up",
  "sit_down_fast",
  "lie_down",
  "still_bath_long",
  "still_bath_short",
  "nobody_home",
  "sleep_normal",
  "vital_absent",
  "vital_partial_loss",
  "vital_dropout",
  "vital_abnormal",
  "vital_spike",
  "unplugged",
  "noise_normal",
  "noise_fall",
  "fall_flag_clears",
  "fall_artefacts",
  "fall_out_of_view",
  "fall_struggle",
  "inactivity_day",
  "normal_day",
] as const;
export type Category = (typeof CATEGORIES)[number];

export const CATEGORY_TEXT: Record<Category, string> = {
  fall_stays_down: "real fall, the person stays down 60 s to 20 min (bathroom or living room)",
  fall_get_up: "fall flag, then the person gets up within the confirmation window",
  sit_down_fast: "sitting down fast: the radar raises its fall flag briefly, then normal movement",
  lie_down: "lying down on a bed or sofa (no flag, or a false flag then settling in a non-dangerous room)",
  still_bath_long: "long stillness in the bathroom (dangerous room), no fall flag",
  still_bath_short: "stillness in the bathroom shorter than the window",
  nobody_home: "nobody home for hours",
  sleep_normal: "sleep in bed with normal vital signs (nights and naps, a night trip to the bathroom)",
  vital_absent: "in bed, heart rate and breathing both lost from some moment",
  vital_partial_loss: "in bed, only one of heart rate / breathing lost",
  vital_dropout: "in bed, both readings lost briefly (shorter than the window), several times",
  vital_abnormal: "in bed, heart rate or breathing out of range, sustained",
  vital_spike: "in bed, out-of-range spikes shorter than the window",
  unplugged: "a radar loses power mid-trace (some come back)",
  noise_normal: "normal activity with line noise and corrupted frames",
  noise_fall: "a real fall with line noise and corrupted frames",
  fall_flag_clears: "fall flag cleared by the radar while the person is still down",
  fall_artefacts: "fall, then brief motion artefacts while lying",
  fall_out_of_view: "fall, then the person is out of the radar's view (presence drops)",
  fall_struggle: "fall, then a failed attempt to get up (movement past getUpMs, the flag stays), then still on the floor",
  inactivity_day: "no sign of life for the inactivity span (night hours not counted)",
  normal_day: "a normal day at home",
};

export const BATH = "bath-radar";
export const BED = "bed-radar";
export const LIVING = "living-radar";
export const BEDROOM = "bedroom-radar";

export const DEFAULT_RULES: RulesConfig = {
  fall: { confirmMs: 30_000, getUpMs: 5_000 },
  stillness: { windowMs: 600_000 },
  vitals: { absentMs: 60_000, abnormalMs: 300_000, heartRate: { min: 40, max: 130 }, breathing: { min: 8, max: 30 }, trendEveryMs: 60_000 },
  inactivity: { enabled: true, spanMs: 12 * 3600_000, night: { from: "22:00", to: "07:00" }, timeZone: "Asia/Shanghai" },
};

/** The radars' check-in window (both profiles' checkInMs; the corpus sets no offlineAfterMs). */
export const OFFLINE_AFTER_MS = 15_000;

/** Late margin of every target: the alarm must come within the window in force + this. */
export const SLACK_MS = 2000;

const SEC = 1000;
const MIN = 60_000;
const HOUR = 3600_000;

// --- PRNG -----------------------------------------------------------------------------------------------------

/** mulberry32: small, fast, good enough for a behaviour model; the same seed gives the same corpus anywhere. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** uniform in [a, b) */
  u(a: number, b: number): number {
    return a + (b - a) * this.next();
  }
  /** integer in [a, b] */
  int(a: number, b: number): number {
    return Math.floor(this.u(a, b + 1));
  }
  /** log-uniform in [a, b): durations spread over orders of magnitude */
  logU(a: number, b: number): number {
    return Math.exp(this.u(Math.log(a), Math.log(b)));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  gauss(mean: number, sd: number): number {
    const u1 = Math.max(this.next(), 1e-12);
    return mean + sd * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * this.next());
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)] as T;
  }
}

/** FNV-1a over the parts: a trace's seed depends on the corpus seed and its name only. */
export function hashSeed(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join("/")) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

// --- the behaviour model ------------------------------------------------------------------------------------

/** A vital sign as the radar would measure it: a noisy value around a mean; null = no reading (wire 0). */
export interface VitalGen {
  mean: number;
  sd: number;
  min?: number;
  max?: number;
  /** chance that one reading is lost (0 on the wire) */
  dropout?: number;
}

/** What one radar sees. */
export interface RadarState {
  presence: boolean;
  motion: Motion;
  fall: boolean;
  inBed: boolean;
  hr: VitalGen | null;
  br: VitalGen | null;
  distanceCm: number;
}

const NOBODY: RadarState = { presence: false, motion: "none", fall: false, inBed: false, hr: null, br: null, distanceCm: 0 };

type Patch = Partial<RadarState>;

class Timeline {
  private changes: Array<{ at: number; seq: number; patch: Patch }> = [];
  private seq = 0;
  set(at: number, patch: Patch): void {
    this.changes.push({ at: Math.max(0, Math.round(at)), seq: this.seq++, patch });
  }
  /** Sorted, with patches at the same millisecond merged in call order. */
  sorted(): Array<{ at: number; patch: Patch }> {
    const s = [...this.changes].sort((a, b) => a.at - b.at || a.seq - b.seq);
    const out: Array<{ at: number; patch: Patch }> = [];
    for (const c of s) {
      const last = out[out.length - 1];
      if (last && last.at === c.at) last.patch = { ...last.patch, ...c.patch };
      else out.push({ at: c.at, patch: { ...c.patch } });
    }
    return out;
  }
}

type Place = "bath" | "bed" | "bedroom" | "living" | "away";

/** One trace under construction: the radars, their timelines, power and noise. */
class Scene {
  readonly tl = new Map<string, Timeline>();
  readonly power: PowerChange[] = [];
  noise: NoiseSpec | null = null;
  rules: RulesConfig = DEFAULT_RULES;
  rooms: Record<string, RoomConfig> = { bathroom: { stillness: { dangerous: true } } };
  constructor(
    readonly rng: Rng,
    readonly radars: TraceRadar[],
  ) {
    for (const r of radars) this.tl.set(r.id, new Timeline());
  }
  has(id: string): boolean {
    return this.tl.has(id);
  }
  set(radar: string, at: number, patch: Patch): void {
    this.tl.get(radar)?.set(at, patch);
  }
  /** The radar whose view covers this place. */
  radarFor(p: Place): string | null {
    if (p === "bath") return BATH;
    if (p === "bed" || p === "bedroom") return this.has(BEDROOM) && p === "bedroom" ? BEDROOM : BED;
    if (p === "living") return this.has(LIVING) ? LIVING : null;
    return null;
  }
  /** The person is now at `p`: every radar that cannot see them reports nobody. Starts moving. */
  place(at: number, p: Place, vitals?: { hr: VitalGen; br: VitalGen }): void {
    for (const r of this.radars) {
      const sees =
        (r.id === BATH && p === "bath") ||
        (r.id === LIVING && p === "living") ||
        (r.id === BED && (p === "bed" || p === "bedroom")) ||
        (r.id === BEDROOM && (p === "bed" || p === "bedroom"));
      if (!sees) this.set(r.id, at, { ...NOBODY });
      else if (r.id === BED)
        this.set(r.id, at, {
          presence: true,
          motion: "moving",
          fall: false,
          inBed: p === "bed",
          hr: p === "bed" ? (vitals?.hr ?? normalHr(this.rng)) : null,
          br: p === "bed" ? (vitals?.br ?? normalBr(this.rng)) : null,
          distanceCm: p === "bed" ? Math.round(this.rng.u(45, 120)) : Math.round(this.rng.u(150, 300)),
        });
      else this.set(r.id, at, { presence: true, motion: "moving", fall: false, inBed: false, hr: null, br: null, distanceCm: Math.round(this.rng.u(80, 300)) });
    }
  }
}

export function normalHr(rng: Rng): VitalGen {
  return { mean: rng.u(54, 82), sd: rng.u(1.5, 3.5), min: 45, max: 110, dropout: 0.01 };
}
export function normalBr(rng: Rng): VitalGen {
  return { mean: rng.u(12, 19), sd: rng.u(0.6, 1.3), min: 9, max: 26, dropout: 0.01 };
}

/** Awake and busy in view of `radar`: moving and short still spells (never near any stillness window). */
function active(s: Scene, radar: string, from: number, to: number, o: { still?: [number, number]; move?: [number, number] } = {}): void {
  const [s0, s1] = o.still ?? [3 * SEC, 45 * SEC];
  const [m0, m1] = o.move ?? [4 * SEC, 30 * SEC];
  let t = from;
  let moving = true;
  while (t < to) {
    s.set(radar, t, { motion: moving ? "moving" : "still" });
    t += moving ? s.rng.u(m0, m1) : s.rng.u(s0, s1);
    moving = !moving;
  }
  // leave it moving at `to`: the next phase decides
  s.set(radar, to, { motion: "moving" });
}

/** Asleep in bed from `from` to `to`: still, turning over now and then (vitals lost while turning). */
function sleep(s: Scene, from: number, to: number, o: { turns?: boolean; hr?: VitalGen; br?: VitalGen } = {}): { hr: VitalGen; br: VitalGen } {
  const hr = o.hr ?? { ...normalHr(s.rng), mean: s.rng.u(52, 68) };
  const br = o.br ?? { ...normalBr(s.rng), mean: s.rng.u(11, 16) };
  s.set(BED, from, { presence: true, inBed: true, motion: "still", hr, br, distanceCm: Math.round(s.rng.u(45, 110)) });
  if (s.has(BEDROOM)) s.set(BEDROOM, from, { presence: true, motion: "still" });
  if (o.turns === false) return { hr, br };
  let t = from + s.rng.u(6 * MIN, 30 * MIN);
  while (t < to - 30 * SEC) {
    const d = s.rng.u(2 * SEC, 8 * SEC);
    // drift of the resting values over the night
    const hr2 = { ...hr, mean: clamp(hr.mean + s.rng.gauss(0, 2), 50, 80) };
    const br2 = { ...br, mean: clamp(br.mean + s.rng.gauss(0, 0.8), 10, 19) };
    s.set(BED, t, { motion: "moving", hr: null, br: null });
    s.set(BED, t + d, { motion: "still", hr: hr2, br: br2 });
    if (s.has(BEDROOM)) {
      s.set(BEDROOM, t, { motion: "moving" });
      s.set(BEDROOM, t + d, { motion: "still" });
    }
    t += d + s.rng.u(8 * MIN, 40 * MIN);
  }
  return { hr, br };
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** A bathroom visit: active inside, then back to `next`. Returns the time it ends. */
function bathVisit(s: Scene, at: number, len: number, next: Place): number {
  s.place(at, "bath");
  active(s, BATH, at, at + len, { still: [5 * SEC, 3 * MIN] });
  s.place(at + len, next);
  return at + len;
}

/**
 * Ordinary waking hours from `from` to `to`: bathroom visits, the bedroom, a nap, out of view (kitchen, out).
 * Every still spell in the bathroom stays far below the stillness window; movement comes at least every hour.
 */
function dayRoutine(s: Scene, from: number, to: number): void {
  let t = from;
  while (t < to - 2 * MIN) {
    const r = s.rng.next();
    const left = to - t;
    if (r < 0.22) {
      t = bathVisit(s, t, Math.min(left, s.rng.u(2 * MIN, 12 * MIN)), "away");
    } else if (r < 0.4 && s.has(LIVING)) {
      const len = Math.min(left, s.rng.u(15 * MIN, 60 * MIN));
      s.place(t, "living");
      active(s, LIVING, t, t + len, { still: [30 * SEC, 8 * MIN], move: [3 * SEC, 20 * SEC] });
      t += len;
    } else if (r < 0.55) {
      const len = Math.min(left, s.rng.u(5 * MIN, 25 * MIN));
      s.place(t, "bedroom");
      active(s, BED, t, t + len);
      if (s.has(BEDROOM)) active(s, BEDROOM, t, t + len);
      t += len;
    } else if (r < 0.65 && left > 40 * MIN) {
      const len = s.rng.u(20 * MIN, 45 * MIN);
      s.place(t, "bed");
      sleep(s, t + 20 * SEC, t + len);
      s.place(t + len, "bedroom");
      t += len + MIN;
    } else {
      // out of every radar's view: kitchen, corridor, out shopping; comes back moving
      const len = Math.min(left, s.rng.u(10 * MIN, 60 * MIN));
      s.place(t, "away");
      t += len;
    }
  }
  s.place(t, "away");
}

// --- rendering ----------------------------------------------------------------------------------------------

/** Line damage: each chunk is hit with probability `p`. */
export interface NoiseSpec {
  p: number;
}

interface RFrame {
  bytes: Buffer;
  report: RadarReport | null;
  intact: boolean;
}
interface RChunk {
  at: number;
  radar: string;
  frames: RFrame[];
  /** garbage before frame i (index into frames) */
  garbage: Array<{ before: number; bytes: Buffer }>;
  /** split into two writes at this byte offset, the second `splitGapMs` later */
  splitAt?: number;
  splitGapMs?: number;
}

/** One intact report as the hub would decode it. */
export interface IntactReport {
  at: number;
  radar: string;
  report: RadarReport | null;
}

const otherFrame = (ctrl: number, cmd: number, data: number[]): RFrame => ({ bytes: encodeFrame(ctrl, cmd, data), report: null, intact: true });
const reportFrames = (r: RadarReport): RFrame[] => {
  const frames = encodeReport(r);
  // encodeReport emits one frame per field in RADAR_READINGS order; map each back to its own fact
  const keys = (["presence", "motion", "fall", "heartRate", "breathing", "inBed", "distanceCm"] as const).filter((k) => r[k] !== undefined);
  return frames.map((bytes, i) => {
    const k = keys[i]!;
    return { bytes, report: { [k]: r[k] }, intact: true };
  });
};

function powerIntervals(power: PowerChange[], radar: string, durationMs: number): Array<[number, number]> {
  const ch = power.filter((p) => p.radar === radar).sort((a, b) => a.at - b.at);
  const out: Array<[number, number]> = [];
  let on: number | null = 0;
  for (const c of ch) {
    if (!c.on && on !== null) {
      out.push([on, c.at]);
      on = null;
    } else if (c.on && on === null) on = c.at;
  }
  if (on !== null) out.push([on, durationMs]);
  return out;
}

function vitalReading(rng: Rng, g: VitalGen | null): number | null {
  if (!g) return null;
  if (g.dropout && rng.chance(g.dropout)) return null;
  const v = Math.round(clamp(rng.gauss(g.mean, g.sd), g.min ?? 1, g.max ?? 250));
  return Math.max(1, v);
}

function movementParam(rng: Rng, st: RadarState): number {
  if (!st.presence || st.motion === "none") return 0;
  return st.motion === "moving" ? rng.int(20, 100) : rng.int(1, 15);
}

function wave(rng: Rng, on: boolean, phase: number): number[] {
  const amp = on ? rng.u(10, 40) : 0;
  return [0, 1, 2, 3, 4].map((k) => Math.round(128 + amp * Math.sin(phase + (k * Math.PI) / 2.5)));
}

/** State after applying every change at or before `t`, walking a sorted change list with a cursor. */
class Walker {
  st: RadarState = { ...NOBODY };
  private i = 0;
  constructor(private readonly changes: Array<{ at: number; patch: Patch }>) {}
  /** Applies changes up to and including `t`; returns the fields that changed. */
  advance(t: number): Set<keyof RadarState> {
    const changed = new Set<keyof RadarState>();
    while (this.i < this.changes.length && this.changes[this.i]!.at <= t) {
      const p = this.changes[this.i++]!.patch;
      for (const k of Object.keys(p) as Array<keyof RadarState>) {
        if (this.st[k] !== p[k]) changed.add(k);
      }
      this.st = { ...this.st, ...p };
    }
    if (!this.st.presence) this.st = { ...this.st, motion: "none", inBed: false };
    return changed;
  }
}

/**
 * MR60FDA1: presence, motion, the body-movement parameter every 1–1.8 s (jittered, never a 2 s gap while
 * powered, which the hub would take for a power-up) and on change; the fall flag on change, in every periodic
 * report while raised and every few reports otherwise.
 */
function renderFda1(rng: Rng, radar: string, changes: Array<{ at: number; patch: Patch }>, iv: Array<[number, number]>, durationMs: number): RChunk[] {
  const out: RChunk[] = [];
  const w = new Walker(changes);
  const changeAts = changes.map((c) => c.at);
  for (const [on, off] of iv) {
    let t = on;
    let first = true;
    let k = 0;
    let ci = changeAts.findIndex((a) => a > on);
    if (ci < 0) ci = changeAts.length;
    let nextPeriodic = on + (on === 0 ? rng.u(100, 900) : rng.u(50, 300));
    while (true) {
      const nextChange = ci < changeAts.length ? changeAts[ci]! : Infinity;
      t = Math.min(nextPeriodic, nextChange);
      if (t >= off || t >= durationMs) break;
      const changed = w.advance(t);
      const st = w.st;
      const frames: RFrame[] = [];
      if (first && on > 0) frames.push(otherFrame(0x05, 0x01, [0x0f])); // initialisation complete after power-up
      if (t === nextChange) {
        while (ci < changeAts.length && changeAts[ci]! <= t) ci++;
        const r: RadarReport = {};
        if (changed.has("presence")) r.presence = st.presence;
        if (changed.has("presence") || changed.has("motion")) r.motion = st.motion;
        if (changed.has("fall")) r.fall = st.fall ? "fall" : "clear";
        if (Object.keys(r).length) frames.push(...reportFrames(r));
      }
      if (t === nextPeriodic) {
        const r: RadarReport = { presence: st.presence, motion: st.motion };
        if (st.fall || k % 4 === 0) r.fall = st.fall ? "fall" : "clear";
        frames.push(...reportFrames(r), otherFrame(0x80, 0x03, [movementParam(rng, st)]));
        k++;
        nextPeriodic = t + rng.u(1000, 1800);
      }
      if (frames.length) out.push({ at: Math.round(t), radar, frames, garbage: [] });
      first = false;
    }
  }
  return mergeSameMs(out);
}

/**
 * MR60BHA1 in real-time mode: every second the body-movement parameter and the heart and breathing waveforms;
 * distance every 2 s; heart rate, breathing state and breathing rate every 3 s; presence, motion and in-bed
 * every ~10 s and on change.
 */
function renderBha1(rng: Rng, radar: string, changes: Array<{ at: number; patch: Patch }>, iv: Array<[number, number]>, durationMs: number): RChunk[] {
  const out: RChunk[] = [];
  const w = new Walker(changes);
  const changeAts = changes.map((c) => c.at);
  for (const [on, off] of iv) {
    const base = on + rng.u(100, 900);
    const p2 = rng.int(0, 1);
    const p3 = rng.int(0, 2);
    let nextStatus = rng.int(0, 9);
    let ci = changeAts.findIndex((a) => a > on);
    if (ci < 0) ci = changeAts.length;
    let sec = 0;
    let phase = rng.u(0, 6);
    let first = true;
    let nextPeriodic = Math.round(base);
    while (true) {
      const nextChange = ci < changeAts.length ? changeAts[ci]! : Infinity;
      const t = Math.min(nextPeriodic, nextChange);
      if (t >= off || t >= durationMs) break;
      const changed = w.advance(t);
      const st = w.st;
      const frames: RFrame[] = [];
      if (first && on > 0) frames.push(otherFrame(0x05, 0x01, [0x0f]));
      first = false;
      if (t === nextChange && t !== nextPeriodic) {
        while (ci < changeAts.length && changeAts[ci]! <= t) ci++;
        const r: RadarReport = {};
        if (changed.has("presence")) r.presence = st.presence;
        if (changed.has("presence") || changed.has("motion")) r.motion = st.motion;
        if (changed.has("presence") || changed.has("inBed")) r.inBed = st.inBed;
        if (Object.keys(r).length) frames.push(...reportFrames(r));
        if (frames.length) out.push({ at: t, radar, frames, garbage: [] });
        continue;
      }
      if (t === nextChange) while (ci < changeAts.length && changeAts[ci]! <= t) ci++;
      phase += 0.9;
      frames.push(otherFrame(0x80, 0x03, [movementParam(rng, st)]));
      frames.push(otherFrame(0x85, 0x05, wave(rng, st.hr !== null, phase)));
      frames.push(otherFrame(0x81, 0x05, wave(rng, st.br !== null, phase * 0.3)));
      if (sec % 2 === p2) frames.push(...reportFrames({ distanceCm: st.presence ? st.distanceCm || null : null }));
      if (sec % 3 === p3) {
        const hr = vitalReading(rng, st.hr);
        const br = vitalReading(rng, st.br);
        // breathing state: 1 normal, 2 rapid, 3 slow, 4 none
        const state = br === null ? 4 : br > 24 ? 2 : br < 10 ? 3 : 1;
        frames.push(...reportFrames({ heartRate: hr }), otherFrame(0x81, 0x01, [state]), ...reportFrames({ breathing: br }));
      }
      if (sec >= nextStatus || changed.has("presence") || changed.has("motion") || changed.has("inBed")) {
        frames.push(...reportFrames({ presence: st.presence, motion: st.motion, inBed: st.inBed }));
        nextStatus = sec + rng.int(9, 11);
      }
      out.push({ at: t, radar, frames, garbage: [] });
      sec++;
      nextPeriodic = Math.max(t + 1, Math.round(base + sec * 1000 + rng.u(-40, 40)));
    }
  }
  return mergeSameMs(out);
}

function mergeSameMs(chunks: RChunk[]): RChunk[] {
  const out: RChunk[] = [];
  for (const c of chunks) {
    const last = out[out.length - 1];
    if (last && last.at === c.at && last.radar === c.radar) last.frames.push(...c.frames);
    else out.push(c);
  }
  return out;
}

/** Random bytes that never contain a frame header (those are injected on purpose, with a bounded length). */
function garbageBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    let v = rng.int(0, 255);
    while (i > 0 && b[i - 1] === 0x53 && v === 0x59) v = rng.int(0, 255);
    b[i] = v;
  }
  return b;
}

/**
 * Damages chunks: garbage between frames, a flipped checksum, a truncated frame, a false header whose short
 * length is resolved within the same chunk, a chunk delivered in two reads. A damaged frame is lost (it is not
 * intact); the radar repeats its state in the next periodic report, as a real one does.
 */
function applyNoise(rng: Rng, chunks: RChunk[], p: number): void {
  for (const c of chunks) {
    if (!rng.chance(p)) continue;
    const kind = rng.int(0, 4);
    const i = rng.int(0, c.frames.length - 1);
    const f = c.frames[i]!;
    if (kind === 0) c.garbage.push({ before: i, bytes: garbageBytes(rng, rng.int(1, 40)) });
    else if (kind === 1) {
      const b = Buffer.from(f.bytes);
      b[b.length - 3] = (b[b.length - 3]! ^ (1 << rng.int(0, 7))) & 0xff;
      c.frames[i] = { ...f, bytes: b, intact: false };
    } else if (kind === 2) {
      c.frames[i] = { ...f, bytes: f.bytes.subarray(0, rng.int(2, f.bytes.length - 1)), intact: false };
    } else if (kind === 3) {
      // a header with a short length: decided (and rejected) with the bytes of the frame behind it
      // (length ≤ 3 puts the tail check on the next frame's header bytes, which can never read 54 43)
      c.garbage.push({ before: i, bytes: Buffer.from([0x53, 0x59, rng.int(0, 255), rng.int(0, 255), 0x00, rng.int(0, 3)]) });
    } else {
      const total = c.frames.reduce((n, x) => n + x.bytes.length, 0);
      if (total > 2) {
        c.splitAt = rng.int(1, total - 1);
        c.splitGapMs = rng.int(2, 20);
      }
    }
  }
}

function finalise(chunks: RChunk[]): { chunks: Chunk[]; intact: IntactReport[]; framesIntact: Record<string, number>; framesDamaged: Record<string, number> } {
  const out: Chunk[] = [];
  const intact: IntactReport[] = [];
  const framesIntact: Record<string, number> = {};
  const framesDamaged: Record<string, number> = {};
  for (const c of chunks) {
    const parts: Buffer[] = [];
    let last = c.at;
    c.frames.forEach((f, i) => {
      for (const g of c.garbage) if (g.before === i) parts.push(g.bytes);
      parts.push(f.bytes);
    });
    const bytes = Buffer.concat(parts);
    // a frame arrives (and counts) when its last byte has arrived
    let off = 0;
    const ends: number[] = [];
    c.frames.forEach((f, i) => {
      for (const g of c.garbage) if (g.before === i) off += g.bytes.length;
      off += f.bytes.length;
      ends.push(off);
    });
    if (c.splitAt !== undefined && c.splitGapMs !== undefined) {
      out.push({ at: c.at, radar: c.radar, bytes: bytes.subarray(0, c.splitAt), continues: true });
      last = c.at + c.splitGapMs;
      out.push({ at: last, radar: c.radar, bytes: bytes.subarray(c.splitAt) });
    } else out.push({ at: c.at, radar: c.radar, bytes });
    c.frames.forEach((f, i) => {
      const at = c.splitAt !== undefined && ends[i]! > c.splitAt ? last : c.at;
      if (f.intact) {
        framesIntact[c.radar] = (framesIntact[c.radar] ?? 0) + 1;
        intact.push({ at, radar: c.radar, report: f.report });
      } else framesDamaged[c.radar] = (framesDamaged[c.radar] ?? 0) + 1;
    });
  }
  out.sort((a, b) => a.at - b.at);
  intact.sort((a, b) => a.at - b.at);
  return { chunks: out, intact, framesIntact, framesDamaged };
}

// --- labels: queries over what was rendered -----------------------------------------------------------------

/** Questions a scenario asks of the rendered, intact frames to place its labels. */
export class Reports {
  constructor(
    readonly all: IntactReport[],
    readonly rules: RulesConfig,
  ) {}
  /** First intact report from `radar` at or after `from` that satisfies `pred`. */
  first(radar: string, from: number, pred: (r: RadarReport) => boolean): number {
    for (const x of this.all) if (x.at >= from && x.radar === radar && x.report && pred(x.report)) return x.at;
    throw new Error(`label: no report from ${radar} after ${from} matches`);
  }
  /** Last intact frame of any kind from `radar` strictly before `before`. */
  lastFrame(radar: string, before: number): number {
    let t = -1;
    for (const x of this.all) if (x.radar === radar && x.at < before) t = x.at;
    if (t < 0) throw new Error(`label: no frame from ${radar} before ${before}`);
    return t;
  }
  firstFrame(radar: string, from: number): number {
    for (const x of this.all) if (x.radar === radar && x.at >= from) return x.at;
    throw new Error(`label: no frame from ${radar} after ${from}`);
  }
  /** From `from`: the moment both the last heart rate and the last breathing reading are "none". */
  bothAbsent(radar: string, from: number): number {
    let hr: number | null | undefined;
    let br: number | null | undefined;
    for (const x of this.all) {
      if (x.radar !== radar || !x.report) continue;
      if (x.report.heartRate !== undefined) hr = x.report.heartRate;
      if (x.report.breathing !== undefined) br = x.report.breathing;
      if (x.at >= from && hr === null && br === null) return x.at;
    }
    throw new Error(`label: vitals never both absent on ${radar} after ${from}`);
  }
  /** First reading at or after `from` out of the configured range. */
  outOfRange(radar: string, from: number): number {
    const v = this.rules.vitals;
    return this.first(radar, from, (r) => {
      const hr = r.heartRate;
      const br = r.breathing;
      return (typeof hr === "number" && (hr < v.heartRate.min || hr > v.heartRate.max)) || (typeof br === "number" && (br < v.breathing.min || br > v.breathing.max));
    });
  }
  /**
   * The last sign of life before `before` as the brief defines it: movement (a "moving" report) or presence
   * appearing (turning true on a radar).
   */
  lastSignOfLife(before: number): number {
    const pres = new Map<string, boolean>();
    let last = 0;
    for (const x of this.all) {
      if (x.at >= before) break;
      const r = x.report;
      if (!r) continue;
      if (r.motion === "moving" || (r.presence === true && pres.get(x.radar) !== true)) last = x.at;
      if (r.presence !== undefined) pres.set(x.radar, r.presence);
    }
    return last;
  }
}

/** Local minute of day in a fixed-offset zone (the corpus uses Asia/Shanghai, UTC+8, no DST). */
const ZONE_OFFSET: Record<string, number> = { "Asia/Shanghai": 8 * HOUR, UTC: 0 };

function hhmmToMin(s: string): number {
  return Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));
}

/** When `spanMs` of time outside the night has passed since `start` (epoch ms). */
export function inactivityDue(start: number, spanMs: number, inactivity: RulesConfig["inactivity"]): number {
  const off = ZONE_OFFSET[inactivity.timeZone];
  if (off === undefined) throw new Error(`corpus: no fixed offset for ${inactivity.timeZone}`);
  if (!inactivity.night) return start + spanMs;
  const from = hhmmToMin(inactivity.night.from) * MIN;
  const to = hhmmToMin(inactivity.night.to) * MIN;
  const DAY = 24 * HOUR;
  const mod = (a: number) => ((a % DAY) + DAY) % DAY;
  let t = start;
  let left = spanMs;
  for (let guard = 0; guard < 10_000; guard++) {
    const ms = mod(t + off);
    const inNight = from < to ? ms >= from && ms < to : ms >= from || ms < to;
    const toBoundary = mod((inNight ? to : from) - ms) || DAY;
    if (inNight) t += toBoundary;
    else if (toBoundary >= left) return t + left;
    else {
      left -= toBoundary;
      t += toBoundary;
    }
  }
  throw new Error("inactivityDue: no end");
}

// --- scenarios ----------------------------------------------------------------------------------------------

interface Built {
  durationMs: number;
  /** local start, minutes after midnight on the corpus day */
  startMin: number;
  label(q: Reports, t: { startAt: number; durationMs: number }): Expectation[];
  notes: string;
  ambiguous?: string;
}

interface Spec {
  name: string;
  category: Category;
  radars: TraceRadar[];
  build(s: Scene): Built;
}

const fda1 = (id: string, room: string): TraceRadar => ({ id, profile: "seeed-mr60fda1", room });
const bha1 = (id: string, room: string): TraceRadar => ({ id, profile: "seeed-mr60bha1", room });
const HOME = (): TraceRadar[] => [fda1(BATH, "bathroom"), bha1(BED, "bedroom")];
const HOME_LIVING = (): TraceRadar[] => [...HOME(), fda1(LIVING, "living")];
const HOME_BEDROOM = (): TraceRadar[] => [...HOME(), fda1(BEDROOM, "bedroom")];

/** Before anything happens: long enough for both radars to settle (BHA1 20 s) and the rules to see a normal state. */
const prelude = (rng: Rng) => Math.round(rng.u(40 * SEC, 120 * SEC));

function fallExpect(q: Reports, radar: string, flagAt: number, until: number, why: string): Expectation {
  const w = q.rules.fall.confirmMs;
  const event = q.first(radar, flagAt, (r) => r.fall === "fall");
  return { type: "fall", device: radar, trigger: "fall_report", event, windowMs: w, by: event + w + SLACK_MS, until, why };
}

function stillExpect(q: Reports, radar: string, stillAt: number, until: number, why: string): Expectation {
  const w = q.rules.stillness.windowMs;
  const event = q.first(radar, stillAt, (r) => r.motion === "still");
  return { type: "fall", device: radar, trigger: "no_movement", event, windowMs: w, by: event + w + SLACK_MS, until, why };
}

/**
 * A fall at `at` in view of `radar`: moving (the fall), still on the floor, the radar's flag after its own
 * dwell. Returns when the flag goes up.
 */
function fall(s: Scene, radar: string, at: number): number {
  s.set(radar, at, { presence: true, motion: "moving" });
  const down = at + s.rng.u(0.8 * SEC, 2.5 * SEC);
  s.set(radar, down, { motion: "still" });
  const flag = down + s.rng.u(0.5 * SEC, 3 * SEC);
  s.set(radar, flag, { fall: true });
  return flag;
}

function specs(): Spec[] {
  const out: Spec[] = [];
  const add = (category: Category, n: number, radars: (i: number) => TraceRadar[], build: (s: Scene, i: number) => Built, name: (i: number) => string = (i) => `${category.replace(/_/g, "-")}-${String(i + 1).padStart(2, "0")}`) => {
    for (let i = 0; i < n; i++) out.push({ name: name(i), category, radars: radars(i), build: (s) => build(s, i) });
  };
  const dayStart = (rng: Rng) => Math.round(rng.u(7.5 * 60, 21 * 60));

  // Real falls; the person stays down. Bathroom (dangerous: stillness would fire too, after 10 min) or living room.
  add("fall_stays_down", 18, (i) => (i < 12 ? HOME() : HOME_LIVING()), (s, i) => {
    const room: Place = i < 12 ? "bath" : "living";
    const radar = i < 12 ? BATH : LIVING;
    const t0 = prelude(s.rng);
    s.place(0, room);
    active(s, radar, 0, t0);
    const flag = fall(s, radar, t0);
    const downMs = s.rng.logU(60 * SEC, 20 * MIN);
    const end = Math.round(flag + downMs);
    return {
      durationMs: end,
      startMin: dayStart(s.rng),
      notes: `falls in the ${room} at ${ms(t0)}, stays down ${ms(downMs)}`,
      label: (q) => [fallExpect(q, radar, flag, end, "fall report, nobody gets up")],
    };
  });

  // Fall flag, then the elder gets up: still a few seconds, then sustained movement well within confirmMs.
  add("fall_get_up", 12, (i) => (i < 8 ? HOME() : HOME_LIVING()), (s, i) => {
    const room: Place = i < 8 ? "bath" : "living";
    const radar = i < 8 ? BATH : LIVING;
    const t0 = prelude(s.rng);
    s.place(0, room);
    active(s, radar, 0, t0);
    const flag = fall(s, radar, t0);
    const up = flag + s.rng.u(3 * SEC, 18 * SEC);
    const upLen = s.rng.u(7 * SEC, 25 * SEC);
    s.set(radar, up, { motion: "moving" });
    s.set(radar, up + s.rng.u(1 * SEC, 6 * SEC), { fall: false });
    active(s, radar, up + upLen, up + upLen + s.rng.u(2 * MIN, 4 * MIN), { still: [3 * SEC, 40 * SEC] });
    const end = up + upLen + 4 * MIN + 30 * SEC;
    s.place(end - 30 * SEC, "away");
    return { durationMs: Math.round(end), startMin: dayStart(s.rng), notes: `flag at ${ms(flag)}, gets up ${ms(up - flag)} later for ${ms(upLen)}`, label: () => [] };
  });

  // Sitting down fast: the flag goes up briefly, the radar clears it, and normal movement follows.
  add("sit_down_fast", 10, (i) => (i < 6 ? HOME() : HOME_LIVING()), (s, i) => {
    const room: Place = i < 6 ? "bath" : "living";
    const radar = i < 6 ? BATH : LIVING;
    const t0 = prelude(s.rng);
    s.place(0, room);
    active(s, radar, 0, t0);
    const sit = t0;
    s.set(radar, sit, { motion: "moving" });
    const flag = sit + s.rng.u(0.3 * SEC, 1.5 * SEC);
    s.set(radar, flag, { fall: true, motion: "still" });
    s.set(radar, flag + s.rng.u(2 * SEC, 6 * SEC), { fall: false });
    const move = flag + s.rng.u(1 * SEC, 8 * SEC);
    const moveLen = s.rng.u(6 * SEC, 20 * SEC);
    s.set(radar, move, { motion: "moving" });
    active(s, radar, move + moveLen, move + moveLen + s.rng.u(1 * MIN, 3 * MIN), { still: [3 * SEC, 40 * SEC] });
    const end = move + moveLen + 3 * MIN + 30 * SEC;
    s.place(end - 30 * SEC, "away");
    return { durationMs: Math.round(end), startMin: dayStart(s.rng), notes: `sits fast at ${ms(sit)}, moves ${ms(move - flag)} after the flag for ${ms(moveLen)}`, label: () => [] };
  });

  // Lying down on a bed or a sofa (non-dangerous rooms). 0-3: bed, no flag; 4-6 sofa, no flag; 7-9 sofa, a
  // false flag then settling (arranging cushions, a blanket: sustained movement), then still; 10-11: a false
  // flag then still at once — radar facts identical to a fall followed by lying still.
  add("lie_down", 12, (i) => (i < 4 || i === 11 ? HOME_BEDROOM() : HOME_LIVING()), (s, i) => {
    const onBed = i < 4 || i === 11;
    const radar = onBed ? BEDROOM : LIVING;
    const t0 = prelude(s.rng);
    s.place(0, onBed ? "bedroom" : "living");
    active(s, radar, 0, t0);
    if (onBed) active(s, BED, 0, t0);
    let flag: number | null = null;
    if (i >= 7) {
      flag = t0 + s.rng.u(0.5 * SEC, 2 * SEC);
      s.set(radar, t0, { motion: "moving" });
      s.set(radar, flag, { fall: true });
      s.set(radar, flag + s.rng.u(5 * SEC, 20 * SEC), { fall: false });
      if (i <= 9) {
        const settle = flag + s.rng.u(0.5 * SEC, 3 * SEC);
        const settleLen = s.rng.u(6.5 * SEC, 15 * SEC);
        s.set(radar, flag + 0.2 * SEC, { motion: "still" });
        s.set(radar, settle, { motion: "moving" });
        s.set(radar, settle + settleLen, { motion: "still" });
      } else {
        s.set(radar, flag + 0.2 * SEC, { motion: "still" });
        const adj = flag + s.rng.u(3 * SEC, 10 * SEC);
        s.set(radar, adj, { motion: "moving" });
        s.set(radar, adj + s.rng.u(1 * SEC, 3 * SEC), { motion: "still" });
      }
    } else s.set(radar, t0 + s.rng.u(2 * SEC, 6 * SEC), { motion: "still" });
    const lie = t0 + 20 * SEC;
    const lieLen = s.rng.u(5 * MIN, 20 * MIN);
    if (onBed) sleep(s, t0 + 5 * SEC, lie + lieLen, { turns: false });
    // an occasional shift on the sofa
    for (let t = lie + s.rng.u(3 * MIN, 8 * MIN); t < lie + lieLen - 30 * SEC; t += s.rng.u(3 * MIN, 8 * MIN)) {
      const d = s.rng.u(2 * SEC, 6 * SEC);
      for (const r of onBed ? [radar, BED] : [radar]) {
        s.set(r, t, { motion: "moving" });
        s.set(r, t + d, { motion: "still" });
      }
    }
    const getUp = lie + lieLen;
    s.place(getUp, onBed ? "bedroom" : "living");
    active(s, radar, getUp, getUp + MIN);
    s.place(getUp + MIN, "away");
    const end = getUp + MIN + 30 * SEC;
    return {
      durationMs: Math.round(end),
      startMin: dayStart(s.rng),
      notes: `${onBed ? "bed" : "sofa"}, ${flag === null ? "no flag" : i <= 9 ? "false flag then settling" : "false flag then still at once"}, lies ${ms(lieLen)}`,
      ambiguous: i >= 10 ? "a false fall flag followed by lying still gives the same radar facts as a fall (fall_stays_down): the rule raises by design" : undefined,
      label: () => [],
    };
  }, (i) => (i < 10 ? `lie-down-${String(i + 1).padStart(2, "0")}` : `lie-down-false-flag-still-${i - 9}`));

  // Still in the bathroom past the stillness window with no fall flag (slumped on the toilet, collapsed quietly).
  add("still_bath_long", 10, HOME, (s) => {
    const t0 = Math.round(s.rng.u(1 * MIN, 3 * MIN));
    s.place(0, "bath");
    active(s, BATH, 0, t0);
    s.set(BATH, t0 + 0.5 * SEC, { motion: "still" });
    const stillLen = DEFAULT_RULES.stillness.windowMs + s.rng.u(1 * MIN, 15 * MIN);
    const end = Math.round(t0 + stillLen);
    return {
      durationMs: end,
      startMin: dayStart(s.rng),
      notes: `still from ${ms(t0)} for ${ms(stillLen)}`,
      label: (q) => [stillExpect(q, BATH, t0, end, "present and not moving in the bathroom past the window")],
    };
  });

  // Still in the bathroom for less than the window, once or twice, then moving and out.
  add("still_bath_short", 10, HOME, (s) => {
    let t = Math.round(s.rng.u(1 * MIN, 2 * MIN));
    s.place(0, "bath");
    active(s, BATH, 0, t);
    const spells = s.rng.int(1, 2);
    const lens: string[] = [];
    for (let k = 0; k < spells; k++) {
      const len = s.rng.u(1 * MIN, DEFAULT_RULES.stillness.windowMs - 60 * SEC);
      s.set(BATH, t, { motion: "still" });
      t += len;
      lens.push(ms(len));
      s.set(BATH, t, { motion: "moving" });
      t += s.rng.u(10 * SEC, 40 * SEC);
    }
    s.place(t, "away");
    return { durationMs: Math.round(t + 60 * SEC), startMin: dayStart(s.rng), notes: `still spells ${lens.join(", ")}`, label: () => [] };
  });

  // Nobody home for hours.
  add("nobody_home", 5, HOME, (s) => {
    const t0 = prelude(s.rng);
    s.place(0, "bath");
    active(s, BATH, 0, t0);
    s.place(t0, "away");
    s.set(BATH, t0, { ...NOBODY });
    const gone = s.rng.u(1.5 * HOUR, 6 * HOUR);
    const back = t0 + gone;
    s.place(back, "bath");
    active(s, BATH, back, back + 2 * MIN);
    s.place(back + 2 * MIN, "away");
    return { durationMs: Math.round(back + 3 * MIN), startMin: Math.round(s.rng.u(8 * 60, 13 * 60)), notes: `away for ${ms(gone)}`, label: () => [] };
  });

  // Sleep with normal vital signs: two nights (with a trip to the bathroom) and four naps.
  add("sleep_normal", 6, HOME, (s, i) => {
    const night = i < 2;
    const t0 = prelude(s.rng);
    s.place(0, "bedroom");
    active(s, BED, 0, t0);
    s.place(t0, "bed");
    const len = night ? s.rng.u(6.5 * HOUR, 7.5 * HOUR) : s.rng.u(30 * MIN, 90 * MIN);
    const end = t0 + len;
    if (night) {
      const trip = t0 + s.rng.u(3 * HOUR, 4.5 * HOUR);
      sleep(s, t0 + 30 * SEC, trip);
      s.place(trip, "bedroom");
      s.place(trip + 20 * SEC, "away");
      const back = bathVisit(s, trip + 40 * SEC, s.rng.u(3 * MIN, 8 * MIN), "away");
      s.place(back + 20 * SEC, "bedroom");
      s.place(back + 50 * SEC, "bed");
      sleep(s, back + 80 * SEC, end);
    } else sleep(s, t0 + 30 * SEC, end);
    s.place(end, "bedroom");
    active(s, BED, end, end + MIN);
    s.place(end + MIN, "away");
    return {
      durationMs: Math.round(end + 2 * MIN),
      startMin: night ? Math.round(s.rng.u(22 * 60 + 10, 22 * 60 + 50)) : Math.round(s.rng.u(13 * 60, 15 * 60)),
      notes: `${night ? "night" : "nap"} of ${ms(len)}`,
      label: () => [],
    };
  });

  // In bed, heart rate and breathing both lost (0 on the wire) from some moment; presence and in-bed stay.
  add("vital_absent", 12, HOME, (s, i) => {
    const t0 = prelude(s.rng);
    s.place(0, "bedroom");
    active(s, BED, 0, t0);
    s.place(t0, "bed");
    const asleep = s.rng.u(2 * MIN, 10 * MIN);
    const lost = t0 + 30 * SEC + asleep;
    sleep(s, t0 + 30 * SEC, lost, { turns: false });
    const staggered = i >= 8;
    const gap = staggered ? s.rng.u(3 * SEC, 30 * SEC) : 0;
    if (staggered) {
      s.set(BED, lost, { hr: null });
      s.set(BED, lost + gap, { br: null });
    } else s.set(BED, lost, { hr: null, br: null });
    const end = Math.round(lost + gap + DEFAULT_RULES.vitals.absentMs + s.rng.u(1 * MIN, 10 * MIN));
    return {
      durationMs: end,
      startMin: s.rng.chance(0.6) ? Math.round(s.rng.u(23 * 60, 24 * 60 + 60)) % 1440 : Math.round(s.rng.u(13 * 60, 16 * 60)),
      notes: `vitals lost at ${ms(lost)}${staggered ? `, breathing ${ms(gap)} after heart rate` : ""}`,
      label: (q) => {
        const event = q.bothAbsent(BED, lost);
        const w = q.rules.vitals.absentMs;
        return [{ type: "vital_absent", device: BED, trigger: "no_vital_signs", event, windowMs: w, by: event + w + SLACK_MS, until: end, why: "in bed, no heart rate and no breathing" }];
      },
    };
  });

  // Only one signal lost: not an absence.
  add("vital_partial_loss", 3, HOME, (s, i) => {
    const t0 = prelude(s.rng);
    s.place(0, "bedroom");
    active(s, BED, 0, t0);
    s.place(t0, "bed");
    const { hr, br } = sleep(s, t0 + 30 * SEC, t0 + 30 * MIN, { turns: false });
    const lost = t0 + s.rng.u(2 * MIN, 5 * MIN);
    const len = s.rng.u(3 * MIN, 10 * MIN);
    s.set(BED, lost, i === 2 ? { br: null } : { hr: null });
    s.set(BED, lost + len, { hr, br });
    const end = lost + len + 2 * MIN;
    s.place(end, "bedroom");
    s.place(end + 30 * SEC, "away");
    return { durationMs: Math.round(end + MIN), startMin: Math.round(s.rng.u(13 * 60, 16 * 60)), notes: `${i === 2 ? "breathing" : "heart rate"} lost for ${ms(len)}`, label: () => [] };
  });

  // Both readings lost briefly, several times (a posture the radar cannot read through), each shorter than absentMs.
  add("vital_dropout", 4, HOME, (s) => {
    const t0 = prelude(s.rng);
    s.place(0, "bedroom");
    active(s, BED, 0, t0);
    s.place(t0, "bed");
    const { hr, br } = sleep(s, t0 + 30 * SEC, t0 + 40 * MIN, { turns: false });
    let t = t0 + s.rng.u(2 * MIN, 4 * MIN);
    const lens: string[] = [];
    for (let k = s.rng.int(2, 4); k > 0; k--) {
      const len = s.rng.u(9 * SEC, 45 * SEC);
      s.set(BED, t, { hr: null, br: null });
      s.set(BED, t + len, { hr, br });
      lens.push(ms(len));
      t += len + s.rng.u(1 * MIN, 5 * MIN);
    }
    s.place(t, "bedroom");
    s.place(t + 30 * SEC, "away");
    return { durationMs: Math.round(t + 90 * SEC), startMin: Math.round(s.rng.u(13 * 60, 16 * 60)), notes: `dropouts ${lens.join(", ")}`, label: () => [] };
  });

  // Out of range on every reading, sustained past abnormalMs.
  const abnormalKinds = ["tachy", "tachy", "tachy", "brady", "slow_br", "slow_br", "fast_br", "fast_br"] as const;
  add("vital_abnormal", 8, HOME, (s, i) => {
    const kind = abnormalKinds[i]!;
    const t0 = prelude(s.rng);
    s.place(0, "bedroom");
    active(s, BED, 0, t0);
    s.place(t0, "bed");
    const on = t0 + s.rng.u(2 * MIN, 6 * MIN);
    const len = DEFAULT_RULES.vitals.abnormalMs + s.rng.u(1 * MIN, 8 * MIN);
    const { hr, br } = sleep(s, t0 + 30 * SEC, on + len + 3 * MIN, { turns: false });
    const bad: Patch =
      kind === "tachy" ? { hr: { mean: s.rng.u(138, 160), sd: 3, min: 133, max: 200 } }
      : kind === "brady" ? { hr: { mean: s.rng.u(32, 36), sd: 1.5, min: 25, max: 38 } }
      : kind === "slow_br" ? { br: { mean: s.rng.u(4.5, 6), sd: 0.6, min: 3, max: 7 } }
      : { br: { mean: s.rng.u(34, 40), sd: 1.5, min: 32, max: 45 } };
    s.set(BED, on, bad);
    s.set(BED, on + len, { hr, br });
    const end = Math.round(on + len + 2 * MIN);
    return {
      durationMs: end,
      startMin: Math.round(s.rng.u(13 * 60, 23 * 60)),
      notes: `${kind} from ${ms(on)} for ${ms(len)}`,
      label: (q) => {
        const event = q.outOfRange(BED, on);
        const w = q.rules.vitals.abnormalMs;
        const until = q.first(BED, on + len, (r) => r.heartRate !== undefined || r.breathing !== undefined) + 10 * SEC;
        return [{ type: "vital_abnormal", device: BED, event, windowMs: w, by: event + w + SLACK_MS, until, why: `${kind} sustained ${ms(len)}` }];
      },
    };
  });

  // Spikes out of range shorter than abnormalMs (0-3 heart rate, 4-5 slow breathing, 6-7 two spikes with an
  // in-range stretch between them whose sum exceeds the window).
  add("vital_spike", 8, HOME, (s, i) => {
    const t0 = prelude(s.rng);
    s.place(0, "bedroom");
    active(s, BED, 0, t0);
    s.place(t0, "bed");
    const { hr, br } = sleep(s, t0 + 30 * SEC, t0 + 40 * MIN, { turns: false });
    const maxLen = DEFAULT_RULES.vitals.abnormalMs - 60 * SEC;
    const bad: Patch = i >= 4 && i <= 5 ? { br: { mean: s.rng.u(4.5, 6.5), sd: 0.5, min: 3, max: 7 } } : { hr: { mean: s.rng.u(136, 155), sd: 3, min: 132, max: 190 } };
    let t = t0 + s.rng.u(2 * MIN, 5 * MIN);
    const lens: string[] = [];
    for (let k = i >= 6 ? 2 : 1; k > 0; k--) {
      const len = i >= 6 ? s.rng.u(2.5 * MIN, maxLen) : s.rng.u(20 * SEC, maxLen);
      s.set(BED, t, bad);
      s.set(BED, t + len, { hr, br });
      lens.push(ms(len));
      t += len + s.rng.u(30 * SEC, 60 * SEC);
    }
    t += 2 * MIN;
    s.place(t, "bedroom");
    s.place(t + 30 * SEC, "away");
    return { durationMs: Math.round(t + MIN), startMin: Math.round(s.rng.u(13 * 60, 23 * 60)), notes: `spikes ${lens.join(", ")}`, label: () => [] };
  });

  // A radar loses power. 0-2: the bed radar during sleep; 3-5: the bathroom radar while someone sits still
  // there (who then leaves unseen: its stale "present, still" must not become a stillness alarm); 6: the
  // bathroom radar with nobody there; 7-9: unplugged and plugged back (bed, bath, bath).
  add("unplugged", 10, HOME, (s, i) => {
    const t0 = prelude(s.rng);
    const bedSide = i <= 2 || i === 7;
    const radar = bedSide ? BED : BATH;
    let off: number;
    let end: number;
    let back: number | null = null;
    if (bedSide) {
      s.place(0, "bedroom");
      active(s, BED, 0, t0);
      s.place(t0, "bed");
      off = t0 + s.rng.u(2 * MIN, 6 * MIN);
      sleep(s, t0 + 30 * SEC, off + 30 * MIN, { turns: false });
    } else {
      s.place(0, "bath");
      active(s, BATH, 0, t0);
      if (i !== 6) s.set(BATH, t0, { motion: "still" });
      else s.place(t0, "away");
      off = t0 + s.rng.u(30 * SEC, 3 * MIN);
      s.place(off + s.rng.u(1 * MIN, 4 * MIN), "away");
    }
    if (i >= 7) {
      back = off + s.rng.u(1 * MIN, 5 * MIN);
      end = back + s.rng.u(2 * MIN, 5 * MIN);
      if (!bedSide) {
        s.place(back + 40 * SEC, "bath");
        active(s, BATH, back + 40 * SEC, end - 30 * SEC);
        s.place(end - 30 * SEC, "away");
      }
    } else end = off + (bedSide ? s.rng.u(2 * MIN, 15 * MIN) : DEFAULT_RULES.stillness.windowMs + s.rng.u(2 * MIN, 8 * MIN));
    s.power.push({ radar, on: false, at: Math.round(off) });
    if (back !== null) s.power.push({ radar, on: true, at: Math.round(back) });
    return {
      durationMs: Math.round(end),
      startMin: bedSide ? Math.round(s.rng.u(22 * 60 + 30, 23 * 60 + 50)) : dayStart(s.rng),
      notes: `${radar} off at ${ms(off)}${back !== null ? `, back at ${ms(back)}` : ""}`,
      label: (q) => {
        const last = q.lastFrame(radar, off);
        const w = OFFLINE_AFTER_MS;
        const e: Expectation[] = [
          { type: "offline", device: radar, event: last, windowMs: w, by: last + w + SLACK_MS, until: back ?? end, why: "no valid frame past the check-in window" },
        ];
        if (back !== null) {
          const first = q.firstFrame(radar, back);
          e.push({ type: "online", device: radar, event: first, windowMs: 0, by: first + SLACK_MS, until: end, why: "valid frames again" });
        }
        return e;
      },
    };
  });

  // Normal activity under line noise and corrupted frames.
  add("noise_normal", 8, HOME_LIVING, (s) => {
    s.noise = { p: s.rng.u(0.1, 0.4) };
    const len = s.rng.u(10 * MIN, 40 * MIN);
    s.place(0, "bath");
    active(s, BATH, 0, 60 * SEC);
    dayRoutine(s, 60 * SEC, len);
    return { durationMs: Math.round(len + MIN), startMin: dayStart(s.rng), notes: `noise p=${s.noise.p.toFixed(2)} per chunk`, label: () => [] };
  });

  // A real fall under line noise and corrupted frames.
  add("noise_fall", 6, HOME, (s) => {
    s.noise = { p: s.rng.u(0.2, 0.4) };
    const t0 = prelude(s.rng);
    s.place(0, "bath");
    active(s, BATH, 0, t0);
    const flag = fall(s, BATH, t0);
    const end = Math.round(flag + s.rng.u(2 * MIN, 5 * MIN));
    return {
      durationMs: end,
      startMin: dayStart(s.rng),
      notes: `noise p=${s.noise.p.toFixed(2)}, falls at ${ms(t0)}`,
      label: (q) => [fallExpect(q, BATH, flag, end, "fall report under line noise")],
    };
  });

  // The radar drops its flag while the person still lies there.
  add("fall_flag_clears", 6, (i) => (i < 4 ? HOME() : HOME_LIVING()), (s, i) => {
    const room: Place = i < 4 ? "bath" : "living";
    const radar = i < 4 ? BATH : LIVING;
    const t0 = prelude(s.rng);
    s.place(0, room);
    active(s, radar, 0, t0);
    const flag = fall(s, radar, t0);
    const clr = flag + s.rng.u(2 * SEC, 20 * SEC);
    s.set(radar, clr, { fall: false });
    const end = Math.round(flag + s.rng.u(1 * MIN, 10 * MIN));
    return { durationMs: end, startMin: dayStart(s.rng), notes: `flag cleared ${ms(clr - flag)} after it rose`, label: (q) => [fallExpect(q, radar, flag, end, "flag cleared, person still down")] };
  });

  // Brief motion artefacts (shorter than getUpMs) while lying after a fall.
  add("fall_artefacts", 6, (i) => (i < 4 ? HOME() : HOME_LIVING()), (s, i) => {
    const room: Place = i < 4 ? "bath" : "living";
    const radar = i < 4 ? BATH : LIVING;
    const t0 = prelude(s.rng);
    s.place(0, room);
    active(s, radar, 0, t0);
    const flag = fall(s, radar, t0);
    const end = Math.round(flag + s.rng.u(2 * MIN, 6 * MIN));
    let n = 0;
    for (let t = flag + s.rng.u(1 * SEC, 5 * SEC); t < end - 5 * SEC; ) {
      const d = s.rng.u(0.5 * SEC, 3 * SEC);
      s.set(radar, t, { motion: "moving" });
      s.set(radar, t + d, { motion: "still" });
      n++;
      t += d + s.rng.u(1 * SEC, 12 * SEC);
    }
    return { durationMs: end, startMin: dayStart(s.rng), notes: `${n} artefacts of 0.5–3 s, 1–12 s apart`, label: (q) => [fallExpect(q, radar, flag, end, "artefacts are not getting up")] };
  });

  // Down out of the radar's view (behind the bath tub): presence drops after the flag; 3-4 the flag clears too.
  add("fall_out_of_view", 5, HOME, (s, i) => {
    const t0 = prelude(s.rng);
    s.place(0, "bath");
    active(s, BATH, 0, t0);
    const flag = fall(s, BATH, t0);
    const gone = flag + s.rng.u(0.5 * SEC, 4 * SEC);
    s.set(BATH, gone, { presence: false, motion: "none", ...(i >= 3 ? { fall: false } : {}) });
    const end = Math.round(flag + s.rng.u(1 * MIN, 10 * MIN));
    return { durationMs: end, startMin: dayStart(s.rng), notes: `presence lost ${ms(gone - flag)} after the flag${i >= 3 ? ", flag cleared" : ""}`, label: (q) => [fallExpect(q, BATH, flag, end, "lying out of view is not getting up")] };
  });

  // A failed attempt to get up: one burst of movement longer than getUpMs (and maybe a shorter one) within the
  // confirmation window, the radar's flag never clears, then the person lies still on the floor. Told apart
  // from getting up (fall_get_up) by the flag that stays and the stillness that follows, not by the burst.
  add("fall_struggle", 4, (i) => (i < 2 ? HOME() : HOME_LIVING()), (s, i) => {
    const room: Place = i < 2 ? "bath" : "living";
    const radar = i < 2 ? BATH : LIVING;
    const t0 = prelude(s.rng);
    s.place(0, room);
    active(s, radar, 0, t0);
    const flag = fall(s, radar, t0);
    let t = flag + s.rng.u(2 * SEC, 8 * SEC);
    const burst = s.rng.u(6 * SEC, 10 * SEC);
    s.set(radar, t, { motion: "moving" });
    s.set(radar, t + burst, { motion: "still" });
    t += burst + s.rng.u(2 * SEC, 5 * SEC);
    if (s.rng.chance(0.5)) {
      const d = s.rng.u(2 * SEC, 4 * SEC);
      s.set(radar, t, { motion: "moving" });
      s.set(radar, t + d, { motion: "still" });
    }
    const end = Math.round(flag + s.rng.u(12 * MIN, 15 * MIN));
    return { durationMs: end, startMin: dayStart(s.rng), notes: `tries to get up ${ms(burst)} and stays down`, label: (q) => [fallExpect(q, radar, flag, end, "a failed attempt to get up is not getting up: the flag stays, the person lies still")] };
  });

  // No sign of life for the inactivity span. 0: the configured 12 h with the 22:00-07:00 night: last movement
  // 06:0x, so counting starts at 07:00 and the warning is due at 19:00 (without the exemption: 18:0x).
  // 1: span 1 h, night 22:00-23:30, crossing it. 2: span 2 h in the afternoon.
  add("inactivity_day", 3, HOME, (s, i) => {
    if (i === 1) s.rules = { ...DEFAULT_RULES, inactivity: { ...DEFAULT_RULES.inactivity, spanMs: HOUR, night: { from: "22:00", to: "23:30" } } };
    if (i === 2) s.rules = { ...DEFAULT_RULES, inactivity: { ...DEFAULT_RULES.inactivity, spanMs: 2 * HOUR } };
    const startMin = i === 0 ? 6 * 60 : i === 1 ? 21 * 60 + 30 : 13 * 60;
    const t0 = Math.round(s.rng.u(2 * MIN, 5 * MIN));
    s.place(0, "bedroom");
    active(s, BED, 0, t0);
    s.place(t0, "bed");
    // lies in bed, awake or unwell, not moving at all: steady presence, steady motion, normal vitals
    sleep(s, t0 + 10 * SEC, 24 * HOUR, { turns: false });
    const startAt = corpusEpoch(startMin);
    const settled = t0 + 10 * SEC;
    const due = inactivityDue(startAt + settled, s.rules.inactivity.spanMs, s.rules.inactivity) - startAt;
    const end = Math.round(due + 3 * MIN);
    return {
      durationMs: end,
      startMin,
      notes: `no movement from ${ms(settled)}; span ${ms(s.rules.inactivity.spanMs)}, night ${s.rules.inactivity.night?.from}-${s.rules.inactivity.night?.to}`,
      label: (q, t) => {
        const last = q.lastSignOfLife(end);
        const dueAt = inactivityDue(t.startAt + last, q.rules.inactivity.spanMs, q.rules.inactivity) - t.startAt;
        return [{ type: "inactivity", event: last, windowMs: dueAt - last, earliest: dueAt - 60 * SEC, by: dueAt + SLACK_MS, until: end, why: "no sign of life for the span, night not counted" }];
      },
    };
  });

  // Normal days: 0 is a full 24 h (07:00 to 07:00 with the night's sleep), 1-2 are 8 h stretches.
  add("normal_day", 3, HOME_LIVING, (s, i) => {
    const startMin = i === 0 ? 7 * 60 : i === 1 ? 7 * 60 + 30 : 14 * 60;
    const wake = i === 0 ? 15.5 * HOUR : 8 * HOUR;
    s.place(0, "bath");
    active(s, BATH, 0, 2 * MIN);
    dayRoutine(s, 2 * MIN, wake);
    let end = wake;
    if (i === 0) {
      s.place(wake, "bedroom");
      active(s, BED, wake, wake + 3 * MIN);
      s.place(wake + 3 * MIN, "bed");
      const trip = wake + s.rng.u(3 * HOUR, 5 * HOUR);
      sleep(s, wake + 4 * MIN, trip);
      s.place(trip, "bedroom");
      s.place(trip + 20 * SEC, "away");
      const back = bathVisit(s, trip + 40 * SEC, s.rng.u(3 * MIN, 8 * MIN), "away");
      s.place(back + 20 * SEC, "bedroom");
      s.place(back + 50 * SEC, "bed");
      end = 24 * HOUR - 5 * MIN;
      sleep(s, back + 80 * SEC, end);
      s.place(end, "bedroom");
      active(s, BED, end, end + 2 * MIN);
      s.place(end + 2 * MIN, "away");
      end += 3 * MIN;
    }
    return { durationMs: Math.round(end), startMin, notes: i === 0 ? "24 h with the night" : `8 h from ${Math.floor(startMin / 60)}:${String(startMin % 60).padStart(2, "0")}`, label: () => [] };
  });

  return out;
}

/** The corpus day: Monday 2025-03-03 in Asia/Shanghai; `min` minutes after local midnight. */
export function corpusEpoch(min: number): number {
  return Date.UTC(2025, 2, 3) - 8 * HOUR + min * MIN;
}

function ms(v: number): string {
  if (v < 90 * SEC) return `${(v / SEC).toFixed(1)} s`;
  if (v < 90 * MIN) return `${(v / MIN).toFixed(1)} min`;
  return `${(v / HOUR).toFixed(2)} h`;
}

// --- public API ---------------------------------------------------------------------------------------------

/** A trace not yet rendered: cheap to list, rendered one at a time (a 24 h trace is ~150k chunks). */
export interface TraceSpec {
  name: string;
  category: Category;
  seed: number;
  /** simulated length (from the behaviour model alone, before rendering) */
  durationMs: number;
}

const ALL = specs();

/** Every trace of the corpus, in a fixed order; seeds depend on the corpus seed and the trace's name only. */
export function corpus(seed: number): TraceSpec[] {
  return ALL.map((s) => {
    const traceSeed = hashSeed(seed, s.name);
    const built = s.build(new Scene(new Rng(traceSeed), s.radars));
    return { name: s.name, category: s.category, seed: traceSeed, durationMs: Math.round(built.durationMs) };
  });
}

/** Renders one trace: behaviour → frames → (noise) → chunks, and its labels from the intact frames. */
export function render(spec: Pick<TraceSpec, "name" | "seed">): Trace {
  const def = ALL.find((s) => s.name === spec.name) ?? (spec.name === DEMO.name ? DEMO : undefined);
  if (!def) throw new Error(`no trace named ${spec.name}`);
  const rng = new Rng(spec.seed);
  const scene = new Scene(rng, def.radars);
  const built = def.build(scene);
  const durationMs = Math.round(built.durationMs);
  const renderRng = new Rng(hashSeed(spec.seed, "render"));
  let rchunks: RChunk[] = [];
  for (const r of def.radars) {
    const changes = scene.tl.get(r.id)!.sorted();
    const iv = powerIntervals(scene.power, r.id, durationMs);
    rchunks.push(...(r.profile === "seeed-mr60fda1" ? renderFda1 : renderBha1)(renderRng, r.id, changes, iv, durationMs));
  }
  rchunks.sort((a, b) => a.at - b.at);
  if (scene.noise) applyNoise(new Rng(hashSeed(spec.seed, "noise")), rchunks, scene.noise.p);
  const fin = finalise(rchunks);
  rchunks = [];
  const startAt = corpusEpoch(built.startMin);
  const q = new Reports(fin.intact, scene.rules);
  const expect = built.label(q, { startAt, durationMs });
  for (const e of expect) if (e.by > durationMs) throw new Error(`${spec.name}: expectation ${e.type} due at ${e.by} after the trace's end ${durationMs}`);
  const expected = new Set(expect.map((e) => e.type));
  return {
    name: spec.name,
    category: def.category,
    seed: spec.seed,
    startAt,
    durationMs,
    radars: def.radars,
    rooms: scene.rooms,
    rules: scene.rules,
    chunks: fin.chunks,
    power: [...scene.power].sort((a, b) => a.at - b.at),
    expect,
    forbid: ALARM_TYPES.filter((t) => !expected.has(t)),
    ambiguous: built.ambiguous,
    notes: built.notes,
    framesIntact: fin.framesIntact,
    framesDamaged: fin.framesDamaged,
  };
}

const DEMO_CONFIRM_MS = 5000;
/**
 * A short trace for real-time demos and the end-to-end test: one fall radar settling in 2 s, a fall at 4 s,
 * a 5 s confirmation window; 15 s of wall clock.
 */
const DEMO: Spec = {
  name: "demo-fall-realtime",
  category: "fall_stays_down",
  radars: [{ id: BATH, profile: "seeed-mr60fda1", room: "bathroom", settleMs: 2000 }],
  build: (s) => {
    s.rules = { ...DEFAULT_RULES, fall: { ...DEFAULT_RULES.fall, confirmMs: DEMO_CONFIRM_MS } };
    s.place(0, "bath");
    active(s, BATH, 0, 4 * SEC, { move: [1 * SEC, 2 * SEC], still: [1 * SEC, 2 * SEC] });
    const flag = fall(s, BATH, 4 * SEC);
    return {
      durationMs: 15 * SEC,
      startMin: 10 * 60,
      notes: "demo: a fall at 4 s, confirmMs 5 s",
      label: (q) => {
        const event = q.first(BATH, flag, (r) => r.fall === "fall");
        return [{ type: "fall", device: BATH, trigger: "fall_report", event, windowMs: DEMO_CONFIRM_MS, by: event + DEMO_CONFIRM_MS + SLACK_MS, until: 15 * SEC, why: "demo fall" }];
      },
    };
  },
};

/** The demo trace (not part of the corpus). */
export function demoTrace(seed = 1): Trace {
  return render({ name: DEMO.name, seed: hashSeed(seed, DEMO.name) });
}

/** The whole corpus rendered (memory: tens of MB for the long traces; prefer `corpus` + `render`). */
export function generate(seed: number): Trace[] {
  return corpus(seed).map(render);
}

/** What a radar answers to the hub's product-information queries. */
export function productReplies(profile: RadarProfile): Record<"model" | "id" | "hardware" | "firmware", Buffer> {
  const model = profile === "seeed-mr60fda1" ? "MR60FDA1" : "MR60BHA1";
  return {
    model: encodeProductInfo("model", model),
    id: encodeProductInfo("id", "SIM0000000001"),
    hardware: encodeProductInfo("hardware", "G60SM1SYv010003"),
    firmware: encodeProductInfo("firmware", "V1.0.0"),
  };
}
