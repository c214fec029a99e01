// Converter-level decoding of raw Zigbee frames kept as data (test/fixtures/zigbee/frames.json): each frame is parsed
// with herdsman's ZCL codec, turned into the message herdsman's Controller would emit, and run through the real
// fromZigbee converters of the definition findByDevice picks. toZigbee is checked against a real herdsman endpoint on
// the fake coordinator, down to the bytes the device receives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import { z } from "zod";
import type { Events } from "zigbee-herdsman";
import { findByDevice, setLogger } from "zigbee-herdsman-converters";
import { decodeFrame, type Decoded } from "../support/zigbee/converter-harness.js";
import { heimanSirenHS2WDE, tuyaFallRadar, tuyaGasValve } from "../support/zigbee/products.js";
import { TuyaDpType } from "../support/zigbee/virtual-device.js";
import { convertSet, decode as decodeMessage, definitionFor, releaseVendorModules, vendorModulesLoaded } from "../../gateway/src/transports/zigbee/definitions.js";
import { createLogger } from "../../lib/daemon/logger.js";
import { pairDevice, withNetwork } from "../support/zigbee/rig.js";

const quiet = { debug: () => {}, info: () => {}, warning: () => {}, error: () => {} };
if (!process.env.ANXIN_TEST_LOG) setLogger(quiet);

const fixtureFile = new URL("../fixtures/zigbee/frames.json", import.meta.url);
const frameSchema = z.object({
  description: z.string().min(1),
  model: z.string().min(1),
  modelID: z.string().min(1),
  manufacturerName: z.string().min(1),
  cluster: z.string().min(1),
  type: z.string().min(1).optional(),
  frame: z.string().regex(/^[0-9a-fA-F\s]+$/, "hex bytes, spaces allowed"),
  expected: z.record(z.string(), z.unknown()).refine((o) => Object.keys(o).length > 0, "at least one expected key"),
  source: z.enum(["captured", "constructed", "reference"]).optional(),
});
const fixtures = z.object({ about: z.string().optional(), frames: z.array(frameSchema).min(1) });
type FrameFixture = z.infer<typeof frameSchema>;

