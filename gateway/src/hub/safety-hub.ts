// One home's safety, composed: readings (RS-485 polls, Zigbee messages, radar frames) are routed to the rule
// watchers (gas/CO in GasSafety, smoke, SOS; falls, stillness, vital signs and inactivity in BehaviourWatch),
// which command the actuators and then journal the outcome. Actuator commands are issued before the journal
// write is started, and the journal write is never awaited on the way to a valve (invariant 1). This class owns
// the parts, their start and stop, and the take-over of the rules' state across a restart (invariant 9).
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";
import type { RulesConfig } from "../config/schema.js";
import type { Device, Reading } from "../devices/device.js";
import type { HubDevice } from "../devices/hub-device.js";
import type { ZigbeeRegistry } from "../devices/zigbee-registry.js";
import * as smoke from "../rules/smoke.js";
import * as sos from "../rules/sos.js";
import { BehaviourWatch } from "./behaviour-watch.js";
import { DEFAULT_BEHAVIOUR, DEFAULT_INACTIVITY, type BehaviourParams, type InactivityParams } from "../rules/behaviour-params.js";
import type { BehaviourDecision, RadarField } from "../rules/radar-input.js";
import type { RadarDevice } from "../devices/radar-device.js";
import type { DeviceHealth, DeviceStatus } from "../devices/poller.js";
import { Poller } from "../devices/poller.js";
import { Actuators } from "../actions/actuators.js";
import { SirenArbiter } from "../actions/siren-arbiter.js";
import type * as gas from "../rules/gas.js";
import type { Bus } from "../transports/modbus/bus.js";
import { decodeSnapshot, type RulesState, type Snapshot } from "../state/snapshot.js";
import { DeviceNews } from "./device-news.js";
import { EventRecorder, type EventSink } from "./event-recorder.js";
import { badValueEvent, busEvent, detectorLevelEvent, onlineEvent, pollerStatusEvent, type ShapingContext } from "./event-shaping.js";
import { GasSafety, tickChangesNothing, type ReopenResult } from "./gas-safety.js";
import { SmokeWatch } from "./smoke-watch.js";
import { SosWatch } from "./sos-watch.js";
import { wireZigbee } from "./zigbee-lifecycle.js";

/** The longest the hub goes without a tick when nothing timed runs: a bound on lateness after a clock step, and counted inactivity reaches the saved state at its refresh period. */
const IDLE_TICK_MAX_MS = 10_000;

export type { EventSink } from "./event-recorder.js";
export type { ReopenResult } from "./gas-safety.js";

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

type HubEvents = {
  decision: [d: gas.Decision, at: number];
  other: [d: OtherDecision, at: number];
  reading: [r: Reading];
};

export class SafetyHub extends EventEmitter<HubEvents> {
  readonly poller: Poller;
  readonly actuators: Actuators;
  readonly behaviour: BehaviourWatch;
  private readonly gas: GasSafety;
  private readonly smoke: SmokeWatch;
  private readonly sos: SosWatch;
  private readonly sirens: SirenArbiter;
  private readonly recorder: EventRecorder;
  private readonly news: DeviceNews;
  private readonly now: () => number;
  private tick?: NodeJS.Timeout;
  /** When the armed tick fires (the hub's clock); Infinity while none is armed. */
  private tickAt = Number.POSITIVE_INFINITY;
  private running = false;
  private readonly byId: Map<string, HubDevice>;
  private readonly radars: RadarDevice[];
  /** Restored devices that may be Zigbee devices still to come back; checked once the coordinator is up. */
  private restoredPending: Set<string> | null = null;
  /** What became of the state saved before this start. */
  restored: RestoreReport = { outcome: "none" };
  /** Valve closes and sirens the restored state wants: given at start, once the buses are open. */
  private restoreCommands: gas.Decision[] | null = null;

