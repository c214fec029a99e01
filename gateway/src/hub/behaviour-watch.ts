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
import { ACTIVITY_BUCKET_MS, type RulesState } from "../state/snapshot.js";

export interface BehaviourWatchOptions {
  params: BehaviourParams;
  inactivity: InactivityParams;
  record: (draft: EventDraft) => void;
  log: Logger;
  now: () => number;
  /** Called after every step: the state may have changed (the hub saves it). */
  changed?: () => void;
}

/** The behaviour rules' part of the saved state. */
export type BehaviourState = Pick<RulesState, "fall" | "vitals" | "inactivity" | "active">;

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
  /**
   * Devices restored from before a restart and not heard since: their windows wait here, out of the rules, until
   * the device is heard again, so nothing is judged on what it said before the restart (see `restore`).
   */
  private readonly heldFall = new Map<string, fall.FallDeviceState>();
  private readonly heldVitals = new Map<string, vitals.VitalsDeviceState>();

  constructor(private readonly o: BehaviourWatchOptions) {
    this.inactivityState = inactivity.initialInactivityState(o.now());
  }

  apply(input: RadarInput): void {
    const at = this.o.now();
    const p = this.o.params;
    if (input.type !== "tick") this.release(input);
    this.fallState = this.take(fall.fallStep(this.fallState, p, input, at), at);
    this.vitalsState = this.take(vitals.vitalsStep(this.vitalsState, p, input, at), at);
    this.inactivityState = this.take(inactivity.inactivityStep(this.inactivityState, this.o.inactivity, input, at), at);
    this.o.changed?.();
  }

  /**
   * When the rules next need a tick: `now` while a fall or vital-sign window or raised alarm is running (they
   * are judged at the hub's tick cadence), else when inactivity could next be due (Infinity when it cannot).
   * Devices held since a restart wait for their next report, not for a tick.
   */
  nextTickAt(now: number): number {
    if (!fall.fallTickIdle(this.fallState) || !vitals.vitalsTickIdle(this.vitalsState)) return now;
    return inactivity.inactivityDueAt(this.inactivityState, this.o.inactivity);
  }

  /** The state to save: the rules' own, with the devices still held since a restart. */
  snapshot(): BehaviourState {
    const merge = <S>(held: Map<string, S>, live: Record<string, S>): { devices: Record<string, S> } => ({
      devices: held.size ? { ...Object.fromEntries(held), ...live } : live,
    });
    return {
      fall: merge(this.heldFall, this.fallState.devices),
      vitals: merge(this.heldVitals, this.vitalsState.devices),
      inactivity: this.inactivityState,
      active: [...this.active.values()],
    };
  }

  /**
   * Takes over the state saved before a restart (already checked), before any input. Raised alarms stay the
   * same episodes (`active`, and each rule's own record, so their clears name the original `since`). Pending
   * windows keep their start times; each device's readings are forgotten (rules/fall.ts, rules/vitals.ts) and
   * its windows are judged only once it is heard again: a fall or vital-sign device on its first reading, and a
   * fall radar that cannot see motion (it reports on change only and may not repeat itself) as soon as it is
   * heard at all. A device that goes offline before that has its windows withdrawn, as any device going offline.
   * Inactivity does not count the downtime. `keep` says which devices may still exist.
   */
  restore(s: BehaviourState, o: { savedAt: number; keep: (id: string) => boolean }): { windows: number; held: number } {
    const now = this.o.now();
    const heldFall = new Map<string, fall.FallDeviceState>();
    const heldVitals = new Map<string, vitals.VitalsDeviceState>();
    let windows = 0;
    for (const [id, d] of Object.entries(s.fall.devices)) {
      if (!o.keep(id)) continue;
      const r = fall.restoreFallDevice(d, now);
      if (r.pendingSince !== null) windows++;
      if (r.stillSince !== null) windows++;
      heldFall.set(id, r);
    }
    for (const [id, d] of Object.entries(s.vitals.devices)) {
      if (!o.keep(id)) continue;
      const r = vitals.restoreVitalsDevice(d, now);
      if (r.absentSince !== null && r.absent === null) windows++;
      if ((r.hr.since !== null && !r.hr.abnormal) || (r.br.since !== null && !r.br.abnormal)) windows++;
      heldVitals.set(id, r);
    }
    const inact = inactivity.restoreInactivityState(s.inactivity, now, o.savedAt - s.inactivity.lastActivityAt >= ACTIVITY_BUCKET_MS);
    // Nothing is taken over until everything above worked.
    this.fallState = fall.initialFallState();
    this.vitalsState = vitals.initialVitalsState();
    this.heldFall.clear();
    this.heldVitals.clear();
    for (const [id, d] of heldFall) this.heldFall.set(id, d);
    for (const [id, d] of heldVitals) this.heldVitals.set(id, d);
    this.inactivityState = inact;
    this.active.clear();
    for (const a of s.active) if (a.alarm === "inactivity" || o.keep(a.device)) this.active.set(`${a.alarm}/${a.device}`, { ...a });
    return { windows, held: heldFall.size + heldVitals.size };
  }

  /** Drops what was restored for a device that did not come back (it left the network meanwhile). */
  forget(id: string): boolean {
    let gone = this.heldFall.delete(id);
    gone = this.heldVitals.delete(id) || gone;
    for (const [k, a] of this.active) {
      if (a.device === id && !this.fallState.devices[id] && !this.vitalsState.devices[id]) {
        this.active.delete(k);
        gone = true;
      }
    }
    return gone;
  }

  /** Ids restored and not heard since. */
  heldDevices(): string[] {
    return [...new Set([...this.heldFall.keys(), ...this.heldVitals.keys()])];
  }

  /** A held device rejoins its rule when it is heard (see `restore`), before the input is applied. */
  private release(input: Exclude<RadarInput, { type: "tick" }>): void {
    const id = input.device;
    const heard = input.type === "reading";
    const gone = input.type === "status" && !input.online;
    const f = this.heldFall.get(id);
    if (f && (heard || gone || !f.seesMotion)) {
      this.heldFall.delete(id);
      this.fallState = { devices: { ...this.fallState.devices, [id]: f } };
    }
    const v = this.heldVitals.get(id);
    if (v && (heard || gone)) {
      this.heldVitals.delete(id);
      this.vitalsState = { devices: { ...this.vitalsState.devices, [id]: v } };
    }
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
