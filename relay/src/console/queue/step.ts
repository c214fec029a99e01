// The call-tree step an incident's queue row shows, derived from the frozen plan and the escalation timers:
// the step of the running pass that started last (claimed by an instance, or run), or, before the first one
// starts (a policy's start delay), the step waiting to start; with when the next timer of the pass is due.
import type { EscalationPlan } from "../../escalation/plan.js";
import { passOf } from "../../escalation/passes.js";

export interface QueueStep {
  /** The step's name from the policy: who is being called. */
  label: string;
  /** 1-based, as the timeline counts steps. */
  index: number;
  of: number;
  /** When the next step (or the end of the tree) is due, ms; absent when nothing is pending. */
  nextAt?: number;
}

export interface StepTimer {
  id: string;
  kind: string;
  step: number;
  round: number;
  due_at: number;
  claimed_by: string | null;
  done_at: number | null;
  result: string | null;
}

const later = (a: StepTimer, b: StepTimer) => a.step > b.step || (a.step === b.step && a.round > b.round);
const earliest = (ts: readonly StepTimer[]) => ts.reduce<StepTimer | undefined>((a, t) => (a === undefined || t.due_at < a.due_at ? t : a), undefined);

/** Null unless the tree is running (acknowledged, exhausted and stopped trees call nobody). */
export function currentStep(inc: { id: string; escalation: string; escalation_pass: number; plan: EscalationPlan }, timers: readonly StepTimer[]): QueueStep | null {
  if (inc.escalation !== "running") return null;
  const ofPass = timers.filter((t) => (t.kind === "step" || t.kind === "end") && passOf(inc.id, t.id) === Number(inc.escalation_pass));
  const pending = ofPass.filter((t) => t.done_at === null);
  const started = ofPass.filter((t) => t.kind === "step" && (t.done_at === null ? t.claimed_by !== null : t.result === "ran"));
  const current = started.reduce<StepTimer | undefined>((a, t) => (a === undefined || later(t, a) ? t : a), undefined) ?? earliest(pending.filter((t) => t.kind === "step"));
  const planned = current ? inc.plan.steps[current.step] : undefined;
  if (!current || !planned) return null;
  // Not started yet: next is its own start. Started: whatever the pass scheduled after it (nothing while its calls are still going out).
  const waiting = current.done_at === null && current.claimed_by === null;
  const nextAt = waiting ? current.due_at : earliest(pending.filter((t) => t.id !== current.id))?.due_at;
  return { label: planned.name, index: current.step + 1, of: inc.plan.steps.length, ...(nextAt === undefined ? {} : { nextAt: Number(nextAt) }) };
}
