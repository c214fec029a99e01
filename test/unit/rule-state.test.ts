// The rules' state across a restart (invariant 9), piece by piece: each rule's restore, the behaviour windows
// round-tripped through the journal's store, the saved document's checks, when the state is written, what a
// failed write does, and that a valve close is handed to the bus before the state that follows it is taken.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createLogger } from "../../lib/daemon/logger.js";
import { Journal } from "../../gateway/src/journal/journal.js";
import * as gas from "../../gateway/src/rules/gas.js";
import * as smoke from "../../gateway/src/rules/smoke.js";
import * as sos from "../../gateway/src/rules/sos.js";
import * as inactivity from "../../gateway/src/rules/inactivity.js";
import { DEFAULT_BEHAVIOUR, DEFAULT_INACTIVITY, DEFAULT_ROOM } from "../../gateway/src/rules/behaviour-params.js";
import type { BehaviourDecision, RadarField, RadarInput } from "../../gateway/src/rules/radar-input.js";
import { BehaviourWatch } from "../../gateway/src/hub/behaviour-watch.js";
import { SafetyHub } from "../../gateway/src/hub/safety-hub.js";
import { StateKeeper } from "../../gateway/src/state/keeper.js";
import { decodeSnapshot, significantKey, type RulesState, type Snapshot } from "../../gateway/src/state/snapshot.js";
import { rulesSchema } from "../../gateway/src/config/schema.js";
import { loadProfiles } from "../../gateway/src/profiles/loader.js";
import { Bus } from "../../gateway/src/transports/modbus/bus.js";
import { SimLink } from "../../gateway/src/sim/sim-link.js";
import { simDeviceFor, type SimCoDetector, type SimDevice } from "../../gateway/src/sim/devices.js";
import { Device } from "../../gateway/src/devices/device.js";
import type { EventDraft } from "../../protocol/envelope.js";

const log = createLogger({ name: "test", level: "silent" });
const HUB = "unit-hub";
const T0 = Date.UTC(2026, 0, 10, 3, 0, 0); // 11:00 in Asia/Shanghai: inside the counted hours

function tempJournalPath(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), "anxin-state-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, "journal.db");
}

const FALL_RADAR: readonly RadarField[] = ["presence", "motion", "fall"];
const VITALS_RADAR: readonly RadarField[] = ["presence", "heartRate", "breathing", "inBed"];

/** A BehaviourWatch on a clock the test moves, recording what it journals. */
function watch(clock: { now: number }) {
  const drafts: EventDraft[] = [];
  const decisions: BehaviourDecision[] = [];
  const w = new BehaviourWatch({ params: DEFAULT_BEHAVIOUR, inactivity: DEFAULT_INACTIVITY, record: (d) => drafts.push(d), log, now: () => clock.now });
  w.onDecision = (d) => decisions.push(d);
  const at = (t: number, input: RadarInput) => {
    clock.now = t;
    const n = decisions.length;
    w.apply(input);
    return decisions.slice(n);
  };
  return { w, drafts, decisions, at };
}

const emptyRules = (): Pick<RulesState, "gas" | "smoke" | "sos"> => ({ gas: gas.initialState([]), smoke: smoke.initialSmokeState(), sos: sos.initialSosState() });

/** Saves `read()` through a real journal (its worker, its SQLite file), closes it, and reads back what a new start would. */
async function roundTrip(t: { after(fn: () => void): void }, read: () => RulesState, now: number): Promise<Snapshot> {
  const file = tempJournalPath(t);
  const j = await Journal.open({ path: file, hub: HUB });
  const keeper = new StateKeeper({ hub: HUB, boot: j.boot, read, now: () => now, log });
  j.setStateSource(keeper);
  j.stateChanged();
  await j.close();
  assert.equal(keeper.stats().writes, 1);
  const j2 = await Journal.open({ path: file, hub: HUB });
  const saved = j2.savedState;
  await j2.close();
  assert.ok(saved, "the state was committed");
  const d = decodeSnapshot(saved, HUB);
  assert.ok(d.ok, d.ok ? "" : d.reason);
  return d.snapshot;
}

