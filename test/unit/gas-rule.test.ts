import { test } from "node:test";
import assert from "node:assert/strict";
import * as gas from "../../gateway/src/rules/gas.js";
import { rulesSchema } from "../../gateway/src/config/schema.js";

const rules = rulesSchema.parse({});
const params = (over: Partial<gas.GasRuleParams> = {}): gas.GasRuleParams => ({
  gas: rules.gas,
  co: rules.co,
  staleMs: 10_000,
  valves: { v1: { ratedCloseMs: 5000, retryMs: 1000 } },
  hasSiren: true,
  ...over,
});

/** Drives the rule with a clock the test controls. */
function rig(p = params()) {
  let state = gas.initialState(Object.keys(p.valves));
  let now = 1_000_000;
  const all: gas.Decision[] = [];
  const feed = (input: gas.RuleInput) => {
    const r = gas.step(state, p, input, now);
    state = r.state;
    all.push(...r.decisions);
    return r.decisions;
  };
  return {
    feed,
    co: (ppm: number, extra: Record<string, number | boolean> = {}) => feed({ type: "detector", device: "co1", kind: "co", signals: { co_ppm: ppm, alarm: false, ...extra } }),
    lel: (lel: number, extra: Record<string, number | boolean> = {}) => feed({ type: "detector", device: "lel1", kind: "gas", signals: { gas_lel: lel, alarm: false, ...extra } }),
    valve: (closed: boolean, fault = false) => feed({ type: "valve", device: "v1", signals: { valve_closed: closed, valve_open: !closed, valve_fault: fault } }),
    tick: () => feed({ type: "tick" }),
    advance: (ms: number) => (now += ms),
    get state() {
      return state;
    },
    all,
  };
}

const kinds = (ds: gas.Decision[]) => ds.map((d) => d.do);

test("gas over the set point closes every valve and sounds the siren in the same step", () => {
  const r = rig(params({ valves: { v1: { ratedCloseMs: 5000, retryMs: 1000 }, v2: { ratedCloseMs: 5000, retryMs: 1000 } } }));
  assert.deepEqual(r.lel(5), []);
  const d = r.lel(21);
  assert.deepEqual(kinds(d).sort(), ["close_valve", "close_valve", "raise", "siren"]);
  const raise = d.find((x) => x.do === "raise") as Extract<gas.Decision, { do: "raise" }>;
  assert.equal(raise.alarm, "gas");
  assert.equal(raise.value, 21);
});

test("the detector's own alarm output triggers even below the hub's set point", () => {
  const r = rig();
  assert.ok(kinds(r.co(20, { alarm: true })).includes("raise"));
});

test("a device-reported set point lower than the install's is used (more protective)", () => {
  const r = rig();
  assert.deepEqual(r.lel(15), []);
  const r2 = rig();
  assert.ok(kinds(r2.lel(15, { gas_setpoint_lel: 12 })).includes("raise"));
  const r3 = rig();
  assert.deepEqual(r3.lel(15, { gas_setpoint_lel: 40 }), [], "a laxer device set point never loosens the install's");
});

test("CO follows time tiers: 60 ppm alarms only after 70 minutes; 300 ppm at once", () => {
  const r = rig();
  r.co(60);
  for (let i = 0; i < 69; i++) {
    r.advance(60_000);
    assert.ok(!kinds(r.co(60)).includes("raise"), `no alarm at minute ${i + 1}`);
  }
  r.advance(61_000);
  assert.ok(kinds(r.co(60)).includes("raise"));
  const r2 = rig();
  assert.ok(kinds(r2.co(300)).includes("raise"));
});

test("a CO dip below a tier restarts that tier's clock", () => {
  const r = rig();
  r.co(120);
  r.advance(14 * 60_000);
  r.co(90);
  r.advance(2 * 60_000);
  assert.ok(!kinds(r.co(120)).includes("raise"));
  r.advance(15 * 60_000);
  assert.ok(kinds(r.co(120)).includes("raise"));
});

test("valve verified by the closed limit switch; no fault, retries stop", () => {
  const r = rig();
  r.co(400);
  r.advance(500);
  r.valve(false);
  r.advance(600);
  assert.deepEqual(kinds(r.tick()), ["close_valve"], "retried while unconfirmed");
  r.advance(400);
  const d = r.valve(true);
  assert.deepEqual(kinds(d), ["valve_verified"]);
  assert.equal((d[0] as Extract<gas.Decision, { do: "valve_verified" }>).afterMs, 1500);
  r.advance(10_000);
  assert.deepEqual(r.tick(), []);
  assert.equal(r.state.valves.v1!.fault, null);
});

test("no confirmation within the rated time → valve_fault, siren stays on after the gas clears", () => {
  const r = rig();
  r.co(400);
  for (let t = 0; t < 5000; t += 250) {
    r.advance(250);
    r.valve(false);
    r.tick();
  }
  r.advance(250);
  const d = r.tick();
  assert.ok(kinds(d).includes("valve_fault"), `got ${kinds(d).join(",")}`);
  // the air clears and stays clear past the hold time
  r.co(5);
  r.advance(rules.co.clearHoldMs + 1);
  const after = r.co(5);
  assert.ok(kinds(after).includes("clear"));
  assert.ok(!after.some((x) => x.do === "siren" && !x.on), "siren must stay on while the valve is in fault");
  assert.equal(r.state.sirenOn, true);
});

