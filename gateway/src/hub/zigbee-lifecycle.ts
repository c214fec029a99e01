// The Zigbee side of one home, as the rules see it: devices joining and leaving (valves get a verified close
// during an alarm, sirens sound at once), their reports turned into the same rule inputs as RS-485 signals,
// their check-ins, and the coordinator going down and coming back.
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";
import type { Reading } from "../devices/device.js";
import type { HubDevice } from "../devices/hub-device.js";
import type { ZigbeeDevice } from "../devices/zigbee-device.js";
import type { ZigbeeChange, ZigbeeRegistry } from "../devices/zigbee-registry.js";
import type { Actuators } from "../actions/actuators.js";
import type { SirenArbiter } from "../actions/siren-arbiter.js";
import type { RadarField, RadarInput } from "../rules/radar-input.js";
import type { BehaviourWatch } from "./behaviour-watch.js";
import type { DeviceNews } from "./device-news.js";
import { breathingRateEvent, coordinatorEvent, leftEvent, onlineEvent, unsupportedEvent, type CoordinatorChange } from "./event-shaping.js";
import type { GasSafety } from "./gas-safety.js";
import type { SmokeWatch } from "./smoke-watch.js";
import type { SosWatch } from "./sos-watch.js";

export interface ZigbeeLifecycleParts {
  log: Logger;
  /** Every device the hub knows, by id; Zigbee devices are added and removed here. */
  devices: Map<string, HubDevice>;
  actuators: Actuators;
  sirens: SirenArbiter;
  gas: GasSafety;
  smoke: SmokeWatch;
  sos: SosWatch;
  behaviour: BehaviourWatch;
  news: DeviceNews;
  record: (draft: EventDraft) => void;
  /** Every decoded report, in the shape of a reading (tests and the demo watch it). */
  reading: (r: Reading) => void;
  changed: () => void;
  /** The coordinator is up: every Zigbee device it knows is back. */
  coordinatorUp: () => void;
}

type Present = (k: string | undefined) => k is string;

/** Subscribes the home to the registry's events. */
export function wireZigbee(zb: ZigbeeRegistry, p: ZigbeeLifecycleParts): void {
  const z = new ZigbeeLifecycle(p);
  zb.on("device", (d) => z.add(d));
  zb.on("removed", (d, reason) => z.remove(d, reason));
  zb.on("change", (c) => z.change(c));
  zb.on("status", (d, online, reason) => z.status(d, online, reason));
  zb.on("unsupported", (r) => p.record(unsupportedEvent(r)));
  zb.on("coordinator", (c) => z.coordinator(c));
}

export class ZigbeeLifecycle {
  constructor(private readonly p: ZigbeeLifecycleParts) {}

  add(d: ZigbeeDevice): void {
    const existing = this.p.devices.get(d.id);
    if (existing && existing.transport !== "zigbee") {
      this.p.log.error({ id: d.id }, "a zigbee device has the id of an RS-485 device; not added");
      return;
    }
    this.p.devices.set(d.id, d);
    this.p.actuators.add(d);
    if (d.has("valve") && d.canDo("close")) this.p.gas.addValve(d);
    this.p.sirens.joined(d);
  }

  remove(d: ZigbeeDevice, reason: string): void {
    if (this.p.devices.get(d.id) !== d) return;
    this.p.devices.delete(d.id);
    this.p.actuators.remove(d.id);
    this.p.gas.removeDevice(d.id);
    this.p.changed();
    this.p.record(leftEvent(d, reason));
  }