// --- behaviour: pending windows through the store -------------------------------------------------------

test("a pending fall report round-trips through the journal's store and is raised at its original deadline, from its original start", async (t) => {
  const CONFIRM = DEFAULT_ROOM.fall.confirmMs;
  const clock = { now: T0 };
  const a = watch(clock);
  a.at(T0 - 5000, { type: "reading", device: "bath", room: "bathroom", gives: FALL_RADAR, presence: true, motion: "moving" });
  assert.deepEqual(a.at(T0, { type: "reading", device: "bath", room: "bathroom", gives: FALL_RADAR, fall: "fall", presence: true, motion: "still" }), []);
  const snap = await roundTrip(t, () => ({ ...emptyRules(), ...a.w.snapshot() }), T0 + 2000);
  assert.equal(snap.fall.devices.bath?.pendingSince, T0);

  // The hub is back 10 s after the report; the radar never repeats its flag, the elder lies still.
  clock.now = T0 + 10_000;
  const b = watch(clock);
  b.w.restore(snap, { savedAt: snap.savedAt, keep: () => true });
  assert.deepEqual(b.at(T0 + CONFIRM + 1000, { type: "tick" }), [], "not judged before the radar is heard again");
  const first = b.at(T0 + CONFIRM + 2000, { type: "reading", device: "bath", room: "bathroom", gives: FALL_RADAR, presence: true, motion: "still" });
  const raise = first.find((d) => d.do === "raise");
  assert.ok(raise && raise.do === "raise", `raised once heard, its deadline long past: ${JSON.stringify(first)}`);
  assert.equal(raise.alarm, "fall");
  assert.equal(raise.since, T0, "the same episode: from the original report");
  assert.equal(b.drafts.filter((d) => d.kind === "alarm").length, 1);

  // Heard before its deadline: raised at the original deadline, not a full window after the restart.
  const c = watch({ now: T0 + 10_000 });
  c.w.restore(snap, { savedAt: snap.savedAt, keep: () => true });
  assert.deepEqual(c.at(T0 + 11_000, { type: "reading", device: "bath", room: "bathroom", gives: FALL_RADAR, presence: true, motion: "still" }), []);
  assert.deepEqual(c.at(T0 + CONFIRM - 1, { type: "tick" }), []);
  const at = c.at(T0 + CONFIRM, { type: "tick" });
  assert.deepEqual(at.map((d) => d.do), ["raise"]);
  assert.equal((at[0] as { since: number }).since, T0);
});

test("a restored fall window is withdrawn if its radar goes offline before it is heard again; getting up after the restart withdraws it", () => {
  const clock = { now: T0 };
  const a = watch(clock);
  a.at(T0, { type: "reading", device: "bath", room: "bathroom", gives: FALL_RADAR, fall: "fall", presence: true, motion: "still" });
  const snap = JSON.parse(JSON.stringify({ ...emptyRules(), ...a.w.snapshot() })) as RulesState;

  const b = watch({ now: T0 + 5000 });
  b.w.restore(snap, { savedAt: T0, keep: () => true });
  const off = b.at(T0 + 6000, { type: "status", device: "bath", online: false });
  assert.deepEqual(off.map((d) => [d.do, (d as { reason?: string }).reason]), [["withdrawn", "offline"]]);
  assert.deepEqual(b.at(T0 + 60_000, { type: "tick" }), []);

  const c = watch({ now: T0 + 5000 });
  c.w.restore(snap, { savedAt: T0, keep: () => true });
  c.at(T0 + 6000, { type: "reading", device: "bath", room: "bathroom", gives: FALL_RADAR, presence: true, motion: "moving" });
  const up = c.at(T0 + 6000 + DEFAULT_ROOM.fall.getUpMs, { type: "reading", device: "bath", room: "bathroom", gives: FALL_RADAR, motion: "moving" });
  assert.deepEqual(up.map((d) => [d.do, (d as { reason?: string }).reason]), [["withdrawn", "got_up"]]);
});

