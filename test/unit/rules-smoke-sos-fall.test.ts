// The smoke, SOS and fall rules are pure: state + input + a clock the test controls → decisions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { initialSmokeState, smokeStep, type SmokeRuleState } from "../../gateway/src/rules/smoke.js";
import { initialSosState, sosPress, DEFAULT_SOS } from "../../gateway/src/rules/sos.js";
import { fallStep, initialFallState, type FallInput, type FallRuleState } from "../../gateway/src/rules/fall.js";

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

function run(inputs: Array<[FallInput, number]>, confirmMs = 10_000): { state: FallRuleState; all: Array<{ do: string; [k: string]: unknown }> } {
  let state = initialFallState();
  const all: Array<{ do: string; [k: string]: unknown }> = [];
  for (const [input, at] of inputs) {
    const r = fallStep(state, { confirmMs }, input, at);
    state = r.state;
    all.push(...r.decisions);
  }
  return { state, all };
}

test("fall: a report not withdrawn within the confirmation window raises a critical fall, with the presence seen", () => {
  const { all } = run([
    [{ type: "presence", device: "radar", room: "bath", presence: true }, 0],
    [{ type: "report", device: "radar", room: "bath", status: "fall" }, 1000],
    [{ type: "tick" }, 10_999],
  ]);
  assert.deepEqual(all, [], "not yet: the window is 10 s");
  const { all: all2, state } = run([
    [{ type: "presence", device: "radar", room: "bath", presence: true }, 0],
    [{ type: "report", device: "radar", room: "bath", status: "fall" }, 1000],
    [{ type: "report", device: "radar", room: "bath", status: "maybe" }, 5000],
    [{ type: "tick" }, 11_000],
  ]);
  assert.deepEqual(all2, [{ do: "raise", alarm: "fall", device: "radar", room: "bath", reportedAt: 1000, presence: true }]);
  assert.equal(state.devices.radar?.raisedAt, 11_000);
});

test("fall: withdrawn within the window → nothing raised; once raised, a clear report clears it; repeated fall reports raise once", () => {
  const w = run([
    [{ type: "report", device: "r", status: "fall" }, 0],
    [{ type: "report", device: "r", status: "clear" }, 3000],
    [{ type: "tick" }, 20_000],
  ]);
  assert.deepEqual(w.all, [{ do: "withdrawn", device: "r", afterMs: 3000 }]);
  const c = run([
    [{ type: "report", device: "r", status: "fall" }, 0],
    [{ type: "tick" }, 10_000],
    [{ type: "report", device: "r", status: "fall" }, 12_000],
    [{ type: "tick" }, 30_000],
    [{ type: "report", device: "r", status: "clear" }, 40_000],
  ]);
  assert.deepEqual(dos(c.all as Array<{ do: string }>), ["raise", "clear"]);
  assert.deepEqual(c.all[1], { do: "clear", alarm: "fall", device: "r", since: 10_000 });
});

test("fall: a maybe report alone and presence alone raise nothing", () => {
  const { all } = run([
    [{ type: "report", device: "r", status: "maybe" }, 0],
    [{ type: "presence", device: "r", presence: false }, 1000],
    [{ type: "tick" }, 60_000],
  ]);
  assert.deepEqual(all, []);
});
