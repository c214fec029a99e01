// The gas/CO rule for one home: detector and valve signals → the pure rule → valve commands and the journal.
// Valve closes go to the bus (or the Zigbee converter) in the same synchronous pass, before any journal work
// (invariant 1); the rule then verifies each close by read-back (invariant 3). Reopening is the on-site
// command's alone (invariant 2).
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";
import type { RulesConfig } from "../config/schema.js";
import type { HubDevice } from "../devices/hub-device.js";
import type { Poller } from "../devices/poller.js";
import type { ZigbeeDevice } from "../devices/zigbee-device.js";
import type { Actuators } from "../actions/actuators.js";
import * as gas from "../rules/gas.js";
import { gasDecisionEvent, type ShapingContext } from "./event-shaping.js";
import { gasRuleParams, valveParams, withValve, withoutValve } from "./gas-params.js";

export interface GasSafetyOptions {
  rules: RulesConfig;
  actuators: Actuators;
  poller: Poller;
  /** Any device the hub knows now, RS-485, Zigbee or radar. */
  device: (id: string) => HubDevice | undefined;
  now: () => number;
  log: Logger;
  record: (draft: EventDraft) => void;
  /** The sirens follow every rule's wants; called when a pass's decisions touch them. */
  settleSirens: () => void;
  onDecision: (d: gas.Decision, at: number) => void;
  changed: () => void;
  shaping: () => ShapingContext;
}

export interface ReopenResult {
  ok: boolean;
  reasons: string[];
  opened: Array<{ valve: string; ok: boolean; error?: string }>;
}

/**
 * True when a tick cannot change the gas rule's state or decide anything, whatever the time: no alarm is
 * raised, no detector is over its threshold, no commanded valve awaits its close or has a fault, and the
 * siren is off. The rule's timed transitions (rules/gas.ts: an alarm's clear hold and staleness, a
 * commanded valve's retry and rated close time, the siren following alarms and faults) all need one of
 * those. test/unit/gas-tick-idle.test.ts holds the rule to this.
 */
export function tickChangesNothing(s: Readonly<gas.GasRuleState>): boolean {
  if (s.sirenOn) return false;
  for (const _ in s.alarms) return false;
  for (const id in s.detectors) if (s.detectors[id]!.over) return false;
  for (const id in s.valves) {
    const v = s.valves[id]!;
    if (v.fault !== null || (v.commandedAt !== null && v.closed !== true)) return false;
  }
  return true;
}

export class GasSafety {
  private current: gas.GasRuleState;
  private params: gas.GasRuleParams;
  /** Detectors restored from before a restart and not heard since: they prove nothing yet. */
  private readonly unheard = new Set<string>();
  /** Restored valves to command closed again as soon as they are back (Zigbee valves come after the restore). */
  private readonly closeOnReturn = new Set<string>();

  constructor(private readonly o: GasSafetyOptions) {
    // hasSiren is the install's RS-485 sirens at start, as before; the rule does not read it.
    this.params = gasRuleParams(o.rules, o.actuators.valves, o.actuators.sirens.length > 0);
    this.current = gas.initialState(Object.keys(this.params.valves));
  }

  get state(): Readonly<gas.GasRuleState> {
    return this.current;
  }

  /** Restored detectors not heard since the restart. */
  unheardDetectors(): string[] {
    return [...this.unheard];
  }

  /** True when the rule already knows this detector from a reading since the start (a restored one does not count). */
  heardSinceStart(id: string): boolean {
    return this.current.detectors[id] !== undefined && !this.unheard.has(id);
  }

  apply(input: gas.RuleInput): void {
    // The hub ticks at its cadence while anything timed runs, in this rule or another; while nothing of this
    // rule's runs a tick would only copy the state and ask for it to be saved again.
    if (input.type === "tick" && tickChangesNothing(this.current)) return;
    const at = this.o.now();
    const { state, decisions } = gas.step(this.current, this.params, input, at);
    this.current = state;
    if (input.type === "detector") this.unheard.delete(input.device);
    if (decisions.length) this.carryOut(decisions, at);
    this.o.changed();
  }

  /** A valve that joined after start (a Zigbee valve paired or back); during an alarm it is closed at once. */
  addValve(d: HubDevice): void {
    this.params = withValve(this.params, d.id, valveParams(d, this.o.rules));
    const at = this.o.now();
    const r = gas.addValve(this.current, d.id, at);
    this.current = r.state;
    if (r.decisions.length) this.carryOut(r.decisions, at);
    // A valve restored latched during an alarm (or not proven closed) is commanded closed again now it is back.
    if (this.closeOnReturn.delete(d.id)) {
      const v = this.current.valves[d.id];
      if (v) this.carryOut([{ do: "close_valve", valve: d.id, attempt: v.attempts }], at);
    }
    this.o.changed();
  }

