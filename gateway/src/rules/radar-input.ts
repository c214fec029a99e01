// What the behaviour rules (fall, stillness, vital signs, inactivity) are fed, whatever carried it: a
// UART radar, a Zigbee radar or a presence sensor. The hub turns each device's report into one `RadarInput`;
// the rules never see a transport. `null` heart rate or breathing means "no reading now", never "low".

// The vocabulary is the radars' own (transports/uart/codec.ts); Zigbee radars are mapped onto it.
export type { Motion, FallFlag } from "../transports/uart/codec.js";
import type { Motion, FallFlag } from "../transports/uart/codec.js";

export type RadarInput =
  | {
      type: "reading";
      device: string;
      room?: string;
      /** The readings this device can give at all (from its profile), so a missing one is not read as "no". */
      gives: readonly RadarField[];
      presence?: boolean;
      motion?: Motion;
      fall?: FallFlag;
      heartRate?: number | null;
      breathing?: number | null;
      inBed?: boolean;
    }
  /** A device went silent past its check-in window (online false) or was heard again. */
  | { type: "status"; device: string; room?: string; online: boolean }
  | { type: "tick" };

export type RadarField = "presence" | "motion" | "fall" | "heartRate" | "breathing" | "inBed";

/** The alarms the behaviour rules raise. */
export type BehaviourAlarm = "fall" | "vital_absent" | "vital_abnormal" | "inactivity";

/**
 * What led to an alarm, for the duty operator judging it: which device, the readings behind it and the
 * windows in force when it was raised.
 */
export interface Evidence {
  trigger: string;
  readings: Record<string, unknown>;
  windows: Record<string, number | string | boolean | null>;
}

/** One shape for every behaviour rule's decisions, so the hub journals them in one place. */
export type BehaviourDecision =
  | { do: "raise"; alarm: BehaviourAlarm; severity: "critical" | "high" | "warning"; device: string; room?: string; since: number; evidence: Evidence }
  | { do: "clear"; alarm: BehaviourAlarm; device: string; room?: string; since: number; reason: string }
  /** A window that closed without an alarm (the elder got up, the radar went silent): logged, not journaled. */
  | { do: "withdrawn"; alarm: BehaviourAlarm; device: string; room?: string; afterMs: number; reason: string }
  /** Per-minute vital-sign trend for the journal (thinned: never per-second data). */
  | { do: "trend"; device: string; room?: string; from: number; to: number; heartRate: Stat | null; breathing: Stat | null; inBed: boolean | null };

export interface Stat {
  n: number;
  mean: number;
  min: number;
  max: number;
}

export interface BehaviourStep<S> {
  state: S;
  decisions: BehaviourDecision[];
}
