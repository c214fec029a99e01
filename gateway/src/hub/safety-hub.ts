// Wires the parts of one home together: readings (RS-485 polls, Zigbee messages, radar frames) → rules
// (gas/CO, smoke, SOS; falls, stillness, vital signs and inactivity in BehaviourWatch) → actuators, and every
// outcome into the journal. Actuator commands are issued before the
// journal write is started, and the journal write is never awaited on the way to a valve (invariant 1).
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { EventAction, EventDraft } from "../../../protocol/envelope.js";
import type { RulesConfig } from "../config/schema.js";
import type { Device, Reading } from "../devices/device.js";
import type { HubDevice, SirenMode } from "../devices/hub-device.js";
import type { ZigbeeDevice } from "../devices/zigbee-device.js";
import type { ZigbeeChange, ZigbeeRegistry } from "../devices/zigbee-registry.js";
import type { PairDeviceReport } from "../transports/zigbee/pairing.js";
import * as smoke from "../rules/smoke.js";
import * as sos from "../rules/sos.js";
import { BehaviourWatch, type ActiveBehaviourAlarm } from "./behaviour-watch.js";
import { DEFAULT_BEHAVIOUR, DEFAULT_INACTIVITY, type BehaviourParams, type InactivityParams } from "../rules/behaviour-params.js";
import type { BehaviourDecision, RadarField, RadarInput } from "../rules/radar-input.js";
import type { RadarDevice } from "../devices/radar-device.js";
import type { DeviceHealth, DeviceStatus } from "../devices/poller.js";
import { Poller } from "../devices/poller.js";
import { Actuators } from "../actions/actuators.js";
import * as gas from "../rules/gas.js";
import type { Bus } from "../transports/modbus/bus.js";
import { decodeSnapshot, type RulesState, type Snapshot } from "../state/snapshot.js";

/** What the hub needs of the journal: an append that may be slow and must not be awaited here. */
export interface EventSink {
  append(draft: EventDraft): Promise<unknown>;
}

/**
 * Where the hub says its rules' state may have changed. Called after a pass's actuator commands and journal
 * appends were issued; whoever listens reads `rulesState()` later (the journal: at its next flush, this tick)
 * and must never throw or block.
 */
export interface StateSink {
  changed(): void;
}

/** What became of the state saved before this start. */
export interface RestoreReport {
  outcome: "none" | "restored" | "failed";
  reason?: string;
  savedAt?: number;
  savedBoot?: number;
  /** Alarms active again (gas/CO, smoke, behaviour), latched valves, pending windows. */
  alarms?: string[];
  latchedValves?: string[];
  windows?: number;
}

export interface SafetyHubOptions {
  devices: Device[];
  buses: Bus[];
  rules: RulesConfig;
  journal: EventSink;
  log: Logger;
  now?: () => number;
  /** How often a detector's reading is journaled when nothing is happening. */
  readingEveryMs?: number;
  tickMs?: number;
  /** The Zigbee side, when the install has one. */
  zigbee?: ZigbeeRegistry;
  sos?: sos.SosParams;
  /** Radars on their own serial lines. */
  radars?: RadarDevice[];
  behaviour?: BehaviourParams;
  inactivity?: InactivityParams;
  /** Told of every change of the rules' state (the daemon saves it for a restart). */
  state?: StateSink;
}

/** Every active alarm, gas/CO and the others, in the gas rule's shape (what status and the siren test read). */
export interface RuleView extends Omit<gas.GasRuleState, "alarms"> {
  alarms: Record<string, gas.AlarmState>;
}

export type OtherDecision =
  | { rule: "smoke"; d: smoke.SmokeDecision }
  | { rule: "sos"; d: sos.SosDecision }
  | { rule: "behaviour"; d: BehaviourDecision };

const COORDINATOR_ID = "zigbee-coordinator";

type HubEvents = {
  decision: [d: gas.Decision, at: number];
  other: [d: OtherDecision, at: number];
  reading: [r: Reading];
};

export interface ReopenResult {
  ok: boolean;
  reasons: string[];
  opened: Array<{ valve: string; ok: boolean; error?: string }>;
}

