// Falls, dangerous stillness, vital signs and inactivity for one home: feeds every presence, motion, fall and
// vital-sign report (from UART radars, Zigbee radars, RS-485 presence sensors) to the pure behaviour rules
// and turns their decisions into journal events. Nothing here acts on a device: these alarms call people.
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";
import type { BehaviourParams, InactivityParams } from "../rules/behaviour-params.js";
import type { BehaviourDecision, BehaviourStep, RadarInput } from "../rules/radar-input.js";
import * as fall from "../rules/fall.js";
import * as vitals from "../rules/vitals.js";
import * as inactivity from "../rules/inactivity.js";

export interface BehaviourWatchOptions {
  params: BehaviourParams;
  inactivity: InactivityParams;
  record: (draft: EventDraft) => void;
  log: Logger;
  now: () => number;
}

export interface ActiveBehaviourAlarm {
  alarm: string;
  device: string;
  room?: string;
  since: number;
  trigger: string;
}

export class BehaviourWatch {
  private fallState = fall.initialFallState();
  private vitalsState = vitals.initialVitalsState();
  private inactivityState: inactivity.InactivityRuleState;
  /** Raised and not yet cleared, by `alarm/device`. */
  readonly active = new Map<string, ActiveBehaviourAlarm>();
  /** Every decision, for whoever watches (tests, the demo). */
  onDecision?: (d: BehaviourDecision, at: number) => void;

  constructor(private readonly o: BehaviourWatchOptions) {
    this.inactivityState = inactivity.initialInactivityState(o.now());
  }

  apply(input: RadarInput): void {
    const at = this.o.now();
    const p = this.o.params;
    this.fallState = this.take(fall.fallStep(this.fallState, p, input, at), at);
    this.vitalsState = this.take(vitals.vitalsStep(this.vitalsState, p, input, at), at);
    this.inactivityState = this.take(inactivity.inactivityStep(this.inactivityState, this.o.inactivity, input, at), at);
  }

  private take<S>(r: BehaviourStep<S>, at: number): S {
    for (const d of r.decisions) this.journal(d, at);
    return r.state;
  }

  private journal(d: BehaviourDecision, at: number): void {
    this.onDecision?.(d, at);
    const key = d.do === "raise" || d.do === "clear" ? `${d.alarm}/${d.device}` : "";
    switch (d.do) {
      case "raise":
        this.active.set(key, { alarm: d.alarm, device: d.device, room: d.room, since: d.since, trigger: d.evidence.trigger });
        this.o.record({
          kind: "alarm", type: d.alarm, severity: d.severity, device: d.device, room: d.room,
          data: { trigger: d.evidence.trigger, since: d.since, afterMs: at - d.since, evidence: d.evidence },
        });
        break;
      case "clear":
        this.active.delete(key);
        this.o.record({ kind: "alarm_cleared", type: d.alarm, severity: "info", device: d.device, room: d.room, data: { since: d.since, reason: d.reason } });
        break;
      case "withdrawn":
        this.o.log.info({ alarm: d.alarm, device: d.device, afterMs: d.afterMs, reason: d.reason }, "a window closed without an alarm");
        break;
      case "trend":
        this.o.record({
          kind: "reading", type: "vitals_trend", severity: "info", device: d.device, room: d.room,
          data: { from: d.from, to: d.to, heartRate: d.heartRate, breathing: d.breathing, inBed: d.inBed },
        });
        break;
    }
  }
}
