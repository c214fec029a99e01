// The behaviour rules (fall, stillness, vital signs, inactivity) are pure: state + params + input + a clock
// the test controls → decisions. Every step here runs on a deep-frozen state, so a rule that mutated the
// state it was given would throw.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_ROOM, type BehaviourParams, type InactivityParams } from "../../gateway/src/rules/behaviour-params.js";
import type { BehaviourDecision, BehaviourStep, RadarField, RadarInput } from "../../gateway/src/rules/radar-input.js";
import { fallStep, initialFallState, type FallRuleState } from "../../gateway/src/rules/fall.js";
import { initialVitalsState, vitalsStep, type VitalsRuleState } from "../../gateway/src/rules/vitals.js";
import { countedBetween, inactivityStep, initialInactivityState, localMinuteOfDay, type InactivityRuleState } from "../../gateway/src/rules/inactivity.js";

// --- rig ------------------------------------------------------------------------------------------------

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

type Step<S> = (s: S, input: RadarInput, now: number) => BehaviourStep<S>;

/** Drives a rule; `roundTrip` passes the state through JSON before every step (as across a restart). */
function rig<S>(step: Step<S>, s0: S, roundTrip = false) {
  let state = s0;
  const all: BehaviourDecision[] = [];
  const feed = (now: number, input: RadarInput): BehaviourDecision[] => {
    if (roundTrip) state = JSON.parse(JSON.stringify(state)) as S;
    const before = JSON.stringify(state);
    deepFreeze(state);
    const r = step(state, input, now);
    assert.equal(JSON.stringify(state), before, "the step left the state it was given untouched");
    state = r.state;
    all.push(...r.decisions);
    return r.decisions;
  };
  return {
    feed,
    tick: (now: number) => feed(now, { type: "tick" }),
    status: (now: number, device: string, online: boolean) => feed(now, { type: "status", device, online }),
    get state(): S {
      return state;
    },
    all,
  };
}

const dos = (ds: BehaviourDecision[]) => ds.map((d) => `${d.do}${"alarm" in d ? ":" + d.alarm : ""}`);
type Raise = Extract<BehaviourDecision, { do: "raise" }>;
type Clear = Extract<BehaviourDecision, { do: "clear" }>;
type Trend = Extract<BehaviourDecision, { do: "trend" }>;
const only = <T extends BehaviourDecision>(ds: BehaviourDecision[], what: T["do"]): T => {
  assert.equal(ds.length, 1, `one decision expected, got ${JSON.stringify(ds)}`);
  assert.equal(ds[0]!.do, what);
  return ds[0] as T;
};

type Fields = Omit<Extract<RadarInput, { type: "reading" }>, "type" | "device" | "gives" | "room">;
const FALL_RADAR: readonly RadarField[] = ["presence", "motion", "fall"];
const ZIGBEE_FALL: readonly RadarField[] = ["presence", "fall"];
const BED_RADAR: readonly RadarField[] = ["presence", "motion", "heartRate", "breathing", "inBed"];
const reading = (device: string, room: string, gives: readonly RadarField[], f: Fields): RadarInput => ({ type: "reading", device, room, gives, ...f });

// confirmMs 30 s, getUpMs 5 s, stillness 10 min (dangerous only in the bathroom), vitals defaults.
const P: BehaviourParams = deepFreeze({ defaults: DEFAULT_ROOM, rooms: { bath: { stillness: { dangerous: true } } } });
const CONFIRM = DEFAULT_ROOM.fall.confirmMs;
const GETUP = DEFAULT_ROOM.fall.getUpMs;
const STILL = DEFAULT_ROOM.stillness.windowMs;

function fallRig(roundTrip = false) {
  const r = rig<FallRuleState>((s, i, now) => fallStep(s, P, i, now), initialFallState(), roundTrip);
  return {
    ...r,
    get state() {
      return r.state;
    },
    /** the bedroom's fall radar */
    radar: (now: number, f: Fields) => r.feed(now, reading("r1", "bedroom", FALL_RADAR, f)),
    /** the bathroom's fall radar (stillness is dangerous there) */
    bath: (now: number, f: Fields) => r.feed(now, reading("b1", "bath", FALL_RADAR, f)),
    zigbee: (now: number, f: Fields) => r.feed(now, reading("z1", "hall", ZIGBEE_FALL, f)),
  };
}

// --- fall report ----------------------------------------------------------------------------------------

test("fall: a report is raised critical exactly confirmMs after it, not 1 ms before; the radar clearing its flag does not cancel it", () => {
  const f = fallRig();
  assert.deepEqual(f.radar(1000, { fall: "fall", presence: true, motion: "still" }), []);
  assert.deepEqual(f.radar(5000, { fall: "clear" }), [], "the radar dropping its flag is not the elder getting up");
  assert.deepEqual(f.tick(1000 + CONFIRM - 1), []);
  const raise = only<Raise>(f.tick(1000 + CONFIRM), "raise");
  assert.equal(raise.alarm, "fall");
  assert.equal(raise.severity, "critical");
  assert.equal(raise.device, "r1");
  assert.equal(raise.room, "bedroom");
  assert.equal(raise.since, 1000, "since = the report");
  assert.equal(raise.evidence.trigger, "fall_report");
  assert.equal(raise.evidence.readings.fall, "clear");
  assert.equal(raise.evidence.readings.reportAt, 1000);
  assert.equal(raise.evidence.readings.motion, "still");
  assert.deepEqual(raise.evidence.windows, { confirmMs: CONFIRM, getUpMs: GETUP, stillnessWindowMs: STILL, dangerous: false });
  assert.deepEqual(f.tick(1000 + 10 * CONFIRM), [], "one alarm");
});