test("vital-sign absence: a window already running keeps its start and is judged on the first fresh reading; a vital sign then restarts it", () => {
  const ABSENT = DEFAULT_ROOM.vitals.absentMs;
  const a = watch({ now: T0 });
  a.at(T0 - 1000, { type: "reading", device: "bed", room: "bedroom", gives: VITALS_RADAR, inBed: true, presence: true, heartRate: 60, breathing: 14 });
  a.at(T0, { type: "reading", device: "bed", room: "bedroom", gives: VITALS_RADAR, heartRate: null, breathing: null });
  const absent = JSON.parse(JSON.stringify({ ...emptyRules(), ...a.w.snapshot() })) as RulesState;
  assert.equal(absent.vitals.devices.bed?.absentSince, T0 - 1000, "the window runs from the last vital sign");

  // Back after the deadline: the first fresh reading decides. Without a vital sign: raised, original start.
  const b = watch({ now: T0 + ABSENT + 5000 });
  b.w.restore(absent, { savedAt: T0, keep: () => true });
  assert.deepEqual(b.at(T0 + ABSENT + 6000, { type: "tick" }), [], "nothing judged on the downtime alone");
  const r = b.at(T0 + ABSENT + 7000, { type: "reading", device: "bed", room: "bedroom", gives: VITALS_RADAR, heartRate: null, breathing: null });
  assert.deepEqual(r.map((d) => d.do), ["raise"]);
  assert.equal((r[0] as { since: number }).since, T0 - 1000);
  // With a vital sign: no alarm at all (the restart alone never raises one).
  const c = watch({ now: T0 + ABSENT + 5000 });
  c.w.restore(absent, { savedAt: T0, keep: () => true });
  assert.deepEqual(c.at(T0 + ABSENT + 7000, { type: "reading", device: "bed", room: "bedroom", gives: VITALS_RADAR, heartRate: 58, breathing: 13 }), []);
  assert.deepEqual(c.at(T0 + ABSENT + 8000, { type: "tick" }), []);

  // Vital signs still coming at the last save: the window's start is unknown, it restarts after the restart.
  const d = watch({ now: T0 });
  d.at(T0, { type: "reading", device: "bed", room: "bedroom", gives: VITALS_RADAR, inBed: true, presence: true, heartRate: 60, breathing: 14 });
  const flowing = JSON.parse(JSON.stringify({ ...emptyRules(), ...d.w.snapshot() })) as RulesState;
  const e = watch({ now: T0 + ABSENT * 3 });
  e.w.restore(flowing, { savedAt: T0, keep: () => true });
  const t1 = T0 + ABSENT * 3 + 1000;
  assert.deepEqual(e.at(t1, { type: "reading", device: "bed", room: "bedroom", gives: VITALS_RADAR, heartRate: null, breathing: null }), []);
  assert.deepEqual(e.at(t1 + ABSENT - 1, { type: "tick" }), []);
  assert.deepEqual(e.at(t1 + ABSENT, { type: "tick" }).filter((x) => x.do !== "trend").map((x) => x.do), ["raise"]);
});

