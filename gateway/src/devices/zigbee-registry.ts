// The Zigbee side of the device registry: turns the coordinator's network into hub devices. Admits a
// device after its interview (definition → roles → ZigbeeDevice), sets up its reporting once, decodes
// every message through its converter, supervises check-ins, and runs pairing sessions.
import { EventEmitter } from "node:events";
import path from "node:path";
import type { Events } from "zigbee-herdsman";
import type { Logger } from "pino";
import type { ZigbeeConfig } from "../config/schema.js";
import { ZigbeeDevice } from "./zigbee-device.js";
import type { HubRole } from "./hub-device.js";
import { ZigbeeStack } from "../transports/zigbee/stack.js";
import { loadOrCreateNetworkSecrets } from "../transports/zigbee/network-keys.js";
import { canSet, convertSet, decode, definitionFor, exposesOf, setConverterLogger, type Definition, type State, type ZhDevice } from "../transports/zigbee/definitions.js";

/** herdsman's `InterviewState.Successful`; the enum is not exported from the package root. */
const INTERVIEWED = "SUCCESSFUL" as ZhDevice["interviewState"];
import { planRoles, type RolePlan } from "../transports/zigbee/roles.js";
import { Availability, checkInFor, DEFAULT_CHECK_IN, type CheckIn } from "../transports/zigbee/availability.js";
import { PairingSession, type PairDeviceReport, type PairProgress, type PairRequest, type PairResult } from "../transports/zigbee/pairing.js";

/**
 * herdsman saves by rewriting and fsyncing its whole database file synchronously: a detector's last state is
 * saved this long after the alarm, so the close and siren frames are on their way first.
 */
const SAVE_DELAY_MS = 1_000;

/** Bumped when the hub's own reporting set-up changes, so devices are set up again. */
const SETUP_VERSION = 2;

export interface ZigbeeChange {
  device: ZigbeeDevice;
  change: State;
  at: number;
}

type RegistryEvents = {
  device: [d: ZigbeeDevice];
  removed: [d: ZigbeeDevice, reason: string];
  change: [c: ZigbeeChange];
  status: [d: ZigbeeDevice, online: boolean, reason: string];
  coordinator: [c: { up: boolean; reason?: string; retryInMs?: number; attempt: number; downForMs?: number | null }];
  unsupported: [r: PairDeviceReport];
};

export interface ZigbeeRegistryOptions {
  config: ZigbeeConfig;
  dataDir: string;
  log: Logger;
  now?: () => number;
  /** How long a pairing session waits for interviews still running when its window closes. */
  interviewWaitMs?: number;
  /** IEEE addresses (lower case) never admitted as hub devices: devices retired by the relay. */
  exclude?: ReadonlySet<string>;
}

export class ZigbeeRegistry extends EventEmitter<RegistryEvents> {
  readonly stack: ZigbeeStack | null = null;
  private readonly devicesByIeee = new Map<string, ZigbeeDevice>();
  private readonly availability: Availability;
  private session: PairingSession | null = null;
  private readonly interviewing = new Set<string>();
  private readonly log: Logger;
  readonly dir: string;
  private readonly checkIn: Record<HubRole, CheckIn>;
  networkFile = "";
  private startError: string | null = null;
  private readonly saveSoon = new Set<ZhDevice>();
  private saveTimer?: NodeJS.Timeout;

  constructor(private readonly o: ZigbeeRegistryOptions) {
    super();
    this.log = o.log.child({ component: "zigbee" });
    this.dir = path.join(o.dataDir, "zigbee");
    this.checkIn = { ...DEFAULT_CHECK_IN };
    for (const [role, c] of Object.entries(o.config.checkIn)) if (c) this.checkIn[role as HubRole] = c;
    this.availability = new Availability({ pingMs: o.config.pingS * 1000, now: o.now });
    this.availability.on("status", (id, online, reason) => {
      const d = this.byId(id);
      if (d) this.emit("status", d, online, reason);
    });
    setConverterLogger(o.log);
  }

