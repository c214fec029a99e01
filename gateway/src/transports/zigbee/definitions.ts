// The converters' side: which definition a device has, what a message from it means (fromZigbee into
// a state object) and how a command is built (toZigbee convertSet/convertGet). The hub never builds
// Zigbee payloads or reads alarm bits itself: models differ (one gas detector alarms on alarm1, another
// on alarm2) and the converters know each.
import { createRequire } from "node:module";
import path from "node:path";
import * as zhc from "zigbee-herdsman-converters";
import type { Models, Events } from "zigbee-herdsman";
import type { Fingerprint } from "zigbee-herdsman-converters/lib/types";
import type { Logger } from "pino";
import type { ExposeLike } from "./roles.js";
import { MODEL_INDEX_CONVERTERS, MODEL_INDEX_JSON } from "./model-index.js";
import { convertersModelsIndex, convertersVersion, type ModelIndexEntry } from "./write-model-index.js";

export type ZhDevice = Models.Device;
export type ZhEndpoint = Models.Endpoint;
export type Definition = zhc.Definition;
type DefinitionWithExtend = zhc.DefinitionWithExtend;
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
// a Tuya "TS0601" pulls in 48 files (about 15 MB of heap, the hub's memory peak) for the one definition a
// radar needs. Two things keep that down:
// - model-index.ts (generated from the converters' own files) says, for each model id listed in more than
//   one file, which definitions could match which manufacturer; a lookup loads only those files (tuya.js
//   alone for the Tuya radars and valve) and picks among them exactly as the converters would.
// - the hub keeps the definitions it admitted and lets the module cache forget the files once lookups are
//   over, so the rest can be collected. A later lookup (pairing, a restart of the coordinator) loads them
//   again, only while pairing or restoring, never on the alarm path.
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
    const candidates = narrowedCandidates(device);
    return candidates ? pickDefinition(device, candidates) : await zhc.findByDevice(device);
  } finally {
    if (--lookups === 0) {
      releaseTimer = setTimeout(releaseVendorModules, VENDOR_RELEASE_AFTER_MS);
      releaseTimer.unref();
    }
  }
}

/** The parsed model index, held only during a lookup burst (released with the vendor files). */
let modelIndex: Record<string, ModelIndexEntry[]> | undefined;
/**
 * Loads vendor files for a lookup burst. A require made by createRequire lists what it loaded as children of
 * a module object of its own, outside the module cache, which would keep those files alive: this one is
 * dropped with them.
 */
let vendorRequire: NodeJS.Require | undefined;
const indexUsable = MODEL_INDEX_CONVERTERS === convertersVersion();

/** As the converters normalise a model id (NUL padding, surrounding spaces). */
const normalizeModelID = (id: string) => id.replace(/\0(.|\n)*$/g, "").trim();

/**
 * The definitions among those the converters would consider for this device that could match it, in the
 * converters' order, or undefined when the converters' own lookup is as cheap (the model id is in one vendor
 * file or none) or the index does not apply (another converters version, external definitions). Left out is
 * only what cannot win: a definition none of whose fingerprints names this manufacturer, and which is not the
 * first one whose zigbeeModel lists the device's model id (the converters' fallback when no fingerprint matches).
 */
