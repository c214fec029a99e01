// The hub skips the behaviour rules' 200 ms tick while fallTickIdle and vitalsTickIdle hold, and until
// inactivityDueAt (gateway/src/hub/behaviour-watch.ts). That is only sound if a skipped tick changes nothing:
// an idle fall or vitals state is left as it is (the same object) by a tick at any later time, a skipped
// inactivity tick decides nothing and its counted time is made up by the next step, and the inactivity alarm
// still comes. Random homes (falls reported, maybes and clears, moving / still / nobody, radars that cannot see
// motion, dangerous rooms, vital signs in and out of range, in and out of bed, devices going offline and back)
// drive the real rules; the predicates must also not be trivially true, and skipping must not change what the
// rules decide.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fallStep, fallTickIdle, initialFallState } from "../../gateway/src/rules/fall.js";
import { initialVitalsState, vitalsStep, vitalsTickIdle } from "../../gateway/src/rules/vitals.js";
import { inactivityDueAt, inactivityStep, initialInactivityState, type InactivityRuleState } from "../../gateway/src/rules/inactivity.js";
import { DEFAULT_BEHAVIOUR, DEFAULT_INACTIVITY, type BehaviourParams, type InactivityParams } from "../../gateway/src/rules/behaviour-params.js";
import type { BehaviourDecision, BehaviourStep, RadarField, RadarInput } from "../../gateway/src/rules/radar-input.js";
import { seededRandom } from "../support/prng.js";

/** Short windows, so they open and close within a run; two dangerous rooms; vitals windows shorter and longer than the trend's. */
const params: BehaviourParams = {
  defaults: {
    fall: { confirmMs: 4000, getUpMs: 1500 },
    stillness: { dangerous: false, windowMs: 20_000 },
    vitals: { ...DEFAULT_BEHAVIOUR.defaults.vitals, absentMs: 8000, abnormalMs: 15_000, trendEveryMs: 10_000 },
  },
  rooms: {
    bath: { stillness: { dangerous: true, windowMs: 12_000 } },
    kitchen: { stillness: { dangerous: true }, fall: { confirmMs: 6000 } },
    bedroom: { vitals: { absentMs: 5000, trendEveryMs: 6000 } },
    // Windows longer than the trend interval: an absence or abnormal run outlives the open trend.
    living: { vitals: { absentMs: 25_000, abnormalMs: 30_000, trendEveryMs: 5000 } },
  },
};

interface Device {
  id: string;
  room: string | undefined;
  gives: RadarField[];
  /** Its vital signs are mostly out of range (so abnormal runs get long enough). */
  sick: boolean;
}

const PROFILES: RadarField[][] = [
  ["presence", "motion", "fall"], // a UART fall radar
  ["presence", "fall"], // a Zigbee fall radar: cannot see getting up
  ["presence", "motion", "heartRate", "breathing", "inBed"], // a sleep radar
  ["presence", "heartRate", "breathing"], // vitals without in-bed: presence stands in
  ["presence"], // a presence sensor
];

function randomHome(rnd: () => number): Device[] {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const n = 2 + Math.floor(rnd() * 2);
  return Array.from({ length: n }, (_, i) => ({ id: `r${i}`, room: pick([undefined, "bath", "kitchen", "bedroom", "living"]), gives: pick(PROFILES), sick: rnd() < 0.4 }));
}

function randomInput(rnd: () => number, home: Device[]): RadarInput {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const r = rnd();
  if (r < 0.15) return { type: "tick" };
  const dev = pick(home);
  const room = dev.room !== undefined && rnd() < 0.8 ? { room: dev.room } : {};
  if (r < 0.25) return { type: "status", device: dev.id, ...room, online: rnd() < 0.6 };
  const input: Extract<RadarInput, { type: "reading" }> = { type: "reading", device: dev.id, ...room, gives: dev.gives };
  for (const f of dev.gives) {
    if (rnd() < 0.3) continue;
    if (f === "presence") input.presence = rnd() < 0.7;
    if (f === "motion") input.motion = pick(["moving", "still", "still", "none"] as const);
    if (f === "fall") input.fall = pick(["fall", "fall", "maybe", "clear", "clear"] as const);
    if (f === "heartRate") input.heartRate = pick(dev.sick ? [null, 30, 35, 140, 150, 75] : [0, null, 35, 62, 75, 88, 140]);
    if (f === "breathing") input.breathing = pick(dev.sick ? [null, 4, 5, 35, 16] : [0, null, 5, 12, 16, 22, 35]);
    if (f === "inBed") input.inBed = rnd() < 0.6;
  }
  return input;
}

