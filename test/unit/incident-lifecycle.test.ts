// The incident lifecycle as a pure function: every allowed move, every refusal, and the rules that are
// easy to get wrong (a dispatch confirms, close needs the follow-up, maintenance incidents differ).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  FALSE_ALARM_REASONS,
  INCIDENT_STATES,
  JOINABLE_STATES,
  stopsEscalation,
  transition,
  type IncidentAction,
  type IncidentState,
} from "../../relay/src/incidents/lifecycle.js";

const alarm = { type: "smoke", followUpRecorded: false };
const visited = { type: "smoke", followUpRecorded: true };
const offline = { type: "hub_offline", followUpRecorded: false };

function to(from: IncidentState, a: IncidentAction, ctx = alarm): IncidentState {
  const r = transition(from, a, ctx);
  assert.ok(r.ok, `${from} --${a.kind}--> refused: ${r.ok ? "" : r.error}`);
  return r.to;
}
function refused(from: IncidentState, a: IncidentAction, ctx = alarm, why?: RegExp): void {
  const r = transition(from, a, ctx);
  assert.equal(r.ok, false, `${from} --${a.kind}--> should be refused`);
  if (why && !r.ok) assert.match(r.error, why);
}

test("the whole path of a real emergency: received → … → closed", () => {
  let s: IncidentState = "received";
  s = to(s, { kind: "start_confirming" });
  assert.equal(s, "confirming");
  s = to(s, { kind: "confirm" });
  assert.equal(s, "confirmed");
  s = to(s, { kind: "record_dispatch", service: "fire_119" });
  assert.equal(s, "responding");
  s = to(s, { kind: "record_dispatch", service: "door" });
  assert.equal(s, "responding", "a second dispatch keeps it responding");
  s = to(s, { kind: "record_ticket", centre: "district", ref: "D-1" });
  assert.equal(s, "coordinated");
  s = to(s, { kind: "record_dispatch", service: "ambulance_120" });
  assert.equal(s, "coordinated", "a later dispatch does not step back");
  s = to(s, { kind: "record_ticket", centre: "street", ref: "S-1" });
  s = to(s, { kind: "resolve" });
  assert.equal(s, "resolved");
  s = to(s, { kind: "follow_up_due" });
  assert.equal(s, "follow_up_due");
  refused(s, { kind: "close" }, alarm, /follow-up/);
  s = to(s, { kind: "record_follow_up" });
  assert.equal(s, "follow_up_due");
  s = to(s, { kind: "close" }, visited);
  assert.equal(s, "closed");
});

test("a false alarm, from each state where it can be found out, then closed; never later", () => {
  for (const from of ["received", "confirming", "confirmed"] as const) {
    for (const reason of FALSE_ALARM_REASONS) assert.equal(to(from, { kind: "mark_false_alarm", reason }), "false_alarm");
  }
  for (const from of ["responding", "coordinated", "resolved", "follow_up_due", "closed", "false_alarm"] as const)
    refused(from, { kind: "mark_false_alarm", reason: "cooking_smoke" });
  assert.equal(to("false_alarm", { kind: "close" }), "closed", "no follow-up visit needed for a false alarm");
  refused("false_alarm", { kind: "confirm" });
  refused("false_alarm", { kind: "record_dispatch", service: "door" });
});

test("start_confirming moves only a received incident and is a no-op elsewhere", () => {
  assert.deepEqual(transition("received", { kind: "start_confirming" }, alarm), { ok: true, to: "confirming", changed: true });
  for (const s of INCIDENT_STATES.filter((x) => x !== "received")) assert.deepEqual(transition(s, { kind: "start_confirming" }, alarm), { ok: true, to: s, changed: false });
});

test("dispatching help confirms by itself; tickets need a confirmed emergency", () => {
  assert.equal(to("received", { kind: "record_dispatch", service: "fire_119" }), "responding");
  assert.equal(to("confirming", { kind: "record_dispatch", service: "gas_company" }), "responding");
  refused("received", { kind: "record_ticket", centre: "street", ref: "x" });
  refused("confirming", { kind: "record_ticket", centre: "street", ref: "x" });
  assert.equal(to("confirmed", { kind: "record_ticket", centre: "street", ref: "x" }), "coordinated");
});

test("resolve needs a confirmed emergency; close needs resolution and the visit", () => {
  refused("received", { kind: "resolve" });
  refused("confirming", { kind: "resolve" });
  for (const s of ["confirmed", "responding", "coordinated"] as const) assert.equal(to(s, { kind: "resolve" }), "resolved");
  refused("resolved", { kind: "close" }, alarm, /follow-up/);
  assert.equal(to("resolved", { kind: "close" }, visited), "closed");
  assert.equal(to("resolved", { kind: "record_follow_up" }), "follow_up_due");
  for (const s of ["received", "confirming", "confirmed", "responding", "coordinated", "closed"] as const) refused(s, { kind: "close" }, visited);
  refused("closed", { kind: "confirm" });
  refused("closed", { kind: "resolve" });
  refused("closed", { kind: "record_follow_up" });
  refused("confirmed", { kind: "follow_up_due" });
  refused("confirmed", { kind: "record_follow_up" });
});

test("maintenance (hub_offline): resolved from the calls stage, closed without a visit, never a false alarm", () => {
  assert.equal(to("received", { kind: "resolve" }, offline), "resolved");
  assert.equal(to("confirming", { kind: "resolve" }, offline), "resolved");
  assert.equal(to("resolved", { kind: "close" }, offline), "closed");
  refused("resolved", { kind: "follow_up_due" }, offline, /no follow-up/);
  refused("confirming", { kind: "mark_false_alarm", reason: "device_fault" }, offline, /not an alarm/);
});

test("every state × action pair answers without throwing, and refusals say what and where", () => {
  const actions: IncidentAction[] = [
    { kind: "start_confirming" },
    { kind: "confirm" },
    { kind: "mark_false_alarm", reason: "other" },
    { kind: "record_dispatch", service: "police_110" },
    { kind: "record_ticket", centre: "district", ref: "r" },
    { kind: "resolve" },
    { kind: "follow_up_due" },
    { kind: "record_follow_up" },
    { kind: "close" },
  ];
  let allowed = 0;
  for (const s of INCIDENT_STATES)
    for (const a of actions)
      for (const ctx of [alarm, visited, offline]) {
        const r = transition(s, a, ctx);
        if (r.ok) {
          allowed++;
          assert.ok(INCIDENT_STATES.includes(r.to));
        } else assert.ok(r.error.length > 5);
      }
  assert.ok(allowed > 20);
  // Nothing leaves closed.
  for (const a of actions.filter((x) => x.kind !== "start_confirming")) for (const ctx of [alarm, visited, offline]) assert.equal(transition("closed", a, ctx).ok, false);
});

test("joinable states and where the call tree stops", () => {
  assert.deepEqual([...JOINABLE_STATES].sort(), ["confirmed", "confirming", "coordinated", "received", "responding"]);
  assert.equal(stopsEscalation("received"), false);
  assert.equal(stopsEscalation("confirming"), false);
  for (const s of ["confirmed", "false_alarm", "responding", "coordinated", "resolved", "follow_up_due", "closed"] as const) assert.equal(stopsEscalation(s), true);
});
