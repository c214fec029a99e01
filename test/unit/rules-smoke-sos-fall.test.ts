// The smoke, SOS and fall rules are pure: state + input + a clock the test controls → decisions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { initialSmokeState, smokeStep, type SmokeRuleState } from "../../gateway/src/rules/smoke.js";
import { forgetButton, initialSosState, sosPress, DEFAULT_SOS } from "../../gateway/src/rules/sos.js";
import { fallStep, initialFallState, type FallRuleState } from "../../gateway/src/rules/fall.js";
import { DEFAULT_BEHAVIOUR } from "../../gateway/src/rules/behaviour-params.js";
import type { BehaviourDecision, RadarInput } from "../../gateway/src/rules/radar-input.js";

const dos = (ds: Array<{ do: string }>) => ds.map((d) => d.do);

test("smoke: a detector reporting smoke raises one critical alarm and wants the sirens on; a second room is a spread, not a second alarm", () => {
  let s: SmokeRuleState = initialSmokeState();
  let r = smokeStep(s, { type: "detector", device: "hall", room: "hall", smoke: true }, 1000);
  assert.deepEqual(dos(r.decisions), ["raise", "sirens"]);
  assert.deepEqual(r.decisions[0], { do: "raise", alarm: "smoke", device: "hall", room: "hall" });
  assert.deepEqual(r.decisions[1], { do: "sirens", on: true });
  s = r.state;
  r = smokeStep(s, { type: "detector", device: "hall", room: "hall", smoke: true }, 2000);
  assert.deepEqual(r.decisions, [], "the same detector again is not news");
  r = smokeStep(r.state, { type: "detector", device: "kitchen", room: "kitchen", smoke: true }, 3000);
  assert.deepEqual(dos(r.decisions), ["spread"]);
  assert.deepEqual(r.state.alarm?.devices, ["hall", "kitchen"]);
  assert.deepEqual(s.alarm?.devices, ["hall"], "the rule never mutates the state it was given");
});

test("smoke: clears only when every detector that saw smoke reports clear and is online", () => {
  let r = smokeStep(initialSmokeState(), { type: "detector", device: "a", smoke: true }, 0);
  r = smokeStep(r.state, { type: "detector", device: "b", smoke: true }, 10);
  r = smokeStep(r.state, { type: "detector", device: "a", smoke: false }, 20);
  assert.deepEqual(r.decisions, [], "b still reports smoke");
  r = smokeStep(r.state, { type: "status", device: "b", online: false }, 30);
  r = smokeStep(r.state, { type: "detector", device: "a", smoke: false }, 40);
  assert.deepEqual(r.decisions, [], "b is silent: silence never proves clear air");
  r = smokeStep(r.state, { type: "detector", device: "b", smoke: false }, 50);
  assert.deepEqual(dos(r.decisions), ["clear", "sirens"]);
  assert.deepEqual(r.decisions[0], { do: "clear", alarm: "smoke", device: "a", since: 0, devices: ["a", "b"] });
  assert.deepEqual(r.decisions[1], { do: "sirens", on: false });
  assert.equal(r.state.alarm, null);
});

test("smoke: a detector reporting clear with no alarm active decides nothing", () => {
  const r = smokeStep(initialSmokeState(), { type: "detector", device: "a", smoke: false }, 0);
  assert.deepEqual(r.decisions, []);
});

test("sos: a press chirps first and raises a critical sos; presses within the repeat window chirp and count, later ones raise again", () => {
  let r = sosPress(initialSosState(), DEFAULT_SOS, { device: "btn", room: "bedroom", action: "single" }, 1000);
  assert.deepEqual(r.decisions, [
    { do: "chirp", device: "btn" },
    { do: "raise", alarm: "sos", device: "btn", room: "bedroom", action: "single" },
  ]);
  r = sosPress(r.state, DEFAULT_SOS, { device: "btn", action: "double" }, 1000 + DEFAULT_SOS.repeatWindowMs - 1);
  assert.deepEqual(r.decisions, [
    { do: "chirp", device: "btn" },
    { do: "repeat", device: "btn", presses: 2, since: 1000 },
  ]);
  r = sosPress(r.state, DEFAULT_SOS, { device: "btn", action: "single" }, 1000 + DEFAULT_SOS.repeatWindowMs);
  assert.deepEqual(dos(r.decisions), ["chirp", "raise"], "a press after the window is a new call");
  const other = sosPress(r.state, DEFAULT_SOS, { device: "btn2", action: "emergency" }, 1000 + DEFAULT_SOS.repeatWindowMs + 1);
  assert.deepEqual(dos(other.decisions), ["chirp", "raise"], "another button is its own call");
});