  constructor(private readonly o: SafetyHubOptions) {
    super();
    this.now = o.now ?? Date.now;
    this.radars = o.radars ?? [];
    this.byId = new Map<string, HubDevice>([...o.devices.map((d) => [d.id, d] as const), ...this.radars.map((r) => [r.id, r] as const)]);
    this.recorder = new EventRecorder(o.journal, o.log, (id) => this.byId.get(id)?.model);
    this.news = new DeviceNews(o.readingEveryMs ?? 60_000);
    const record = (d: EventDraft) => this.record(d);
    const changed = () => this.changed();
    this.behaviour = new BehaviourWatch({
      params: o.behaviour ?? DEFAULT_BEHAVIOUR,
      inactivity: o.inactivity ?? DEFAULT_INACTIVITY,
      record,
      log: o.log,
      now: this.now,
      changed,
    });
    this.behaviour.onDecision = (d, at) => this.emit("other", { rule: "behaviour", d }, at);
    for (const r of this.radars) this.wireRadar(r);
    this.poller = new Poller(o.devices, this.now);
    this.actuators = new Actuators(o.devices, o.log);
    this.sirens = new SirenArbiter(this.actuators);
    const shaping = (): ShapingContext => ({ room: (id) => this.byId.get(id)?.room, sirens: this.actuators.sirens });
    const settleSirens = () => this.settleSirens();
    this.gas = new GasSafety({
      rules: o.rules, actuators: this.actuators, poller: this.poller, device: (id) => this.byId.get(id), now: this.now, log: o.log,
      record, settleSirens, onDecision: (d, at) => this.emit("decision", d, at), changed, shaping,
    });
    this.smoke = new SmokeWatch({ now: this.now, record, settleSirens, onDecision: (d, at) => this.emit("other", { rule: "smoke", d }, at), changed, shaping });
    this.sos = new SosWatch({ params: o.sos ?? sos.DEFAULT_SOS, actuators: this.actuators, now: this.now, record, onDecision: (d, at) => this.emit("other", { rule: "sos", d }, at), changed });
    this.poller.on("reading", (r) => this.onReading(r));
    this.poller.on("status", (d, s, reason) => this.onStatus(d, s, reason));
    this.poller.on("valueProblems", (d, problems) => this.record(badValueEvent(d, problems)));
    for (const bus of o.buses) {
      bus.on("down", (reason) => this.record(busEvent(bus.name, false, reason)));
      bus.on("up", () => this.record(busEvent(bus.name, true)));
    }
    if (o.zigbee)
      wireZigbee(o.zigbee, {
        log: o.log, devices: this.byId, actuators: this.actuators, sirens: this.sirens, gas: this.gas, smoke: this.smoke, sos: this.sos,
        behaviour: this.behaviour, news: this.news, record, reading: (r) => this.emit("reading", r), changed, coordinatorUp: () => this.pruneRestored(),
      });
  }

  /** Journal appends that failed (each was logged). */
  get journalFailures(): number {
    return this.recorder.failures;
  }

  start(): void {
    // What the state restored from before a restart wants of the actuators goes first, before any poll.
    const restored = this.restoreCommands;
    this.restoreCommands = null;
    if (restored) {
      if (restored.length) this.gas.carryOut(restored, this.now());
      this.settleSirens();
    }
    this.poller.start();
    for (const r of this.radars) r.start();
    this.running = true;
    this.armTick();
  }

  /** One clock tick of every rule and of the radars' supervision, at now(). The daemon runs it on a timer (armTick). */
  tickNow(): void {
    this.gas.apply({ type: "tick" });
    const now = this.now();
    for (const r of this.radars) r.check(now);
    this.behaviour.apply({ type: "tick" });
  }