test("fall: the deadline is met by any step, a reading from another device included", () => {
  const f = fallRig();
  f.radar(0, { fall: "fall", motion: "still" });
  assert.deepEqual(f.bath(CONFIRM - 1, { presence: false, motion: "none" }), []);
  const raise = only<Raise>(f.bath(CONFIRM, { presence: false, motion: "none" }), "raise");
  assert.equal(raise.device, "r1");
});

test("fall: brief movement while lying (< getUpMs) neither cancels nor delays; dropping out of view does not cancel", () => {
  const f = fallRig();
  f.radar(0, { fall: "fall", presence: true, motion: "still" });
  f.radar(10_000, { motion: "moving" });
  f.radar(12_000, { heartRate: null }); // a frame without motion neither extends nor breaks the run
  f.radar(10_000 + GETUP - 100, { motion: "moving" });
  f.radar(15_000, { motion: "still" });
  f.radar(20_000, { motion: "moving" });
  f.radar(21_000, { presence: false, motion: "none" });
  assert.deepEqual(f.all, []);
  assert.deepEqual(f.tick(CONFIRM - 1), []);
  assert.equal(only<Raise>(f.tick(CONFIRM), "raise").since, 0, "the window was not restarted by the artefacts");
});

test("fall: movement sustained for getUpMs withdraws a pending fall (readings, or a tick while still moving)", () => {
  const a = fallRig();
  a.radar(0, { fall: "fall", motion: "still" });
  a.radar(10_000, { motion: "moving" });
  assert.deepEqual(a.radar(10_000 + GETUP - 1, { motion: "moving" }), []);
  assert.deepEqual(a.radar(10_000 + GETUP, { motion: "moving" }), [{ do: "withdrawn", alarm: "fall", device: "r1", room: "bedroom", afterMs: 15_000, reason: "got_up" }]);
  assert.deepEqual(a.tick(10 * CONFIRM), [], "nothing raised afterwards");

  const b = fallRig();
  b.radar(0, { fall: "fall", motion: "still" });
  b.radar(10_000, { motion: "moving" });
  assert.deepEqual(b.tick(10_000 + GETUP - 1), []);
  assert.equal(only(b.tick(10_000 + GETUP), "withdrawn").do, "withdrawn");
});

test("fall: only movement after the report counts as getting up (the fall itself may read as movement)", () => {
  const f = fallRig();
  f.radar(-3000, { motion: "moving" });
  f.radar(0, { fall: "fall", motion: "moving" });
  assert.deepEqual(f.radar(GETUP - 1, { motion: "moving" }), [], "3 s of the run were before the report");
  assert.equal(only(f.radar(GETUP, { motion: "moving" }), "withdrawn").do, "withdrawn");
});

test("fall: a raised fall clears on sustained movement; one alarm per episode; a new episode needs the flag to leave 'fall'", () => {
  const f = fallRig();
  f.radar(0, { fall: "fall", motion: "still" });
  assert.equal(only(f.tick(CONFIRM), "raise").do, "raise");
  assert.deepEqual(f.radar(31_000, { fall: "fall" }), []);
  assert.deepEqual(f.radar(40_000, { fall: "fall", motion: "still" }), []);
  assert.deepEqual(f.tick(200_000), [], "repeated reports of the same fall raise nothing more");
  f.radar(210_000, { motion: "moving" });
  f.radar(211_000, { motion: "still" });
  assert.deepEqual(f.tick(300_000), [], "brief movement does not clear");
  f.radar(310_000, { motion: "moving" });
  assert.deepEqual(f.radar(310_000 + GETUP - 1, { motion: "moving" }), []);
  const clear = only<Clear>(f.radar(310_000 + GETUP, { motion: "moving" }), "clear");
  assert.deepEqual(clear, { do: "clear", alarm: "fall", device: "r1", room: "bedroom", since: CONFIRM, reason: "got_up" });
  // The radar still holds its flag at "fall": the same report does not start a new episode.
  f.radar(400_000, { fall: "fall", motion: "still" });
  assert.deepEqual(f.tick(400_000 + 10 * CONFIRM), []);
  f.radar(800_000, { fall: "clear" });
  f.radar(900_000, { fall: "fall" });
  assert.equal(only<Raise>(f.tick(900_000 + CONFIRM), "raise").since, 900_000, "a new report after the flag cleared is a new episode");
});

test("fall: getting up completed after the deadline (coarse steps) raises, then clears in the same step", () => {
  const f = fallRig();
  f.radar(0, { fall: "fall", motion: "still" });
  f.radar(CONFIRM - 2000, { motion: "moving" });
  assert.deepEqual(dos(f.tick(CONFIRM + 10_000)), ["raise:fall", "clear:fall"]);
});

test("fall: getting up completed by the deadline withdraws even when the step comes late", () => {
  const f = fallRig();
  f.radar(0, { fall: "fall", motion: "still" });
  f.radar(CONFIRM - GETUP, { motion: "moving" });
  assert.deepEqual(dos(f.tick(CONFIRM + 10_000)), ["withdrawn:fall"]);
});