test("raised behaviour alarms stay the same episodes: status shows them and the clear names the original since", () => {
  const a = watch({ now: T0 });
  a.at(T0, { type: "reading", device: "bath", room: "bathroom", gives: FALL_RADAR, fall: "fall", presence: true, motion: "still" });
  const raised = a.at(T0 + DEFAULT_ROOM.fall.confirmMs, { type: "tick" });
  assert.deepEqual(raised.map((d) => d.do), ["raise"]);
  const snap = JSON.parse(JSON.stringify({ ...emptyRules(), ...a.w.snapshot() })) as RulesState;
  const b = watch({ now: T0 + 60_000 });
  b.w.restore(snap, { savedAt: T0 + 31_000, keep: () => true });
  assert.deepEqual([...b.w.active.values()].map((x) => [x.alarm, x.device, x.since]), [["fall", "bath", T0]]);
  b.at(T0 + 61_000, { type: "reading", device: "bath", room: "bathroom", gives: FALL_RADAR, presence: true, motion: "moving" });
  const cleared = b.at(T0 + 61_000 + DEFAULT_ROOM.fall.getUpMs, { type: "reading", device: "bath", room: "bathroom", gives: FALL_RADAR, motion: "moving" });
  assert.deepEqual(cleared.map((d) => d.do), ["clear"]);
  assert.equal((cleared[0] as { since: number }).since, T0 + DEFAULT_ROOM.fall.confirmMs, "the raised alarm's own time, as before the restart");
  assert.equal(b.drafts.filter((d) => d.kind === "alarm").length, 0, "no second alarm");
  assert.equal(b.w.active.size, 0);
});

test("inactivity: a raised alarm stays; the downtime is not counted; a counted time saved just after a sign of life is not trusted", () => {
  const p = { ...DEFAULT_INACTIVITY, night: null };
  const s0 = inactivity.initialInactivityState(T0);
  const saved: inactivity.InactivityRuleState = {
    ...s0,
    lastActivityAt: T0,
    countedMs: 3 * 3600_000,
    countedTo: T0 + 3 * 3600_000,
    devices: { r: { senses: true, online: true, presence: true, motion: "still", room: "hall" } },
  };
  const later = T0 + 5 * 3600_000;
  const r = inactivity.restoreInactivityState(saved, later, true);
  assert.equal(r.countedMs, 3 * 3600_000);
  assert.equal(r.countedTo, later, "the downtime is not counted");
  assert.equal(r.devices.r?.online, false, "counting resumes when a device is heard again");
  assert.equal(r.devices.r?.presence, true, "what it last said is kept: the same still body is no sign of life");
  const step = inactivity.inactivityStep(r, p, { type: "tick" }, later + 3600_000);
  assert.equal(step.state.countedMs, 3 * 3600_000, "nothing counted while no device is heard");
  assert.equal(inactivity.restoreInactivityState(saved, later, false).countedMs, 0);
});

// --- gas/CO -------------------------------------------------------------------------------------------

const rules = rulesSchema.parse({});
const gp: gas.GasRuleParams = { gas: rules.gas, co: rules.co, staleMs: 10_000, valves: { v1: { ratedCloseMs: 5000, retryMs: 1000 } }, hasSiren: true };