  /**
   * Arms the next tick: at the cadence (`tickMs`, 200 ms) while anything timed runs (a gas alarm, a detector
   * over its threshold, a valve being proven, the siren, a fall or vital-sign window, radars on serial lines
   * to supervise), else when inactivity could next be due, and at least every IDLE_TICK_MAX_MS whatever
   * happens. Skipped ticks would change nothing (the rules' idle predicates, test/unit/behaviour-tick-idle and
   * gas-tick-idle); every input re-arms it (each rule step calls changed()), so a window opened by a report is
   * judged at the cadence from then on. Only ever moved earlier; a later one is taken when it fires.
   */
  private armTick(): void {
    if (!this.running) return;
    const now = this.now();
    const every = this.o.tickMs ?? 200;
    const busy = this.radars.length > 0 || !tickChangesNothing(this.gas.state);
    const due = busy ? now : this.behaviour.nextTickAt(now);
    const at = Math.min(Math.max(due, now + every), now + Math.max(every, IDLE_TICK_MAX_MS));
    if (this.tick && at >= this.tickAt) return;
    clearTimeout(this.tick);
    this.tickAt = at;
    this.tick = setTimeout(() => {
      this.tick = undefined;
      this.tickAt = Number.POSITIVE_INFINITY;
      this.tickNow();
      this.armTick();
    }, at - now);
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.tick);
    this.tick = undefined;
    this.poller.stop();
    void Promise.all(this.radars.map((r) => r.stop())).catch(() => {});
  }

  async stopRadars(): Promise<void> {
    await Promise.all(this.radars.map((r) => r.stop()));
  }

  /** Smoke wants fire mode, gas/CO and valve faults want emergency; the arbiter picks one and commands changes only. */
  private settleSirens(): void {
    this.sirens.settle({ fire: Boolean(this.smoke.state.alarm), emergency: this.gas.state.sirenOn });
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
      this.record(onlineEvent(r, online, { reason, roles: [...r.roles], transport: "uart", model: r.model, ...(st.portError ? { port: st.portError } : {}) }));
    });
    r.on("settlingFall", () => this.o.log.warn({ radar: r.id, settledAt: r.stats().settledAt }, "a fall report arrived while the radar was settling after power-up; ignored"));
    r.on("line", (up, reason) => (up ? this.o.log.info({ radar: r.id }, "radar port open") : this.o.log.warn({ radar: r.id, reason }, "radar port lost; reopening")));
  }

  /** The gas/CO rule's state, with every other active alarm and the sirens' real state folded in. */
  get rule(): Readonly<RuleView> {
    const state = this.gas.state;
    const alarms: Record<string, gas.AlarmState> = { ...state.alarms };
    const sm = this.smoke.state.alarm;
    if (sm) alarms.smoke = { since: sm.since, device: sm.device, trigger: `smoke at ${sm.devices.join(", ")}`, peak: null, belowSince: null };
    for (const a of this.behaviour.active.values()) {
      const key = alarms[a.alarm] ? `${a.alarm}@${a.device}` : a.alarm;
      alarms[key] = { since: a.since, device: a.device, trigger: a.trigger, peak: null, belowSince: null };
    }
    return { ...state, alarms, sirenOn: this.sirens.mode !== null };
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
    if (d.has("gas_detector")) this.gas.apply({ type: "detector", device: d.id, kind: "gas", room: d.room, signals: r.signals });
    if (d.has("co_detector")) this.gas.apply({ type: "detector", device: d.id, kind: "co", room: d.room, signals: r.signals });
    if (d.has("valve")) this.gas.apply({ type: "valve", device: d.id, signals: r.signals });
    if (d.has("presence") && typeof r.signals.presence === "boolean") this.behaviour.apply({ type: "reading", device: d.id, room: d.room, gives: ["presence"], presence: r.signals.presence });
    const fault = this.news.fault(d, r);
    if (fault) this.record(fault);
    if ((d.has("gas_detector") || d.has("co_detector")) && this.news.readingDue(d.id, r.at)) this.record(detectorLevelEvent(d, r.signals));
  }

  private onStatus(d: Device, status: DeviceStatus, reason: string): void {
    if (status === "starting") return;
    this.gas.apply({ type: "status", device: d.id, online: status === "online" });
    if (d.has("presence")) this.behaviour.apply({ type: "status", device: d.id, room: d.room, online: status === "online" });
    // The first reading after start is not news; coming back after being offline is.
    if (status === "online" && reason === "first reading") return;
    this.record(pollerStatusEvent(d, status, reason, d.profile.roles));
  }

  /** Actuator commands and journal appends of this pass are already out; the state is saved after them. */
  private changed(): void {
    this.o.state?.changed();
    this.armTick();
  }

  /** A commissioning test of `device` is over: its SOS repeat window is dropped, so its next press is a new, real alarm. */
  endTestEpisode(device: string): void {
    this.sos.endEpisode(device);
  }

  /** Every rule's state now, as saved for a restart. */
  rulesState(): RulesState {
    return { gas: this.gas.state, smoke: this.smoke.state, sos: this.sos.state, ...this.behaviour.snapshot() };
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
    const g = this.gas.restored(s.gas, now, keepGas);
    const sm = smoke.restoreSmokeState(s.smoke);
    const so = this.sos.restored(s.sos, now);
    // Every part is computed before any is taken over (the behaviour part computes, then takes over at its end),
    // so a document that turns out unusable here leaves the hub clean.
    const b = this.behaviour.restore(s, { savedAt: s.savedAt, keep: (id) => this.byId.has(id) || zigbee });
    const present = (id: string) => this.byId.has(id);
    // Valves present now are commanded at start (the buses are not open yet); the others as soon as they are back.
    this.restoreCommands = this.gas.takeOver(g, present);
    this.smoke.takeOver(sm);
    this.sos.takeOver(so);
    const pending = new Set<string>([...Object.keys(g.state.detectors), ...Object.keys(g.state.valves), ...this.behaviour.heldDevices()].filter((id) => !present(id)));
    this.restoredPending = pending.size ? pending : null;

    if (s.savedAt > now + 1000) this.o.log.warn({ savedAt: s.savedAt, now, behindMs: s.savedAt - now }, "the hub's clock is behind the time the rules' state was saved (no real-time clock?): windows that would start in the future start now");

    const alarms = Object.keys(this.rule.alarms);
    const latchedValves = Object.entries(this.gas.state.valves).filter(([, v]) => v.commandedAt !== null).map(([id]) => id);
    const report: RestoreReport = { outcome: "restored", savedAt: s.savedAt, savedBoot: s.boot, alarms, latchedValves, windows: b.windows };
    this.o.log.info({ ...report, unheard: this.gas.unheardDetectors(), held: b.held }, "the rules' state saved before this start was taken over");
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
      this.gas.forget(id);
      this.behaviour.forget(id);
    }
    this.o.log.warn({ devices: gone }, "devices in the state saved before this start did not come back with the Zigbee network; what was saved for them is dropped");
    this.changed();
  }

  /** Journal an event without holding anyone up; a failure is logged and counted, never thrown. */
  record(draft: EventDraft): void {
    this.recorder.record(draft);
  }

  /** The on-site reopen: refused while any gas/CO alarm or detector fault is active; always journaled. */
  reopenValves(by: { person: string; osUser: string }): Promise<ReopenResult> {
    return this.gas.reopen(by, this.detectors().length);
  }
}
