// What each alarm sounds like on a Zigbee siren, from what that siren's converter exposes.
//
// One table (SIREN_SOUNDS) says what fire, gas/CO/valve-fault and the SOS chirp should sound like; `fitSound`
// fits a row to one siren's capabilities (the features of its converter's `warning` expose), so a siren is
// never sent a property it does not expose. The cadence is what tells the alarms apart on every siren,
// including those with a single warning mode (Heiman HS2WD-E: stop and emergency only):
//
//   fire (smoke)              temporal-three: three sounds, a long pause, repeated (ISO 8201's evacuation rhythm,
//                             the one smoke alarms beep), in the fire tone where the siren has one
//   gas, CO, valve fault      continuous, in the emergency tone
//   SOS chirp                 one short sound
//
// The cadence is the same on every siren, whatever tones it has, so a home with a one-mode siren and a
// multi-mode one never sounds "the same" for two different alarms. docs/zigbee.md has the table per model.
import type { ExposeLike } from "./roles.js";

/** The rules' alarms (hub-device.ts SirenMode) and the SOS feedback. */
export type SirenSound = "fire" | "emergency" | "chirp";

/** The features of one siren's settable `warning` composite: only these may ever be sent to it. */
export interface SirenCapabilities {
  /** the composite's property (always `warning` today) */
  property: string;
  /** `mode` values offered, empty when the converter exposes no `mode` */
  modes: string[];
  /** `level` (sound level) values, empty when not exposed */
  levels: string[];
  /** `strobe_level` values, empty when not exposed */
  strobeLevels: string[];
  strobe: boolean;
  /** `strobe_duty_cycle` range (0–10 = 0–100 % of each second), when exposed */
  strobeDutyCycle?: { min: number; max: number };
  /** `duration` (seconds) exposed; without it the converter uses its own fixed default */
  duration: boolean;
}

/** One step of a cadence: sounding (a warning) or silent (a `stop`) for `ms`. */
export interface CadenceStep {
  sound: boolean;
  ms: number;
}

/**
 * Fire's cadence: ISO 8201 temporal-three (on, off, on, off, on, long off) at twice its 0.5 s steps, so that
 * Zigbee's delivery jitter (tens of ms a hop) and a siren's own start-up never blur it; 8 s a cycle, six
 * frames per cycle per siren.
 */
export const TEMPORAL_THREE: readonly CadenceStep[] = [
  { sound: true, ms: 1000 },
  { sound: false, ms: 1000 },
  { sound: true, ms: 1000 },
  { sound: false, ms: 1000 },
  { sound: true, ms: 1000 },
  { sound: false, ms: 3000 },
];

export type Cadence = "continuous" | "temporal-three" | "once";

/** What one sound should be, before it is fitted to a siren. */
export interface SoundSpec {
  /** warning modes, the wanted one first, then the nearest */
  modes: readonly string[];
  level: string;
  strobe: boolean;
  strobeLevel: string;
  /** strobe flash length, 0–10 tenths of each second (ZCL: 0 would mean a strobe that never lights) */
  strobeDutyCycle: number;
  cadence: Cadence;
}

/**
 * THE table: what each alarm sounds like. Level is very high for both alarms (a quieter gas alarm would
 * only be heard less, not told apart); the strobe flashes with the sound, so the cadence is seen as well as heard.
 */
export const SIREN_SOUNDS: Readonly<Record<SirenSound, SoundSpec>> = {
  fire: { modes: ["fire", "fire_panic", "emergency", "emergency_panic", "burglar"], level: "very_high", strobe: true, strobeLevel: "very_high", strobeDutyCycle: 5, cadence: "temporal-three" },
  emergency: { modes: ["emergency", "emergency_panic", "fire", "burglar"], level: "very_high", strobe: true, strobeLevel: "very_high", strobeDutyCycle: 5, cadence: "continuous" },
  chirp: { modes: ["emergency", "emergency_panic", "fire", "burglar"], level: "low", strobe: true, strobeLevel: "low", strobeDutyCycle: 5, cadence: "once" },
};

const prop = (e: ExposeLike) => e.property ?? e.name ?? "";

/** The capabilities of a settable `warning` composite expose. */
export function sirenCapabilities(warning: ExposeLike): SirenCapabilities {
  const f = (name: string) => warning.features?.find((x) => prop(x) === name);
  const values = (name: string) => (f(name)?.values ?? []).map(String);
  const duty = f("strobe_duty_cycle");
  return {
    property: prop(warning),
    modes: values("mode"),
    levels: values("level"),
    strobeLevels: values("strobe_level"),
    strobe: !!f("strobe"),
    strobeDutyCycle: duty ? { min: duty.value_min ?? 0, max: duty.value_max ?? 10 } : undefined,
    duration: !!f("duration"),
  };
}

/** The siren mode to ask for: the wanted one when the device has it, else the nearest it has. */
export function pickSirenMode(available: readonly string[], wanted: "fire" | "emergency"): string {
  return nearestMode(available, SIREN_SOUNDS[wanted].modes) ?? wanted;
}

function nearestMode(available: readonly string[], order: readonly string[]): string | undefined {
  return order.find((m) => available.includes(m)) ?? available.find((m) => m !== "stop");
}

/** One sound fitted to one siren: the warning to send (exposed features only) and its cadence. */
export interface FittedSound {
  sound: SirenSound;
  /** the warning value for a sounding step lasting `seconds` (duration is left out where not exposed) */
  warning(seconds: number): Record<string, unknown>;
  /** the steps, repeated while wanted; undefined: one warning, re-sent before it runs out (or once, for the chirp) */
  steps?: readonly CadenceStep[];
}

/**
 * A warning that ends whatever the siren is sounding: `mode: stop`, and the strobe off where it has one.
 * Every siren among the converters' definitions offers `stop`; the converter's `warning` accepts it on any.
 */
export function stopWarning(caps: SirenCapabilities): Record<string, unknown> {
  const w: Record<string, unknown> = {};
  if (caps.modes.length) w.mode = "stop";
  if (caps.duration) w.duration = 0;
  if (caps.strobe) w.strobe = false;
  return w;
}

/**
 * Fits a row of the table to a siren. Bursts need `stop` to end each sound early, so a siren without it
 * (none among the converters' definitions) sounds fire continuously, and only its tone can differ.
 */
export function fitSound(caps: SirenCapabilities, sound: SirenSound): FittedSound {
  const spec = SIREN_SOUNDS[sound];
  const base: Record<string, unknown> = {};
  const mode = caps.modes.length ? nearestMode(caps.modes, spec.modes) : undefined;
  if (mode) base.mode = mode;
  if (caps.levels.includes(spec.level)) base.level = spec.level;
  if (caps.strobe) base.strobe = spec.strobe;
  if (caps.strobe && spec.strobe && caps.strobeLevels.includes(spec.strobeLevel)) base.strobe_level = spec.strobeLevel;
  if (caps.strobe && spec.strobe && caps.strobeDutyCycle) base.strobe_duty_cycle = Math.min(caps.strobeDutyCycle.max, Math.max(caps.strobeDutyCycle.min, spec.strobeDutyCycle));
  const canCut = caps.modes.includes("stop");
  const steps = spec.cadence === "temporal-three" && canCut ? TEMPORAL_THREE : undefined;
  return {
    sound,
    warning: (seconds) => (caps.duration ? { ...base, duration: seconds } : { ...base }),
    steps,
  };
}
