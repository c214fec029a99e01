// A Zigbee device as the hub sees it: roles from its converter's exposes, state decoded by its
// converter, commands built by its converter. It looks its herdsman device up on each use, because a
// coordinator restart replaces every herdsman object.
import type { Logger } from "pino";
import type { Priority } from "../transports/modbus/bus.js";
import type { CommandOptions, HubCommand, HubDevice, HubRole } from "./hub-device.js";
import type { Reading } from "./device.js";
import type { Signals } from "./signals.js";
import { convertGet, convertSet, type Definition, type State, type ZhDevice } from "../transports/zigbee/definitions.js";
import type { RolePlan } from "../transports/zigbee/roles.js";
import { fitSound, stopWarning, type CadenceStep, type FittedSound, type SirenCapabilities } from "../transports/zigbee/siren-patterns.js";

export interface ZigbeeDeviceSpec {
  id: string;
  ieee: string;
  room?: string;
  plan: RolePlan;
  definition: Definition;
  /** The live herdsman device, or undefined while the coordinator is down. */
  lookup: (ieee: string) => ZhDevice | undefined;
  log: Logger;
  ratedCloseMs?: number;
  /** How long one siren command sounds; it is re-sent before it runs out while the siren is wanted. */
  sirenSeconds: number;
  chirpSeconds: number;
}

/** How soon a siren command that failed is tried again. */
const SIREN_RETRY_MS = 2_000;

const truthy = (v: unknown) => v === true || v === "ON" || v === 1;

export class ZigbeeDevice implements HubDevice {
  readonly transport = "zigbee" as const;
  readonly id: string;
  readonly ieee: string;
  readonly room?: string;
  readonly plan: RolePlan;
  readonly definition: Definition;
  readonly ratedCloseMs?: number;
  state: State = {};
  linkquality: number | null = null;
  lastMessageAt: number | null = null;
  private sirenTimer?: NodeJS.Timeout;
  /** Bumped by every siren on/off, so a send still in flight cannot restart a siren that was turned off. */
  private sirenGen = 0;
  private sirenWanted = false;
  private hurryTimer?: NodeJS.Timeout;

  constructor(private readonly spec: ZigbeeDeviceSpec) {
    this.id = spec.id;
    this.ieee = spec.ieee;
    this.room = spec.room;
    this.plan = spec.plan;
    this.definition = spec.definition;
    this.ratedCloseMs = spec.ratedCloseMs;
  }

  get roles(): readonly HubRole[] {
    return this.plan.roles;
  }

  get model(): string {
    return this.definition.model;
  }

  get vendor(): string {
    return this.definition.vendor;
  }

  has(role: HubRole): boolean {
    return this.plan.roles.includes(role);
  }

  canDo(command: HubCommand): boolean {
    if (command === "close" || command === "open") return this.has("valve") && !!this.plan.valve;
    return this.has("siren") && !!this.plan.siren;
  }

  zh(): ZhDevice {
    const d = this.spec.lookup(this.ieee);
    if (!d) throw new Error(`zigbee device ${this.id} is not reachable: the coordinator is down`);
    return d;
  }

  /** Merges a decoded change into the device's state. */
  update(change: State, linkquality?: number, at?: number): void {
    Object.assign(this.state, change);
    if (linkquality !== undefined) this.linkquality = linkquality;
    if (at !== undefined) this.lastMessageAt = at;
  }

  async command(command: HubCommand, _priority: Priority, opts?: CommandOptions): Promise<void> {
    // Zigbee has no queue of our own to jump: herdsman sends each request as it comes.
    const p = this.plan;
    switch (command) {
      case "close":
      case "open": {
        if (!p.valve) throw new Error(`${this.id} is not a valve`);
        const value = command === "close" ? p.valve.close : p.valve.openCmd;
        // The converter's optimistic state is not kept: only the valve's own report or read-back may say
        // it closed (invariant 3), and the read-back stops once the state says closed.
        await convertSet(this.definition, this.zh(), p.valve.property, value, this.state);
        return;
      }
      case "siren_on": {
        const gen = ++this.sirenGen;
        this.sirenWanted = true;
        this.clearSirenTimer();
        const sound = fitSound(this.sirenCaps(), opts?.mode ?? "emergency");
        if (sound.steps) return this.soundCadence(gen, sound, sound.steps);
        return this.soundContinuous(gen, sound);
      }
      case "siren_off":
        this.sirenGen++;
        this.sirenWanted = false;
        this.clearSirenTimer();
        await this.warn(stopWarning(this.sirenCaps()));
        return;
      case "siren_chirp":
        // A short bounded sound: the siren stops by itself, nothing has to turn it off.
        if (this.sirenWanted) return; // already sounding for an alarm: that is feedback enough
        await this.warn(fitSound(this.sirenCaps(), "chirp").warning(this.spec.chirpSeconds));
        return;
    }
  }

  /** The siren's `warning` features, from its plan (planRoles always reads them; a hand-made plan gets what was sent before). */
  private sirenCaps(): SirenCapabilities {
    const p = this.plan.siren;
    if (!p) throw new Error(`${this.id} is not a siren`);
    return this.plan.sirenCaps ?? { property: p.property, modes: p.modes, levels: [], strobeLevels: [], strobe: true, duration: true };
  }

  private clearSirenTimer(): void {
    clearTimeout(this.sirenTimer);
    this.sirenTimer = undefined;
  }