function loadFixtures(): FrameFixture[] {
  const parsed = fixtures.safeParse(JSON.parse(readFileSync(fixtureFile, "utf8")));
  if (!parsed.success) throw new Error(`${fixtureFile.pathname}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data.frames;
}

async function decode(f: FrameFixture): Promise<Decoded> {
  const d = await decodeFrame(f);
  assert.equal(d.cluster, f.cluster, `${f.description}: cluster`);
  assert.ok(d.model, `${f.description}: a definition for ${f.modelID}/${f.manufacturerName}`);
  assert.ok(d.converters > 0, `${f.description}: ${d.model} has a fromZigbee converter for ${d.cluster}/${d.type}`);
  return d;
}

const frames = loadFixtures();

test("fixture frames decode to the expected state through the real fromZigbee converters", async (t) => {
  for (const f of frames) {
    await t.test(f.description, async () => {
      const { model, type, state } = await decode(f);
      assert.equal(model, f.model, "converter definition");
      if (f.type) assert.equal(type, f.type, "message type");
      for (const [k, v] of Object.entries(f.expected)) assert.deepEqual(state[k], v, `${k} in ${JSON.stringify(state)}`);
    });
  }
});

test("the fixtures cover every safety signal the hub relies on", () => {
  const has = (model: string, key: string, value: unknown) =>
    frames.some((f) => f.model === model && JSON.stringify(f.expected[key]) === JSON.stringify(value));
  assert.ok(has("HS3SA/HS1SA", "smoke", true) && has("HS3SA/HS1SA", "smoke", false), "smoke on/off");
  assert.ok(has("HS1CG", "gas", true), "HS1CG gas on alarm1");
  assert.ok(has("HS3CG", "gas", true) && has("HS3CG", "gas", false), "HS3CG gas on alarm2, and alarm1 alone not gas");
  assert.ok(has("HS1CA-E", "carbon_monoxide", true), "CO");
  assert.ok(has("HS1EB/HS1EB-E", "action", "single"), "SOS press");
  assert.ok(frames.some((f) => f.expected.tamper === true) && frames.some((f) => f.expected.battery_low === true), "tamper and battery_low bits");
  assert.ok(has("ZN231392", "state", "OFF"), "valve state report");
  assert.ok(has("MIR-HE200-TY", "fall_down_status", "fall"), "fall");
  assert.ok(frames.some((f) => typeof f.expected.battery === "number"), "battery percentage");
});

test("alarm bits are model-specific: the same alarm1 frame is gas for HS1CG but not for HS3CG", async () => {
  const alarm1 = "19 40 00 0100 00 17 0000";
  const hs1cg = await decode({ description: "alarm1 on HS1CG", model: "HS1CG", modelID: "RH3070", manufacturerName: "HEIMAN", cluster: "ssIasZone", frame: alarm1, expected: { gas: true } });
  const hs3cg = await decode({ description: "alarm1 on HS3CG", model: "HS3CG", modelID: "GASSensor-N", manufacturerName: "HEIMAN", cluster: "ssIasZone", frame: alarm1, expected: { gas: false } });
  assert.equal(hs1cg.state.gas, true);
  assert.equal(hs3cg.state.gas, false);
});

test("toZigbee: HS2WD-E warning and valve OFF produce the expected frames on a real herdsman endpoint", async () => {
  const siren = heimanSirenHS2WDE();
  const valve = tuyaGasValve();
  await withNetwork([siren, valve], async ({ controller }) => {
    await controller.permitJoin(254);
    for (const d of [siren, valve]) await pairDevice(controller, d);

    const set = async (ieee: string, key: string, value: unknown): Promise<unknown> => {
      const zh = controller.getDeviceByIeeeAddr(ieee)!;
      const def = await findByDevice(zh);
      assert.ok(def);
      const conv = def.toZigbee.find((c) => c.key?.includes(key));
      assert.ok(conv?.convertSet, `${def.model} can set ${key}`);
      const meta = { message: { [key]: value }, device: zh, mapped: def, options: {}, state: {}, endpoint_name: undefined, publish: () => {}, deviceExposesChanged: () => {} };
      return await (conv.convertSet as (...a: unknown[]) => Promise<unknown>)(zh.getEndpoint(1), key, value, meta);
    };

    await set(siren.ieee, "warning", { mode: "emergency", duration: 30 });
    const warn = await siren.waitForReceived((f) => f.cluster === "ssIasWd" && f.command === "startWarning");
    // 11 = cluster-specific, client→server, default response disabled; then tsn, command 0x00 and the payload
    assert.equal(warn.raw[0], 0x11);
    assert.equal(warn.raw.subarray(2).toString("hex"), "00351e000001");
    assert.deepEqual(warn.payload, { startwarninginfo: 0x35, warningduration: 30, strobedutycycle: 0, strobelevel: 1 });

    assert.equal(valve.onOff(), true);
    const result = await set(valve.ieee, "state", "OFF");
    assert.deepEqual(result, { state: { state: "OFF" } });
    const off = await valve.waitForReceived((f) => f.cluster === "genOnOff" && f.command === "off");
    assert.equal(off.raw[0], 0x01, "cluster-specific, default response requested");
    assert.equal(off.raw.length, 3);
    assert.equal(off.raw[2], 0x00, "genOnOff off");
    assert.equal(valve.onOff(), false, "the valve closed");
  });
});

// Proves the memory of a pairing lookup can really be collected, with V8's own collector.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const cjs = createRequire(import.meta.url);

/** Weak references to the definition lists of the vendor files loaded now (made in a function of its own,
 * so no strong reference outlives it). */
function weakDefinitionLists(): Map<string, WeakRef<object>> {
  const vendor = path.join(path.dirname(cjs.resolve("zigbee-herdsman-converters")), "devices") + path.sep;
  const refs = new Map<string, WeakRef<object>>();
  for (const [file, m] of Object.entries(cjs.cache)) {
    const list = (m?.exports as { definitions?: object } | undefined)?.definitions;
    if (file.startsWith(vendor) && list) refs.set(path.basename(file), new WeakRef(list));
  }
  return refs;
}

test("converter vendor files loaded for a lookup are released: the kept definitions still decode and encode, the rest is collected, a later lookup loads them again", async () => {
  const radar = tuyaFallRadar();
  const valve = tuyaGasValve();
  const log = createLogger({ name: "test", level: "silent" });
  await withNetwork([radar, valve], async ({ controller }) => {
    await controller.permitJoin(254);
    for (const d of [radar, valve]) await pairDevice(controller, d);
    const radarDef = await definitionFor(controller.getDeviceByIeeeAddr(radar.ieee)!);
    const valveDef = await definitionFor(controller.getDeviceByIeeeAddr(valve.ieee)!);
    assert.equal(radarDef?.model, "MIR-HE200-TY");
    assert.ok(valveDef);
    const loaded = vendorModulesLoaded();
    assert.ok(loaded > 10, `a TS0601 lookup loads every vendor file listing that model (${loaded})`);

    const lists = weakDefinitionLists();
    assert.ok(lists.has("tuya.js"));
    assert.equal(releaseVendorModules(), loaded);
    assert.equal(vendorModulesLoaded(), 0);
    await new Promise((r) => setImmediate(r));
    gc();
    await new Promise((r) => setImmediate(r));
    const alive = [...lists].filter(([, w]) => w.deref() !== undefined).map(([f]) => f);
    // tuya.js included: the radar's definition comes from it, yet does not hold its list.
    assert.deepEqual(alive, [], "no released vendor file's definition list survives a full collection");

    // The kept definitions work as before: a fall report decodes, a valve close is encoded and sent.
    const message = new Promise<Events.MessagePayload>((resolve) => controller.on("message", (m) => m.device.ieeeAddr === radar.ieee && m.cluster === "manuSpecificTuya" && resolve(m)));
    await radar.tuyaDp(116, TuyaDpType.enum, 2);
    const state = await decodeMessage(radarDef, await message, {}, () => {}, log);
    assert.equal(state.fall_down_status, "fall");
    await convertSet(valveDef, controller.getDeviceByIeeeAddr(valve.ieee)!, "state", "OFF", {});
    await valve.waitForReceived((f) => f.cluster === "genOnOff" && f.command === "off");
    assert.equal(valve.onOff(), false);

    // A later lookup (the next pairing, a coordinator restart) loads the files again and finds the same model.
    const again = await definitionFor(controller.getDeviceByIeeeAddr(radar.ieee)!);
    assert.equal(again?.model, "MIR-HE200-TY");
    const reloaded = vendorModulesLoaded();
    assert.ok(reloaded >= 1 && reloaded <= loaded, `tuya.js again, only the files that could match (${reloaded}; ${loaded} with the other tests' lookups)`);
    assert.equal(releaseVendorModules(), reloaded);
  });
});