export class SafetyHub extends EventEmitter<HubEvents> {
  readonly poller: Poller;
  readonly actuators: Actuators;
  private state: gas.GasRuleState;
  private readonly params: gas.GasRuleParams;
  private readonly now: () => number;
  private tick?: NodeJS.Timeout;
  private readonly lastJournaledReading = new Map<string, number>();
  private readonly faultShown = new Map<string, boolean>();
  private readonly byId: Map<string, HubDevice>;
  private smokeState = smoke.initialSmokeState();
  private sosState = sos.initialSosState();
  readonly behaviour: BehaviourWatch;
  private readonly radars: RadarDevice[];
  private sirenMode: SirenMode | null = null;
  private readonly flagsShown = new Map<string, boolean>();
  journalFailures = 0;
  /** Gas/CO detectors restored from before a restart and not heard since: they prove nothing yet. */
  private readonly unheard = new Set<string>();
  /** Restored devices that may be Zigbee devices still to come back; checked once the coordinator is up. */
  private restoredPending: Set<string> | null = null;
  /** Restored valves to command closed again as soon as they are back (Zigbee valves come after the restore). */
  private readonly closeOnReturn = new Set<string>();
  /** What became of the state saved before this start. */
  restored: RestoreReport = { outcome: "none" };
  /** Valve closes and sirens the restored state wants: given at start, once the buses are open. */
  private restoreCommands: gas.Decision[] | null = null;

  constructor(private readonly o: SafetyHubOptions) {
    super();
    this.now = o.now ?? Date.now;
    this.radars = o.radars ?? [];
    this.byId = new Map<string, HubDevice>([...o.devices.map((d) => [d.id, d] as const), ...this.radars.map((r) => [r.id, r] as const)]);
    this.behaviour = new BehaviourWatch({
      params: o.behaviour ?? DEFAULT_BEHAVIOUR,
      inactivity: o.inactivity ?? DEFAULT_INACTIVITY,
      record: (d) => this.record(d),
      log: o.log,
      now: this.now,
      changed: () => this.changed(),
    });
    this.behaviour.onDecision = (d, at) => this.emit("other", { rule: "behaviour", d }, at);
    for (const r of this.radars) this.wireRadar(r);
    this.poller = new Poller(o.devices, this.now);
    this.actuators = new Actuators(o.devices, o.log);
    const valves: gas.GasRuleParams["valves"] = {};
    for (const v of this.actuators.valves) valves[v.id] = this.valveParams(v);
    this.params = {
      gas: o.rules.gas,
      co: o.rules.co,
      staleMs: 10_000,
      valves,
      hasSiren: this.actuators.sirens.length > 0,
    };
    this.state = gas.initialState(Object.keys(valves));
    this.poller.on("reading", (r) => this.onReading(r));
    this.poller.on("status", (d, s, reason) => this.onStatus(d, s, reason));
    this.poller.on("valueProblems", (d, problems) =>
      this.record({ kind: "device", type: "bad_value", severity: "warning", device: d.id, room: d.room, data: { problems } }),
    );
    for (const bus of o.buses) {
      bus.on("down", (reason) => this.record({ kind: "device", type: "offline", severity: "warning", device: bus.name, data: { component: "bus", reason } }));
      bus.on("up", () => this.record({ kind: "device", type: "online", severity: "info", device: bus.name, data: { component: "bus" } }));
    }
    const zb = o.zigbee;
    if (zb) {
      zb.on("device", (d) => this.addZigbee(d));
      zb.on("removed", (d, reason) => this.removeZigbee(d, reason));
      zb.on("change", (c) => this.onZigbeeChange(c));
      zb.on("status", (d, online, reason) => this.onZigbeeStatus(d, online, reason));
      zb.on("unsupported", (r) => this.onUnsupported(r));
      zb.on("coordinator", (c) => this.onCoordinator(c));
    }
  }

  private valveParams(v: HubDevice): { ratedCloseMs: number; retryMs: number } {
    const profile = (v as Partial<Device>).profile;
    return {
      ratedCloseMs: v.ratedCloseMs ?? profile?.commands.close?.ratedMs ?? this.o.rules.valve.ratedCloseMs,
      retryMs: profile?.commands.close?.retryMs ?? this.o.rules.valve.retryMs,
    };
  }

  start(): void {
    // What the state restored from before a restart wants of the actuators goes first, before any poll.
    const restored = this.restoreCommands;
    this.restoreCommands = null;
    if (restored) {
      if (restored.length) this.carryOut(restored, this.now());
      this.settleSirens();
    }
    this.poller.start();
    for (const r of this.radars) r.start();
    this.tick = setInterval(() => this.tickNow(), this.o.tickMs ?? 200);
  }

  /** One clock tick of every rule and of the radars' supervision, at now(). The daemon runs it on an interval. */
  tickNow(): void {
    this.apply({ type: "tick" });
    const now = this.now();
    for (const r of this.radars) r.check(now);
    this.behaviour.apply({ type: "tick" });
  }

  stop(): void {
    clearInterval(this.tick);
    this.poller.stop();
    void Promise.all(this.radars.map((r) => r.stop())).catch(() => {});
  }

  async stopRadars(): Promise<void> {
    await Promise.all(this.radars.map((r) => r.stop()));
  }

  // ---- radars on serial lines --------------------------------------------------------------------------------

