// The hub skips the gas rule's tick while tickChangesNothing(state) (gateway/src/hub/gas-safety.ts): that is
// only sound if a tick then really changes nothing, at any later time. This drives the real rule through
// random homes (readings over and under the set points, valves closing, reopening on site, going offline)
// and checks every state the predicate accepts against ticks up to a day later. It also checks the predicate
// does not accept states where the tick matters.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as gas from "../../gateway/src/rules/gas.js";
import { rulesSchema } from "../../gateway/src/config/schema.js";
import { tickChangesNothing } from "../../gateway/src/hub/gas-safety.js";
import { seededRandom } from "../support/prng.js";

const rules = rulesSchema.parse({});
const params: gas.GasRuleParams = {
  gas: rules.gas,
  co: rules.co,
  staleMs: 10_000,
  valves: { v1: { ratedCloseMs: 5000, retryMs: 1000 }, v2: { ratedCloseMs: 15000, retryMs: 2000 } },
  hasSiren: true,
};

function randomInput(rnd: () => number): gas.RuleInput {
  const r = rnd();
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  if (r < 0.35) {
    const kind = pick<gas.GasKind>(["gas", "co"]);
    const level = kind === "gas" ? pick([0, 2, 5, 9, 10, 12, 25, 60]) : pick([0, 10, 30, 40, 60, 120, 200, 400]);
    return { type: "detector", device: pick(["d1", "d2", "d3"]) + kind, kind, signals: kind === "gas" ? { gas_lel: level, alarm: rnd() < 0.1 } : { co_ppm: level }, eventDriven: rnd() < 0.2 };
  }
  if (r < 0.6) return { type: "valve", device: pick(["v1", "v2"]), signals: { valve_closed: rnd() < 0.6 } };
  if (r < 0.7) return { type: "status", device: pick(["v1", "v2", "d1gas", "d2co"]), online: rnd() < 0.7 };
  return { type: "tick" };
}

test("whenever tickChangesNothing(state) holds, a tick at any later time leaves the state as it is and decides nothing", () => {
  const rnd = seededRandom(14);
  let accepted = 0;
  for (let home = 0; home < 400; home++) {
    let state = gas.initialState(Object.keys(params.valves));
    let now = 1_000_000;
    for (let i = 0; i < 80; i++) {
      now += Math.floor(rnd() * 4000);
      const input = randomInput(rnd);
      if (rnd() < 0.03) {
        const r = gas.reopen(state, { knownDetectors: 3 });
        if (r.ok) state = r.step.state;
      } else state = gas.step(state, params, input, now).state;
      const later = [1, 200, 999, 1000, 2001, 5001, 10_001, 15_001, 60_000, 3_600_000, 86_400_000];
      if (tickChangesNothing(state)) {
        accepted++;
        for (const dt of later) {
          const r = gas.step(state, params, { type: "tick" }, now + dt);
          assert.deepEqual(r.decisions, [], `home ${home} step ${i}: a tick ${dt} ms later decided something`);
          assert.deepEqual(r.state, state, `home ${home} step ${i}: a tick ${dt} ms later changed the state`);
        }
      }
    }
  }
  assert.ok(accepted > 3000, `${accepted} idle states checked`);
});

test("the ticks that matter are not skipped: an alarm's clear hold, a valve's retry and fault, the siren", () => {
  const p: gas.GasRuleParams = { ...params, gas: { ...params.gas, clearHoldMs: 5000 } };
  const quiet = gas.initialState(["v1"]);
  assert.equal(tickChangesNothing(quiet), true);
  const raised = gas.step(quiet, p, { type: "detector", device: "g", kind: "gas", signals: { gas_lel: 60 } }, 1000).state;
  assert.equal(tickChangesNothing(raised), false, "alarm raised, valve commanded");
  const retry = gas.step(raised, p, { type: "tick" }, 1000 + 1000);
  assert.ok(retry.decisions.some((d) => d.do === "close_valve" && d.attempt === 2), "the retry came from a tick");
  const verified = gas.step(raised, p, { type: "valve", device: "v1", signals: { valve_closed: true } }, 1500).state;
  assert.equal(tickChangesNothing(verified), false, "alarm still raised");
  const clearing = gas.step(verified, p, { type: "detector", device: "g", kind: "gas", signals: { gas_lel: 0 } }, 2000).state;
  assert.equal(tickChangesNothing(clearing), false, "clear hold running");
  const after = gas.step(clearing, p, { type: "tick" }, 2000 + 5000);
  assert.ok(after.decisions.some((d) => d.do === "clear"), "the clear came from a tick");
  assert.equal(tickChangesNothing(after.state), true, "cleared, valve proven closed, siren off");
});