  private get now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Makes or reads the network secrets and makes the first start attempt (a failure retries in the background). */
  async start(): Promise<void> {
    const { secrets, file, created } = await loadOrCreateNetworkSecrets(this.dir).catch((e: Error) => {
      this.startError = e.message;
      throw e;
    });
    this.networkFile = file;
    if (created) this.log.info({ file }, "new Zigbee network key, PAN id and extended PAN id generated");
    const c = this.o.config;
    const stack = new ZigbeeStack({
      adapter: c.adapter, path: c.path, baudRate: c.baudRate, rtscts: c.rtscts, channel: c.channel, dir: this.dir, secrets,
      restartMinMs: c.restartMinMs, restartMaxMs: c.restartMaxMs, startTimeoutMs: c.startTimeoutMs,
      accept: async (ieee) => this.accept(ieee), log: this.log,
    });
    (this as { stack: ZigbeeStack | null }).stack = stack;
    stack.on("up", (info) => void this.onUp(info));
    stack.on("fault", (info) => {
      this.availability.pause();
      this.emit("coordinator", { up: false, reason: info.reason, retryInMs: info.retryInMs, attempt: info.attempt });
    });
    // A failure on one message is logged, never an unhandled rejection that could take the daemon down.
    stack.on("message", (m) => void this.onMessage(m).catch((e: Error) => this.log.error({ ieee: m.device.ieeeAddr, err: e.message }, "a zigbee message could not be handled")));
    stack.on("lastSeenChanged", (e) => {
      const d = this.devicesByIeee.get(e.device.ieeeAddr);
      if (d) this.availability.seen(d.id, e.device.lastSeen ?? this.now);
    });
    stack.on("deviceJoined", (e) => this.session?.joined(e.device.ieeeAddr));
    stack.on("deviceInterview", (e) => void this.onInterview(e));
    stack.on("deviceLeave", (e) => this.onLeave(e.ieeeAddr));
    this.availability.start();
    await stack.start();
  }

  async stop(): Promise<void> {
    this.session?.abort();
    this.availability.stop();
    for (const d of this.devicesByIeee.values()) d.stop();
    // herdsman writes its whole database when the controller stops: nothing pending is lost.
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    this.saveSoon.clear();
    await this.stack?.stop();
  }

  devices(): ZigbeeDevice[] {
    return [...this.devicesByIeee.values()];
  }

  byId(id: string): ZigbeeDevice | undefined {
    return this.devices().find((d) => d.id === id);
  }

  health(id: string) {
    return this.availability.status(id);
  }

  coordinator() {
    const s = this.stack;
    return { state: s?.state ?? (this.startError ? "failed" : "stopped"), error: s?.error ?? this.startError, pairing: this.session?.open ?? false, networkFile: this.networkFile, adapter: this.o.config.adapter, path: this.o.config.path, channel: this.o.config.channel };
  }

  private lookup = (ieee: string): ZhDevice | undefined => this.stack?.up?.getDeviceByIeeeAddr(ieee);

  /** Who may join: devices already paired (a rejoin), and during a pairing session those it allows. */
  private async accept(ieee: string): Promise<boolean> {
    const known = this.lookup(ieee);
    if (known && known.interviewState === INTERVIEWED) return true;
    if (this.session?.allows(ieee)) return true;
    const reason = this.session ? "not in the --expect list of this pairing session" : "joined while no pairing session was open";
    this.log.warn({ ieee, reason }, "zigbee join refused; the device is asked to leave");
    this.session?.rejected(ieee, reason);
    return false;
  }

  async pair(req: PairRequest, progress: (p: PairProgress) => void): Promise<PairResult> {
    const c = this.stack?.up;
    if (!c) throw new Error(`the Zigbee coordinator is not running (${this.stack?.error ?? "not started"}): pairing needs it`);
    if (this.session?.open) throw new Error("a pairing session is already running");
    const session = new PairingSession({ permitJoin: (s) => c.permitJoin(s) }, req, progress, this.o.interviewWaitMs ?? 90_000);
    this.session = session;
    try {
      return await session.run();
    } finally {
      if (this.session === session) this.session = null;
    }
  }