test("fall: a failed attempt to get up (movement past getUpMs, then still again with the flag up) is the same fall, raised at the original deadline", () => {
  const f = fallRig();
  f.radar(0, { fall: "fall", presence: true, motion: "still" });
  f.radar(3000, { motion: "moving" });
  const w = f.radar(3000 + GETUP, { motion: "moving" });
  assert.deepEqual(w.map((d) => [d.do, (d as { reason?: string }).reason]), [["withdrawn", "got_up"]], "it looked like getting up");
  f.radar(3000 + GETUP + 1000, { motion: "still" });
  assert.deepEqual(f.tick(3000 + GETUP + 1000 + GETUP - 1), [], "not still long enough yet");
  assert.deepEqual(f.tick(3000 + GETUP + 1000 + GETUP), [], "re-opened, but the original deadline is still ahead");
  assert.deepEqual(f.tick(CONFIRM - 1), []);
  const raise = only<Raise>(f.tick(CONFIRM), "raise");
  assert.equal(raise.since, 0, "the same episode, from the original report");
  assert.equal(raise.evidence.readings.failedAttemptToGetUp, true);

  // Re-opened, but the radar clears its flag before the deadline: she got up and lay down on the sofa.
  const sofa = fallRig();
  sofa.radar(0, { fall: "fall", presence: true, motion: "still" });
  sofa.radar(1000, { motion: "moving" });
  sofa.radar(1000 + GETUP, { motion: "moving" });
  sofa.radar(1000 + GETUP + 500, { motion: "still" });
  sofa.tick(1000 + 2 * GETUP + 500);
  const gone = sofa.radar(1000 + 2 * GETUP + 1000, { fall: "clear" });
  assert.deepEqual(gone.map((d) => [d.do, (d as { reason?: string }).reason]), [["withdrawn", "flag_cleared_after_getting_up"]]);
  assert.deepEqual(sofa.tick(CONFIRM + 1000), []);

  // Really up: the flag clears, or the person keeps moving past confirmMs: nothing re-opens.
  const g = fallRig();
  g.radar(0, { fall: "fall", presence: true, motion: "still" });
  g.radar(1000, { motion: "moving" });
  g.radar(1000 + GETUP, { motion: "moving" });
  g.radar(1000 + GETUP + 500, { fall: "clear" });
  g.radar(1000 + GETUP + 1000, { motion: "still" });
  assert.deepEqual(g.tick(1000 + GETUP + 1000 + 10 * GETUP), [], "the radar cleared its flag after she got up");
  const h = fallRig();
  h.radar(0, { fall: "fall", presence: true, motion: "still" });
  h.radar(1000, { motion: "moving" });
  for (let t = 1000 + GETUP; t <= 1000 + GETUP + CONFIRM + 1000; t += 1000) h.radar(t, { motion: "moving" });
  h.radar(1000 + GETUP + CONFIRM + 2000, { motion: "still" });
  assert.deepEqual(h.tick(1000 + GETUP + CONFIRM + 2000 + 2 * GETUP), [], "still long after getting up is no fall, even with a stuck flag");
});

test("fall: 'maybe' alone raises nothing and does not cancel a pending fall; it is in the evidence of a fall that follows", () => {
  const f = fallRig();
  f.radar(0, { fall: "maybe", presence: true, motion: "still" });
  assert.deepEqual(f.tick(10 * CONFIRM), []);
  f.radar(400_000, { fall: "maybe" });
  f.radar(401_000, { fall: "fall" });
  f.radar(402_000, { fall: "maybe" });
  const raise = only<Raise>(f.tick(401_000 + CONFIRM), "raise");
  assert.equal(raise.evidence.readings.maybeAt, 402_000);
  assert.equal(raise.evidence.readings.reportAt, 401_000);
  const g = fallRig();
  g.radar(0, { fall: "maybe", motion: "still" });
  g.radar(CONFIRM + 1, { fall: "fall" });
  assert.equal(only<Raise>(g.tick(2 * CONFIRM + 1), "raise").evidence.readings.maybeAt, null, "a maybe long before is not this fall's");
});

test("fall: a radar without motion (Zigbee) raises after confirmMs whatever its flag; clears on flag clear once confirmMs passed since the raise", () => {
  const z = fallRig();
  z.zigbee(0, { presence: true, fall: "fall" });
  z.zigbee(5000, { fall: "clear" });
  z.zigbee(6000, { motion: "moving" }); // not in its gives: a stray field is not a way to see getting up
  z.zigbee(12_000, { motion: "moving" });
  const raise = only<Raise>(z.tick(CONFIRM), "raise");
  assert.equal(raise.evidence.readings.seesMotion, false);
  assert.deepEqual(z.tick(2 * CONFIRM - 1), [], "flag clear, but not yet confirmMs since the raise");
  assert.deepEqual(only<Clear>(z.tick(2 * CONFIRM), "clear"), { do: "clear", alarm: "fall", device: "z1", room: "hall", since: CONFIRM, reason: "radar_clear" });

  const y = fallRig();
  y.zigbee(0, { presence: true, fall: "fall" });
  y.tick(CONFIRM);
  y.zigbee(CONFIRM + 1000, { presence: false });
  assert.deepEqual(y.tick(10 * CONFIRM), [], "the flag still reads fall: stays raised");
  assert.equal(only<Clear>(y.zigbee(11 * CONFIRM, { fall: "clear" }), "clear").reason, "radar_clear");
});

// --- stillness ------------------------------------------------------------------------------------------

test("no_movement: only in a dangerous room, raised exactly windowMs after the stillness began", () => {
  const f = fallRig();
  f.bath(0, { presence: true, motion: "still" });
  f.radar(0, { presence: true, motion: "still" });
  for (let t = 60_000; t < STILL; t += 60_000) {
    f.bath(t, { presence: true, motion: "still" });
    f.radar(t, { presence: true, motion: "still" });
  }
  assert.deepEqual(f.tick(STILL - 1), []);
  const raise = only<Raise>(f.tick(STILL), "raise");
  assert.equal(raise.device, "b1");
  assert.equal(raise.alarm, "fall");
  assert.equal(raise.severity, "critical");
  assert.equal(raise.since, 0);
  assert.equal(raise.evidence.trigger, "no_movement");
  assert.equal(raise.evidence.readings.stillMs, STILL);
  assert.equal(raise.evidence.windows.dangerous, true);
  assert.deepEqual(f.tick(10 * STILL), [], "the bedroom is not dangerous; the bathroom raised once");
});