test("gas/CO: an alarm, its valve latch and its proof survive; the clear hold restarts and needs fresh readings; no second raise", () => {
  let s = gas.initialState(["v1"]);
  let now = T0;
  const step = (input: gas.RuleInput) => {
    const r = gas.step(s, gp, input, now);
    s = r.state;
    return r.decisions;
  };
  assert.ok(step({ type: "detector", device: "co1", kind: "co", signals: { co_ppm: 350, alarm: false } }).some((d) => d.do === "raise"));
  now += 2000;
  step({ type: "valve", device: "v1", signals: { valve_closed: true, valve_open: false } });
  now += 1000;
  step({ type: "detector", device: "co1", kind: "co", signals: { co_ppm: 5, alarm: false } });
  now += gp.co.clearHoldMs - 500; // half a second from the clear when the hub dies
  step({ type: "detector", device: "co1", kind: "co", signals: { co_ppm: 5, alarm: false } });
  assert.ok(s.alarms.co?.belowSince !== null);
  const saved = JSON.parse(JSON.stringify(s)) as gas.GasRuleState;

  now += 3000; // down for 3 s
  const r = gas.restoreState(saved, gas.initialState(["v1"]), gp, now, () => true);
  s = r.state;
  assert.deepEqual(r.decisions.map((d) => d.do), ["close_valve", "siren"], "during an alarm the valve is commanded closed again and the siren wanted on");
  assert.equal(s.alarms.co?.since, T0);
  assert.equal(s.alarms.co?.belowSince, null, "the hold restarts");
  assert.equal(s.valves.v1?.commandedAt, T0, "the latch (and its proof) survive");
  assert.equal(s.valves.v1?.closed, true);
  assert.equal(gas.reopen(s, { knownDetectors: 1 }).ok, false, "reopen refused: the alarm is active");

  // The restored reading is stale: ticks alone never clear, however long.
  now += gp.co.clearHoldMs * 3;
  assert.deepEqual(step({ type: "tick" }), []);
  // Fresh readings below for the whole hold: cleared, as the original episode.
  step({ type: "detector", device: "co1", kind: "co", signals: { co_ppm: 4, alarm: false } });
  now += gp.co.clearHoldMs - 1;
  assert.deepEqual(step({ type: "detector", device: "co1", kind: "co", signals: { co_ppm: 4, alarm: false } }), []);
  now += 1;
  const cleared = step({ type: "detector", device: "co1", kind: "co", signals: { co_ppm: 4, alarm: false } });
  const clear = cleared.find((d) => d.do === "clear");
  assert.ok(clear && clear.do === "clear" && clear.since === T0, JSON.stringify(cleared));
  assert.equal(cleared.filter((d) => d.do === "raise").length, 0);
  assert.ok(s.valves.v1?.commandedAt !== null, "still latched after the clear: reopening is on site only");
});

test("gas/CO: a valve not proven closed gets a fresh verification window and a new close; a fault stays raised, not raised twice", () => {
  const saved: gas.GasRuleState = {
    ...gas.initialState(["v1"]),
    alarms: { gas: { since: T0, device: "lel1", trigger: "30 %LEL", peak: 30, belowSince: null } },
    valves: { v1: { commandedAt: T0, lastSentAt: T0 + 4000, attempts: 5, closed: false, verifiedAt: null, fault: "not confirmed closed within its rated 5000 ms", offline: false } },
    sirenOn: true,
  };
  const now = T0 + 60_000;
  const r = gas.restoreState(saved, gas.initialState(["v1"]), gp, now, () => true);
  assert.deepEqual(r.decisions.map((d) => d.do), ["close_valve", "siren"]);
  assert.equal(r.state.valves.v1?.commandedAt, now);
  const t = gas.step(r.state, gp, { type: "tick" }, now + 100);
  assert.deepEqual(t.decisions, [], "no second valve_fault, no false one either");
  const v = gas.step(t.state, gp, { type: "valve", device: "v1", signals: { valve_closed: true } }, now + 200);
  assert.deepEqual(v.decisions.map((d) => d.do), ["valve_verified", "valve_fault_cleared"]);
});

test("gas/CO: a clock behind the saved times restarts CO tier windows now; unknown devices are dropped; no alarm, no command", () => {
  const saved: gas.GasRuleState = {
    ...gas.initialState(["v1"]),
    detectors: {
      co1: { kind: "co", value: 120, flag: false, over: false, trigger: null, fault: false, offline: false, at: T0, tierSince: [null, T0 - 60_000, T0 - 60_000] },
      gone: { kind: "gas", value: 1, flag: false, over: false, trigger: null, fault: false, offline: false, at: T0, tierSince: [] },
    },
  };
  const behind = T0 - 3600_000;
  const r = gas.restoreState(saved, gas.initialState(["v1"]), gp, behind, (id) => id !== "gone");
  assert.deepEqual(r.decisions, []);
  assert.deepEqual(r.state.detectors.co1?.tierSince, [null, behind, behind]);
  assert.equal(r.state.detectors.gone, undefined);
  assert.equal(r.state.valves.v1?.commandedAt, null);
});