  private async onUp(info: { result: string; attempt: number; downForMs: number | null }): Promise<void> {
    for (const zh of this.stack?.devices() ?? []) {
      if (zh.interviewState !== INTERVIEWED) continue;
      await this.admit(zh, false).catch((e: Error) => this.log.error({ ieee: zh.ieeeAddr, err: e.message }, "could not restore a paired zigbee device"));
    }
    this.availability.resume();
    this.emit("coordinator", { up: true, attempt: info.attempt, downForMs: info.downForMs });
  }

  private async onInterview(e: Events.DeviceInterviewPayload): Promise<void> {
    const ieee = e.device.ieeeAddr;
    if (e.status === "started") {
      this.interviewing.add(ieee);
      this.session?.interviewing(ieee);
      return;
    }
    this.interviewing.delete(ieee);
    if (e.status === "failed") {
      const r: PairDeviceReport = { ieee, outcome: "failed", roles: [], linkquality: e.device.linkquality ?? null, battery: null, model: e.device.modelID, reason: "the interview failed (the device did not answer every step): reset it and pair again, closer to the hub" };
      if (this.session) this.session.report(r);
      else this.emit("unsupported", r);
      return;
    }
    const report = await this.admit(e.device, true).catch((err: Error): PairDeviceReport => ({ ieee, outcome: "failed", roles: [], linkquality: null, battery: null, reason: `admitting it failed: ${err.message}` }));
    if (this.session) this.session.report(report);
    if (report.outcome !== "paired") this.emit("unsupported", report);
  }

  private onLeave(ieee: string): void {
    const d = this.devicesByIeee.get(ieee);
    if (!d) return;
    d.stop();
    this.devicesByIeee.delete(ieee);
    this.availability.untrack(d.id);
    this.emit("removed", d, "left the Zigbee network");
  }

