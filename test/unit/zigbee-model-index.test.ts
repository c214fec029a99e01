// The hub's narrowed converter lookup (gateway/src/transports/zigbee/definitions.ts with model-index.ts) picks
// the same definition as the converters' own findByDevice, for every model id the converters list in more than
// one vendor file, while loading only the files that could match.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { findByDevice, setLogger } from "zigbee-herdsman-converters";
import type { Fingerprint } from "zigbee-herdsman-converters/lib/types";
import { definitionFor, releaseVendorModules, vendorModulesLoaded, type ZhDevice } from "../../gateway/src/transports/zigbee/definitions.js";
import { MODEL_INDEX_CONVERTERS, MODEL_INDEX_JSON } from "../../gateway/src/transports/zigbee/model-index.js";
import { convertersVersion, MODEL_INDEX_FILE, renderModelIndex, type ModelIndexEntry } from "../../gateway/src/transports/zigbee/write-model-index.js";

const quiet = { debug: () => {}, info: () => {}, warning: () => {}, error: () => {} };
setLogger(quiet);

interface FakeEndpoint {
  ID: number;
  profileID?: number;
  deviceID?: number;
  inputClusters: number[];
  outputClusters: number[];
}

/** A device as herdsman describes it, with only what a lookup reads. */
function device(fields: Partial<Record<string, unknown>>, endpoints: FakeEndpoint[] = [{ ID: 1, inputClusters: [0], outputClusters: [] }]): ZhDevice {
  return {
    ieeeAddr: "0x00124b0000000001",
    type: "Router",
    endpoints,
    getEndpoint: (id: number) => endpoints.find((e) => e.ID === id),
    ...fields,
  } as unknown as ZhDevice;
}

/** A device that matches this fingerprint (every field it names). */
function fromFingerprint(fp: Fingerprint): ZhDevice {
  const { endpoints, ieeeAddr: _re, priority: _p, ...fields } = fp;
  const eps = endpoints?.map((e, i) => ({ ID: e.ID ?? i + 1, profileID: e.profileID, deviceID: e.deviceID, inputClusters: e.inputClusters ?? [], outputClusters: e.outputClusters ?? [] }));
  return device({ ...fields, type: fp.type ?? "Router" }, eps);
}

const same = (a: { model: string; vendor: string; description: string } | undefined) => a && `${a.vendor} ${a.model}: ${a.description}`;

test("the committed model index is the one the installed converters give", () => {
  assert.equal(MODEL_INDEX_CONVERTERS, convertersVersion(), "regenerate: node --import tsx gateway/src/transports/zigbee/write-model-index.ts");
  assert.equal(readFileSync(MODEL_INDEX_FILE, "utf8"), renderModelIndex());
  releaseVendorModules();
});

test("a TS0601 radar and a TS0001 valve load only tuya.js, not the 48 and 7 files that list their model ids", async () => {
  releaseVendorModules();
  const radar = await definitionFor(device({ modelID: "TS0601", manufacturerName: "_TZE200_lu01t0zl", applicationVersion: 70 }));
  assert.equal(radar?.model, "MIR-HE200-TY");
  const presence = await definitionFor(device({ modelID: "TS0601", manufacturerName: "_TZE204_ztc6ggyl" }));
  assert.equal(presence?.model, "ZY-M100-L", "a white label is applied as the converters do");
  const valve = await definitionFor(device({ modelID: "TS0001", manufacturerName: "_TZ3000_o4cjetlm" }));
  assert.equal(valve?.model, "ZN231392");
  assert.equal(vendorModulesLoaded(), 1);
  assert.equal(await definitionFor(device({ modelID: "TS0601", manufacturerName: "_TZE200_nosuchdevice" })), undefined, "unknown, as with the converters");
  assert.equal(vendorModulesLoaded(), 1);
  releaseVendorModules();
});

test("for every model id in more than one vendor file, the narrowed lookup picks what the converters' findByDevice picks", async () => {
  const index = JSON.parse(MODEL_INDEX_JSON) as Record<string, ModelIndexEntry[]>;
  const require = createRequire(import.meta.url);
  const dir = require.resolve("zigbee-herdsman-converters").replace(/index\.js$/, "devices/");
  let compared = 0;
  for (const entries of Object.values(index)) {
    const probes: ZhDevice[] = [];
    for (const [file, i, zigbeeModel] of entries) {
      const def = (require(dir + file) as { definitions: Array<{ fingerprint?: Fingerprint[] }> }).definitions[i]!;
      for (const fp of def.fingerprint ?? []) probes.push(fromFingerprint(fp));
      for (const id of zigbeeModel || []) {
        probes.push(device({ modelID: id, manufacturerName: "nobody" }));
        probes.push(device({ modelID: `${id}\u0000\u0000`, manufacturerName: "nobody" }));
      }
    }
    for (const d of probes) {
      const want = same(await findByDevice(d));
      const got = same(await definitionFor(d));
      assert.equal(got, want, `${String(d.modelID)} / ${String(d.manufacturerName)}`);
      compared++;
    }
  }
  releaseVendorModules();
  assert.ok(compared > 2000, `${compared} devices compared`);
});