/** Mostly readings seconds apart; now and then a quiet spell long enough for windows to close. */
const gap = (rnd: () => number): number => (rnd() < 0.1 ? 5000 + Math.floor(rnd() * 40_000) : Math.floor(rnd() * 3000));

const LATER = [1, 200, 999, 1000, 1500, 4001, 6001, 8001, 12_001, 15_001, 20_001, 60_000, 3_600_000, 86_400_000];

type Step<S> = (s: S, input: RadarInput, now: number) => BehaviourStep<S>;

/** Runs random homes; checks every accepted state against later ticks, counts rejected ones a tick changes. */
function checkIdle<S>(seed: number, init: () => S, step: Step<S>, idle: (s: S) => boolean) {
  const rnd = seededRandom(seed);
  let accepted = 0;
  let rejected = 0;
  let rejectedTimed = 0;
  for (let h = 0; h < 300; h++) {
    const home = randomHome(rnd);
    let state = init();
    let now = 1_000_000;
    for (let i = 0; i < 80; i++) {
      now += gap(rnd);
      state = step(state, randomInput(rnd, home), now).state;
      if (idle(state)) {
        accepted++;
        for (const dt of LATER) {
          const r = step(state, { type: "tick" }, now + dt);
          assert.deepEqual(r.decisions, [], `home ${h} step ${i}: a tick ${dt} ms later decided something`);
          assert.ok(r.state === state, `home ${h} step ${i}: a tick ${dt} ms later changed the state`);
        }
      } else {
        rejected++;
        if (LATER.some((dt) => { const r = step(state, { type: "tick" }, now + dt); return r.state !== state || r.decisions.length > 0; })) rejectedTimed++;
      }
    }
  }
  return { accepted, rejected, rejectedTimed };
}

test("fall: whenever fallTickIdle holds, a tick at any later time returns the same state and decides nothing", () => {
  const c = checkIdle(21, initialFallState, (s, i, t) => fallStep(s, params, i, t), fallTickIdle);
  console.log(`fall: ${c.accepted} idle states accepted, ${c.rejected} rejected (${c.rejectedTimed} of them changed by a later tick)`);
  assert.ok(c.accepted > 2000 && c.rejected > 2000, `accepted ${c.accepted}, rejected ${c.rejected}`);
  assert.ok(c.rejectedTimed > 0);
});

test("vitals: whenever vitalsTickIdle holds, a tick at any later time returns the same state and decides nothing", () => {
  const c = checkIdle(22, initialVitalsState, (s, i, t) => vitalsStep(s, params, i, t), vitalsTickIdle);
  console.log(`vitals: ${c.accepted} idle states accepted, ${c.rejected} rejected (${c.rejectedTimed} of them changed by a later tick)`);
  assert.ok(c.accepted > 2000 && c.rejected > 2000, `accepted ${c.accepted}, rejected ${c.rejected}`);
  assert.ok(c.rejectedTimed > 0);
});

const NIGHTS: InactivityParams["night"][] = [
  { fromMin: 22 * 60, toMin: 7 * 60 }, // wraps past midnight
  { fromMin: 60, toMin: 5 * 60 },
  { fromMin: 600, toMin: 600 }, // from == to: no night
  null,
];

/** Random homes for the inactivity rule; `visit` sees every state a step leaves, with its params. */
function inactivityStates(seed: number, visit: (s: InactivityRuleState, p: InactivityParams, rnd: () => number) => void): void {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  for (let h = 0; h < 70; h++) {
    const p: InactivityParams = {
      ...DEFAULT_INACTIVITY,
      enabled: rnd() < 0.85,
      spanMs: (5 + Math.floor(rnd() * 40)) * 60_000,
      night: pick(NIGHTS),
      timeZone: pick(["Asia/Shanghai", "UTC"]),
    };
    const home = randomHome(rnd);
    let now = Date.UTC(2024, 5, 1) + Math.floor(rnd() * 86_400_000);
    let s = initialInactivityState(now);
    for (let i = 0; i < 60; i++) {
      now += rnd() < 0.15 ? Math.floor(rnd() * 6 * 3_600_000) : Math.floor(rnd() * 10 * 60_000);
      s = inactivityStep(s, p, rnd() < 0.3 ? { type: "tick" } : randomInput(rnd, home), now).state;
      visit(s, p, rnd);
    }
  }
}