  /**
   * One warning lasting `sirenSeconds`, re-sent at half that for as long as the siren is wanted; a send that
   * failed (the first one included) is tried again soon, so one lost frame never leaves the siren silent for
   * a whole alarm.
   */
  private async soundContinuous(gen: number, sound: FittedSound): Promise<void> {
    const refreshMs = Math.max(1000, (this.spec.sirenSeconds * 1000) / 2);
    const schedule = (ok: boolean) => {
      if (gen !== this.sirenGen) return;
      this.sirenTimer = setTimeout(() => {
        this.warn(sound.warning(this.spec.sirenSeconds)).then(
          () => schedule(true),
          (e: Error) => {
            this.spec.log.warn({ device: this.id, err: e.message }, "siren refresh failed; retrying");
            schedule(false);
          },
        );
      }, ok ? refreshMs : Math.min(refreshMs, SIREN_RETRY_MS));
      this.sirenTimer.unref();
    };
    try {
      await this.warn(sound.warning(this.spec.sirenSeconds));
    } catch (e) {
      schedule(false);
      throw e;
    }
    schedule(true);
  }

  /**
   * A cadence (fire's temporal-three): each sounding step is a full `sirenSeconds` warning and each silent
   * step a `stop`, on this device's own timer. Losing a stop, or the hub dying mid-sound, can only make the
   * siren sound longer (never past `sirenSeconds`), never leave it silent; a sounding step that failed is
   * tried again after SIREN_RETRY_MS. siren_off, another siren_on and stop() end the cadence.
   */
  private async soundCadence(gen: number, sound: FittedSound, steps: readonly CadenceStep[]): Promise<void> {
    const step = async (i: number): Promise<void> => {
      if (gen !== this.sirenGen) return;
      const s = steps[i]!;
      const started = Date.now();
      let failure: Error | undefined;
      try {
        await this.warn(s.sound ? sound.warning(this.spec.sirenSeconds) : stopWarning(this.sirenCaps()));
      } catch (e) {
        failure = e as Error;
      }
      if (gen !== this.sirenGen) return;
      // A silent step that failed leaves the siren sounding: the cadence goes on. A sounding one is retried.
      const retry = failure !== undefined && s.sound;
      const next = retry ? i : (i + 1) % steps.length;
      const wait = retry ? SIREN_RETRY_MS : Math.max(0, started + s.ms - Date.now());
      this.sirenTimer = setTimeout(() => {
        step(next).catch((e: Error) => this.spec.log.warn({ device: this.id, err: e.message }, "siren cadence step failed"));
      }, wait);
      this.sirenTimer.unref();
      if (failure) throw failure;
    };
    await step(0);
  }

  private async warn(value: Record<string, unknown>): Promise<void> {
    await convertSet(this.definition, this.zh(), this.sirenCaps().property, value, this.state);
  }

  /** The valve's read-back: ask for its state now and then until `forMs` is over (the answer arrives as a message). */
  hurry(periodMs: number, forMs: number): void {
    const p = this.plan.valve;
    if (!p) return;
    clearTimeout(this.hurryTimer);
    const end = Date.now() + forMs;
    const period = Math.max(500, periodMs);
    const once = () => {
      if (this.plan.valve && this.state[p.property] === p.closed) return;
      const zh = this.spec.lookup(this.ieee);
      if (zh) convertGet(this.definition, zh, p.property, this.state).catch((e: Error) => this.spec.log.debug({ device: this.id, err: e.message }, "valve read-back failed"));
      if (Date.now() + period < end) (this.hurryTimer = setTimeout(once, period)).unref();
    };
    this.hurryTimer = setTimeout(once, period);
    this.hurryTimer.unref();
  }

  stop(): void {
    this.sirenGen++;
    this.sirenWanted = false;
    this.clearSirenTimer();
    clearTimeout(this.hurryTimer);
  }

  /** The rules' signal vocabulary, from the converter state. */
  signals(): Signals {
    const s: Signals = {};
    const p = this.plan;
    const st = this.state;
    // Only true/false counts: anything else from a converter is not a reading (invariant 7).
    const flags = [p.smoke, p.gas, p.co].filter((k): k is string => !!k && typeof st[k] === "boolean");
    if (flags.length) s.alarm = flags.some((k) => st[k] === true);
    if (p.valve && (st[p.valve.property] === p.valve.closed || st[p.valve.property] === p.valve.open)) {
      s.valve_closed = st[p.valve.property] === p.valve.closed;
      s.valve_open = st[p.valve.property] === p.valve.open;
    }
    if (p.presence && st[p.presence] !== undefined) s.presence = st[p.presence] === true;
    if (p.tamper && typeof st[p.tamper] === "boolean") s.tamper = st[p.tamper] as boolean;
    if (p.batteryLow && typeof st[p.batteryLow] === "boolean") s.battery_low = st[p.batteryLow] as boolean;
    if (p.siren && st.warning !== undefined) s.siren_on = truthy(st.warning);
    return s;
  }

  /** What `anxin-hub test` shows: asks the readable properties, then reports the state as it stands. */
  async read(now: () => number): Promise<Reading> {
    const zh = this.zh();
    const keys = [this.plan.valve?.property].filter((k): k is string => !!k);
    for (const k of keys) await convertGet(this.definition, zh, k, this.state).catch(() => {});
    const values: Record<string, number | boolean> = {};
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.state)) {
      if (typeof v === "number" || typeof v === "boolean") values[k] = v;
      else if (typeof v === "string") labels[k] = v;
    }
    return { device: this.id, at: now(), values, labels, problems: [], signals: this.signals() };
  }
}
