// What an incident update carries for a destination without free text: codes, ids, times and counts; an
// operator named by role and token id; free text (and any detail key not known to be structured) left out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeReason, FREE_TEXT_DETAIL_KEYS, incidentPayload, structuredActor, structuredDetail } from "../../relay/src/incidents/forward-payload.js";
import { IncidentForwarding } from "../../relay/src/incidents/forwarding.js";
import type { TimelineEntry } from "../../relay/src/incidents/repo.js";

const INCIDENT = { id: "01JINC", hub: "hub-1", type: "smoke", severity: "critical", state: "follow_up_due", openedAt: 1000, falseAlarmReason: null };
const entry = (o: Partial<TimelineEntry> = {}): TimelineEntry => ({ id: "01JENTRY", at: 2000, actor: "operator:wang.li@district", kind: "transition", from: "resolved", to: "follow_up_due", cause: "record_follow_up", detail: null, ...o });

test("structuredDetail keeps codes, ids and numbers and drops every free-text key and anything unknown", () => {
  const detail = {
    service: "door",
    outcome: "needs_support",
    reason: "cooking_smoke",
    centre: "district",
    eventId: "01JEVENT0000000000000000000",
    device: "smoke-1",
    why: ["another_device", "higher_severity"],
    attemptId: "01JINC:0:1:son",
    role: "emergency_contact",
    target: "son",
    digits: "1",
    step: 2,
    restartAtStep: null,
    note: "her son Li has a key",
    summary: "kitchen fire put out",
    visitedBy: "community worker Liu",
    by: "committee member Zhou",
    serviceRef: "119-7781",
    ref: "QX-2026-001",
    provider: "rejected: +8613800000001 is not reachable",
    error: "rejected by carrier",
    somethingNew: "could be anything",
  };
  assert.deepEqual(structuredDetail(detail), {
    service: "door",
    outcome: "needs_support",
    reason: "cooking_smoke",
    centre: "district",
    eventId: "01JEVENT0000000000000000000",
    device: "smoke-1",
    why: ["another_device", "higher_severity"],
    attemptId: "01JINC:0:1:son",
    role: "emergency_contact",
    target: "son",
    digits: "1",
    step: 2,
    restartAtStep: null,
  });
  for (const k of FREE_TEXT_DETAIL_KEYS) assert.ok(k in detail, `the test covers ${k}`);
  // A structured key holding prose (or a number someone typed) is not forwarded either.
  assert.equal(structuredDetail({ reason: "Mrs Wang was cooking", digits: "13800000001", step: "two" }), null);
  assert.equal(structuredDetail({ note: "only a note" }), null);
  assert.equal(structuredDetail(null), null);
});

test("structuredActor names who acted by role and id, never by a name", () => {
  assert.equal(structuredActor("operator:wang.li@district", "01JTOKEN"), "operator:01JTOKEN");
  assert.equal(structuredActor("admin:zhang", undefined), "admin", "an unknown token: the role alone");
  assert.equal(structuredActor("operator:wang li", "not an id!"), "operator");
  assert.equal(structuredActor("cli:wangli"), "cli");
  assert.equal(structuredActor("system"), "system");
  assert.equal(structuredActor("system:escalation"), "system:escalation");
  assert.equal(structuredActor("elder"), "elder");
  assert.equal(structuredActor("hub:hub-1"), "hub:hub-1");
  assert.equal(structuredActor("emergency_contact:son"), "emergency_contact:son");
  assert.equal(structuredActor("volunteer:Chen Jie"), "volunteer", "not an id: the role alone");
  assert.equal(structuredActor("Wang Lan"), "unknown");
});

test("closeReason: a code for why a closed incident was closed", () => {
  assert.equal(closeReason({ ...INCIDENT, state: "resolved" }), null);
  assert.equal(closeReason({ ...INCIDENT, state: "closed" }), "follow_up_done");
  assert.equal(closeReason({ ...INCIDENT, state: "closed", falseAlarmReason: "device_test" }), "false_alarm");
  assert.equal(closeReason({ ...INCIDENT, type: "hub_offline", state: "closed" }), "maintenance_resolved");
});

test("incidentPayload: the same update with and without free text", () => {
  const e = entry({ detail: { visitedBy: "community worker Liu", outcome: "well", note: "all fine" } });
  const full = incidentPayload(INCIDENT, e, {}, { freeText: true, actor: e.actor });
  const bare = incidentPayload(INCIDENT, e, {}, { freeText: false, actor: "operator:01JTOKEN" });
  assert.deepEqual(full.update, { id: "01JENTRY", kind: "transition", from: "resolved", to: "follow_up_due", actor: "operator:wang.li@district", cause: "record_follow_up", at: 2000, detail: { visitedBy: "community worker Liu", outcome: "well", note: "all fine" } });
  assert.deepEqual(bare.update, { id: "01JENTRY", kind: "transition", from: "resolved", to: "follow_up_due", actor: "operator:01JTOKEN", cause: "record_follow_up", at: 2000, detail: { outcome: "well" } });
  assert.equal(full.freeText, true);
  assert.equal(bare.freeText, false);
  assert.deepEqual(bare.incident, { ...INCIDENT, falseAlarmReason: null, closeReason: null });
  // The opening's address goes to every destination the opening goes to: responders need it.
  const opening = incidentPayload(INCIDENT, entry({ to: "received" }), { address: "Room 302", riskLevel: "high" }, { freeText: false, actor: "hub:hub-1" });
  assert.deepEqual([opening.location, opening.riskLevel], [{ address: "Room 302" }, "high"]);
});

test("IncidentForwarding enqueues, per destination, the payload that destination may receive", async () => {
  const got: Array<{ destination: string; idempotencyKey: string; payload: any }> = [];
  const f = new IncidentForwarding(async (_db, item) => void got.push(item), ["street_centre", { name: "duty_platform", freeText: true }, { name: "district_centre", freeText: false }]);
  const e = entry({ actor: "system", detail: { summary: "kitchen fire put out", service: "fire_119" } });
  await f.push(undefined as never, { ...INCIDENT, state: "resolved" }, e);
  assert.deepEqual(
    got.map((g) => [g.destination, g.idempotencyKey, g.payload.freeText, g.payload.update.detail]),
    [
      ["street_centre", "01JENTRY:street_centre", false, { service: "fire_119" }],
      ["duty_platform", "01JENTRY:duty_platform", true, { summary: "kitchen fire put out", service: "fire_119" }],
      ["district_centre", "01JENTRY:district_centre", false, { service: "fire_119" }],
    ],
  );
});
