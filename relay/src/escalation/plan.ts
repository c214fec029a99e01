// A policy made concrete for one incident: groups and "each in turn" expanded against the care plan into
// the steps actually run, each naming its targets by care-plan id (never by number). Frozen into the
// incident when it opens, so step numbers (and the timers and call attempts keyed on them) never shift.
import type { CarePlan, ContactRole } from "../careplans/schema.js";
import { restartStepIndex, type ArrivalPolicy, type Channel, type Policy, type PolicySet } from "./policy.js";

export type TargetRole = "elder" | "onsite_team" | ContactRole;

export interface PlannedTarget {
  /** "elder", "onsite_team" or a contact's id. */
  ref: string;
  role: TargetRole;
  channel: Channel;
}

export interface PlannedStep {
  name: string;
  targets: PlannedTarget[];
  waitS: number;
  repeat: number;
}

export interface EscalationPlan {
  startDelayS: number;
  steps: PlannedStep[];
  /**
   * The planned step new evidence restarts the tree at: the first one expanded from the policy's
   * `onNewEvidence.restartAtStep` or a later policy step (that one may be empty in this home). Absent in
   * plans frozen before it existed: the first step.
   */
  restartAt?: number;
  /** The policy's arrival check, if any (absent in plans frozen before it existed: no check). */
  arrival?: ArrivalPolicy;
}

export function expandPlan(policy: Policy, groups: PolicySet["groups"], care: CarePlan | undefined): EscalationPlan {
  const contacts = care?.contacts ?? [];
  const ofRole = (role: ContactRole) => contacts.filter((c) => c.role === role);
  const steps: PlannedStep[] = [];
  const restartFrom = restartStepIndex(policy);
  let restartAt: number | undefined;
  for (const [i, s] of policy.steps.entries()) {
    if (i >= restartFrom && restartAt === undefined) restartAt = steps.length;
    const first = s.targets[0];
    if (s.targets.length === 1 && first?.who === "role" && first.mode === "each_in_turn") {
      const ch = first.channel ?? s.channel;
      ofRole(first.role).forEach((c, i, all) =>
        steps.push({ name: `${s.name} (${i + 1} of ${all.length})`, targets: [{ ref: c.id, role: c.role, channel: ch }], waitS: s.waitS, repeat: s.repeat }),
      );
      continue;
    }
    const targets: PlannedTarget[] = [];
    const add = (t: PlannedTarget) => {
      if (!targets.some((x) => x.ref === t.ref)) targets.push(t);
    };
    for (const t of s.targets) {
      const ch = t.channel ?? s.channel;
      if (t.who === "elder") add({ ref: "elder", role: "elder", channel: ch });
      else if (t.who === "onsite_team") add({ ref: "onsite_team", role: "onsite_team", channel: ch });
      else {
        const roles = t.who === "role" ? [t.role] : (groups[t.group] ?? []);
        for (const role of roles) for (const c of ofRole(role)) add({ ref: c.id, role: c.role, channel: ch });
      }
    }
    // A role nobody fills in this home is skipped, not waited on.
    if (targets.length > 0) steps.push({ name: s.name, targets, waitS: s.waitS, repeat: s.repeat });
  }
  // Nothing planned at or after the named step (nobody fills those roles here): restart from the top.
  return { startDelayS: policy.startDelayS, steps, restartAt: restartAt !== undefined && restartAt < steps.length ? restartAt : 0, ...(policy.arrival ? { arrival: policy.arrival } : {}) };
}

/** The number to call for a target, from the current care plan (a number corrected mid-incident is used). */
export function numberFor(care: CarePlan | undefined, ref: string): string | undefined {
  if (!care) return undefined;
  if (ref === "elder") return care.elder.phone;
  if (ref === "onsite_team") return care.onsiteTeam.phone;
  return care.contacts.find((c) => c.id === ref)?.phone;
}