test("no_movement: any movement, even brief, restarts the window; so does nobody present", () => {
  const f = fallRig();
  f.bath(0, { presence: true, motion: "still" });
  f.bath(100_000, { motion: "moving" });
  f.bath(101_000, { motion: "still" });
  assert.deepEqual(f.tick(101_000 + STILL - 1), []);
  assert.equal(only<Raise>(f.tick(101_000 + STILL), "raise").since, 101_000);

  const g = fallRig();
  g.bath(0, { presence: true, motion: "still" });
  g.bath(300_000, { presence: false, motion: "none" });
  g.tick(700_000);
  g.bath(800_000, { presence: true, motion: "still" });
  assert.deepEqual(g.tick(800_000 + STILL - 1), [], "the empty room was not stillness");
  assert.equal(only<Raise>(g.tick(800_000 + STILL), "raise").since, 800_000);

  const h = fallRig();
  h.bath(0, { presence: true });
  h.bath(1000, { heartRate: null });
  assert.equal(only<Raise>(h.tick(STILL), "raise").since, 0, "presence with motion unknown is present and not moving");
});

test("no_movement: a raised alarm clears on sustained movement or when nobody is present, not on brief movement", () => {
  const f = fallRig();
  f.bath(0, { presence: true, motion: "still" });
  f.tick(STILL);
  f.bath(STILL + 10_000, { motion: "moving" });
  f.bath(STILL + 11_000, { motion: "still" });
  assert.deepEqual(f.tick(STILL + 60_000), []);
  f.bath(STILL + 70_000, { motion: "moving" });
  assert.deepEqual(only<Clear>(f.tick(STILL + 70_000 + GETUP), "clear"), { do: "clear", alarm: "fall", device: "b1", room: "bath", since: STILL, reason: "got_up" });

  const g = fallRig();
  g.bath(0, { presence: true, motion: "still" });
  g.tick(STILL);
  assert.equal(only<Clear>(g.bath(STILL + 5000, { presence: false }), "clear").reason, "nobody_present");
});

test("fall: one fall alarm per device when a fall report and stillness overlap", () => {
  const f = fallRig();
  f.bath(0, { presence: true, motion: "still" });
  f.bath(STILL - 10_000, { fall: "fall" });
  const raise = only<Raise>(f.tick(STILL), "raise");
  assert.equal(raise.evidence.trigger, "no_movement");
  assert.equal(raise.evidence.readings.fallReportAt, STILL - 10_000);
  assert.deepEqual(f.tick(STILL + CONFIRM), [], "the report's own deadline raises no second alarm");
  assert.deepEqual(f.bath(STILL + CONFIRM + 1, { presence: false, motion: "none" }), [], "a reported fall is not cleared by dropping out of view");
  f.bath(STILL + 100_000, { motion: "moving" });
  assert.equal(only<Clear>(f.tick(STILL + 100_000 + GETUP), "clear").reason, "got_up");

  const g = fallRig();
  g.bath(0, { presence: true, motion: "still", fall: "fall" });
  assert.equal(only<Raise>(g.tick(CONFIRM), "raise").evidence.trigger, "fall_report");
  g.bath(CONFIRM + 1000, { presence: true, motion: "still" });
  assert.deepEqual(g.tick(CONFIRM + 2 * STILL), [], "stillness is not timed while the fall is raised");
});

// --- offline --------------------------------------------------------------------------------------------

test("offline: drops a pending fall and a stillness window (withdrawn, offline) and never raises from stale state; online starts fresh", () => {
  const f = fallRig();
  f.radar(0, { fall: "fall", presence: true, motion: "still" });
  f.bath(0, { presence: true, motion: "still" });
  assert.deepEqual(f.status(10_000, "r1", false), [{ do: "withdrawn", alarm: "fall", device: "r1", room: "bedroom", afterMs: 10_000, reason: "offline" }]);
  assert.deepEqual(f.status(20_000, "b1", false), [{ do: "withdrawn", alarm: "fall", device: "b1", room: "bath", afterMs: 20_000, reason: "offline" }]);
  assert.deepEqual(f.tick(10 * STILL), [], "nothing raised from what the radars said before they went silent");
  assert.deepEqual(f.status(10 * STILL + 1, "r1", true), []);
  assert.deepEqual(f.tick(20 * STILL), [], "back online: the old report is gone");
  f.bath(20 * STILL, { motion: "still" });
  assert.equal(only<Raise>(f.tick(21 * STILL), "raise").since, 20 * STILL, "the stillness window starts again from the first reading");
});

test("offline: a raised fall stays raised while the radar is offline and clears later on sustained movement", () => {
  const f = fallRig();
  f.radar(0, { fall: "fall", motion: "still" });
  f.tick(CONFIRM);
  assert.deepEqual(f.status(CONFIRM + 1000, "r1", false), []);
  assert.deepEqual(f.tick(CONFIRM + 100_000), []);
  f.status(CONFIRM + 200_000, "r1", true);
  f.radar(CONFIRM + 201_000, { motion: "moving" });
  assert.equal(only<Clear>(f.radar(CONFIRM + 201_000 + GETUP, { motion: "moving" }), "clear").since, CONFIRM);
});

// --- vital signs ----------------------------------------------------------------------------------------

const ABSENT = DEFAULT_ROOM.vitals.absentMs;
const ABNORMAL = DEFAULT_ROOM.vitals.abnormalMs;
const TREND = DEFAULT_ROOM.vitals.trendEveryMs;

function vitalsRig(roundTrip = false) {
  const r = rig<VitalsRuleState>((s, i, now) => vitalsStep(s, P, i, now), initialVitalsState(), roundTrip);
  return {
    ...r,
    get state() {
      return r.state;
    },
    /** the bed radar; bed/tick/status return the alarm decisions, leaving trends out (see `withTrends`) */
    bed: (now: number, f: Fields) => alarms(r.feed(now, reading("v1", "bedroom", BED_RADAR, f))),
    tick: (now: number) => alarms(r.tick(now)),
    status: (now: number, device: string, online: boolean) => alarms(r.status(now, device, online)),
    /** the same, returning only the trends */
    withTrends: {
      bed: (now: number, f: Fields) => r.feed(now, reading("v1", "bedroom", BED_RADAR, f)).filter((d) => d.do === "trend"),
      tick: (now: number) => r.tick(now).filter((d) => d.do === "trend"),
    },
  };
}
const alarms = (ds: BehaviourDecision[]) => ds.filter((d) => d.do !== "trend");

