// The call tree as the incident page draws it: the frozen plan's steps, each with whom it calls (masked),
// every attempt made to them with its answer, and which step the tree stands at with when it moves on.
// Pure: the incident's plan, its step timers and its call attempts in; where the tree stands comes from the
// queue's own rule (queue/step.ts), so the page and the queue never disagree.
import { arrivalMeaningOf, meaningOf } from "../../escalation/keys.js";
import { passOf } from "../../escalation/passes.js";
import type { EscalationPlan, TargetRole } from "../../escalation/plan.js";
import { isMaintenance } from "../../incidents/lifecycle.js";
import { currentStep, type QueueStep, type StepTimer } from "../queue/step.js";

export interface AttemptRow {
  id: string;
  step: number;
  round: number;
  role: string;
  target: string;
  channel: string;
  status: string;
  digits: string | null;
  requested_at: number;
  placed_at: number | null;
  outcome_at: number | null;
}

export interface TreeAttempt {
  id: string;
  pass: number;
  round: number;
  /** An arrival check ("are you with the elder?") rather than a call of the step itself. */
  arrivalCheck: boolean;
  channel: string;
  status: string;
  /** What the key pressed means (help_needed, fine, going_to_door, will_check, declined, with_elder, could_not_get_there). */
  meaning: string | null;
  digits: string | null;
  requestedAt: number;
  placedAt: number | null;
  outcomeAt: number | null;
}

export interface TreeTarget {
  ref: string;
  role: string;
  channel: string;
  /** Masked; null when the care plan no longer names this person. */
  who: { name: string; phone: string } | null;
  attempts: TreeAttempt[];
}

export type StepStatus = "done" | "current" | "next" | "not_reached";

export interface TreeStep {
  /** 1-based. */
  index: number;
  name: string;
  waitS: number;
  repeat: number;
  status: StepStatus;
  targets: TreeTarget[];
}

export interface CallTree {
  escalation: string;
  pass: number;
  startDelayS: number;
  current: QueueStep | null;
  steps: TreeStep[];
}

export interface TreeIncident {
  id: string;
  type: string;
  escalation: string;
  escalation_pass: number;
  plan: EscalationPlan;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function attemptOf(inc: TreeIncident, a: AttemptRow): TreeAttempt {
  const arrivalPrefix = `${inc.id}:arrival:`;
  const arrivalCheck = a.id.startsWith(arrivalPrefix);
  // An arrival attempt's id is the acknowledging call's with "arrival:" put in: its pass is that call's.
  const passId = arrivalCheck ? `${inc.id}:${a.id.slice(arrivalPrefix.length)}` : a.id;
  const digits = a.digits ?? undefined;
  const meaning = arrivalCheck ? arrivalMeaningOf(digits) : meaningOf(a.role as TargetRole, digits, isMaintenance(inc.type));
  return {
    id: a.id,
    pass: passOf(inc.id, passId),
    round: a.round,
    arrivalCheck,
    channel: a.channel,
    status: a.status,
    meaning: meaning ?? null,
    digits: a.digits,
    requestedAt: Number(a.requested_at),
    placedAt: num(a.placed_at),
    outcomeAt: num(a.outcome_at),
  };
}

export function buildCallTree(
  inc: TreeIncident,
  timers: readonly StepTimer[],
  attempts: readonly AttemptRow[],
  who: (ref: string) => { name: string; phone: string } | undefined,
): CallTree {
  const pass = Number(inc.escalation_pass);
  const current = currentStep(inc, timers);
  const currentIndex = current ? current.index - 1 : undefined;
  const reached = new Set(attempts.map((a) => a.step));
  const steps = inc.plan.steps.map((s, i): TreeStep => {
    let status: StepStatus;
    if (currentIndex !== undefined) status = i < currentIndex ? "done" : i === currentIndex ? "current" : i === currentIndex + 1 ? "next" : "not_reached";
    else status = reached.has(i) ? "done" : "not_reached";
    const targets = s.targets.map((t) => ({
      ref: t.ref,
      role: t.role,
      channel: t.channel,
      who: who(t.ref) ?? null,
      attempts: attempts.filter((a) => a.step === i && a.target === t.ref).map((a) => attemptOf(inc, a)),
    }));
    return { index: i + 1, name: s.name, waitS: s.waitS, repeat: s.repeat, status, targets };
  });
  return { escalation: inc.escalation, pass, startDelayS: inc.plan.startDelayS, current, steps };
}
