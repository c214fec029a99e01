// A device on a bus: its profile, its address and how to read and command it.
import type { Bus, Priority, RequestTiming } from "../transports/modbus/bus.js";
import type { Profile, Role } from "../profiles/schema.js";
import { decodePoints, type Decoded } from "./decode.js";
import { deriveSignals, type Signals } from "./signals.js";
import type { HubCommand, HubDevice, HubRole } from "./hub-device.js";

export interface Reading extends Decoded {
  device: string;
  at: number;
  signals: Signals;
}

export interface DeviceSpec {
  id: string;
  profile: Profile;
  bus: Bus;
  unit: number;
  room?: string;
  pollMs: number;
  offlineAfterMs: number;
  timeoutMs: number;
  ratedCloseMs?: number;
}

export class Device implements HubDevice {
  readonly transport = "modbus" as const;
  readonly id: string;
  readonly profile: Profile;
  readonly bus: Bus;
  readonly unit: number;
  readonly room?: string;
  readonly pollMs: number;
  readonly offlineAfterMs: number;
  readonly timing: RequestTiming;
  readonly ratedCloseMs?: number;

  constructor(spec: DeviceSpec) {
    this.id = spec.id;
    this.profile = spec.profile;
    this.bus = spec.bus;
    this.unit = spec.unit;
    this.room = spec.room;
    this.pollMs = spec.pollMs;
    this.offlineAfterMs = spec.offlineAfterMs;
    this.ratedCloseMs = spec.ratedCloseMs;
    this.timing = { timeoutMs: spec.timeoutMs, gapMs: spec.profile.serial.interFrameMs };
  }

  get roles(): readonly Role[] {
    return this.profile.roles;
  }

  get model(): string {
    return this.profile.id;
  }

  has(role: HubRole): boolean {
    return (this.profile.roles as readonly HubRole[]).includes(role);
  }

  /** Reads every poll block; any failed block fails the whole poll (no half readings). */
  async read(now: () => number, priority: Priority = "normal"): Promise<Reading> {
    const data = await this.bus.readBlocks(this.unit, this.profile.poll, this.timing, priority);
    const decoded = decodePoints(this.profile, this.profile.poll.map((block, i) => ({ block, data: data[i]! })));
    return { ...decoded, device: this.id, at: now(), signals: deriveSignals(this.profile, decoded) };
  }

  canDo(command: HubCommand): boolean {
    return command !== "siren_chirp" && !this.profile.readOnly && this.profile.commands[command] !== undefined;
  }

  /** Writes a command's frames in order, at the given priority. */
  async command(command: HubCommand, priority: Priority): Promise<void> {
    const c = command === "siren_chirp" ? undefined : this.profile.commands[command];
    if (!c || this.profile.readOnly) throw new Error(`device ${this.id} (${this.profile.id}) has no '${command}' command`);
    for (const w of c.write) await this.bus.write(this.unit, w.fc, w.address, w.value, this.timing, priority);
  }
}
