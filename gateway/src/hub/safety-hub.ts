// Wires the parts of one home together: readings → gas/CO rule → actuators, and every
// outcome into the journal. Actuator commands are issued before the journal write is started,
// and the journal write is never awaited on the way to a valve (invariant 1).
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { EventAction, EventDraft } from "../../../protocol/envelope.js";
import type { RulesConfig } from "../config/schema.js";
import type { Device, Reading } from "../devices/device.js";
import type { DeviceHealth, DeviceStatus } from "../devices/poller.js";
import { Poller } from "../devices/poller.js";
import { Actuators } from "../actions/actuators.js";
import * as gas from "../rules/gas.js";
import type { Bus } from "../transports/modbus/bus.js";

/** What the hub needs of the journal: an append that may be slow and must not be awaited here. */
export interface EventSink {
  append(draft: EventDraft): Promise<unknown>;
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
}

type HubEvents = {
  decision: [d: gas.Decision, at: number];
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
  private readonly byId: Map<string, Device>;
  journalFailures = 0;

  constructor(private readonly o: SafetyHubOptions) {
    super();
    this.now = o.now ?? Date.now;
    this.byId = new Map(o.devices.map((d) => [d.id, d]));
    this.poller = new Poller(o.devices, this.now);
    this.actuators = new Actuators(o.devices, o.log);
    const valves: gas.GasRuleParams["valves"] = {};
    for (const v of this.actuators.valves)
      valves[v.id] = {
        ratedCloseMs: v.ratedCloseMs ?? v.profile.commands.close?.ratedMs ?? o.rules.valve.ratedCloseMs,
        retryMs: v.profile.commands.close?.retryMs ?? o.rules.valve.retryMs,
      };
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
  }

  start(): void {
    this.poller.start();
    this.tick = setInterval(() => this.apply({ type: "tick" }), this.o.tickMs ?? 200);
  }

  stop(): void {
    clearInterval(this.tick);
    this.poller.stop();
  }

  get rule(): Readonly<gas.GasRuleState> {
    return this.state;
  }

  health(id: string): DeviceHealth | undefined {
    return this.poller.health(id);
  }

  /** Detectors the reopen check must have heard from. */
  private detectors(): Device[] {
    return this.o.devices.filter((d) => d.has("gas_detector") || d.has("co_detector"));
  }

  private onReading(r: Reading): void {
    this.emit("reading", r);
    const d = this.byId.get(r.device);
    if (!d) return;
    if (d.has("gas_detector")) this.apply({ type: "detector", device: d.id, kind: "gas", room: d.room, signals: r.signals });
    if (d.has("co_detector")) this.apply({ type: "detector", device: d.id, kind: "co", room: d.room, signals: r.signals });
    if (d.has("valve")) this.apply({ type: "valve", device: d.id, signals: r.signals });
    this.noteFault(d, r);
    this.maybeJournalReading(d, r);
  }

  private noteFault(d: Device, r: Reading): void {
    const fault = r.signals.fault === true || r.signals.fault === 1;
    if (r.signals.fault === undefined || this.faultShown.get(d.id) === fault) return;
    const first = !this.faultShown.has(d.id);
    this.faultShown.set(d.id, fault);
    if (first && !fault) return;
    this.record({ kind: "device", type: fault ? "fault" : "fault_cleared", severity: fault ? "warning" : "info", device: d.id, room: d.room, data: { values: r.values } });
  }

  private maybeJournalReading(d: Device, r: Reading): void {
    if (!(d.has("gas_detector") || d.has("co_detector"))) return;
    const last = this.lastJournaledReading.get(d.id) ?? 0;
    if (r.at - last < (this.o.readingEveryMs ?? 60_000)) return;
    this.lastJournaledReading.set(d.id, r.at);
    this.record({ kind: "reading", type: "detector_level", severity: "info", device: d.id, room: d.room, data: { ...r.signals } });
  }

  private onStatus(d: Device, status: DeviceStatus, reason: string): void {
    if (status === "starting") return;
    this.apply({ type: "status", device: d.id, online: status === "online" });
    // The first reading after start is not news; coming back after being offline is.
    if (status === "online" && reason === "first reading") return;
    this.record({ kind: "device", type: status, severity: status === "offline" ? "warning" : "info", device: d.id, room: d.room, data: { reason, roles: d.profile.roles } });
  }

  private apply(input: gas.RuleInput): void {
    const at = this.now();
    const { state, decisions } = gas.step(this.state, this.params, input, at);
    this.state = state;
    if (decisions.length) this.carryOut(decisions, at);
  }

  private carryOut(decisions: gas.Decision[], at: number): void {
    // Actuators first, in one synchronous pass, so the bus has the commands before anything else runs.
    for (const d of decisions) {
      if (d.do === "close_valve") {
        void this.actuators.send(d.valve, "close");
        this.poller.hurry(d.valve, this.o.rules.valve.verifyPollMs, (this.params.valves[d.valve]?.ratedCloseMs ?? 15000) + 5000);
      } else if (d.do === "siren") void this.actuators.sirensTo(d.on);
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

  /** A home without a siren gets no siren action: events say only what the hub really did. */
  private sirenActions(): EventAction[] {
    return this.actuators.sirens.map((s) => ({ action: "siren_on", target: s.id }));
  }

  /** Journal an event without holding anyone up; a failure is logged and counted, never thrown. */
  record(draft: EventDraft): void {
    this.o.journal.append(draft).catch((e: Error) => {
      this.journalFailures++;
      this.o.log.error({ err: e.message, kind: draft.kind, type: draft.type }, "journal append failed");
    });
  }

  /** The on-site reopen: refused while any gas/CO alarm or detector fault is active; always journaled. */
  async reopenValves(by: { person: string; osUser: string }): Promise<ReopenResult> {
    const r = gas.reopen(this.state, { knownDetectors: this.detectors().length });
    if (!r.ok) {
      this.record({ kind: "audit", type: "valve_reopen_refused", severity: "warning", data: { by: by.person, osUser: by.osUser, reasons: r.reasons } });
      return { ok: false, reasons: r.reasons, opened: [] };
    }
    this.state = r.step.state;
    const opened: ReopenResult["opened"] = [];
    for (const d of r.step.decisions) {
      if (d.do === "open_valve") {
        const res = await this.actuators.send(d.valve, "open");
        opened.push({ valve: d.valve, ok: res.ok, error: res.error });
      } else if (d.do === "siren") void this.actuators.sirensTo(d.on);
    }
    this.record({
      kind: "audit", type: "valve_reopen", severity: "warning",
      data: { by: by.person, osUser: by.osUser, valves: opened.map((o) => o.valve) },
      actions: opened.map((o) => ({ action: "valve_open", target: o.valve, ok: o.ok, detail: o.error })),
    });
    return { ok: true, reasons: [], opened };
  }
}
