// The fall rule: pure. A radar's fall report starts a short confirmation window; if the radar has not
// withdrawn it by the end, a critical `fall` alarm is raised. Radars already dwell before they report
// (a typical radar raises its alarm about 90 s after a fall), so the window only filters a report the
// radar itself takes back within seconds. "Maybe" reports and presence only inform.

export type FallStatus = "fall" | "maybe" | "clear";

export interface FallParams {
  confirmMs: number;
}

export interface FallDeviceState {
  room?: string;
  status: FallStatus;
  /** A fall report waiting for its confirmation window. */
  pendingSince: number | null;
  /** The raised alarm, until the radar reports clear. */
  raisedAt: number | null;
  presence: boolean | null;
}

export interface FallRuleState {
  devices: Record<string, FallDeviceState>;
}

export type FallDecision =
  | { do: "raise"; alarm: "fall"; device: string; room?: string; reportedAt: number; presence: boolean | null }
  | { do: "withdrawn"; device: string; afterMs: number }
  | { do: "clear"; alarm: "fall"; device: string; since: number };

export type FallInput =
  | { type: "report"; device: string; room?: string; status: FallStatus }
  | { type: "presence"; device: string; room?: string; presence: boolean }
  | { type: "tick" };

export interface FallStep {
  state: FallRuleState;
  decisions: FallDecision[];
}

export const DEFAULT_FALL: FallParams = { confirmMs: 10_000 };

export function initialFallState(): FallRuleState {
  return { devices: {} };
}

function fresh(room?: string): FallDeviceState {
  return { room, status: "clear", pendingSince: null, raisedAt: null, presence: null };
}

export function fallStep(prev: FallRuleState, p: FallParams, input: FallInput, now: number): FallStep {
  const state = structuredClone(prev);
  const decisions: FallDecision[] = [];
  if (input.type === "presence") {
    const d = (state.devices[input.device] ??= fresh(input.room));
    d.presence = input.presence;
  } else if (input.type === "report") {
    const d = (state.devices[input.device] ??= fresh(input.room));
    d.room = input.room ?? d.room;
    d.status = input.status;
    if (input.status === "fall") d.pendingSince ??= d.raisedAt === null ? now : null;
    else if (input.status === "clear") {
      if (d.pendingSince !== null) decisions.push({ do: "withdrawn", device: input.device, afterMs: now - d.pendingSince });
      d.pendingSince = null;
      if (d.raisedAt !== null) {
        decisions.push({ do: "clear", alarm: "fall", device: input.device, since: d.raisedAt });
        d.raisedAt = null;
      }
    }
    // "maybe" keeps a pending report pending: the radar has not taken it back.
  }
  for (const [id, d] of Object.entries(state.devices)) {
    if (d.pendingSince !== null && now - d.pendingSince >= p.confirmMs) {
      decisions.push({ do: "raise", alarm: "fall", device: id, room: d.room, reportedAt: d.pendingSince, presence: d.presence });
      d.raisedAt = now;
      d.pendingSince = null;
    }
  }
  return { state, decisions };
}
