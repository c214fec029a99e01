// The one-key call rule: pure. A press raises a critical `sos` alarm and always gives the elder local
// feedback at once (a chirp), so they know the call went out. A button that sends several frames for one
// press (press, release, repeat) raises one alarm per `repeatWindowMs`; each later press in the window
// still chirps and is counted.

export interface SosParams {
  repeatWindowMs: number;
}

export interface SosRuleState {
  /** Per button: when its current alarm was raised and how many presses it has had since. */
  last: Record<string, { raisedAt: number; presses: number }>;
}

export type SosDecision =
  | { do: "chirp"; device: string }
  | { do: "raise"; alarm: "sos"; device: string; room?: string; action: string }
  | { do: "repeat"; device: string; presses: number; since: number };

export interface SosStep {
  state: SosRuleState;
  decisions: SosDecision[];
}

export const DEFAULT_SOS: SosParams = { repeatWindowMs: 30_000 };

export function initialSosState(): SosRuleState {
  return { last: {} };
}

export function sosPress(prev: SosRuleState, p: SosParams, input: { device: string; room?: string; action: string }, now: number): SosStep {
  const state = structuredClone(prev);
  // Feedback first: it is the elder's only sign the press was heard.
  const decisions: SosDecision[] = [{ do: "chirp", device: input.device }];
  const last = state.last[input.device];
  if (last && now - last.raisedAt < p.repeatWindowMs) {
    last.presses++;
    decisions.push({ do: "repeat", device: input.device, presses: last.presses, since: last.raisedAt });
    return { state, decisions };
  }
  state.last[input.device] = { raisedAt: now, presses: 1 };
  decisions.push({ do: "raise", alarm: "sos", device: input.device, room: input.room, action: input.action });
  return { state, decisions };
}

/**
 * The state saved before a restart: a button's repeat window continues from its original raise, so a press
 * just after the restart is still a repeat of the same call. A window already over is dropped, and so is one
 * that starts after `now` (the clock went back across a power cut): a press then raises a new alarm rather than
 * being swallowed as a repeat for as long as the clock is behind.
 */
export function restoreSosState(saved: SosRuleState, p: SosParams, now: number): SosRuleState {
  const last: SosRuleState["last"] = {};
  for (const [id, l] of Object.entries(saved.last)) if (l.raisedAt <= now && now - l.raisedAt < p.repeatWindowMs) last[id] = { ...l };
  return { last };
}

/**
 * Ends a button's episode: its repeat window is dropped, so its next press raises a new alarm instead of being
 * folded into the last one as a repeat (a commissioning test press is over; the next press is the elder's).
 * The state is returned unchanged (the same object) when the button has no window open.
 */
export function forgetButton(prev: SosRuleState, device: string): SosRuleState {
  if (!Object.hasOwn(prev.last, device)) return prev;
  const last = { ...prev.last };
  delete last[device];
  return { last };
}