function narrowedCandidates(device: ZhDevice): DefinitionWithExtend[] | undefined {
  if (!indexUsable || zhc.externalDefinitions.length > 0 || device.type === "Coordinator") return undefined;
  // The converters' getFromIndex: the lower-case id if indexed, else its normalised form.
  const lower = device.modelID ? device.modelID.toLowerCase() : "null";
  const key = Object.hasOwn(convertersModelsIndex(), lower) ? lower : normalizeModelID(lower);
  modelIndex ??= JSON.parse(MODEL_INDEX_JSON) as Record<string, ModelIndexEntry[]>;
  const entries = Object.hasOwn(modelIndex, key) ? modelIndex[key] : undefined;
  if (!entries) return undefined;
  const model = device.modelID;
  const normalized = model === undefined ? undefined : normalizeModelID(model);
  let byModelSeen = false;
  const out: DefinitionWithExtend[] = [];
  for (const [file, index, zigbeeModel, names] of entries) {
    const byFingerprint = names === 1 || (device.manufacturerName !== undefined && names.includes(device.manufacturerName));
    const byModel: boolean = !byModelSeen && model !== undefined && zigbeeModel !== 0 && zigbeeModel.some((z) => z === model || z === normalized);
    byModelSeen ||= byModel;
    if (!byFingerprint && !byModel) continue;
    vendorRequire ??= createRequire(import.meta.url);
    const { definitions } = vendorRequire(VENDOR_DIR + file) as { definitions: DefinitionWithExtend[] };
    const def = definitions[index];
    if (!def) return undefined; // the index does not describe these files after all: let the converters look
    out.push(def);
  }
  return out;
}

/** The converters' findByDevice over a narrowed candidate list (same rules, same order). */
function pickDefinition(device: ZhDevice, candidates: DefinitionWithExtend[]): Definition | undefined {
  let best: DefinitionWithExtend | undefined;
  let bestPriority: number | undefined;
  for (const c of candidates)
    for (const fp of c.fingerprint ?? []) {
      const priority = fp.priority ?? 0;
      if (fingerprintMatches(fp, device) && (bestPriority === undefined || priority > bestPriority)) {
        best = c;
        bestPriority = priority;
      }
    }
  if (!best && device.modelID) {
    const normalized = normalizeModelID(device.modelID);
    best = candidates.find((c) => c.zigbeeModel?.some((z) => z === device.modelID || z === normalized));
  }
  if (!best) return undefined;
  const label = best.whiteLabel?.find((w) => "fingerprint" in w && w.fingerprint.some((f) => fingerprintMatches(f, device)));
  if (label) best = { ...best, model: label.model, vendor: label.vendor ?? best.vendor, description: label.description ?? best.description };
  return zhc.prepareDefinition(best);
}

const sameList = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The converters' isFingerprintMatch. */
function fingerprintMatches(fp: Fingerprint, d: ZhDevice): boolean {
  let match =
    (fp.applicationVersion === undefined || d.applicationVersion === fp.applicationVersion) &&
    (fp.manufacturerID === undefined || d.manufacturerID === fp.manufacturerID) &&
    (!fp.type || d.type === fp.type) &&
    (!fp.dateCode || d.dateCode === fp.dateCode) &&
    (fp.hardwareVersion === undefined || d.hardwareVersion === fp.hardwareVersion) &&
    (!fp.manufacturerName || d.manufacturerName === fp.manufacturerName) &&
    (!fp.modelID || d.modelID === fp.modelID) &&
    (!fp.powerSource || d.powerSource === fp.powerSource) &&
    (!fp.softwareBuildID || d.softwareBuildID === fp.softwareBuildID) &&
    (fp.stackVersion === undefined || d.stackVersion === fp.stackVersion) &&
    (fp.zclVersion === undefined || d.zclVersion === fp.zclVersion) &&
    (!fp.ieeeAddr || d.ieeeAddr.match(fp.ieeeAddr) !== null) &&
    (!fp.endpoints || sameList(d.endpoints.map((e) => e.ID), fp.endpoints.map((e) => e.ID!)));
  if (match && fp.endpoints)
    for (const fe of fp.endpoints) {
      const de = fe.ID !== undefined ? d.getEndpoint(fe.ID) : undefined;
      match =
        match &&
        (fe.deviceID === undefined || de?.deviceID === fe.deviceID) &&
        (fe.profileID === undefined || de?.profileID === fe.profileID) &&
        (!fe.inputClusters || (de !== undefined && sameList(de.inputClusters, fe.inputClusters))) &&
        (!fe.outputClusters || (de !== undefined && sameList(de.outputClusters, fe.outputClusters)));
    }
  return match;
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
  modelIndex = undefined;
  vendorRequire = undefined;
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