  change(c: ZigbeeChange): void {
    const d = c.device;
    if (this.p.devices.get(d.id) !== d) return;
    const p = d.plan;
    const ch = c.change;
    const present: Present = (k): k is string => k !== undefined && k in ch;
    // A value the converter should give as a boolean but did not (undefined, "false", 0) is bad input, never
    // "clear" (invariant 7): it is logged and the rule keeps what it knew.
    const bad = (k: string, want: string) => {
      this.p.log.error({ device: d.id, model: d.model, property: k, got: typeof ch[k] === "string" ? ch[k] : typeof ch[k] }, `zigbee converter gave an unexpected value (want ${want}); ignored`);
      return false;
    };
    const has: Present = (k): k is string => present(k) && (typeof ch[k] === "boolean" || bad(k, "true/false"));
    // Safety inputs first: they may issue actuator commands.
    if (d.has("gas_detector") && has(p.gas)) this.p.gas.apply({ type: "detector", device: d.id, kind: "gas", room: d.room, signals: { alarm: ch[p.gas] === true }, eventDriven: true });
    if (d.has("co_detector") && has(p.co)) this.p.gas.apply({ type: "detector", device: d.id, kind: "co", room: d.room, signals: { alarm: ch[p.co] === true }, eventDriven: true });
    const pv = p.valve;
    if (d.has("valve") && pv && present(pv.property) && (ch[pv.property] === pv.closed || ch[pv.property] === pv.open || bad(pv.property, `${String(pv.closed)}/${String(pv.open)}`)))
      this.p.gas.apply({ type: "valve", device: d.id, signals: { valve_closed: ch[pv.property] === pv.closed, valve_open: ch[pv.property] === pv.open } });
    if (d.has("smoke_detector") && has(p.smoke)) this.p.smoke.apply({ type: "detector", device: d.id, room: d.room, smoke: ch[p.smoke] === true });
    if (d.has("sos_button") && p.sos && present(p.sos.property) && p.sos.press.includes(String(ch[p.sos.property]))) this.p.sos.press(d, String(ch[p.sos.property]));
    this.behaviourFrom(d, ch, present, bad, has);
    for (const [type, key] of [["tamper", p.tamper], ["battery_low", p.batteryLow]] as const) {
      const news = this.p.news.flag(d, type, key, ch, d.state.battery);
      if (news) this.p.record(news);
    }
    this.p.reading({ device: d.id, at: c.at, values: {}, labels: {}, problems: [], signals: d.signals() });
    if (d.has("breathing_monitor") && present(p.breathing) && this.p.news.readingDue(d.id, c.at)) this.p.record(breathingRateEvent(d, ch[p.breathing]));
  }

  /** A Zigbee radar or presence sensor feeds the same behaviour rules as a UART radar. */
  private behaviourFrom(d: ZigbeeDevice, ch: Record<string, unknown>, present: Present, bad: (k: string, want: string) => boolean, has: Present): void {
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
    if (input.fall !== undefined || input.presence !== undefined || input.breathing !== undefined) this.p.behaviour.apply(input);
  }

  status(d: ZigbeeDevice, online: boolean, reason: string): void {
    if (this.p.devices.get(d.id) !== d) return;
    this.p.gas.apply({ type: "status", device: d.id, online });
    this.p.smoke.apply({ type: "status", device: d.id, online });
    if (d.has("presence") || d.has("fall_detector") || d.has("breathing_monitor")) this.p.behaviour.apply({ type: "status", device: d.id, room: d.room, online });
    // A detector restored from the database is fed its last known state once it is heard again.
    if (online) this.restoreDetector(d);
    if (online && reason === "first frame") return;
    this.p.record(onlineEvent(d, online, { reason, roles: [...d.roles], transport: "zigbee" }));
  }

  private restoreDetector(d: ZigbeeDevice): void {
    const p = d.plan;
    for (const [kind, key, role] of [["gas", p.gas, "gas_detector"], ["co", p.co, "co_detector"]] as const) {
      // Also one restored from before a hub restart: heard again, its last known state is its report.
      if (!key || !d.has(role) || this.p.gas.heardSinceStart(d.id) || typeof d.state[key] !== "boolean") continue;
      this.p.gas.apply({ type: "detector", device: d.id, kind, room: d.room, signals: { alarm: d.state[key] === true }, eventDriven: true });
    }
    // A smoke detector behind a smoke alarm restored from before a hub restart must report again before the alarm
    // can clear; heard again, its last known state is that report (it reports on change only).
    const sk = p.smoke;
    const sm = this.p.smoke.state;
    if (sk && d.has("smoke_detector") && sm.alarm?.devices.includes(d.id) && !sm.detectors[d.id] && typeof d.state[sk] === "boolean")
      this.p.smoke.apply({ type: "detector", device: d.id, room: d.room, smoke: d.state[sk] === true });
  }

  coordinator(c: CoordinatorChange): void {
    if (c.up) this.p.coordinatorUp();
    const news = coordinatorEvent(c);
    if (news) this.p.record(news);
  }
}