test("smoke and SOS: the smoke alarm needs every detector to report again; an SOS repeat window continues, one from the future is dropped", () => {
  const sm = smoke.smokeStep(smoke.initialSmokeState(), { type: "detector", device: "s1", smoke: true }, T0).state;
  const cleared = smoke.smokeStep(smoke.restoreSmokeState(sm), { type: "detector", device: "s2", smoke: false }, T0 + 1000);
  assert.deepEqual(cleared.decisions, [], "another detector's clear does not clear it");
  assert.deepEqual(smoke.smokeStep(cleared.state, { type: "detector", device: "s1", smoke: false }, T0 + 2000).decisions.map((d) => d.do), ["clear", "sirens"]);

  const p = sos.DEFAULT_SOS;
  const s = { last: { b1: { raisedAt: T0, presses: 2 }, b2: { raisedAt: T0 + 3600_000, presses: 1 } } };
  const r = sos.restoreSosState(s, p, T0 + 5000);
  assert.deepEqual(Object.keys(r.last), ["b1"]);
  assert.deepEqual(sos.sosPress(r, p, { device: "b1", action: "single" }, T0 + 6000).decisions.map((d) => d.do), ["chirp", "repeat"], "the same call");
  assert.deepEqual(sos.sosPress(r, p, { device: "b2", action: "single" }, T0 + 6000).decisions.map((d) => d.do), ["chirp", "raise"], "a clock gone back never swallows a call");
});

// --- the document -------------------------------------------------------------------------------------

test("decodeSnapshot: only a whole, well-formed document of this hub and version is used", () => {
  const body: RulesState = { ...emptyRules(), fall: { devices: {} }, vitals: { devices: {} }, inactivity: inactivity.initialInactivityState(T0), active: [] };
  const good = JSON.stringify({ v: 1, hub: HUB, boot: 3, savedAt: T0, ...body });
  assert.equal(decodeSnapshot(good, HUB).ok, true);
  const reason = (doc: string, hub = HUB) => {
    const d = decodeSnapshot(doc, hub);
    return d.ok ? "used" : d.reason;
  };
  assert.match(reason("{"), /not JSON/);
  assert.match(reason("[1]"), /not a JSON object/);
  assert.match(reason(good, "another"), /written by hub "unit-hub"/);
  assert.match(reason(good.replace('"v":1', '"v":2')), /format version 2/);
  assert.match(reason(good.replace('"sirenOn":false', '"sirenOn":"no"')), /wrong shape at gas\.sirenOn/);
  assert.match(reason(JSON.stringify({ v: 1, hub: HUB, boot: 1, savedAt: T0 })), /wrong shape/);
});

function hubRig(opts: { changed?: () => void } = {}) {
  const drafts: EventDraft[] = [];
  const hub = new SafetyHub({
    devices: [],
    buses: [],
    rules,
    journal: { append: async (d: EventDraft) => void drafts.push(d) },
    log,
    state: { changed: opts.changed ?? (() => {}) },
  });
  return { hub, drafts };
}

test("SafetyHub.restore: an unusable document is journaled as state_restore_failed and the hub starts clean; it never throws", () => {
  for (const [doc, why] of [["{ half", /not JSON/], [JSON.stringify({ v: 1, hub: "x", boot: 1 }), /written by hub "x"/], ['{"v":1,"hub":"h1","boot":1,"savedAt":1}', /wrong shape/]] as const) {
    const { hub, drafts } = hubRig();
    const r = hub.restore(doc, { hub: "h1" });
    assert.equal(r.outcome, "failed");
    assert.match(r.reason ?? "", why);
    const audit = drafts.find((d) => d.type === "state_restore_failed");
    assert.equal(audit?.kind, "audit");
    assert.equal(audit?.severity, "warning");
    assert.deepEqual(Object.keys(hub.rule.alarms), []);
  }
  const unreadable = hubRig();
  assert.equal(unreadable.hub.restore(null, { hub: "h1", readError: "database disk image is malformed" }).outcome, "failed");
  assert.ok(unreadable.drafts.some((d) => d.type === "state_restore_failed"));
  const none = hubRig();
  assert.deepEqual(none.hub.restore(null, { hub: "h1" }), { outcome: "none" });
  assert.deepEqual(none.drafts, []);
});