test("vital_absent: in bed with neither heart rate nor breathing for absentMs → critical, exactly then; 0 is no reading", () => {
  const v = vitalsRig();
  v.bed(0, { inBed: true, presence: true, heartRate: 62, breathing: 14 });
  for (let t = 3000; t < ABSENT; t += 3000) v.bed(t, { heartRate: 0, breathing: 0 });
  assert.deepEqual(v.all, []);
  assert.deepEqual(v.tick(ABSENT - 1), []);
  const raise = only<Raise>(v.tick(ABSENT), "raise");
  assert.equal(raise.alarm, "vital_absent");
  assert.equal(raise.severity, "critical");
  assert.equal(raise.since, 0);
  assert.equal(raise.evidence.readings.heartRate, null);
  assert.equal(raise.evidence.readings.breathing, null);
  assert.equal(raise.evidence.readings.lastVitalAt, 0);
  assert.equal(raise.evidence.windows.absentMs, ABSENT);
  assert.deepEqual(v.tick(10 * ABSENT), [], "raised once");
});

test("vital_absent: never out of bed; a device without inBed goes by presence", () => {
  const v = vitalsRig();
  v.bed(0, { inBed: false, presence: true, heartRate: null, breathing: null });
  v.bed(1000, { heartRate: null, breathing: null });
  assert.deepEqual(v.tick(10 * ABSENT), [], "out of bed (though present): no absence");

  const w = rig<VitalsRuleState>((s, i, now) => vitalsStep(s, P, i, now), initialVitalsState());
  const gives: RadarField[] = ["presence", "heartRate", "breathing"];
  w.feed(0, reading("v2", "bedroom", gives, { presence: false, heartRate: null }));
  assert.deepEqual(alarms(w.tick(10 * ABSENT)), [], "nobody present");
  w.feed(10 * ABSENT, reading("v2", "bedroom", gives, { presence: true, heartRate: null }));
  assert.deepEqual(alarms(w.tick(11 * ABSENT - 1)), []);
  assert.equal(only<Raise>(alarms(w.tick(11 * ABSENT)), "raise").alarm, "vital_absent");
});

test("vital_absent: movement restarts the window; a returning reading clears it; leaving the bed clears it", () => {
  const v = vitalsRig();
  v.bed(0, { inBed: true, heartRate: null, breathing: null });
  v.bed(40_000, { motion: "moving" });
  v.bed(41_000, { motion: "still" });
  assert.deepEqual(v.tick(40_000 + ABSENT - 1), [], "the movement at 40 s was a sign of life");
  assert.equal(only<Raise>(v.tick(40_000 + ABSENT), "raise").since, 40_000);
  assert.deepEqual(v.bed(110_000, { breathing: 0 }), [], "0 is not a returning reading");
  assert.deepEqual(only<Clear>(v.bed(120_000, { breathing: 12 }), "clear"), { do: "clear", alarm: "vital_absent", device: "v1", room: "bedroom", since: 40_000 + ABSENT, reason: "vital_signs_returned" });
  v.bed(121_000, { breathing: null, heartRate: null });
  assert.equal(only<Raise>(v.tick(120_000 + ABSENT), "raise").since, 120_000);
  assert.equal(only<Clear>(v.bed(200_000, { inBed: false }), "clear").reason, "left_bed");
  assert.deepEqual(v.tick(200_000 + 10 * ABSENT), []);
});

test("vital_abnormal: out of range on every reading for abnormalMs → high; a single in-range reading restarts; nulls neither extend nor restart", () => {
  const v = vitalsRig();
  for (let t = 0; t < ABNORMAL; t += 60_000) assert.deepEqual(v.bed(t, { inBed: false, heartRate: 150, breathing: 16 }), []);
  const raise = only<Raise>(v.bed(ABNORMAL, { heartRate: 155, breathing: 16 }), "raise");
  assert.equal(raise.alarm, "vital_abnormal");
  assert.equal(raise.severity, "high");
  assert.equal(raise.since, 0);
  assert.equal(raise.evidence.readings.signal, "heartRate");
  assert.equal(raise.evidence.readings.heartRate, 155);
  assert.equal(raise.evidence.readings.min, 150);
  assert.equal(raise.evidence.readings.max, 155);
  assert.equal(raise.evidence.windows.heartRateMax, DEFAULT_ROOM.vitals.heartRate.max);

  const w = vitalsRig();
  w.bed(0, { inBed: false, breathing: 40 });
  w.bed(100_000, { breathing: 41 });
  w.bed(200_000, { breathing: 20 }); // in range: the run restarts
  w.bed(210_000, { breathing: 42 });
  w.bed(300_000, { breathing: 43 });
  assert.deepEqual(w.bed(ABNORMAL, { breathing: 44 }), [], "only 100 s since the run restarted");
  w.bed(400_000, { breathing: null });
  w.bed(450_000, { breathing: 0 });
  assert.deepEqual(w.bed(210_000 + ABNORMAL - 1, { breathing: 44 }), []);
  const r2 = only<Raise>(w.bed(210_000 + ABNORMAL, { breathing: 45 }), "raise");
  assert.equal(r2.since, 210_000, "the nulls did not restart the run");
  assert.equal(r2.evidence.readings.signal, "breathing");
});