  private wireRadar(r: RadarDevice): void {
    const gives = r.profile.gives.filter((g): g is RadarField => g !== "distanceCm");
    r.on("report", (rep) => {
      // Distance alone informs nobody's safety; every other fact goes to the rules.
      const { distanceCm: _d, ...facts } = rep;
      if (Object.keys(facts).length) this.behaviour.apply({ type: "reading", device: r.id, room: r.room, gives, ...facts });
    });
    r.on("status", (online, reason) => {
      this.behaviour.apply({ type: "status", device: r.id, room: r.room, online });
      if (online && reason === "first frame") return;
      const st = r.stats();
      this.record({
        kind: "device", type: online ? "online" : "offline", severity: online ? "info" : "warning", device: r.id, room: r.room,
        data: { reason, roles: [...r.roles], transport: "uart", model: r.model, ...(st.portError ? { port: st.portError } : {}) },
      });
    });
    r.on("settlingFall", () => this.o.log.warn({ radar: r.id, settledAt: r.stats().settledAt }, "a fall report arrived while the radar was settling after power-up; ignored"));
    r.on("line", (up, reason) => (up ? this.o.log.info({ radar: r.id }, "radar port open") : this.o.log.warn({ radar: r.id, reason }, "radar port lost; reopening")));
  }

  /** The gas/CO rule's state, with every other active alarm and the sirens' real state folded in. */
  get rule(): Readonly<RuleView> {
    const alarms: Record<string, gas.AlarmState> = { ...this.state.alarms };
    const sm = this.smokeState.alarm;
    if (sm) alarms.smoke = { since: sm.since, device: sm.device, trigger: `smoke at ${sm.devices.join(", ")}`, peak: null, belowSince: null };
    for (const a of this.behaviour.active.values()) {
      const key = alarms[a.alarm] ? `${a.alarm}@${a.device}` : a.alarm;
      alarms[key] = { since: a.since, device: a.device, trigger: a.trigger, peak: null, belowSince: null };
    }
    return { ...this.state, alarms, sirenOn: this.sirenMode !== null };
  }

  /** Every device the hub knows, RS-485 and Zigbee. */
  devices(): HubDevice[] {
    return [...this.byId.values()];
  }

  /** The radars on serial lines. */
  radarDevices(): readonly RadarDevice[] {
    return this.radars;
  }

  health(id: string): DeviceHealth | undefined {
    return this.poller.health(id);
  }

  /** Detectors the reopen check must have heard from. */
  private detectors(): HubDevice[] {
    return [...this.byId.values()].filter((d) => d.has("gas_detector") || d.has("co_detector"));
  }

  private onReading(r: Reading): void {
    this.emit("reading", r);
    const d = this.byId.get(r.device);
    if (!d) return;
    if (d.has("gas_detector")) this.apply({ type: "detector", device: d.id, kind: "gas", room: d.room, signals: r.signals });
    if (d.has("co_detector")) this.apply({ type: "detector", device: d.id, kind: "co", room: d.room, signals: r.signals });
    if (d.has("valve")) this.apply({ type: "valve", device: d.id, signals: r.signals });
    if (d.has("presence") && typeof r.signals.presence === "boolean") this.behaviour.apply({ type: "reading", device: d.id, room: d.room, gives: ["presence"], presence: r.signals.presence });
    this.noteFault(d, r);
    this.maybeJournalReading(d, r);
  }

  private noteFault(d: HubDevice, r: Reading): void {
    const fault = r.signals.fault === true || r.signals.fault === 1;
    if (r.signals.fault === undefined || this.faultShown.get(d.id) === fault) return;
    const first = !this.faultShown.has(d.id);
    this.faultShown.set(d.id, fault);
    if (first && !fault) return;
    this.record({ kind: "device", type: fault ? "fault" : "fault_cleared", severity: fault ? "warning" : "info", device: d.id, room: d.room, data: { values: r.values } });
  }

  private maybeJournalReading(d: HubDevice, r: Reading): void {
    if (!(d.has("gas_detector") || d.has("co_detector"))) return;
    const last = this.lastJournaledReading.get(d.id) ?? 0;
    if (r.at - last < (this.o.readingEveryMs ?? 60_000)) return;
    this.lastJournaledReading.set(d.id, r.at);
    this.record({ kind: "reading", type: "detector_level", severity: "info", device: d.id, room: d.room, data: { ...r.signals } });
  }

  private onStatus(d: Device, status: DeviceStatus, reason: string): void {
    if (status === "starting") return;
    this.apply({ type: "status", device: d.id, online: status === "online" });
    if (d.has("presence")) this.behaviour.apply({ type: "status", device: d.id, room: d.room, online: status === "online" });
    // The first reading after start is not news; coming back after being offline is.
    if (status === "online" && reason === "first reading") return;
    this.record({ kind: "device", type: status, severity: status === "offline" ? "warning" : "info", device: d.id, room: d.room, data: { reason, roles: d.profile.roles } });
  }