  /** A device that left: whatever the rule knew of it goes, and a valve's parameters with it. */
  removeDevice(id: string): void {
    this.forget(id);
    this.params = withoutValve(this.params, id);
  }

  /** Drops what the rule and the restore kept for a device (its parameters, if any, stay). */
  forget(id: string): void {
    this.current = gas.removeDevice(this.current, id);
    this.unheard.delete(id);
    this.closeOnReturn.delete(id);
  }

  carryOut(decisions: gas.Decision[], at: number): void {
    // Actuators first, in one synchronous pass, so the bus has the commands before anything else runs.
    const verifyPollMs = this.o.rules.valve.verifyPollMs;
    for (const d of decisions) {
      if (d.do === "close_valve") {
        void this.o.actuators.send(d.valve, "close");
        const forMs = (this.params.valves[d.valve]?.ratedCloseMs ?? 15000) + 5000;
        this.o.poller.hurry(d.valve, verifyPollMs, forMs);
        (this.o.device(d.valve) as Partial<ZigbeeDevice> | undefined)?.hurry?.(verifyPollMs, forMs);
      } else if (d.do === "siren") this.o.settleSirens();
    }
    for (const d of decisions) {
      this.o.onDecision(d, at);
      this.journal(d, decisions);
    }
  }

  private journal(d: gas.Decision, all: gas.Decision[]): void {
    const draft = gasDecisionEvent(d, all, this.o.shaping());
    if (draft) this.o.record(draft);
    else if (d.do === "close_valve") {
      if (d.attempt > 1) this.o.log.info({ valve: d.valve, attempt: d.attempt }, "valve close re-sent: not yet confirmed closed");
    } else if (d.do === "siren") this.o.log.info({ on: d.on, reason: d.reason, sirens: this.o.actuators.sirens.length }, "siren");
  }

  /** The on-site reopen: refused while any gas/CO alarm or detector fault is active; always journaled. */
  async reopen(by: { person: string; osUser: string }, knownDetectors: number): Promise<ReopenResult> {
    const r = gas.reopen(this.current, { knownDetectors });
    // A detector restored from before a restart proves nothing until it is heard again.
    const unheard = [...this.unheard].map((id) => `detector ${id} has not been heard since the hub restarted`);
    if (!r.ok || unheard.length) {
      const reasons = [...(r.ok ? [] : r.reasons), ...unheard];
      this.o.record({ kind: "audit", type: "valve_reopen_refused", severity: "warning", data: { by: by.person, osUser: by.osUser, reasons } });
      return { ok: false, reasons, opened: [] };
    }
    this.current = r.step.state;
    this.o.changed();
    const opened: ReopenResult["opened"] = [];
    for (const d of r.step.decisions) {
      if (d.do === "open_valve") {
        const res = await this.o.actuators.send(d.valve, "open");
        opened.push({ valve: d.valve, ok: res.ok, error: res.error });
      } else if (d.do === "siren") this.o.settleSirens();
    }
    this.o.record({
      kind: "audit", type: "valve_reopen", severity: "warning",
      data: { by: by.person, osUser: by.osUser, valves: opened.map((o) => o.valve) },
      actions: opened.map((o) => ({ action: "valve_open", target: o.valve, ok: o.ok, detail: o.error })),
    });
    return { ok: true, reasons: [], opened };
  }

  /** The saved state as it may be taken over now, with the commands it wants; nothing is taken over yet. */
  restored(saved: gas.GasRuleState, now: number, keep: (id: string) => boolean): gas.Step {
    return gas.restoreState(saved, this.current, this.params, now, keep);
  }

  /**
   * Takes over a restored step: its detectors are unheard until they report again; the valve closes it wants are
   * returned for the devices present now (given at start, once the buses are open) and kept for the others until
   * they are back.
   */
  takeOver(r: gas.Step, present: (id: string) => boolean): gas.Decision[] {
    this.current = r.state;
    this.unheard.clear();
    for (const id of Object.keys(r.state.detectors)) this.unheard.add(id);
    for (const x of r.decisions) if (x.do === "close_valve" && !present(x.valve)) this.closeOnReturn.add(x.valve);
    return r.decisions.filter((x) => x.do !== "close_valve" || present(x.valve));
  }
}