test("vital_abnormal: the clock closes the window, not the next reading (readings come every few seconds)", () => {
  const v = vitalsRig();
  for (let t = 0; t < ABNORMAL; t += 3000) v.bed(t, { inBed: true, heartRate: 150, breathing: 16 });
  // The last reading came at ABNORMAL - 3000 (or so); the window closes at ABNORMAL on the tick.
  assert.deepEqual(v.tick(ABNORMAL - 1), []);
  const raise = only<Raise>(v.tick(ABNORMAL), "raise");
  assert.equal(raise.alarm, "vital_abnormal");
  assert.equal(raise.since, 0);
  assert.deepEqual(v.tick(ABNORMAL + 1000), [], "one alarm");
});

test("vital_abnormal: needs at least 3 out-of-range readings; 0 is never abnormally low; clears after 3 consecutive in-range readings", () => {
  const v = vitalsRig();
  v.bed(0, { inBed: false, heartRate: 30 });
  assert.deepEqual(v.bed(ABNORMAL, { heartRate: 30 }), [], "two readings are not enough");
  assert.equal(only<Raise>(v.bed(ABNORMAL + 1000, { heartRate: 31 }), "raise").since, 0);
  v.bed(ABNORMAL + 2000, { heartRate: 70 });
  v.bed(ABNORMAL + 3000, { heartRate: 70 });
  v.bed(ABNORMAL + 4000, { heartRate: 30 });
  v.bed(ABNORMAL + 5000, { heartRate: 70 });
  assert.deepEqual(v.bed(ABNORMAL + 6000, { heartRate: 70 }), [], "the low reading restarted the count");
  assert.deepEqual(only<Clear>(v.bed(ABNORMAL + 7000, { heartRate: 70 }), "clear"), { do: "clear", alarm: "vital_abnormal", device: "v1", room: "bedroom", since: ABNORMAL + 1000, reason: "in_range" });

  const z = vitalsRig();
  for (let t = 0; t <= 2 * ABNORMAL; t += 3000) z.bed(t, { inBed: false, heartRate: 0, breathing: 0 });
  assert.ok(!z.all.some((d) => d.do === "raise" && d.alarm === "vital_abnormal"), "0 is no reading, not a heart rate of 0");
});

test("trend: one per interval that had readings, with n/mean/min/max and the last inBed, on the first step at or after its end", () => {
  const v = vitalsRig();
  v.withTrends.bed(0, { inBed: false, heartRate: 60, breathing: 12 });
  v.withTrends.bed(20_000, { heartRate: 70, breathing: null });
  v.withTrends.bed(40_000, { heartRate: 0, breathing: 14 });
  v.withTrends.bed(59_999, { inBed: true });
  assert.deepEqual(v.all.filter((d) => d.do === "trend"), []);
  assert.deepEqual(v.withTrends.tick(TREND - 1), []);
  const t1 = only<Trend>(v.withTrends.tick(TREND), "trend");
  assert.deepEqual(t1, { do: "trend", device: "v1", room: "bedroom", from: 0, to: TREND, heartRate: { n: 2, mean: 65, min: 60, max: 70 }, breathing: { n: 2, mean: 13, min: 12, max: 14 }, inBed: true });
  assert.deepEqual(v.withTrends.tick(TREND + 1000), [], "once per interval");
  v.withTrends.bed(70_000, { heartRate: 80, breathing: null });
  const t2 = only<Trend>(v.withTrends.bed(130_000, { heartRate: 90 }), "trend");
  assert.deepEqual([t2.from, t2.to, t2.heartRate, t2.breathing], [TREND, 2 * TREND, { n: 1, mean: 80, min: 80, max: 80 }, null]);
  const t3 = only<Trend>(v.withTrends.tick(300_000), "trend");
  assert.deepEqual([t3.from, t3.heartRate?.mean], [2 * TREND, 90]);
  assert.deepEqual(v.withTrends.tick(1_000_000), [], "no reading in the interval: no trend");

  const w = vitalsRig();
  for (let t = 0; t < 3 * TREND; t += 500) w.withTrends.bed(t, { inBed: true, heartRate: 60 + ((t / 500) % 3), breathing: 15 });
  w.withTrends.tick(3 * TREND);
  const trends = w.all.filter((d): d is Trend => d.do === "trend");
  assert.equal(trends.length, 3, "never one per reading");
  assert.deepEqual(trends[0]!.heartRate, { n: 120, mean: 61, min: 60, max: 62 });
});

test("offline: drops the absence window and an abnormal run (withdrawn) and never raises from them; raised vitals stay raised", () => {
  const v = vitalsRig();
  v.bed(0, { inBed: true, heartRate: 150, breathing: null });
  v.bed(10_000, { heartRate: 150 });
  v.bed(20_000, { heartRate: null });
  assert.deepEqual(dos(v.status(30_000, "v1", false)), ["withdrawn:vital_absent", "withdrawn:vital_abnormal"]);
  assert.deepEqual(v.tick(30_000 + 10 * ABNORMAL), [], "nothing from stale state");
  v.status(4_000_000, "v1", true);
  assert.deepEqual(v.tick(4_000_000 + 10 * ABSENT), [], "online alone starts nothing: a window needs a reading");
  v.bed(5_000_000, { heartRate: null });
  assert.equal(only<Raise>(v.tick(5_000_000 + ABSENT), "raise").since, 5_000_000);
  assert.deepEqual(v.status(5_000_000 + ABSENT + 1, "v1", false), [], "a raised alarm is not withdrawn");
  assert.equal(v.state.devices.v1?.absent?.since, 5_000_000, "and stays raised");
});

// --- inactivity -----------------------------------------------------------------------------------------

const TZ = "Asia/Shanghai"; // UTC+8, no DST
const H = 3600_000;
/** A UTC instant for a Shanghai local time on 10 Jan 2024 (+ days). */
const sh = (hour: number, minute = 0, day = 0) => Date.UTC(2024, 0, 10 + day, hour - 8, minute);
const INACT: InactivityParams = deepFreeze({ enabled: true, spanMs: 4 * H, night: null, timeZone: TZ });
const PRESENCE_RADAR: readonly RadarField[] = ["presence", "motion"];