  private apply(input: gas.RuleInput): void {
    const at = this.now();
    const { state, decisions } = gas.step(this.state, this.params, input, at);
    this.state = state;
    if (input.type === "detector") this.unheard.delete(input.device);
    if (decisions.length) this.carryOut(decisions, at);
    this.changed();
  }

  /** Actuator commands and journal appends of this pass are already out; the state is saved after them. */
  private changed(): void {
    this.o.state?.changed();
  }

  /** Every rule's state now, as saved for a restart. */
  rulesState(): RulesState {
    return { gas: this.state, smoke: this.smokeState, sos: this.sosState, ...this.behaviour.snapshot() };
  }

  /**
   * Takes over the state saved before this start (a crash, a power cut, a restart), before any reading is
   * processed: alarm episodes, valve latches and pending windows go on as they were (invariant 9). Valves are
   * commanded closed again during an alarm and the sirens sound again. A document that cannot be used (not
   * readable, another hub's, another format version, a wrong shape) is logged and journaled as
   * `state_restore_failed`, and the hub starts clean. Never throws.
   */
  restore(saved: string | null, o: { hub: string; readError?: string | null }): RestoreReport {
    const failed = (reason: string, found?: Record<string, unknown>): RestoreReport => {
      this.o.log.warn({ reason, found }, "the rules' state saved before this start is not used; starting clean");
      this.record({ kind: "audit", type: "state_restore_failed", severity: "warning", data: { reason, ...(found ? { found: JSON.parse(JSON.stringify(found)) as Record<string, unknown> } : {}) } });
      return (this.restored = { outcome: "failed", reason });
    };
    if (o.readError) return failed(`the saved state cannot be read: ${o.readError}`);
    if (saved === null) return (this.restored = { outcome: "none" });
    const d = decodeSnapshot(saved, o.hub);
    if (!d.ok) return failed(d.reason, d.found);
    try {
      return (this.restored = this.takeOver(d.snapshot));
    } catch (e) {
      return failed(`the saved state cannot be used: ${(e as Error).message}`);
    }
  }

  private takeOver(s: Snapshot): RestoreReport {
    const now = this.now();
    const zigbee = this.o.zigbee !== undefined;
    // A device configured now is known; any other id may be a Zigbee device that comes back from the
    // coordinator's own database after the start (checked once it is up), if this hub has Zigbee at all.
    const later = (id: string) => zigbee && !this.byId.has(id);
    const keepGas = (id: string) => {
      const d = this.byId.get(id);
      return d ? d.has("gas_detector") || d.has("co_detector") : later(id);
    };
    const g = gas.restoreState(s.gas, this.state, this.params, now, keepGas);
    const sm = smoke.restoreSmokeState(s.smoke);
    const so = sos.restoreSosState(s.sos, this.o.sos ?? sos.DEFAULT_SOS, now);
    // Every part is computed before any is taken over (the behaviour part computes, then takes over at its end),
    // so a document that turns out unusable here leaves the hub clean.
    const b = this.behaviour.restore(s, { savedAt: s.savedAt, keep: (id) => this.byId.has(id) || zigbee });
    this.state = g.state;
    this.smokeState = sm;
    this.sosState = so;
    this.unheard.clear();
    for (const id of Object.keys(g.state.detectors)) this.unheard.add(id);
    const pending = new Set<string>([...Object.keys(g.state.detectors), ...Object.keys(g.state.valves), ...this.behaviour.heldDevices()].filter((id) => !this.byId.has(id)));
    this.restoredPending = pending.size ? pending : null;

    if (s.savedAt > now + 1000) this.o.log.warn({ savedAt: s.savedAt, now, behindMs: s.savedAt - now }, "the hub's clock is behind the time the rules' state was saved (no real-time clock?): windows that would start in the future start now");
    // Valves present now are commanded at start (the buses are not open yet); the others as soon as they are back.
    this.restoreCommands = g.decisions.filter((x) => x.do !== "close_valve" || this.byId.has(x.valve));
    for (const x of g.decisions) if (x.do === "close_valve" && !this.byId.has(x.valve)) this.closeOnReturn.add(x.valve);

    const alarms = Object.keys(this.rule.alarms);
    const latchedValves = Object.entries(this.state.valves).filter(([, v]) => v.commandedAt !== null).map(([id]) => id);
    const report: RestoreReport = { outcome: "restored", savedAt: s.savedAt, savedBoot: s.boot, alarms, latchedValves, windows: b.windows };
    this.o.log.info({ ...report, unheard: [...this.unheard], held: b.held }, "the rules' state saved before this start was taken over");
    if (alarms.length || latchedValves.length || b.windows)
      this.record({
        kind: "audit", type: "state_restored", severity: "info",
        data: { savedAt: s.savedAt, savedBoot: s.boot, alarms, latchedValves, windows: b.windows, ...(s.savedAt > now + 1000 ? { clockBehindMs: s.savedAt - now } : {}) },
      });
    this.changed();
    return report;
  }

