// What each alarm sounds like, fitted to the real converter definitions of the three kinds of siren the pinned
// converters know (26.112.0): Heiman HS2WD-E (stop/emergency only, no sound level), Heiman HS2WD-EF (four modes
// and a level) and the full IAS WD set (Develco SIRZB-110 and 28 others). Fire and gas must differ on each, and
// nothing a siren does not expose may be in what it is sent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../lib/daemon/logger.js";
import { definitionFor, exposesOf, setConverterLogger, type ZhDevice } from "../../gateway/src/transports/zigbee/definitions.js";
import { planRoles, type ExposeLike } from "../../gateway/src/transports/zigbee/roles.js";
import { SIREN_SOUNDS, TEMPORAL_THREE, fitSound, sirenCapabilities, stopWarning, type SirenSound } from "../../gateway/src/transports/zigbee/siren-patterns.js";

setConverterLogger(createLogger({ name: "test", level: "silent" }));

function fakeDevice(modelID: string, manufacturerName: string): ZhDevice {
  return { modelID, manufacturerName, type: "Router", endpoints: [], customClusters: {}, ieeeAddr: "0x00000000000000aa", meta: {} } as unknown as ZhDevice;
}

/** The definition's settable `warning` composite, straight from its exposes (independent of planRoles). */
async function siren(modelID: string, manufacturerName: string) {
  const device = fakeDevice(modelID, manufacturerName);
  const def = await definitionFor(device);
  assert.ok(def, `a definition for ${modelID}`);
  const exposes = exposesOf(def, device);
  const warning = exposes.find((e) => (e.property ?? e.name) === "warning" && e.type === "composite");
  assert.ok(warning, `${def.model} exposes warning`);
  return { model: def.model, warning, plan: planRoles(exposes, def.description) };
}

const SIRENS: Array<[string, string, string]> = [
  ["WarningDevice", "HEIMAN", "HS2WD-E"],
  ["WarningDevice-EFA1-3.0", "HEIMAN", "HS2WD-EF"],
  ["SIRZB-110", "Develco", "SIRZB-110"],
];

/** Every key of `value` is a feature of the expose, and every value is one it allows. */
function assertExposed(model: string, warning: ExposeLike, value: Record<string, unknown>, what: string) {
  for (const [k, v] of Object.entries(value)) {
    const f = warning.features?.find((x) => (x.property ?? x.name) === k);
    assert.ok(f, `${model} ${what}: '${k}' is not among the exposed features ${warning.features?.map((x) => x.property).join(", ")}`);
    if (f.type === "enum") assert.ok(f.values?.includes(v), `${model} ${what}: ${k}=${String(v)} not in ${f.values?.join("|")}`);
    if (f.type === "binary") assert.ok(v === f.value_on || v === f.value_off, `${model} ${what}: ${k}=${String(v)}`);
    if (f.type === "numeric") {
      assert.equal(typeof v, "number", `${model} ${what}: ${k}`);
      if (f.value_min !== undefined) assert.ok((v as number) >= f.value_min, `${model} ${what}: ${k}=${String(v)} < ${f.value_min}`);
      if (f.value_max !== undefined) assert.ok((v as number) <= f.value_max, `${model} ${what}: ${k}=${String(v)} > ${f.value_max}`);
    }
  }
}

test("a siren's capabilities are read from its converter's warning expose", async () => {
  const e = (await siren("WarningDevice", "HEIMAN")).plan.sirenCaps;
  assert.deepEqual(e, { property: "warning", modes: ["stop", "emergency"], levels: [], strobeLevels: [], strobe: true, strobeDutyCycle: { min: 0, max: 10 }, duration: true });
  const ef = (await siren("WarningDevice-EFA1-3.0", "HEIMAN")).plan.sirenCaps;
  assert.deepEqual(ef?.modes, ["stop", "burglar", "fire", "emergency"]);
  assert.deepEqual(ef?.levels, ["low", "medium", "high", "very_high"]);
  assert.deepEqual(ef?.strobeLevels, []);
  const full = (await siren("SIRZB-110", "Develco")).plan.sirenCaps;
  assert.deepEqual(full?.modes, ["stop", "burglar", "fire", "emergency", "police_panic", "fire_panic", "emergency_panic"]);
  assert.deepEqual(full?.strobeLevels, ["low", "medium", "high", "very_high"]);
});

