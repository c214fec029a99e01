// The smoke rule for one home: detector reports and check-ins → the pure rule → the sirens (fire mode) and the
// journal.
import type { EventDraft } from "../../../protocol/envelope.js";
import * as smoke from "../rules/smoke.js";
import { smokeDecisionEvent, type ShapingContext } from "./event-shaping.js";

export interface SmokeWatchOptions {
  now: () => number;
  record: (draft: EventDraft) => void;
  /** The sirens follow every rule's wants; called when a step's decisions touch them. */
  settleSirens: () => void;
  onDecision: (d: smoke.SmokeDecision, at: number) => void;
  changed: () => void;
  shaping: () => ShapingContext;
}

export class SmokeWatch {
  private current = smoke.initialSmokeState();

  constructor(private readonly o: SmokeWatchOptions) {}

  get state(): Readonly<smoke.SmokeRuleState> {
    return this.current;
  }

  apply(input: smoke.SmokeInput): void {
    const at = this.o.now();
    const r = smoke.smokeStep(this.current, input, at);
    this.current = r.state;
    this.o.changed();
    if (!r.decisions.length) return;
    if (r.decisions.some((x) => x.do === "sirens")) this.o.settleSirens();
    for (const d of r.decisions) {
      this.o.onDecision(d, at);
      const draft = smokeDecisionEvent(d, { ...this.o.shaping(), alarmSince: this.current.alarm?.since });
      if (draft) this.o.record(draft);
    }
  }

  /** Takes over a saved state (already checked); the caller computes every part first, see SafetyHub.restore. */
  takeOver(s: smoke.SmokeRuleState): void {
    this.current = s;
  }
}