  /** Once the Zigbee devices are back: what was restored for a device that did not come back is dropped. */
  private pruneRestored(): void {
    const pending = this.restoredPending;
    if (!pending) return;
    this.restoredPending = null;
    const gone = [...pending].filter((id) => !this.byId.has(id));
    if (!gone.length) return;
    for (const id of gone) {
      this.state = gas.removeDevice(this.state, id);
      this.unheard.delete(id);
      this.closeOnReturn.delete(id);
      this.behaviour.forget(id);
    }
    this.o.log.warn({ devices: gone }, "devices in the state saved before this start did not come back with the Zigbee network; what was saved for them is dropped");
    this.changed();
  }

  private carryOut(decisions: gas.Decision[], at: number): void {
    // Actuators first, in one synchronous pass, so the bus has the commands before anything else runs.
    for (const d of decisions) {
      if (d.do === "close_valve") {
        void this.actuators.send(d.valve, "close");
        const forMs = (this.params.valves[d.valve]?.ratedCloseMs ?? 15000) + 5000;
        this.poller.hurry(d.valve, this.o.rules.valve.verifyPollMs, forMs);
        (this.byId.get(d.valve) as Partial<ZigbeeDevice> | undefined)?.hurry?.(this.o.rules.valve.verifyPollMs, forMs);
      } else if (d.do === "siren") this.settleSirens();
    }
    for (const d of decisions) {
      this.emit("decision", d, at);
      this.journalDecision(d, decisions);
    }
  }

  private journalDecision(d: gas.Decision, all: gas.Decision[]): void {
    const room = (id: string) => this.byId.get(id)?.room;
    switch (d.do) {
      case "raise": {
        const actions: EventAction[] = all
          .filter((x): x is Extract<gas.Decision, { do: "close_valve" }> => x.do === "close_valve")
          .map((x) => ({ action: "valve_close", target: x.valve, detail: "commanded; verification follows" }));
        if (all.some((x) => x.do === "siren" && x.on)) actions.push(...this.sirenActions());
        this.record({
          kind: "alarm", type: d.alarm, severity: "critical", device: d.device, room: d.room,
          data: { value: d.value, unit: d.alarm === "gas" ? "%LEL" : "ppm", setpoint: d.setpoint, trigger: d.trigger },
          actions,
        });
        break;
      }
      case "clear":
        this.record({ kind: "alarm_cleared", type: d.alarm, severity: "info", device: d.device, room: room(d.device), data: { since: d.since, peak: d.peak, valve: "stays closed until reopened on site" } });
        break;
      case "valve_verified":
        this.record({
          kind: "device", type: "valve_closed", severity: "high", device: d.valve, room: room(d.valve),
          data: { afterMs: d.afterMs, attempts: d.attempts },
          actions: [{ action: "valve_closed", target: d.valve, ok: true, detail: `closed limit confirmed after ${d.afterMs} ms` }],
        });
        break;
      case "valve_fault":
        this.record({
          kind: "alarm", type: "valve_fault", severity: "critical", device: d.valve, room: room(d.valve),
          data: { reason: d.reason, afterMs: d.afterMs },
          actions: [{ action: "valve_closed", target: d.valve, ok: false, detail: d.reason }, ...this.sirenActions()],
        });
        break;
      case "valve_fault_cleared":
        this.record({ kind: "alarm_cleared", type: "valve_fault", severity: "info", device: d.valve, room: room(d.valve), data: { reason: "closed limit confirmed" } });
        break;
      case "valve_opened_on_site":
        this.record({ kind: "audit", type: "valve_opened_on_site", severity: "warning", device: d.valve, room: room(d.valve), data: { how: "opened at the valve by hand (no alarm active)" } });
        break;
      case "close_valve":
        if (d.attempt > 1) this.o.log.info({ valve: d.valve, attempt: d.attempt }, "valve close re-sent: not yet confirmed closed");
        break;
      case "siren":
        this.o.log.info({ on: d.on, reason: d.reason, sirens: this.actuators.sirens.length }, "siren");
        break;
      case "open_valve":
        break;
    }
  }

  /**
   * One siren state for every rule: smoke wants fire mode, gas/CO and valve faults want emergency; with
   * both, fire wins (the home must be left). Commands go out only when the wanted state changes.
   */
  private settleSirens(): void {
    const want: SirenMode | null = this.smokeState.alarm ? "fire" : this.state.sirenOn ? "emergency" : null;
    if (want === this.sirenMode) return;
    this.sirenMode = want;
    void this.actuators.sirensTo(want !== null, want ?? undefined);
  }

  // ---- Zigbee ------------------------------------------------------------------------------------------------

