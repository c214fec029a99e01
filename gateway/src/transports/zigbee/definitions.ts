// The converters' side: which definition a device has, what a message from it means (fromZigbee into
// a state object) and how a command is built (toZigbee convertSet/convertGet). The hub never builds
// Zigbee payloads or reads alarm bits itself: models differ (one gas detector alarms on alarm1, another
// on alarm2) and the converters know each.
import { createRequire } from "node:module";
import path from "node:path";
import * as zhc from "zigbee-herdsman-converters";
import type { Models, Events } from "zigbee-herdsman";
import type { Logger } from "pino";
import type { ExposeLike } from "./roles.js";

export type ZhDevice = Models.Device;
export type ZhEndpoint = Models.Endpoint;
export type Definition = zhc.Definition;
export type State = Record<string, unknown>;

/** Routes both libraries' logs into the hub's log at debug level (their info is chatty). */
export function zigbeeLogger(log: Logger) {
  const line = (level: "debug" | "warn" | "error") => (m: string | (() => string), ns: string) => log[level]({ ns }, typeof m === "function" ? m() : m);
  return { debug: line("debug"), info: line("debug"), warning: line("warn"), error: line("error") };
}

let loggerSet = false;
export function setConverterLogger(log: Logger): void {
  if (loggerSet) return;
  loggerSet = true;
  zhc.setLogger(zigbeeLogger(log.child({ component: "zigbee-converters" })));
}

// The converters load a vendor's whole file to find one definition, and every file that lists the model:
// a Tuya "TS0601" pulls in 48 files (about 15 MB of heap) for the one definition a radar needs. The hub
// keeps the definitions it admitted and lets the module cache forget the files once lookups are over, so
// the rest can be collected. A later lookup (pairing, a restart of the coordinator) loads them again:
// about 0.25 s of parsing on a fast core, only while pairing or restoring, never on the alarm path.
const require = createRequire(import.meta.url);
const VENDOR_DIR = path.join(path.dirname(require.resolve("zigbee-herdsman-converters")), "devices") + path.sep;
/** Lookups often come in bursts (a restart restores every device, a pairing session admits several). */
export const VENDOR_RELEASE_AFTER_MS = 5_000;
let lookups = 0;
let releaseTimer: NodeJS.Timeout | undefined;

export async function definitionFor(device: ZhDevice): Promise<Definition | undefined> {
  lookups++;
  clearTimeout(releaseTimer);
  try {
    return await zhc.findByDevice(device);
  } finally {
    if (--lookups === 0) {
      releaseTimer = setTimeout(releaseVendorModules, VENDOR_RELEASE_AFTER_MS);
      releaseTimer.unref();
    }
  }
}

/** How many converter vendor files are held in the module cache now. */
export function vendorModulesLoaded(): number {
  return Object.keys(require.cache).filter((k) => k.startsWith(VENDOR_DIR)).length;
}

/**
 * Drops the converters' vendor files from the module cache, from their parents' child lists and from the
 * parent link of helpers they loaded first (each of which would keep them alive). Definitions already
 * returned stay valid: they hold what they use. Returns how many files were released; does nothing while
 * a lookup is running.
 */
export function releaseVendorModules(): number {
  clearTimeout(releaseTimer);
  if (lookups > 0) return 0;
  let released = 0;
  for (const key of Object.keys(require.cache)) {
    if (!key.startsWith(VENDOR_DIR)) continue;
    delete require.cache[key];
    released++;
  }
  if (released)
    for (const m of Object.values(require.cache)) {
      if (!m) continue;
      if (m.children.some((c) => c.id.startsWith(VENDOR_DIR))) m.children = m.children.filter((c) => !c.id.startsWith(VENDOR_DIR));
      // A shared helper first loaded by a vendor file points back at it as its parent, which would keep
      // that file's whole definition list alive.
      if (m.parent?.id.startsWith(VENDOR_DIR)) m.parent = undefined;
    }
  return released;
}

export function exposesOf(def: Definition, device: ZhDevice): ExposeLike[] {
  const ex = typeof def.exposes === "function" ? def.exposes(device, {}) : def.exposes;
  return ex;
}

/**
 * Runs every matching fromZigbee converter over one message. `state` is the device's state so far (some
 * converters need it); the result is only what this message changed. `later` receives what a converter
 * publishes after a delay (e.g. an action's release).
 */
export async function decode(def: Definition, msg: Events.MessagePayload, state: State, later: (s: State) => void, log: Logger): Promise<State> {
  const out: State = {};
  const meta = { device: msg.device, state, deviceExposesChanged: () => {} };
  for (const c of def.fromZigbee) {
    if (c.cluster !== msg.cluster || !([] as unknown[]).concat(c.type).includes(msg.type)) continue;
    try {
      // The converter types are per cluster; the message is the herdsman message they were written for.
      const r = await c.convert(def, msg as never, (p) => later(p), {}, meta);
      if (r && typeof r === "object") Object.assign(out, r);
    } catch (e) {
      log.warn({ err: (e as Error).message, cluster: msg.cluster, type: msg.type }, "a converter failed on a message; ignored");
    }
  }
  return out;
}

function converterFor(def: Definition, key: string, kind: "set" | "get") {
  return def.toZigbee.find((c) => c.key?.includes(key) && (kind === "set" ? c.convertSet : c.convertGet));
}

function endpointFor(def: Definition, device: ZhDevice): ZhEndpoint | undefined {
  return device.endpoints.find((e) => e.ID === 1) ?? device.endpoints[0];
}

function tzMeta(def: Definition, device: ZhDevice, state: State, message: State) {
  return { message, device, mapped: def, options: {}, state, endpoint_name: undefined, publish: () => {}, deviceExposesChanged: () => {} };
}

/** Sends `key: value` through the definition's toZigbee converter; returns the converter's optimistic state. */
export async function convertSet(def: Definition, device: ZhDevice, key: string, value: unknown, state: State): Promise<State> {
  const c = converterFor(def, key, "set");
  if (!c?.convertSet) throw new Error(`the converter for ${def.model} cannot set '${key}'`);
  const ep = endpointFor(def, device);
  if (!ep) throw new Error(`device ${device.ieeeAddr} has no endpoint`);
  const r = await c.convertSet(ep, key, value, tzMeta(def, device, state, { [key]: value }));
  return (r && "state" in r && r.state) || {};
}

/** Asks the device for `key` (the answer arrives as a message and is decoded like any other). */
export async function convertGet(def: Definition, device: ZhDevice, key: string, state: State): Promise<void> {
  const c = converterFor(def, key, "get");
  if (!c?.convertGet) throw new Error(`the converter for ${def.model} cannot read '${key}'`);
  const ep = endpointFor(def, device);
  if (!ep) throw new Error(`device ${device.ieeeAddr} has no endpoint`);
  await c.convertGet(ep, key, tzMeta(def, device, state, { [key]: "" }));
}

export function canSet(def: Definition, key: string): boolean {
  return !!converterFor(def, key, "set");
}
