// What the hub's rules and actuators need of a device, whatever carries it (RS-485 Modbus or Zigbee):
// an id, a room, roles and a few commands. SafetyHub and Actuators see only this.
import type { Priority } from "../transports/modbus/bus.js";
import { ROLES } from "../profiles/schema.js";
import type { Reading } from "./device.js";

/** RS-485 profiles may declare the first five; Zigbee devices get any of them from their converter's exposes. */
export const HUB_ROLES = [...ROLES, "smoke_detector", "sos_button", "fall_detector", "breathing_monitor"] as const;
export type HubRole = (typeof HUB_ROLES)[number];

/** `siren_chirp` is a short bounded sound (SOS feedback); only devices that can bound it themselves offer it. */
export type HubCommand = "close" | "open" | "siren_on" | "siren_off" | "siren_chirp";

/** Fire for smoke; emergency for gas, CO and valve faults. A device without a fire tone uses its nearest, and
 * the two still sound different: fire pulses, gas is continuous (transports/zigbee/siren-patterns.ts). */
export type SirenMode = "fire" | "emergency";

export interface CommandOptions {
  mode?: SirenMode;
}

export type Transport = "modbus" | "zigbee" | "uart";

export interface HubDevice {
  readonly id: string;
  readonly room?: string;
  readonly transport: Transport;
  /** The device model, as alarms carry it (`data.model`) for per-model reports: the converter's model
   * for Zigbee, the device profile's id for RS-485. */
  readonly model: string;
  readonly roles: readonly HubRole[];
  /** Valves: the install's rated closing time, when it overrides the default. */
  readonly ratedCloseMs?: number;
  has(role: HubRole): boolean;
  canDo(command: HubCommand): boolean;
  command(command: HubCommand, priority: Priority, opts?: CommandOptions): Promise<void>;
  /** Reads the device now (`anxin-hub test`). */
  read(now: () => number): Promise<Reading>;
}
