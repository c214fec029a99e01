// The hub's power as maintenance events: mains lost / restored, and the battery falling to the low and
// critical marks while the hub runs on it. Pure: the watch (watch.ts) reads sysfs and journals the drafts.
// A hub on battery is a warning (someone should look before it goes silent); a nearly empty one is high,
// since after it the home is unguarded and the platform hears nothing more.
import type { EventDraft } from "../../../protocol/envelope.js";
import type { PowerConfig } from "../config/power.js";
import type { PowerSnapshot } from "./sysfs.js";

/** The device id the events name. */
export const POWER_DEVICE_ID = "hub-power";

/**
 * Points above a mark the battery must climb before falling to it again is news: a gauge jitters by a point
 * or two, and a battery's voltage (so its estimate) recovers a little when the load drops.
 */
export const REARM_POINTS = 5;

export type PowerSource = "mains" | "battery" | "unknown";
export type BatteryBand = "ok" | "low" | "critical";
export type PowerThresholds = Pick<PowerConfig, "lowPercent" | "criticalPercent">;

/** What the rules remember between two readings. */
export interface PowerState {
  /** The last source known for sure; null until one is. A reading that cannot tell keeps it. */
  source: "mains" | "battery" | null;
  /** When the hub was seen going onto battery; null on mains. */
  onBatterySince: number | null;
  /** The battery's mark, latched: it only rises back REARM_POINTS above the mark that set it. */
  band: BatteryBand;
  last: PowerSnapshot;
}

export interface PowerStep {
  state: PowerState;
  events: EventDraft[];
}

const BAND_RANK: Record<BatteryBand, number> = { ok: 0, low: 1, critical: 2 };

/**
 * Where the hub draws power from. The mains supply's `online` decides; without one (a UPS HAT that shows
 * only its gauge) the battery's own status stands in: discharging means the mains is out.
 */
export function powerSource(s: PowerSnapshot): PowerSource {
  if (s.mains === "online") return "mains";
  if (s.mains === "offline") return "battery";
  if (s.batteryStatus === "discharging") return "battery";
  if (s.batteryStatus === "charging" || s.batteryStatus === "full") return "mains";
  return "unknown";
}

function nextBand(prev: BatteryBand, percent: number | null, known: PowerState["source"], c: PowerThresholds): BatteryBand {
  // On mains a low battery is charging, not news. Each time on battery starts afresh, so the platform hears
  // the battery's mark with every mains loss. A reading that cannot tell keeps the last source known, so a
  // garbled file on mains raises nothing; with no source ever known, a falling battery is reported.
  if (known === "mains") return "ok";
  // A gauge that gave no value this time says nothing new.
  if (percent === null) return prev;
  const fresh: BatteryBand = percent <= c.criticalPercent ? "critical" : percent <= c.lowPercent ? "low" : "ok";
  if (BAND_RANK[fresh] >= BAND_RANK[prev]) return fresh;
  if (prev === "critical" && percent < c.criticalPercent + REARM_POINTS) return "critical";
  if (percent < c.lowPercent + REARM_POINTS) return "low";
  return "ok";
}

function draft(type: string, severity: EventDraft["severity"], data: Record<string, unknown>): EventDraft {
  return { kind: "device", type, severity, device: POWER_DEVICE_ID, data };
}

/**
 * The state after `next`, and the events for going there from `prev`. At the first reading (`prev` null)
 * only a problem is reported: a hub on mains needs no news, one on battery is mains_lost (and battery_low or
 * battery_critical when the battery is already down to a mark).
 */
export function powerStep(prev: PowerState | null, next: PowerSnapshot, c: PowerThresholds): PowerStep {
  const source = powerSource(next);
  const before = prev?.source ?? null;
  const known = source === "unknown" ? before : source;
  const reading = {
    mains: next.mains,
    batteryPercent: next.batteryPercent,
    batteryStatus: next.batteryStatus,
    batteryVoltageV: next.batteryVoltageV,
    readAt: next.readAt,
  };
  const events: EventDraft[] = [];
  let onBatterySince = prev?.onBatterySince ?? null;
  if (known === "battery" && before !== "battery") {
    onBatterySince = next.readAt;
    events.push(draft("mains_lost", "warning", reading));
  } else if (known === "mains" && before === "battery") {
    const onBatteryS = onBatterySince === null ? null : Math.max(0, Math.round((next.readAt - onBatterySince) / 1000));
    onBatterySince = null;
    events.push(draft("mains_restored", "info", { ...reading, onBatteryS }));
  }
  const band = nextBand(prev?.band ?? "ok", next.batteryPercent, known, c);
  if (BAND_RANK[band] > BAND_RANK[prev?.band ?? "ok"]) {
    // Straight from ok to critical is one event: critical says all that low would.
    events.push(
      band === "critical"
        ? draft("battery_critical", "high", { ...reading, thresholdPercent: c.criticalPercent })
        : draft("battery_low", "warning", { ...reading, thresholdPercent: c.lowPercent }),
    );
  }
  return { state: { source: known, onBatterySince, band, last: next }, events };
}
