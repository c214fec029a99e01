// The incident page's pure rules: which lifecycle actions the relay offers in each state (from the lifecycle
// table itself), how the care plan is masked, how each action's form becomes a request body, and how a
// timeline entry's actor and cause read.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bodyOf, DISPATCH_SERVICES, emptyValues, FALSE_ALARM_REASONS, missingField, OPS_CENTRES, VISIT_OUTCOMES } from "../../relay/console/src/incident/actions.js";
import { remainingMs, clockOffset } from "../../relay/console/src/incident/countdown.js";
import { actorOf, causeOf, detailsOf, newestFirst } from "../../relay/console/src/incident/timeline.js";
import type { TimelineEntry } from "../../relay/console/src/incident/timeline.js";
import { followUpBody } from "../../relay/src/api/operator/schemas.js";
import { parseCarePlan } from "../../relay/src/careplans/store.js";
import * as lifecycle from "../../relay/src/incidents/lifecycle.js";
import { allowedActions, type ActionFacts } from "../../relay/src/console/incident/actions.js";
import { maskCarePlan, maskedTarget, maskPhone } from "../../relay/src/console/incident/mask.js";
import { carePlan, personalData } from "../support/care-plan-fixture.js";

const facts = (over: Partial<ActionFacts>): ActionFacts => ({ state: "received", type: "gas", escalation: "running", followUpRecorded: false, closedAt: null, ...over });

test("the actions offered follow the lifecycle table, state by state", () => {
  assert.deepEqual(allowedActions(facts({})), ["acknowledge", "confirm", "false_alarm", "dispatch"]);
  assert.deepEqual(allowedActions(facts({ state: "confirming", escalation: "acknowledged" })), ["confirm", "false_alarm", "dispatch"], "acknowledged: the calls have stopped already");
  assert.deepEqual(allowedActions(facts({ state: "confirmed", escalation: "stopped" })), ["false_alarm", "dispatch", "ticket", "resolve"], "confirming again is not offered");
  assert.deepEqual(allowedActions(facts({ state: "responding", escalation: "stopped" })), ["dispatch", "ticket", "resolve"], "a second dispatch is");
  assert.deepEqual(allowedActions(facts({ state: "coordinated", escalation: "stopped" })), ["dispatch", "ticket", "resolve"]);
  assert.deepEqual(allowedActions(facts({ state: "resolved", escalation: "stopped" })), ["follow_up"], "no closing before the visit");
  assert.deepEqual(allowedActions(facts({ state: "follow_up_due", escalation: "stopped" })), ["follow_up"], "the visit fell due, not yet recorded");
  assert.deepEqual(allowedActions(facts({ state: "follow_up_due", escalation: "stopped", followUpRecorded: true })), ["follow_up", "close"]);
  assert.deepEqual(allowedActions(facts({ state: "false_alarm", escalation: "stopped" })), ["close"]);
  assert.deepEqual(allowedActions(facts({ state: "closed", escalation: "stopped", closedAt: 1 })), []);
  assert.deepEqual(allowedActions(facts({ state: "confirming", escalation: "exhausted" })), ["acknowledge", "confirm", "false_alarm", "dispatch"], "nobody reached: the operator takes it in hand");
  // A hub offline is maintenance: no false alarm, resolved straight away, closed without a visit.
  assert.deepEqual(allowedActions(facts({ type: "hub_offline" })), ["acknowledge", "confirm", "dispatch", "resolve"]);
  assert.deepEqual(allowedActions(facts({ type: "hub_offline", state: "resolved", escalation: "stopped" })), ["follow_up", "close"]);
});

test("the masked care plan names nobody and shows no whole number; public service numbers stay", () => {
  const plan = parseCarePlan({ ...carePlan(), dispatch: { police: "110", fire: "119", ambulance: "120", gasCompany: "95158" } }, "test");
  const masked = maskCarePlan(plan);
  const text = JSON.stringify(masked);
  for (const s of personalData(carePlan())) assert.ok(!text.includes(s), `no ${s}`);
  assert.equal(masked.elder.name, "W**");
  assert.equal(masked.contacts[0]?.phone, "+86*******0001");
  assert.equal(masked.dispatch.gasCompany, "95158");
  assert.deepEqual(maskedTarget(plan, "son"), { name: "W**", phone: "+86*******0001" });
  assert.equal(maskedTarget(plan, "nobody"), undefined);
  assert.equal(maskPhone("+442071234567"), "+4*******4567");
  assert.equal(maskPhone("+86123"), "+86***", "too short to keep digits: all masked");
  assert.equal(maskPhone("119"), "119");
});