  private addZigbee(d: ZigbeeDevice): void {
    const existing = this.byId.get(d.id);
    if (existing && existing.transport !== "zigbee") {
      this.o.log.error({ id: d.id }, "a zigbee device has the id of an RS-485 device; not added");
      return;
    }
    this.byId.set(d.id, d);
    this.actuators.add(d);
    if (d.has("valve") && d.canDo("close")) {
      this.params.valves[d.id] = this.valveParams(d);
      const at = this.now();
      const r = gas.addValve(this.state, d.id, at);
      this.state = r.state;
      if (r.decisions.length) this.carryOut(r.decisions, at);
      // A valve restored latched during an alarm (or not proven closed) is commanded closed again now it is back.
      if (this.closeOnReturn.delete(d.id)) {
        const v = this.state.valves[d.id];
        if (v) this.carryOut([{ do: "close_valve", valve: d.id, attempt: v.attempts }], at);
      }
      this.changed();
    }
    // A siren that joins during an alarm sounds at once.
    if (this.sirenMode && d.has("siren") && d.canDo("siren_on")) void this.actuators.send(d.id, "siren_on", { mode: this.sirenMode });
  }

  private removeZigbee(d: ZigbeeDevice, reason: string): void {
    if (this.byId.get(d.id) !== d) return;
    this.byId.delete(d.id);
    this.actuators.remove(d.id);
    this.state = gas.removeDevice(this.state, d.id);
    this.unheard.delete(d.id);
    this.closeOnReturn.delete(d.id);
    this.changed();
    delete this.params.valves[d.id];
    this.record({ kind: "device", type: "left", severity: "warning", device: d.id, room: d.room, data: { ieee: d.ieee, model: d.model, reason } });
  }

  private onZigbeeChange(c: ZigbeeChange): void {
    const d = c.device;
    if (this.byId.get(d.id) !== d) return;
    const p = d.plan;
    const ch = c.change;
    const present = (k: string | undefined): k is string => k !== undefined && k in ch;
    // A value the converter should give as a boolean but did not (undefined, "false", 0) is bad input, never
    // "clear" (invariant 7): it is logged and the rule keeps what it knew.
    const bad = (k: string, want: string) => {
      this.o.log.error({ device: d.id, model: d.model, property: k, got: typeof ch[k] === "string" ? ch[k] : typeof ch[k] }, `zigbee converter gave an unexpected value (want ${want}); ignored`);
      return false;
    };
    const has = (k: string | undefined): k is string => present(k) && (typeof ch[k] === "boolean" || bad(k, "true/false"));
    // Safety inputs first: they may issue actuator commands.
    if (d.has("gas_detector") && has(p.gas)) this.apply({ type: "detector", device: d.id, kind: "gas", room: d.room, signals: { alarm: ch[p.gas] === true }, eventDriven: true });
    if (d.has("co_detector") && has(p.co)) this.apply({ type: "detector", device: d.id, kind: "co", room: d.room, signals: { alarm: ch[p.co] === true }, eventDriven: true });
    const pv = p.valve;
    if (d.has("valve") && pv && present(pv.property) && (ch[pv.property] === pv.closed || ch[pv.property] === pv.open || bad(pv.property, `${String(pv.closed)}/${String(pv.open)}`)))
      this.apply({ type: "valve", device: d.id, signals: { valve_closed: ch[pv.property] === pv.closed, valve_open: ch[pv.property] === pv.open } });
    if (d.has("smoke_detector") && has(p.smoke)) this.applySmoke({ type: "detector", device: d.id, room: d.room, smoke: ch[p.smoke] === true });
    if (d.has("sos_button") && p.sos && present(p.sos.property) && p.sos.press.includes(String(ch[p.sos.property]))) this.applySos(d, String(ch[p.sos.property]));
    this.behaviourFromZigbee(d, ch, present, bad, has);
    this.noteFlag(d, "tamper", p.tamper, ch);
    this.noteFlag(d, "battery_low", p.batteryLow, ch);
    const r: Reading = { device: d.id, at: c.at, values: {}, labels: {}, problems: [], signals: d.signals() };
    this.emit("reading", r);
    if (d.has("breathing_monitor") && present(p.breathing)) this.maybeJournalVital(d, ch[p.breathing], c.at);
  }

