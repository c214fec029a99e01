// One reading of the hub's power from Linux's power-supply class (/sys/class/power_supply/<name>/). Every
// file is hostile input: a driver may be half-loaded, a HAT unplugged, a test folder garbled. A file that is
// missing, unreadable, oversized or not what the kernel documents reads as "unknown" / null; nothing here
// throws, so a bad read never stops the watch. Attribute meanings: the kernel's
// Documentation/ABI/testing/sysfs-class-power.
import { constants } from "node:fs";
import { open, readdir } from "node:fs/promises";
import path from "node:path";

export type MainsState = "online" | "offline" | "unknown";
/** The kernel's `status` words, in snake case. */
export type BatteryStatus = "charging" | "discharging" | "full" | "not_charging" | "unknown";

export interface PowerSnapshot {
  /** Whether mains (adapter, USB supply) is in, as far as the supplies say. */
  mains: MainsState;
  /** 0–100, null when there is no battery or its gauge gives no sensible value. */
  batteryPercent: number | null;
  batteryStatus: BatteryStatus;
  /** Volts (voltage_now is µV), null when absent or implausible. */
  batteryVoltageV: number | null;
  /** When it was read (ms since the epoch). */
  readAt: number;
  /** Every supply name found, sorted. */
  supplies: string[];
  /** The supplies that decided `mains` (none: unknown). */
  mainsSupplies: string[];
  /** The supply the battery values come from. */
  batterySupply: string | null;
}

export interface ReadOptions {
  dir: string;
  /** A named mains supply; absent: any supply of type Mains or USB. */
  mains?: string;
  /** A named battery supply; absent: the first present system Battery or UPS. */
  battery?: string;
  now: number;
}

// Sysfs attributes are a line; anything longer is not one of them.
const MAX_ATTR_BYTES = 128;
// A board with more supplies than this is not a hub; the bound keeps a garbled folder from costing much.
const MAX_SUPPLIES = 32;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,63}$/;
const MAINS_TYPES = new Set(["Mains", "USB"]);
const BATTERY_TYPES = new Set(["Battery", "UPS"]);
// A Map, not an object literal: a file holding "constructor" must not find Object's prototype.
const STATUS = new Map<string, BatteryStatus>([
  ["Charging", "charging"],
  ["Discharging", "discharging"],
  ["Full", "full"],
  ["Not charging", "not_charging"],
  ["Unknown", "unknown"],
]);

/** One attribute's text, trimmed; null when it cannot be read or is not a short printable line. */
export async function readAttr(dir: string, supply: string, attr: string): Promise<string | null> {
  let fh;
  try {
    // O_NONBLOCK: a FIFO planted in place of an attribute must not hang the watch.
    fh = await open(path.join(dir, supply, attr), constants.O_RDONLY | constants.O_NONBLOCK);
    const buf = Buffer.alloc(MAX_ATTR_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_ATTR_BYTES) return null;
    const text = buf.subarray(0, bytesRead).toString("latin1").trim();
    return /^[\x20-\x7e]*$/.test(text) ? text : null;
  } catch {
    return null;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** A whole number within [min, max], or null. */
function intIn(text: string | null, min: number, max: number): number | null {
  if (text === null || !/^-?\d{1,15}$/.test(text)) return null;
  const n = Number(text);
  return n >= min && n <= max ? n : null;
}

/** `online` / `present`: true, false, or null when garbled. Some drivers report 2 (online, programmable) for USB. */
function flag(text: string | null): boolean | null {
  const n = intIn(text, 0, 2);
  return n === null ? null : n > 0;
}

/** The supply names under dir, sorted; none when the folder is missing or unreadable. */
export async function listSupplies(dir: string): Promise<string[]> {
  try {
    const names = (await readdir(dir)).filter((n) => NAME.test(n)).sort();
    return names.slice(0, MAX_SUPPLIES);
  } catch {
    return [];
  }
}

async function mainsState(o: ReadOptions, names: string[], types: Map<string, string | null>): Promise<{ mains: MainsState; used: string[] }> {
  const candidates = o.mains !== undefined ? [o.mains] : names.filter((n) => MAINS_TYPES.has(types.get(n) ?? ""));
  if (candidates.length === 0) return { mains: "unknown", used: [] };
  const flags = await Promise.all(candidates.map((n) => readAttr(o.dir, n, "online").then(flag)));
  // One online supply is enough (a laptop-style board lists unused USB ports as offline supplies).
  if (flags.includes(true)) return { mains: "online", used: candidates };
  return { mains: flags.every((f) => f === false) ? "offline" : "unknown", used: candidates };
}

async function batteryName(o: ReadOptions, names: string[], types: Map<string, string | null>): Promise<string | null> {
  if (o.battery !== undefined) return o.battery;
  for (const n of names) {
    if (!BATTERY_TYPES.has(types.get(n) ?? "")) continue;
    // A Bluetooth mouse or a phone on USB is a battery of scope Device: not what powers the hub.
    if ((await readAttr(o.dir, n, "scope")) === "Device") continue;
    // An empty battery slot lists present 0.
    if (flag(await readAttr(o.dir, n, "present")) === false) continue;
    return n;
  }
  return null;
}

/** Reads the supplies once. Never throws. */
export async function readPowerSnapshot(o: ReadOptions): Promise<PowerSnapshot> {
  const supplies = await listSupplies(o.dir);
  // Only the automatic choices need every supply's type.
  const types = new Map<string, string | null>();
  if (o.mains === undefined || o.battery === undefined) {
    const read = await Promise.all(supplies.map((n) => readAttr(o.dir, n, "type")));
    supplies.forEach((n, i) => types.set(n, read[i] ?? null));
  }
  const { mains, used } = await mainsState(o, supplies, types);
  const battery = await batteryName(o, supplies, types);
  let batteryPercent: number | null = null;
  let batteryStatus: BatteryStatus = "unknown";
  let batteryVoltageV: number | null = null;
  if (battery !== null && flag(await readAttr(o.dir, battery, "present")) !== false) {
    batteryPercent = intIn(await readAttr(o.dir, battery, "capacity"), 0, 100);
    batteryStatus = STATUS.get((await readAttr(o.dir, battery, "status")) ?? "") ?? "unknown";
    // µV; above 100 V is no hub battery. Millivolt precision is all a gauge gives anyway.
    const uv = intIn(await readAttr(o.dir, battery, "voltage_now"), 0, 100_000_000);
    batteryVoltageV = uv === null ? null : Math.round(uv / 1000) / 1000;
  }
  return {
    mains,
    batteryPercent,
    batteryStatus,
    batteryVoltageV,
    readAt: o.now,
    supplies,
    mainsSupplies: used,
    batterySupply: battery !== null && supplies.includes(battery) ? battery : null,
  };
}