test("sos: a button forgotten (its commissioning test over) raises again on its next press, within the window; other buttons keep theirs", () => {
  let r = sosPress(initialSosState(), DEFAULT_SOS, { device: "btn", room: "bedroom", action: "single" }, 1000);
  r = sosPress(r.state, DEFAULT_SOS, { device: "btn2", action: "single" }, 1500);
  const before = structuredClone(r.state);
  const forgotten = forgetButton(r.state, "btn");
  assert.deepEqual(r.state, before, "pure: the state given is not changed");
  assert.deepEqual(Object.keys(forgotten.last), ["btn2"]);
  const next = sosPress(forgotten, DEFAULT_SOS, { device: "btn", room: "bedroom", action: "single" }, 2000);
  assert.deepEqual(dos(next.decisions), ["chirp", "raise"], "a press right after forgetting is a new alarm, not a repeat");
  assert.deepEqual(dos(sosPress(next.state, DEFAULT_SOS, { device: "btn2", action: "single" }, 2000).decisions), ["chirp", "repeat"], "another button's window stays");
  // Nothing to forget: the same state back.
  assert.equal(forgetButton(forgotten, "btn"), forgotten);
});

// The fall rule in full (stillness, Zigbee radars, offline) is in rules-behaviour.test.ts; these keep the
// basics next to the other life-safety rules.
const CONFIRM = DEFAULT_BEHAVIOUR.defaults.fall.confirmMs;
const GETUP = DEFAULT_BEHAVIOUR.defaults.fall.getUpMs;
const radar = (f: Partial<Extract<RadarInput, { type: "reading" }>>): RadarInput => ({ type: "reading", device: "radar", room: "bath", gives: ["presence", "motion", "fall"], ...f });

function run(inputs: Array<[RadarInput, number]>): { state: FallRuleState; all: BehaviourDecision[] } {
  let state = initialFallState();
  const all: BehaviourDecision[] = [];
  for (const [input, at] of inputs) {
    const r = fallStep(state, DEFAULT_BEHAVIOUR, input, at);
    state = r.state;
    all.push(...r.decisions);
  }
  return { state, all };
}

test("fall: a report with no getting up within the confirmation window raises a critical fall, with the presence seen", () => {
  const { all } = run([
    [radar({ presence: true, motion: "still" }), 0],
    [radar({ fall: "fall" }), 1000],
    [{ type: "tick" }, 1000 + CONFIRM - 1],
  ]);
  assert.deepEqual(all, [], "not yet");
  const { all: all2, state } = run([
    [radar({ presence: true, motion: "still" }), 0],
    [radar({ fall: "fall" }), 1000],
    [radar({ fall: "maybe" }), 5000],
    [{ type: "tick" }, 1000 + CONFIRM],
  ]);
  assert.deepEqual(dos(all2), ["raise"]);
  const raise = all2[0] as Extract<BehaviourDecision, { do: "raise" }>;
  assert.deepEqual([raise.alarm, raise.severity, raise.device, raise.room, raise.since], ["fall", "critical", "radar", "bath", 1000]);
  assert.equal(raise.evidence.readings.presence, true);
  assert.equal(state.devices.radar?.raised?.at, 1000 + CONFIRM);
});

test("fall: the radar clearing its flag withdraws nothing; getting up does; once raised, getting up clears it and repeated reports raise once", () => {
  const flag = run([
    [radar({ fall: "fall", motion: "still" }), 0],
    [radar({ fall: "clear" }), 3000],
    [{ type: "tick" }, CONFIRM],
  ]);
  assert.deepEqual(dos(flag.all), ["raise"]);
  const up = run([
    [radar({ fall: "fall", motion: "still" }), 0],
    [radar({ motion: "moving" }), 3000],
    [radar({ motion: "moving" }), 3000 + GETUP],
    [{ type: "tick" }, 2 * CONFIRM],
  ]);
  assert.deepEqual(up.all, [{ do: "withdrawn", alarm: "fall", device: "radar", room: "bath", afterMs: 3000 + GETUP, reason: "got_up" }]);
  const c = run([
    [radar({ fall: "fall", motion: "still" }), 0],
    [{ type: "tick" }, CONFIRM],
    [radar({ fall: "fall" }), CONFIRM + 2000],
    [{ type: "tick" }, 3 * CONFIRM],
    [radar({ motion: "moving" }), 4 * CONFIRM],
    [radar({ motion: "moving" }), 4 * CONFIRM + GETUP],
  ]);
  assert.deepEqual(dos(c.all), ["raise", "clear"]);
  assert.deepEqual(c.all[1], { do: "clear", alarm: "fall", device: "radar", room: "bath", since: CONFIRM, reason: "got_up" });
});

test("fall: a maybe report alone and presence alone raise nothing", () => {
  const { all } = run([
    [radar({ fall: "maybe" }), 0],
    [radar({ presence: false }), 1000],
    [{ type: "tick" }, 10 * CONFIRM],
  ]);
  assert.deepEqual(all, []);
});