test("a jammed actuator raises valve_fault at once", () => {
  const r = rig();
  r.co(400);
  r.advance(300);
  assert.ok(kinds(r.valve(false, true)).includes("valve_fault"));
});

test("the alarm clears only after staying below set point minus hysteresis for the hold time", () => {
  const r = rig();
  r.lel(30);
  r.advance(1000);
  r.lel(17); // below 20 but not below 20 - 5
  r.advance(rules.gas.clearHoldMs + 1000);
  assert.ok(!kinds(r.lel(17)).includes("clear"));
  r.lel(10);
  r.advance(rules.gas.clearHoldMs - 1000);
  assert.ok(!kinds(r.lel(10)).includes("clear"));
  r.lel(22); // back over: raise is not repeated, hold restarts
  r.advance(1000);
  r.lel(10);
  r.advance(rules.gas.clearHoldMs);
  assert.ok(kinds(r.lel(10)).includes("clear"));
});

test("a stale or offline detector never proves the air is clear", () => {
  const r = rig();
  r.lel(30);
  r.advance(1000);
  r.lel(2);
  r.feed({ type: "status", device: "lel1", online: false });
  r.advance(rules.gas.clearHoldMs * 3);
  assert.ok(!kinds(r.tick()).includes("clear"));
});

test("the rule never opens a valve by itself, whatever happens", () => {
  const r = rig();
  r.lel(50);
  r.valve(true);
  r.lel(0);
  r.advance(rules.gas.clearHoldMs + 1);
  r.lel(0);
  for (let i = 0; i < 100; i++) {
    r.advance(1000);
    r.tick();
    r.valve(true);
  }
  assert.ok(!r.all.some((d) => d.do === "open_valve"));
  assert.ok(r.state.valves.v1!.commandedAt !== null, "stays latched closed");
});

test("reopen is refused during an alarm, with a detector fault, or before every detector has reported", () => {
  const r = rig();
  r.lel(50);
  let res = gas.reopen(r.state, { knownDetectors: 1 });
  assert.equal(res.ok, false);
  assert.match((res as { reasons: string[] }).reasons.join(), /gas alarm active/);
  r.lel(0);
  r.advance(rules.gas.clearHoldMs + 1);
  r.lel(0, { fault: true });
  res = gas.reopen(r.state, { knownDetectors: 1 });
  assert.match((res as { reasons: string[] }).reasons.join(), /fault/);
  r.lel(0);
  res = gas.reopen(r.state, { knownDetectors: 2 });
  assert.match((res as { reasons: string[] }).reasons.join(), /not every gas\/CO detector/);
  res = gas.reopen(r.state, { knownDetectors: 1 });
  assert.equal(res.ok, true);
  assert.deepEqual(kinds((res as { step: gas.Step }).step.decisions), ["open_valve", "siren"]);
});

test("a verified-closed valve found open with no alarm is recorded as opened on site; during an alarm it is closed again", () => {
  const r = rig();
  r.lel(50);
  r.valve(true);
  assert.ok(kinds(r.valve(false)).includes("close_valve"), "alarm still active: close again");
  r.valve(true);
  r.lel(0);
  r.advance(rules.gas.clearHoldMs + 1);
  r.lel(0);
  assert.deepEqual(kinds(r.valve(false)), ["valve_opened_on_site"]);
});

test("a device that left: its alarm does not clear on its own, its 'clear' no longer counts, a valve back during the alarm is closed again", () => {
  const r = rig();
  // Two gas detectors; lel1 raises the alarm, lel2 has said clear.
  r.feed({ type: "detector", device: "lel2", kind: "gas", signals: { gas_lel: 1, alarm: false } });
  r.lel(30);
  assert.ok(r.state.alarms.gas);
  r.valve(true);
  // lel1 leaves the network while the alarm is on; lel2 keeps saying clear, for longer than the hold time.
  let s = gas.removeDevice(r.state, "lel1");
  assert.equal(s.detectors.lel1, undefined);
  assert.ok(s.alarms.gas, "the alarm stays");
  let st = gas.step(s, params(), { type: "detector", device: "lel2", kind: "gas", signals: { gas_lel: 1, alarm: false } }, 1_000_000 + 200_000);
  // lel2 alone may now prove the air clear (it is a detector that is still here): the alarm clears after its hold.
  st = gas.step(st.state, params(), { type: "detector", device: "lel2", kind: "gas", signals: { gas_lel: 1, alarm: false } }, 1_000_000 + 200_000 + rules.gas.clearHoldMs + 1);
  assert.ok(st.decisions.some((d) => d.do === "clear"), "the remaining detector clears it");

  // Only one detector, and it leaves during the alarm: nothing is left to prove the air clear.
  const r2 = rig();
  r2.lel(30);
  s = gas.removeDevice(r2.state, "lel1");
  st = gas.step(s, params(), { type: "tick" }, 1_000_000 + 3_600_000);
  assert.ok(st.state.alarms.gas, "no detector of that kind left: the alarm does not clear on its own");
  assert.match(gas.reopenBlockers(st.state).join(" "), /gas alarm active/);

  // The valve leaves and is paired again while the alarm is on: it is commanded closed at once.
  s = gas.removeDevice(st.state, "v1");
  assert.equal(s.valves.v1, undefined);
  const back = gas.addValve(s, "v1", 1_000_000 + 3_700_000);
  assert.deepEqual(kinds(back.decisions), ["close_valve"]);
  assert.equal(gas.removeDevice(back.state, "nobody"), back.state, "an unknown id changes nothing");
});