  /** A Zigbee radar or presence sensor feeds the same behaviour rules as a UART radar. */
  private behaviourFromZigbee(
    d: ZigbeeDevice,
    ch: Record<string, unknown>,
    present: (k: string | undefined) => k is string,
    bad: (k: string, want: string) => boolean,
    has: (k: string | undefined) => k is string,
  ): void {
    const p = d.plan;
    const gives: RadarField[] = [];
    if (p.presence) gives.push("presence");
    if (p.fall && d.has("fall_detector")) gives.push("fall");
    if (p.breathing && d.has("breathing_monitor")) gives.push("breathing");
    if (!gives.length) return;
    const input: Extract<RadarInput, { type: "reading" }> = { type: "reading", device: d.id, room: d.room, gives };
    if (gives.includes("fall") && p.fall && present(p.fall.property) && (typeof ch[p.fall.property] === "string" || bad(p.fall.property, "a status name"))) {
      const v = String(ch[p.fall.property]);
      input.fall = p.fall.fall.includes(v) ? "fall" : p.fall.maybe.includes(v) ? "maybe" : "clear";
    }
    if (has(p.presence)) input.presence = ch[p.presence] === true;
    if (gives.includes("breathing") && present(p.breathing)) {
      const v = ch[p.breathing];
      // 0 is "no reading", never a low rate; anything not a finite number is bad input.
      if (typeof v === "number" && Number.isFinite(v) && v >= 0) input.breathing = v === 0 ? null : v;
      else bad(p.breathing, "a number");
    }
    if (input.fall !== undefined || input.presence !== undefined || input.breathing !== undefined) this.behaviour.apply(input);
  }

  /** tamper / battery_low: a warning when it appears, info when it goes away; a first "all fine" is not news. */
  private noteFlag(d: ZigbeeDevice, type: "tamper" | "battery_low", key: string | undefined, ch: Record<string, unknown>): void {
    if (!key || typeof ch[key] !== "boolean") return;
    const on = ch[key] as boolean;
    const k = `${d.id}/${type}`;
    const prev = this.flagsShown.get(k);
    if (prev === on) return;
    this.flagsShown.set(k, on);
    if (prev === undefined && !on) return;
    this.record({
      kind: "device", type: on ? type : type === "tamper" ? "tamper_cleared" : "battery_ok", severity: on ? "warning" : "info", device: d.id, room: d.room,
      data: { model: d.model, ...(typeof d.state.battery === "number" ? { battery: d.state.battery } : {}) },
    });
  }

  private maybeJournalVital(d: ZigbeeDevice, value: unknown, at: number): void {
    const last = this.lastJournaledReading.get(d.id) ?? 0;
    if (at - last < (this.o.readingEveryMs ?? 60_000)) return;
    this.lastJournaledReading.set(d.id, at);
    this.record({ kind: "reading", type: "breathing_rate", severity: "info", device: d.id, room: d.room, data: { breathing_rate: value } });
  }

  private onZigbeeStatus(d: ZigbeeDevice, online: boolean, reason: string): void {
    if (this.byId.get(d.id) !== d) return;
    this.apply({ type: "status", device: d.id, online });
    this.applySmoke({ type: "status", device: d.id, online });
    if (d.has("presence") || d.has("fall_detector") || d.has("breathing_monitor")) this.behaviour.apply({ type: "status", device: d.id, room: d.room, online });
    // A detector restored from the database is fed its last known state once it is heard again.
    if (online) this.restoreDetector(d);
    if (online && reason === "first frame") return;
    this.record({ kind: "device", type: online ? "online" : "offline", severity: online ? "info" : "warning", device: d.id, room: d.room, data: { reason, roles: [...d.roles], transport: "zigbee" } });
  }

  private restoreDetector(d: ZigbeeDevice): void {
    const p = d.plan;
    for (const [kind, key, role] of [["gas", p.gas, "gas_detector"], ["co", p.co, "co_detector"]] as const) {
      // Also one restored from before a hub restart: heard again, its last known state is its report.
      if (!key || !d.has(role) || (this.state.detectors[d.id] && !this.unheard.has(d.id)) || typeof d.state[key] !== "boolean") continue;
      this.apply({ type: "detector", device: d.id, kind, room: d.room, signals: { alarm: d.state[key] === true }, eventDriven: true });
    }
    // A smoke detector behind a smoke alarm restored from before a hub restart must report again before the alarm
    // can clear; heard again, its last known state is that report (it reports on change only).
    const sk = p.smoke;
    if (sk && d.has("smoke_detector") && this.smokeState.alarm?.devices.includes(d.id) && !this.smokeState.detectors[d.id] && typeof d.state[sk] === "boolean")
      this.applySmoke({ type: "detector", device: d.id, room: d.room, smoke: d.state[sk] === true });
  }

  private onUnsupported(r: PairDeviceReport): void {
    this.record({
      kind: "device", type: "unsupported", severity: "warning", device: r.id ?? `zb-${r.ieee.slice(-6)}`,
      data: { ieee: r.ieee, outcome: r.outcome, model: r.model, vendor: r.vendor, reason: r.reason },
    });
  }