function inactRig(p: InactivityParams, t0: number, roundTrip = false) {
  const r = rig<InactivityRuleState>((s, i, now) => inactivityStep(s, p, i, now), initialInactivityState(t0), roundTrip);
  return {
    ...r,
    get state() {
      return r.state;
    },
    radar: (now: number, device: string, f: Fields) => r.feed(now, reading(device, device === "k" ? "kitchen" : "bedroom", PRESENCE_RADAR, f)),
  };
}

test("local time: minute of day in a fixed zone, and counted time outside a night wrapping midnight", () => {
  assert.equal(localMinuteOfDay(sh(21, 59), TZ), 21 * 60 + 59);
  assert.equal(localMinuteOfDay(Date.UTC(2024, 0, 10, 16, 30), TZ), 30, "00:30 local is 16:30 UTC the day before");
  const night = { fromMin: 22 * 60, toMin: 7 * 60 };
  assert.equal(countedBetween(sh(20), sh(9, 0, 1), night, TZ), 4 * H);
  assert.equal(countedBetween(sh(23), sh(6), night, TZ), 0);
  assert.equal(countedBetween(sh(12), sh(12, 0, 2), night, TZ), 2 * 15 * H);
  assert.equal(countedBetween(sh(12), sh(18), { fromMin: 13 * 60, toMin: 15 * 60 }, TZ), 4 * H);
});

test("inactivity: raised as a warning exactly when spanMs has passed since the last sign of life; steady presence is no sign of life; a sign of life clears it", () => {
  const t0 = sh(8);
  const i = inactRig(INACT, t0);
  i.radar(t0, "r", { presence: true, motion: "moving" });
  i.radar(t0 + 1000, "r", { presence: true, motion: "moving" });
  i.radar(t0 + 1000, "r", { presence: true, motion: "still" }); // settling down is no sign of life
  // Motion flickering between still and none at the edge of the radar's range is not one either.
  for (let t = t0 + 60_000; t < t0 + 1000 + 4 * H; t += 60_000) i.radar(t, "r", { presence: true, motion: (t / 60_000) % 2 ? "still" : "none" });
  assert.deepEqual(i.all, [], "a body lying still under the radar shows no sign of life, and raises nothing yet");
  assert.deepEqual(i.tick(t0 + 1000 + 4 * H - 1), []);
  const raise = only<Raise>(i.tick(t0 + 1000 + 4 * H), "raise");
  assert.equal(raise.alarm, "inactivity");
  assert.equal(raise.severity, "warning");
  assert.equal(raise.device, "r");
  assert.equal(raise.room, "bedroom");
  assert.equal(raise.since, t0 + 1000);
  assert.deepEqual(raise.evidence.readings, { lastActivityAt: t0 + 1000, lastActivityDevice: "r", countedMs: 4 * H, inactiveMs: 4 * H });
  assert.deepEqual(raise.evidence.windows, { spanMs: 4 * H, night: null, timeZone: TZ });
  assert.deepEqual(i.tick(t0 + 10 * H), [], "one alarm");
  assert.deepEqual(i.radar(t0 + 11 * H, "r", { presence: true, motion: "still" }), [], "still no sign of life");
  assert.deepEqual(only<Clear>(i.radar(t0 + 12 * H, "r", { motion: "moving" }), "clear"), { do: "clear", alarm: "inactivity", device: "r", room: "bedroom", since: t0 + 1000 + 4 * H, reason: "sign_of_life" });
  const j = inactRig(INACT, t0);
  j.radar(t0, "r", { presence: false, motion: "none" });
  assert.equal(only<Raise>(j.tick(t0 + 4 * H), "raise").device, "home", "no sign of life since the hub started");
  assert.deepEqual(only<Clear>(j.radar(t0 + 5 * H, "k", { presence: true }), "clear"), { do: "clear", alarm: "inactivity", device: "home", since: t0 + 4 * H, reason: "sign_of_life" });
  assert.equal(j.state.lastActivityDevice, "k");
  assert.deepEqual(j.tick(t0 + 9 * H - 1), []);
  assert.equal(only<Raise>(j.tick(t0 + 9 * H), "raise").device, "k");
});

test("inactivity: the night (wrapping midnight) is not counted; neither is a daytime nap window", () => {
  const night = { ...INACT, night: { fromMin: 22 * 60, toMin: 7 * 60 } };
  const i = inactRig(night, sh(19));
  i.radar(sh(20), "r", { presence: true, motion: "moving" });
  for (let t = sh(20) + H; t < sh(9, 0, 1); t += H) assert.deepEqual(i.tick(t), [], `nothing at ${new Date(t).toISOString()}`);
  assert.deepEqual(i.tick(sh(9, 0, 1) - 1), []);
  const raise = only<Raise>(i.tick(sh(9, 0, 1)), "raise");
  assert.equal(raise.evidence.readings.countedMs, 4 * H);
  assert.equal(raise.evidence.windows.night, "22:00-07:00");

  const one = inactRig(night, sh(19));
  one.radar(sh(20), "r", { presence: true, motion: "moving" });
  assert.deepEqual(one.tick(sh(9, 0, 1) - 1), [], "one long step across the night counts the same");
  assert.equal(only<Raise>(one.tick(sh(9, 0, 1)), "raise").since, sh(20));

  const nap = inactRig({ ...INACT, night: { fromMin: 13 * 60, toMin: 15 * 60 } }, sh(10));
  nap.radar(sh(11), "r", { motion: "moving" });
  assert.deepEqual(nap.tick(sh(16, 59)), []);
  assert.equal(only<Raise>(nap.tick(sh(17)), "raise").since, sh(11));

  const none = inactRig(INACT, sh(19));
  none.radar(sh(20), "r", { motion: "moving" });
  assert.equal(only<Raise>(none.tick(sh(0, 0, 1)), "raise").since, sh(20), "without a night every hour counts");
});