test("inactivity: a tick before inactivityDueAt decides nothing", () => {
  let finite = 0;
  inactivityStates(31, (s, p, rnd) => {
    const due = inactivityDueAt(s, p);
    if (Number.isFinite(due)) finite++;
    // Nothing can raise while due is Infinity: a day of clock, sampled sparsely (far ticks are the costly ones).
    const end = Number.isFinite(due) ? due : s.countedTo + 86_400_000;
    const n = Number.isFinite(due) ? 4 : 1;
    const ts = [s.countedTo, s.countedTo + 1, end - 1, ...Array.from({ length: n }, () => s.countedTo + Math.floor(rnd() * (end - s.countedTo)))];
    for (const t of ts.filter((t) => t >= s.countedTo && t < end)) {
      assert.deepEqual(inactivityStep(s, p, { type: "tick" }, t).decisions, [], `a tick at ${t} (due ${due}) decided something`);
    }
  });
  console.log(`inactivity: ${finite} states with a finite due time checked`);
  assert.ok(finite > 500, `${finite} states with a due time`);
});

test("inactivity: ticking at t1 then t2 counts the same as ticking once at t2 (so skipped ticks are made up)", () => {
  inactivityStates(32, (s, p, rnd) => {
    const t1 = s.countedTo + Math.floor(rnd() * 4 * 3_600_000);
    const t2 = t1 + 1 + Math.floor(rnd() * 12 * 3_600_000);
    const twice = inactivityStep(inactivityStep(s, p, { type: "tick" }, t1).state, p, { type: "tick" }, t2).state;
    const once = inactivityStep(s, p, { type: "tick" }, t2).state;
    assert.equal(twice.countedMs, once.countedMs, `ticks at ${t1} and ${t2} from ${s.countedTo}`);
    if (t1 < inactivityDueAt(s, p)) assert.deepEqual(twice, once);
  });
});

test("inactivity: ticking only at inactivityDueAt still raises the alarm, within span + a day of clock", () => {
  let raised = 0;
  inactivityStates(33, (s0, p) => {
    let s = s0;
    let due = inactivityDueAt(s, p);
    if (!Number.isFinite(due)) return;
    const limit = s0.countedTo + p.spanMs + 86_400_000;
    let t = s.countedTo;
    for (;;) {
      t = Math.max(due, t + 200);
      assert.ok(t <= limit, `no alarm by ${t} from a state counted ${s0.countedMs} ms to ${s0.countedTo}`);
      const r = inactivityStep(s, p, { type: "tick" }, t);
      if (r.decisions.some((d) => d.do === "raise" && d.alarm === "inactivity")) break;
      s = r.state;
      due = inactivityDueAt(s, p);
      assert.ok(Number.isFinite(due), "a tick made the alarm impossible");
    }
    raised++;
  });
  console.log(`inactivity: ${raised} alarms reached ticking only when due`);
  assert.ok(raised > 500, `${raised} alarms reached`);
});

test("ticking on the 200 ms grid only while the rule is not idle decides exactly what ticking always does", () => {
  const rnd = seededRandom(41);
  type Rule = { step: Step<unknown>; idle: (s: unknown) => boolean; init: () => unknown };
  const rules: Rule[] = [
    { step: (s, i, t) => fallStep(s as ReturnType<typeof initialFallState>, params, i, t), idle: (s) => fallTickIdle(s as ReturnType<typeof initialFallState>), init: initialFallState },
    { step: (s, i, t) => vitalsStep(s as ReturnType<typeof initialVitalsState>, params, i, t), idle: (s) => vitalsTickIdle(s as ReturnType<typeof initialVitalsState>), init: initialVitalsState },
  ];
  let skipped = 0;
  for (let h = 0; h < 80; h++) {
    const home = randomHome(rnd);
    const inputs: { at: number; input: RadarInput }[] = [];
    let now = 1_000_000;
    for (let i = 0; i < 80; i++) inputs.push({ at: (now += gap(rnd)), input: randomInput(rnd, home) });
    for (const rule of rules) {
      const runs = [false, true].map((skip) => {
        let s = rule.init();
        const out: { at: number; d: BehaviourDecision }[] = [];
        const go = (input: RadarInput, at: number) => {
          const r = rule.step(s, input, at);
          s = r.state;
          for (const d of r.decisions) out.push({ at, d });
        };
        let grid = 1_000_000;
        for (const { at, input } of [...inputs, { at: now + 60_000, input: { type: "tick" } as RadarInput }]) {
          for (; grid < at; grid += 200) {
            if (skip && rule.idle(s)) skipped++;
            else go({ type: "tick" }, grid);
          }
          go(input, at);
        }
        return { out, s };
      });
      assert.deepEqual(runs[1]!.out, runs[0]!.out, `home ${h}: skipping idle ticks changed the decisions`);
      assert.deepEqual(runs[1]!.s, runs[0]!.s, `home ${h}: skipping idle ticks changed the final state`);
    }
  }
  console.log(`grid: ${skipped} idle ticks skipped`);
  assert.ok(skipped > 10_000, `${skipped} ticks skipped`);
});