  private onCoordinator(c: { up: boolean; reason?: string; retryInMs?: number; attempt: number; downForMs?: number | null }): void {
    if (c.up) this.pruneRestored();
    if (!c.up) {
      this.record({ kind: "device", type: "fault", severity: "warning", device: COORDINATOR_ID, data: { component: "zigbee", reason: c.reason, attempt: c.attempt, retryInMs: c.retryInMs } });
      return;
    }
    if (c.downForMs != null) this.record({ kind: "device", type: "fault_cleared", severity: "info", device: COORDINATOR_ID, data: { component: "zigbee", attempt: c.attempt, downForMs: c.downForMs } });
  }

  private applySmoke(input: smoke.SmokeInput): void {
    const at = this.now();
    const r = smoke.smokeStep(this.smokeState, input, at);
    this.smokeState = r.state;
    this.changed();
    if (!r.decisions.length) return;
    if (r.decisions.some((x) => x.do === "sirens")) this.settleSirens();
    for (const d of r.decisions) {
      this.emit("other", { rule: "smoke", d }, at);
      if (d.do === "raise") this.record({ kind: "alarm", type: "smoke", severity: "critical", device: d.device, room: d.room, data: { trigger: "detector reports smoke" }, actions: this.sirenActions() });
      else if (d.do === "spread") this.record({ kind: "reading", type: "smoke_spread", severity: "high", device: d.device, room: d.room, data: { alarmSince: this.smokeState.alarm?.since } });
      else if (d.do === "clear") this.record({ kind: "alarm_cleared", type: "smoke", severity: "info", device: d.device, room: this.byId.get(d.device)?.room, data: { since: d.since, detectors: d.devices } });
    }
  }

  private applySos(dev: ZigbeeDevice, action: string): void {
    const at = this.now();
    const r = sos.sosPress(this.sosState, this.o.sos ?? sos.DEFAULT_SOS, { device: dev.id, room: dev.room, action }, at);
    this.sosState = r.state;
    // Feedback first, then the journal.
    const chirps = r.decisions.some((d) => d.do === "chirp") ? this.actuators.sirens.filter((s) => s.canDo("siren_chirp")) : [];
    if (chirps.length) void this.actuators.chirp();
    this.changed();
    for (const d of r.decisions) {
      this.emit("other", { rule: "sos", d }, at);
      if (d.do === "raise")
        this.record({ kind: "alarm", type: "sos", severity: "critical", device: d.device, room: d.room, data: { action: d.action }, actions: chirps.map((s) => ({ action: "siren_chirp", target: s.id, detail: "local feedback to the caller" })) });
      else if (d.do === "repeat") this.record({ kind: "reading", type: "sos_repeat", severity: "high", device: d.device, room: dev.room, data: { presses: d.presses, since: d.since } });
    }
  }

  /** A home without a siren gets no siren action: events say only what the hub really did. */
  private sirenActions(): EventAction[] {
    return this.actuators.sirens.map((s) => ({ action: "siren_on", target: s.id }));
  }

  /** Journal an event without holding anyone up; a failure is logged and counted, never thrown. */
  record(draft: EventDraft): void {
    // Alarms name the device's model so the relay can count false alarms per model without a care plan.
    const model = draft.device && (draft.kind === "alarm" || draft.kind === "alarm_cleared") ? this.byId.get(draft.device)?.model : undefined;
    if (model && draft.data?.model === undefined) draft = { ...draft, data: { ...draft.data, model } };
    this.o.journal.append(draft).catch((e: Error) => {
      this.journalFailures++;
      this.o.log.error({ err: e.message, kind: draft.kind, type: draft.type }, "journal append failed");
    });
  }

  /** The on-site reopen: refused while any gas/CO alarm or detector fault is active; always journaled. */
  async reopenValves(by: { person: string; osUser: string }): Promise<ReopenResult> {
    const r = gas.reopen(this.state, { knownDetectors: this.detectors().length });
    // A detector restored from before a restart proves nothing until it is heard again.
    const unheard = [...this.unheard].map((id) => `detector ${id} has not been heard since the hub restarted`);
    if (!r.ok || unheard.length) {
      const reasons = [...(r.ok ? [] : r.reasons), ...unheard];
      this.record({ kind: "audit", type: "valve_reopen_refused", severity: "warning", data: { by: by.person, osUser: by.osUser, reasons } });
      return { ok: false, reasons, opened: [] };
    }
    this.state = r.step.state;
    this.changed();
    const opened: ReopenResult["opened"] = [];
    for (const d of r.step.decisions) {
      if (d.do === "open_valve") {
        const res = await this.actuators.send(d.valve, "open");
        opened.push({ valve: d.valve, ok: res.ok, error: res.error });
      } else if (d.do === "siren") this.settleSirens();
    }
    this.record({
      kind: "audit", type: "valve_reopen", severity: "warning",
      data: { by: by.person, osUser: by.osUser, valves: opened.map((o) => o.valve) },
      actions: opened.map((o) => ({ action: "valve_open", target: o.valve, ok: o.ok, detail: o.error })),
    });
    return { ok: true, reasons: [], opened };
  }
}
