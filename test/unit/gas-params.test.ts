// The gas/CO rule's parameters are derived, never edited: a valve joining or leaving gives a new object and the
// one a rule step was given stays as it was.
import { test } from "node:test";
import assert from "node:assert/strict";
import { rulesSchema } from "../../gateway/src/config/schema.js";
import type { HubDevice } from "../../gateway/src/devices/hub-device.js";
import { gasRuleParams, valveParams, withValve, withoutValve } from "../../gateway/src/hub/gas-params.js";

const rules = rulesSchema.parse({ valve: { ratedCloseMs: 12_000, retryMs: 1500 } });

function valve(id: string, extra: Partial<HubDevice> & { profile?: unknown } = {}): HubDevice {
  const d: HubDevice = {
    id, transport: "modbus", model: "v", roles: ["valve"], has: (r) => r === "valve", canDo: (c) => c === "close" || c === "open",
    command: () => Promise.resolve(), read: () => Promise.reject(new Error("unused")), ...extra,
  };
  return d;
}

test("a valve's timing: the install's own rated time, then its profile, then the install-wide default", () => {
  assert.deepEqual(valveParams(valve("a"), rules), { ratedCloseMs: 12_000, retryMs: 1500 });
  const profiled = valve("b", { profile: { commands: { close: { ratedMs: 8000, retryMs: 900 } } } });
  assert.deepEqual(valveParams(profiled, rules), { ratedCloseMs: 8000, retryMs: 900 });
  const overridden = valve("c", { ratedCloseMs: 30_000, profile: { commands: { close: { ratedMs: 8000 } } } });
  assert.deepEqual(valveParams(overridden, rules), { ratedCloseMs: 30_000, retryMs: 1500 });
});

test("params are derived from the install and its valves", () => {
  const p = gasRuleParams(rules, [valve("a"), valve("b")], true);
  assert.deepEqual(Object.keys(p.valves), ["a", "b"]);
  assert.equal(p.gas, rules.gas);
  assert.equal(p.co, rules.co);
  assert.equal(p.staleMs, 10_000);
  assert.equal(p.hasSiren, true);
});

test("a valve joining or leaving gives new params and leaves the old ones untouched", () => {
  const before = gasRuleParams(rules, [valve("a")], false);
  const frozen = structuredClone(before);
  const added = withValve(before, "zb", { ratedCloseMs: 20_000, retryMs: 3000 });
  assert.notEqual(added, before);
  assert.deepEqual(before, frozen, "the params an earlier step saw did not change");
  assert.deepEqual(added.valves, { a: { ratedCloseMs: 12_000, retryMs: 1500 }, zb: { ratedCloseMs: 20_000, retryMs: 3000 } });
  const removed = withoutValve(added, "zb");
  assert.deepEqual(removed.valves, { a: { ratedCloseMs: 12_000, retryMs: 1500 } });
  assert.ok("zb" in added.valves, "removing gives a new object too");
  assert.equal(withoutValve(removed, "nobody"), removed, "removing an unknown valve changes nothing");
});