test("the page's choices are exactly the API's: reasons, services, centres, visit outcomes", () => {
  const same = (a: readonly string[], b: readonly string[]) => assert.deepEqual([...a].sort(), [...b].sort());
  same(FALSE_ALARM_REASONS, lifecycle.FALSE_ALARM_REASONS);
  same(DISPATCH_SERVICES, lifecycle.DISPATCH_SERVICES);
  same(OPS_CENTRES, lifecycle.OPS_CENTRES);
  same(VISIT_OUTCOMES, followUpBody.shape.outcome.options);
});

test("an action's form: required fields checked before sending, empty optional fields left out", () => {
  assert.deepEqual(missingField("false_alarm", emptyValues("false_alarm")), { field: "reason", problem: "required" });
  assert.deepEqual(missingField("false_alarm", { reason: "toast", note: "" }), { field: "reason", problem: "required" }, "only the API's reasons");
  assert.equal(missingField("false_alarm", { reason: "cooking_smoke", note: "" }), undefined);
  assert.deepEqual(bodyOf("false_alarm", { reason: "cooking_smoke", note: "  " }), { reason: "cooking_smoke" });
  assert.deepEqual(missingField("ticket", { centre: "street", ref: " " }), { field: "ref", problem: "required" });
  assert.deepEqual(bodyOf("dispatch", { service: "fire_119", ref: " 119-42 ", by: "", note: "" }), { service: "fire_119", ref: "119-42" });
  assert.deepEqual(missingField("resolve", { summary: "x".repeat(1001) }), { field: "summary", problem: "too_long" });
  assert.deepEqual(bodyOf("confirm", emptyValues("confirm")), {}, "the API's noteBody takes {}");
});

test("timeline entries: the actor, the cause worded for translation, the details, newest first", () => {
  assert.deepEqual(actorOf("user:wang"), { kind: "user", name: "wang" });
  assert.deepEqual(actorOf("emergency_contact:son"), { kind: "contact", name: "son", role: "emergency_contact" });
  assert.deepEqual(actorOf("operator:platform"), { kind: "operator", name: "platform", role: "operator" });
  assert.equal(actorOf("system:escalation").kind, "system");
  const e = (over: Partial<TimelineEntry>): TimelineEntry => ({ id: "1", at: 1, actor: "system", kind: "call", from: null, to: null, cause: null, detail: null, ...over });
  assert.deepEqual(causeOf(e({ cause: "step 2: emergency contacts in turn (1 of 3)" })), { key: "step", params: { step: "2", label: "emergency contacts in turn (1 of 3)" } });
  assert.deepEqual(causeOf(e({ kind: "escalation", cause: "stopped: incident confirmed" })), { key: "stopped", params: { state: "confirmed" } });
  assert.deepEqual(causeOf(e({ kind: "acknowledged", cause: "going_to_door" })), { family: "meaning", code: "going_to_door" });
  assert.equal(causeOf(e({ kind: "transition", cause: "mark_false_alarm" })), undefined);
  assert.deepEqual(causeOf(e({ cause: "something new" })), { text: "something new" });
  assert.deepEqual(
    detailsOf(e({ detail: { reason: "cooking_smoke", note: "toast", attemptId: "x", empty: "" } })),
    [{ key: "reason", value: "cooking_smoke", family: "reason" }, { key: "note", value: "toast" }],
    "only the fields the page knows, coded ones with their family",
  );
  assert.deepEqual(newestFirst([e({ id: "a", at: 1 }), e({ id: "c", at: 2 }), e({ id: "b", at: 2 })]).map((x) => x.id), ["c", "b", "a"]);
});

test("the countdown runs on the relay's clock", () => {
  const offset = clockOffset(10_000, 9_000); // the relay is a second ahead
  assert.equal(remainingMs(70_000, 9_000, offset), 60_000);
});