test("nothing a siren does not expose is in any warning it is sent (every sound, and the stop), on each kind of siren", async () => {
  for (const [modelID, man, model] of SIRENS) {
    const s = await siren(modelID, man);
    assert.equal(s.model, model);
    const caps = s.plan.sirenCaps!;
    for (const sound of ["fire", "emergency", "chirp"] as SirenSound[]) assertExposed(model, s.warning, fitSound(caps, sound).warning(30), sound);
    assertExposed(model, s.warning, stopWarning(caps), "stop");
  }
  // HS2WD-E has no sound level: none is sent, so the chirp there is at the siren's own level.
  const e = (await siren("WarningDevice", "HEIMAN")).plan.sirenCaps!;
  assert.equal("level" in fitSound(e, "chirp").warning(1), false);
  assert.equal("level" in fitSound(e, "fire").warning(30), false);
});

test("fire and gas sound different on every kind of siren: fire in the temporal-three cadence (its fire tone where it has one), gas continuous", async () => {
  for (const [modelID, man, model] of SIRENS) {
    const caps = (await siren(modelID, man)).plan.sirenCaps!;
    const fire = fitSound(caps, "fire");
    const gas = fitSound(caps, "emergency");
    const chirp = fitSound(caps, "chirp");
    assert.deepEqual(fire.steps, TEMPORAL_THREE, `${model}: fire cadence`);
    assert.equal(gas.steps, undefined, `${model}: gas is one continuous warning, re-sent`);
    assert.equal(chirp.steps, undefined, `${model}: the chirp is one warning`);
    assert.equal(gas.warning(30).mode, "emergency", model);
    assert.equal(fire.warning(30).mode, caps.modes.includes("fire") ? "fire" : "emergency", model);
    assert.equal(fire.warning(30).duration, 30, `${model}: every sounding step is bounded`);
    assert.equal(chirp.warning(1).duration, 1, model);
    if (caps.levels.length) {
      assert.equal(fire.warning(30).level, "very_high", model);
      assert.equal(gas.warning(30).level, "very_high", model);
      assert.equal(chirp.warning(1).level, "low", model);
    }
    // ZCL: strobe duty cycle 0 lights the strobe for 0 tenths of each second; 5 is half of each second.
    assert.equal(fire.warning(30).strobe_duty_cycle, 5, model);
  }
  // The cadence itself: three sounds, then a pause longer than the gaps between them.
  assert.deepEqual(TEMPORAL_THREE.map((s) => s.sound), [true, false, true, false, true, false]);
  const gaps = TEMPORAL_THREE.filter((s) => !s.sound).map((s) => s.ms);
  assert.ok(gaps.at(-1)! > gaps[0]!);
  assert.equal(SIREN_SOUNDS.fire.cadence, "temporal-three");
  assert.equal(SIREN_SOUNDS.emergency.cadence, "continuous");
});

test("a siren without a stop mode cannot cut a sound short: fire falls back to continuous and only its tone differs", () => {
  const caps = sirenCapabilities({
    type: "composite",
    property: "warning",
    access: 2,
    features: [{ type: "enum", property: "mode", values: ["fire", "emergency"] }, { type: "numeric", property: "duration" }],
  });
  const fire = fitSound(caps, "fire");
  assert.equal(fire.steps, undefined);
  assert.deepEqual(fire.warning(30), { mode: "fire", duration: 30 });
  assert.deepEqual(fitSound(caps, "emergency").warning(30), { mode: "emergency", duration: 30 });
  assert.deepEqual(stopWarning(caps), { mode: "stop", duration: 0 });
});