test("inactivity: paused while every radar is offline (silence is not inactivity), resumed when one is back; nothing counted before any radar is heard", () => {
  const t0 = sh(8);
  const i = inactRig(INACT, t0);
  assert.deepEqual(i.tick(t0 + 10 * H), [], "no radar heard yet");
  i.radar(t0 + 10 * H, "r", { presence: true, motion: "moving" });
  i.radar(t0 + 10 * H, "k", { presence: false, motion: "none" });
  const t1 = t0 + 10 * H;
  i.status(t1 + H, "r", false);
  i.status(t1 + 2 * H, "k", false);
  assert.deepEqual(i.tick(t1 + 20 * H), [], "paused: every radar is offline");
  i.status(t1 + 30 * H, "k", true);
  assert.deepEqual(i.tick(t1 + 32 * H - 1), []);
  const raise = only<Raise>(i.tick(t1 + 32 * H), "raise");
  assert.equal(raise.evidence.readings.countedMs, 4 * H);

  const j = inactRig(INACT, t0);
  j.radar(t0, "r", { presence: true, motion: "still" });
  j.status(t0 + H, "r", false);
  j.status(t0 + 2 * H, "r", true);
  assert.deepEqual(j.radar(t0 + 2 * H, "r", { presence: true, motion: "still" }), [], "back online with the same still body: no sign of life");
  assert.equal(only<Raise>(j.tick(t0 + 5 * H), "raise").since, t0);
});

test("inactivity: enabled false never raises", () => {
  const i = inactRig({ ...INACT, enabled: false }, sh(8));
  i.radar(sh(8), "r", { presence: true, motion: "still" });
  assert.deepEqual(i.tick(sh(8, 0, 5)), []);
});

// --- state: never mutated, JSON-serialisable, cheap when idle ---------------------------------------------

test("state: a step never mutates the state it was given (a deep-frozen state works) and an idle tick returns it as is", () => {
  const f = fallRig();
  f.radar(0, { fall: "fall", presence: true, motion: "still" });
  f.bath(0, { presence: true, motion: "still" });
  const frozen = deepFreeze(f.state);
  const snapshot = JSON.stringify(frozen);
  fallStep(frozen, P, { type: "reading", device: "r1", gives: FALL_RADAR, motion: "moving" }, 1000);
  fallStep(frozen, P, { type: "status", device: "b1", online: false }, 1000);
  fallStep(frozen, P, { type: "tick" }, STILL);
  assert.equal(JSON.stringify(frozen), snapshot);

  const v = vitalsRig();
  v.bed(0, { inBed: true, heartRate: 150, breathing: 15 });
  const vs = deepFreeze(v.state);
  vitalsStep(vs, P, { type: "tick" }, 10 * ABSENT);
  vitalsStep(vs, P, { type: "reading", device: "v1", gives: BED_RADAR, heartRate: 150 }, 10 * ABNORMAL);

  const idle = fallRig();
  idle.radar(0, { presence: true, motion: "still" });
  const s = idle.state;
  assert.equal(fallStep(s, P, { type: "tick" }, 1000).state, s, "nothing due: the same state, nothing copied");
  v.tick(TREND);
  const vs2 = v.state;
  assert.equal(vitalsStep(vs2, P, { type: "tick" }, TREND + 1000).state, vs2);
});

test("state: survives JSON round trips mid-window; the rules continue identically", () => {
  const scenarioFall = (rt: boolean) => {
    const f = fallRig(rt);
    f.radar(0, { fall: "maybe", presence: true, motion: "still" });
    f.radar(1000, { fall: "fall" });
    f.radar(5000, { motion: "moving" });
    f.radar(8000, { motion: "still", fall: "clear" });
    f.bath(0, { presence: true, motion: "still" });
    f.tick(CONFIRM + 1000);
    f.radar(40_000, { motion: "moving" });
    f.tick(40_000 + GETUP);
    f.tick(STILL);
    f.zigbee(STILL, { fall: "fall", presence: true });
    f.tick(STILL + CONFIRM);
    f.status(STILL + CONFIRM + 1, "b1", false);
    return f.all;
  };
  const a = scenarioFall(false);
  assert.deepEqual(dos(a), ["raise:fall", "clear:fall", "raise:fall", "raise:fall"]);
  assert.deepEqual(scenarioFall(true), a);

  const scenarioVitals = (rt: boolean) => {
    const v = vitalsRig(rt);
    for (let t = 0; t <= ABNORMAL; t += 10_000) v.bed(t, { inBed: true, heartRate: 140, breathing: null });
    v.bed(ABNORMAL + 1, { heartRate: null });
    v.tick(ABNORMAL + 1 + ABSENT);
    v.bed(ABNORMAL + ABSENT + 10_000, { heartRate: 70 });
    v.tick(ABNORMAL + 3 * TREND);
    return v.all;
  };
  const b = scenarioVitals(false);
  assert.ok(dos(b).includes("raise:vital_abnormal") && dos(b).includes("raise:vital_absent") && dos(b).includes("trend"));
  assert.deepEqual(scenarioVitals(true), b);

  const scenarioInact = (rt: boolean) => {
    const night = { ...INACT, night: { fromMin: 22 * 60, toMin: 7 * 60 } };
    const i = inactRig(night, sh(19), rt);
    i.radar(sh(20), "r", { presence: true, motion: "moving" });
    for (let t = sh(20) + H; t <= sh(10, 0, 1); t += H / 2) i.tick(t);
    i.radar(sh(11, 0, 1), "k", { presence: true });
    return i.all;
  };
  const c = scenarioInact(false);
  assert.deepEqual(dos(c), ["raise:inactivity", "clear:inactivity"]);
  assert.deepEqual(scenarioInact(true), c);
});