  /** Definition → roles → hub device; sets up reporting once; returns what `pair` shows. */
  private async admit(zh: ZhDevice, fresh: boolean): Promise<PairDeviceReport> {
    const ieee = zh.ieeeAddr;
    const base = { ieee, linkquality: zh.linkquality ?? null, battery: null as number | null };
    // A device retired by the relay (consent withdrawn) that is still on the network is not a hub device.
    if (this.o.exclude?.has(ieee.toLowerCase())) return { ...base, outcome: "rejected", roles: [], reason: "retired (consent withdrawn): remove it from the home" };
    const def = await definitionFor(zh);
    if (!def)
      return { ...base, outcome: "unsupported", roles: [], model: zh.modelID, vendor: zh.manufacturerName, reason: `no converter definition for model '${zh.modelID ?? "?"}' from '${zh.manufacturerName ?? "?"}': Anxin cannot decode it` };
    const cfg = this.o.config.devices.find((d) => d.ieee === ieee);
    const plan = planRoles(exposesOf(def, zh), def.description, cfg?.roles);
    const info = { model: def.model, vendor: def.vendor, description: def.description };
    if (!plan.roles.length) return { ...base, ...info, outcome: "unsupported", roles: [], reason: plan.problems.join("; ") };
    const mains = zh.type === "Router" || /mains|dc source/i.test(zh.powerSource ?? "");
    const ci = checkInFor(plan.roles, this.checkIn);
    const reportS = cfg?.reportS ?? ci.reportS;
    const windowMs = cfg?.offlineAfterMs ?? ci.windowS * 1000;
    const device = new ZigbeeDevice({
      id: cfg?.id ?? `zb-${ieee.slice(-6)}`, ieee, room: cfg?.room, plan, definition: def, lookup: this.lookup, log: this.log,
      ratedCloseMs: cfg?.ratedCloseMs, sirenSeconds: this.o.config.sirenSeconds, chirpSeconds: this.o.config.chirpSeconds,
    });
    const clash = this.devices().find((d) => d.id === device.id && d.ieee !== ieee);
    if (clash) return { ...base, ...info, outcome: "failed", roles: plan.roles, reason: `id '${device.id}' is already device ${clash.ieee}: give this one an id in zigbee.devices` };

    const notes = [...plan.problems];
    const meta = zh.meta as { anxinSetup?: number };
    const setUpNeeded = fresh || meta.anxinSetup !== SETUP_VERSION;
    if (setUpNeeded && fresh) notes.push(...(await this.setUp(zh, def, mains, reportS, !!plan.valve)));
    // The detector's last known alarm state (kept in herdsman's database): an IAS detector reports only on
    // change, so a freshly paired one that said nothing is clear, and a restored one is as it last said.
    const flags = detectorFlags(plan);
    const last = (zh.meta as { anxinLast?: State }).anxinLast;
    if (last) device.update(last);
    else if (fresh && flags.length) {
      device.update(Object.fromEntries(flags.map((k) => [k, false])));
      this.remember(zh, device);
    }
    this.devicesByIeee.get(ieee)?.stop();
    this.devicesByIeee.set(ieee, device);
    this.emit("device", device);
    this.availability.track(
      { id: device.id, mains, windowMs, ping: mains ? () => this.lookupOrThrow(ieee).ping() : undefined },
      zh.lastSeen,
    );
    // A device restored at start is admitted before anything is asked of it over the air: devices are restored
    // one after another, and a sleeping one's configure or battery read can take minutes, during which every
    // device after it (a valve, a detector) would be deaf to the rules.
    if (setUpNeeded && !fresh)
      void this.setUp(zh, def, mains, reportS, !!plan.valve).then(
        (n) => void (n.length && this.log.warn({ id: device.id, notes: n }, "zigbee device set-up incomplete")),
        (e: Error) => this.log.error({ id: device.id, err: e.message }, "zigbee device set-up failed"),
      );
    let battery: number | null = null;
    if (fresh && plan.battery && !mains) battery = await this.readBattery(zh, device);
    this.log.info({ id: device.id, ieee, model: def.model, roles: plan.roles, fresh }, "zigbee device admitted");
    return {
      ...base, ...info, outcome: "paired", id: device.id, roles: plan.roles, battery, power: mains ? "mains" : "battery",
      checkIn: { reportS: mains ? null : reportS, windowS: Math.round((mains ? this.o.config.pingS * 1000 : windowMs) / 1000) },
      notes: notes.length ? notes : undefined,
    };
  }

  private lookupOrThrow(ieee: string): ZhDevice {
    const d = this.lookup(ieee);
    if (!d) throw new Error("the coordinator is down");
    return d;
  }