// --- when it is written, and a failed write ----------------------------------------------------------

test("StateKeeper: a significant change is written at once, readings only at the refresh period; a failure makes the next take whole", () => {
  let now = T0;
  let s: RulesState = { ...emptyRules(), fall: { devices: {} }, vitals: { devices: {} }, inactivity: inactivity.initialInactivityState(T0), active: [] };
  const k = new StateKeeper({ hub: HUB, boot: 1, read: () => s, now: () => now, log, refreshMs: 60_000 });
  assert.ok(k.take(), "the first take writes");
  assert.equal(k.take(), null, "nothing changed");
  // A reading: the detector's value and time change, nothing significant.
  s = { ...s, gas: { ...s.gas, detectors: { co1: { kind: "co", value: 3, flag: false, over: false, trigger: null, fault: false, offline: false, at: now, tierSince: [null, null, null] } } } };
  assert.ok(k.take(), "a new detector is significant");
  now += 1000;
  s = { ...s, gas: { ...s.gas, detectors: { co1: { ...s.gas.detectors.co1!, value: 4, at: now } } } };
  assert.equal(k.take(), null, "a new reading alone waits for the refresh");
  now += 60_000;
  const refreshed = k.take();
  assert.ok(refreshed && refreshed.includes('"value":4'), "written at the refresh period");
  // A CO tier window opening is significant.
  s = { ...s, gas: { ...s.gas, detectors: { co1: { ...s.gas.detectors.co1!, value: 120, tierSince: [null, now, now] } } } };
  assert.ok(k.take());
  k.done(new Error("disk I/O error"));
  assert.equal(k.stats().failures, 1);
  const again = k.take();
  assert.ok(again, "after a failure the next take writes whatever it finds");
  const d = decodeSnapshot(again, HUB);
  assert.ok(d.ok);
  assert.equal(d.snapshot.savedAt, now);
});

test("a state write the disk refuses is counted and retried by the journal, never thrown; it commits once the disk is back", async (t) => {
  const file = tempJournalPath(t);
  const j = await Journal.open({ path: file, hub: HUB });
  let s: RulesState = { ...emptyRules(), fall: { devices: {} }, vitals: { devices: {} }, inactivity: inactivity.initialInactivityState(T0), active: [] };
  const keeper = new StateKeeper({ hub: HUB, boot: j.boot, read: () => s, now: () => T0, log });
  j.setStateSource(keeper);
  await j._testPragma("query_only = 1");
  s = { ...s, gas: { ...s.gas, alarms: { co: { since: T0, device: "co1", trigger: "350 ppm", peak: 350, belowSince: null } } } };
  assert.doesNotThrow(() => j.stateChanged());
  const append = j.append({ kind: "alarm", type: "co", severity: "critical", device: "co1" }).catch((e: Error) => e);
  const deadline = Date.now() + 5000;
  while (keeper.stats().failures === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(keeper.stats().failures >= 1, "the failure was counted");
  assert.ok((await append) instanceof Error, "the event commit failed with it (the same transaction)");
  await j._testPragma("query_only = 0");
  while (keeper.stats().writes === 0 && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 20));
  assert.ok(keeper.stats().writes >= 1, "retried and committed");
  await j.close();
  const j2 = await Journal.open({ path: file, hub: HUB });
  const d = decodeSnapshot(j2.savedState ?? "", HUB);
  await j2.close();
  assert.ok(d.ok && d.snapshot.gas.alarms.co?.since === T0);
});

// --- the order: actuators first, then the state -------------------------------------------------------

