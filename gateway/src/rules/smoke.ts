// The smoke rule: pure (state + input + clock → new state + decisions). Any smoke detector reporting
// smoke raises one critical `smoke` alarm and wants every siren on in fire mode; the alarm clears when
// every detector that reported smoke has reported clear again (a silent detector never proves clear air).

export interface SmokeDetectorState {
  smoke: boolean;
  room?: string;
  at: number;
  offline: boolean;
}

export interface SmokeAlarm {
  since: number;
  device: string;
  room?: string;
  /** Every detector that reported smoke during this alarm. */
  devices: string[];
}

export interface SmokeRuleState {
  detectors: Record<string, SmokeDetectorState>;
  alarm: SmokeAlarm | null;
}

export type SmokeDecision =
  | { do: "raise"; alarm: "smoke"; device: string; room?: string }
  | { do: "spread"; device: string; room?: string }
  | { do: "clear"; alarm: "smoke"; device: string; since: number; devices: string[] }
  | { do: "sirens"; on: boolean };

export type SmokeInput =
  | { type: "detector"; device: string; room?: string; smoke: boolean }
  | { type: "status"; device: string; online: boolean };

export interface SmokeStep {
  state: SmokeRuleState;
  decisions: SmokeDecision[];
}

export function initialSmokeState(): SmokeRuleState {
  return { detectors: {}, alarm: null };
}

export function smokeStep(prev: SmokeRuleState, input: SmokeInput, now: number): SmokeStep {
  const state = structuredClone(prev);
  const decisions: SmokeDecision[] = [];
  if (input.type === "status") {
    const d = state.detectors[input.device];
    if (d) d.offline = !input.online;
    return { state, decisions };
  }
  state.detectors[input.device] = { smoke: input.smoke, room: input.room, at: now, offline: false };
  if (input.smoke) {
    if (!state.alarm) {
      state.alarm = { since: now, device: input.device, room: input.room, devices: [input.device] };
      decisions.push({ do: "raise", alarm: "smoke", device: input.device, room: input.room }, { do: "sirens", on: true });
    } else if (!state.alarm.devices.includes(input.device)) {
      // Smoke reaching a second room is news for the duty operator, not a second alarm.
      state.alarm.devices.push(input.device);
      decisions.push({ do: "spread", device: input.device, room: input.room });
    }
    return { state, decisions };
  }
  const a = state.alarm;
  if (a && a.devices.every((id) => state.detectors[id]?.smoke === false && !state.detectors[id]?.offline)) {
    decisions.push({ do: "clear", alarm: "smoke", device: a.device, since: a.since, devices: a.devices }, { do: "sirens", on: false });
    state.alarm = null;
  }
  return { state, decisions };
}

/**
 * The state saved before a restart, made safe to run on: the alarm stays the same episode; the detectors'
 * reports are forgotten, so every detector that reported smoke must report clear again after the restart
 * before the alarm clears (a report from before the restart proves nothing about the air now).
 */
export function restoreSmokeState(saved: SmokeRuleState): SmokeRuleState {
  return { detectors: {}, alarm: saved.alarm ? { ...saved.alarm, devices: [...saved.alarm.devices] } : null };
}