  /**
   * The converter's own configure (binds, its reporting), then the hub's check-in: battery devices are
   * asked to report their battery at least every `reportS`, so silence longer than the window means trouble.
   */
  private async setUp(zh: ZhDevice, def: Definition, mains: boolean, reportS: number, valve: boolean): Promise<string[]> {
    const notes: string[] = [];
    const coordinator = this.stack?.up?.getDevicesByType("Coordinator")[0]?.getEndpoint(1);
    if (def.configure && coordinator) {
      try {
        await def.configure(zh, coordinator, def);
      } catch (e) {
        notes.push(`the converter's configure step failed (${(e as Error).message}); it is retried at the next start`);
      }
    }
    let ok = notes.length === 0;
    if (!mains) {
      const ep = zh.endpoints.find((e) => e.supportsInputCluster("genPowerCfg"));
      if (!ep || !coordinator) notes.push("no battery cluster to report on: its check-in relies on its own alarms and supervision frames");
      else {
        try {
          await ep.bind("genPowerCfg", coordinator);
          await ep.configureReporting("genPowerCfg", [
            { attribute: "batteryPercentageRemaining", minimumReportInterval: Math.min(60, reportS), maximumReportInterval: reportS, reportableChange: 0 },
          ]);
        } catch (e) {
          ok = false;
          notes.push(`setting up its check-in report failed (${(e as Error).message}); it is retried at the next start`);
        }
      }
    }
    // A valve must never open by itself (invariant 2): with its power-on behaviour at "on" or "toggle" it
    // opens after a power cut. "previous" keeps a closed valve closed, without cutting the gas at every outage.
    const pob = exposesOf(def, zh).find((e) => (e.property ?? e.name) === "power_on_behavior");
    if (valve && pob && (pob.values ?? []).includes("previous") && canSet(def, "power_on_behavior")) {
      try {
        await convertSet(def, zh, "power_on_behavior", "previous", {});
      } catch (e) {
        ok = false;
        notes.push(`setting its power-on behaviour to 'previous' failed (${(e as Error).message}): after a power cut it may open by itself; it is retried at the next start`);
      }
    }
    if (ok) {
      (zh.meta as { anxinSetup?: number }).anxinSetup = SETUP_VERSION;
      zh.save();
    }
    return notes;
  }

  private async readBattery(zh: ZhDevice, d: ZigbeeDevice): Promise<number | null> {
    const ep = zh.endpoints.find((e) => e.supportsInputCluster("genPowerCfg"));
    if (ep) {
      // The answer comes back as a message and is decoded by the converter like any report.
      await ep.read("genPowerCfg", ["batteryPercentageRemaining"], { timeout: 5000 }).catch(() => {});
      await new Promise((r) => setTimeout(r, 20));
    }
    const b = d.state[d.plan.battery ?? "battery"];
    return typeof b === "number" ? b : null;
  }

  private async onMessage(m: Events.MessagePayload): Promise<void> {
    const d = this.devicesByIeee.get(m.device.ieeeAddr);
    if (!d) {
      if (!this.interviewing.has(m.device.ieeeAddr)) this.log.debug({ ieee: m.device.ieeeAddr, cluster: m.cluster, type: m.type }, "message from a device that is not admitted; ignored");
      return;
    }
    const at = this.now;
    this.availability.seen(d.id, at);
    const change = await decode(d.definition, m, d.state, (later) => {
      d.update(later);
      this.emit("change", { device: d, change: later, at: this.now });
    }, this.log);
    d.update(change, m.linkquality, at);
    // The rules (and so the valve and siren commands) first; remembering the detector's state writes
    // herdsman's whole database file synchronously, which must never hold up or stop an alarm (invariant 1).
    if (Object.keys(change).length) this.emit("change", { device: d, change, at });
    if (detectorFlags(d.plan).some((k) => k in change)) this.remember(m.device, d);
  }

  /** Keeps the detector's last alarm state in herdsman's database; a failed write is logged, not thrown. */
  private remember(zh: ZhDevice, d: ZigbeeDevice): void {
    (zh.meta as { anxinLast?: State }).anxinLast = Object.fromEntries(detectorFlags(d.plan).filter((k) => k in d.state).map((k) => [k, d.state[k]]));
    this.saveSoon.add(zh);
    this.saveTimer ??= setTimeout(() => this.flushSaves(), SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  private flushSaves(): void {
    this.saveTimer = undefined;
    for (const zh of this.saveSoon) {
      // A device object from before a coordinator restart is no longer the database's.
      if (this.lookup(zh.ieeeAddr) !== zh) continue;
      try {
        zh.save();
      } catch (e) {
        this.log.error({ ieee: zh.ieeeAddr, err: (e as Error).message }, "could not save a detector's last state to the zigbee database");
      }
    }
    this.saveSoon.clear();
  }
}

function detectorFlags(p: RolePlan): string[] {
  return [p.smoke, p.gas, p.co].filter((k): k is string => !!k);
}