test("a valve close is handed to the bus before the state that knows of the alarm is taken; taking it costs microseconds", async (t) => {
  const { profiles } = await loadProfiles(path.resolve("device-profiles"));
  const sims = new Map<number, SimDevice>([[1, simDeviceFor("greystone-cmd5b4")], [3, simDeviceFor("rotork-iq-modbus")]]);
  const link = new SimLink(sims, 9600);
  const order: string[] = [];
  const write = link.write.bind(link);
  link.write = (unit, fc, address, value, timeoutMs) => {
    if (unit === 3) order.push("bus: valve command written");
    return write(unit, fc, address, value, timeoutMs);
  };
  const bus = new Bus(link, { name: "line1", quietMs: 50, reconnectMinMs: 100, reconnectMaxMs: 1000, now: Date.now });
  await bus.start();
  t.after(() => bus.stop());
  const dev = (id: string, profile: string, unit: number) => new Device({ id, profile: profiles.get(profile)!, bus, unit, room: "kitchen", pollMs: 100, offlineAfterMs: 5000, timeoutMs: 500 });
  const co = dev("co1", "greystone-cmd5b4", 1);
  const valve = dev("v1", "rotork-iq-modbus", 3);
  const command = valve.command.bind(valve);
  valve.command = (c, priority) => {
    if (c === "close") order.push(`valve close handed to the bus (queued ${bus.queued})`);
    return command(c, priority);
  };
  const takes: number[] = [];
  const hub = new SafetyHub({
    devices: [co, valve], buses: [bus], rules, log,
    journal: { append: async () => {} },
    // A store that writes the moment it is told (stricter than the journal, which takes the state at its next
    // flush, a microtask later): the hub must tell it only after the pass's actuator commands went to the bus.
    state: {
      changed: () => {
        const t0 = performance.now();
        const doc = keeper.take();
        takes.push(performance.now() - t0);
        if (doc?.includes('"co":{"since"')) order.push("state with the alarm taken");
      },
    },
  });
  const keeper = new StateKeeper({ hub: "h", boot: 1, read: () => hub.rulesState(), now: Date.now, log });
  hub.start();
  t.after(() => hub.stop());
  const deadline = Date.now() + 5000;
  while (!hub.poller.devices().every((d) => hub.health(d.id)?.status === "online") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  (sims.get(1) as SimCoDetector).setPpm(400);
  while (!order.includes("bus: valve command written") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const handed = order.findIndex((o) => o.startsWith("valve close handed"));
  const taken = order.indexOf("state with the alarm taken");
  assert.ok(handed >= 0 && taken > handed, `close first, state after: ${JSON.stringify(order)}`);
  assert.ok(order.includes("bus: valve command written"));
  const sorted = [...takes].sort((a, b) => a - b);
  t.diagnostic(`state take (key + serialise when due): median ${(sorted[Math.floor(sorted.length / 2)]! * 1000).toFixed(0)} µs, max ${(sorted[sorted.length - 1]! * 1000).toFixed(0)} µs over ${takes.length} takes; order ${JSON.stringify(order)}`);
});

test("significantKey ignores readings: a detector's value, a valve's retry bookkeeping, counted inactivity", () => {
  const base: RulesState = { ...emptyRules(), fall: { devices: {} }, vitals: { devices: {} }, inactivity: inactivity.initialInactivityState(T0), active: [] };
  const withValve = { ...base, gas: { ...base.gas, valves: { v1: { commandedAt: T0, lastSentAt: T0, attempts: 1, closed: false, verifiedAt: null, fault: null, offline: false } } } };
  const retried = { ...withValve, gas: { ...withValve.gas, valves: { v1: { ...withValve.gas.valves.v1, lastSentAt: T0 + 1000, attempts: 2 } } }, inactivity: { ...base.inactivity, countedMs: 5000, countedTo: T0 + 5000 } };
  assert.equal(significantKey(withValve), significantKey(retried));
  const proven = { ...withValve, gas: { ...withValve.gas, valves: { v1: { ...withValve.gas.valves.v1, closed: true, verifiedAt: T0 + 2000 } } } };
  assert.notEqual(significantKey(withValve), significantKey(proven));
});
