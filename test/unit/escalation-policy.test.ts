// Escalation policies as data: the documented defaults, their expansion against a care plan, what keys
// mean, what messages say (never a phone number), and invalid policy sets refused with their paths.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ALARM_TYPES } from "../../protocol/envelope.js";
import { carePlanSchema, type CarePlan } from "../../relay/src/careplans/schema.js";
import { acknowledges, meaningOf } from "../../relay/src/escalation/keys.js";
import { buildMessage } from "../../relay/src/escalation/messages.js";
import { expandPlan, numberFor } from "../../relay/src/escalation/plan.js";
import { DEFAULT_POLICIES, loadPolicySet, policyFor } from "../../relay/src/escalation/policy.js";

const care: CarePlan = carePlanSchema.parse({
  elder: { name: "Wang Lan", phone: "+8613800000000", address: "Room 302, 12 Lane 88, Dinghai Road", riskLevel: "high" },
  contacts: [
    { id: "son", name: "Wang Wei", phone: "+8613800000001", role: "emergency_contact" },
    { id: "daughter", name: "Wang Fang", phone: "+8613800000002", role: "emergency_contact" },
    { id: "niece", name: "Li Na", phone: "+8613800000003", role: "emergency_contact" },
    { id: "committee", name: "Zhao Min", phone: "+8613800000004", role: "neighbourhood_committee" },
    { id: "firestation", name: "Duty desk", phone: "+8613800000005", role: "property_fire_station" },
    { id: "upstairs", name: "Chen Jie", phone: "+8613800000006", role: "relative_neighbour" },
  ],
  onsiteTeam: { name: "Platform team B", phone: "+8613800000009" },
  dispatch: { gasCompany: "95158" },
});

test("the defaults are valid and cover every alarm type and hub_offline", () => {
  const set = loadPolicySet();
  for (const t of [...ALARM_TYPES, "hub_offline"]) assert.ok(set.byType[t], `${t} has a policy`);
  for (const p of set.policies) assert.ok(p.version >= 1 && p.description.length > 10, `${p.name} is versioned and documented`);
  assert.equal(policyFor(set, "some_future_type").name, "person", "an unknown type falls back to the default");
});

test("fire and gas: the elder and the community responders are called at once; the on-site team comes last", () => {
  const set = loadPolicySet();
  for (const type of ["smoke", "gas", "co", "valve_fault"]) {
    const plan = expandPlan(policyFor(set, type), set.groups, care);
    const first = plan.steps[0]!;
    assert.deepEqual(first.targets.map((t) => t.ref).sort(), ["committee", "elder", "firestation"], `${type}: parallel first step`);
    assert.ok(first.targets.every((t) => t.channel === "voice"));
    assert.deepEqual(plan.steps.at(-1)!.targets.map((t) => t.ref), ["onsite_team"]);
  }
});

test("SOS: calls the elder back first, then emergency contacts one by one in care-plan order", () => {
  const set = loadPolicySet();
  const plan = expandPlan(policyFor(set, "sos"), set.groups, care);
  assert.deepEqual(plan.steps[0]!.targets.map((t) => t.ref), ["elder"]);
  assert.equal(plan.steps[0]!.repeat, 1, "the elder is called twice");
  assert.deepEqual(plan.steps.slice(1, 4).map((s) => s.targets.map((t) => t.ref)), [["son"], ["daughter"], ["niece"]]);
  assert.match(plan.steps[1]!.name, /1 of 3/);
  // No volunteer in this home: that step is skipped rather than waited on.
  assert.ok(!plan.steps.some((s) => /volunteers$/.test(s.name)));
  assert.deepEqual(plan.steps.at(-1)!.targets.map((t) => t.ref), ["onsite_team"]);
  assert.equal(plan.startDelayS, 0);
});

test("hub_offline follows the gentler maintenance policy: a grace period, then the elder, SMS to the family", () => {
  const set = loadPolicySet();
  const p = policyFor(set, "hub_offline");
  assert.equal(p.name, "maintenance");
  assert.ok(p.startDelayS >= 300);
  const plan = expandPlan(p, set.groups, care);
  assert.deepEqual(plan.steps[1]!.targets.map((t) => [t.ref, t.channel]), [["son", "sms"], ["daughter", "sms"], ["niece", "sms"]]);
});

test("without a care plan only the elder and on-site team remain (their numbers are unknown)", () => {
  const set = loadPolicySet();
  const plan = expandPlan(policyFor(set, "sos"), set.groups, undefined);
  assert.deepEqual(plan.steps.map((s) => s.targets.map((t) => t.ref)), [["elder"], ["onsite_team"]]);
  assert.equal(numberFor(undefined, "elder"), undefined);
  assert.equal(numberFor(care, "daughter"), "+8613800000002");
  assert.equal(numberFor(care, "gone"), undefined);
});

test("key meanings per target role", () => {
  assert.equal(meaningOf("elder", "1", false), "help_needed");
  assert.equal(meaningOf("elder", "2", false), "fine");
  assert.equal(meaningOf("emergency_contact", "1", false), "going_to_door");
  assert.equal(meaningOf("onsite_team", "1", false), "going_to_door");
  assert.equal(meaningOf("volunteer", "2", false), "declined");
  assert.equal(meaningOf("elder", "9", false), undefined);
  assert.equal(meaningOf("elder", undefined, false), undefined);
  assert.equal(meaningOf("elder", "1", true), "will_check");
  for (const m of ["help_needed", "fine", "going_to_door", "will_check"] as const) assert.equal(acknowledges(m), true);
  assert.equal(acknowledges("declined"), false);
  assert.equal(acknowledges(undefined), false);
});

test("messages name the alarm and the keys, tell contacts the address, and never carry a phone number", () => {
  for (const language of ["zh", "en"] as const) {
    const c = { ...care, language };
    const elder = buildMessage({ type: "gas", role: "elder", channel: "voice", care: c, maintenance: false });
    const contact = buildMessage({ type: "gas", role: "emergency_contact", channel: "voice", care: c, maintenance: false });
    const sms = buildMessage({ type: "hub_offline", role: "emergency_contact", channel: "sms", care: c, maintenance: true });
    assert.match(elder, /1/);
    assert.match(elder, /2/);
    assert.ok(contact.includes(care.elder.address));
    assert.ok(!elder.includes(care.elder.address), "the elder is not told their own address");
    for (const m of [elder, contact, sms]) assert.doesNotMatch(m, /\+86\d+/);
    assert.doesNotMatch(sms, /按1|Press 1/, "an SMS offers no keys");
  }
});

test("invalid policy sets are refused with the path of each problem", () => {
  const bad = structuredClone(DEFAULT_POLICIES) as { groups: Record<string, string[]>; policies: Array<{ name: string; steps: Array<{ targets: unknown[] }> }>; byType: Record<string, string> };
  bad.byType.smoke = "nonexistent";
  bad.policies[0]!.steps[0]!.targets.push({ who: "group", group: "nobody_defined" });
  bad.policies[1]!.steps[1]!.targets.push({ who: "elder" });
  assert.throws(
    () => loadPolicySet(bad, "test.yaml"),
    (e: Error) =>
      /test\.yaml/.test(e.message) &&
      /byType\.smoke: policy "nonexistent" is not defined/.test(e.message) &&
      /group "nobody_defined" is not defined/.test(e.message) &&
      /each in turn has only that one target/.test(e.message),
  );
  const noDefault = structuredClone(DEFAULT_POLICIES) as { byType: Record<string, string> };
  delete noDefault.byType.default;
  assert.throws(() => loadPolicySet(noDefault), /default policy is required/);
  assert.throws(() => loadPolicySet({ ...DEFAULT_POLICIES, policies: [] }), /policies/);
});

test("care plans: numbers must be E.164, roles known, unknown keys refused — and errors never echo values", () => {
  const r = carePlanSchema.safeParse({
    elder: { name: "x", phone: "13912345678", address: "secret street 1" },
    contacts: [
      { id: "a", name: "n", phone: "+8613800000001", role: "emergency_contact" },
      { id: "a", name: "m", phone: "+8613800000002", role: "cousin" },
    ],
    onsiteTeam: { name: "t", phone: "+8613800000009" },
    shoeSize: 42,
  });
  assert.equal(r.success, false);
  const text = JSON.stringify(r.error.issues.map((i) => [i.path, i.message]));
  assert.match(text, /elder","phone/);
  assert.match(text, /contacts",1,"role/);
  assert.match(text, /shoeSize/);
  assert.doesNotMatch(text, /13912345678|secret street/);
});

test("care plans: a contact id used twice, or a reserved one, is refused", () => {
  const base = { elder: { name: "x", phone: "+8613912345678", address: "a" }, onsiteTeam: { name: "t", phone: "+8613800000009" } };
  const twice = carePlanSchema.safeParse({ ...base, contacts: [{ id: "a", name: "n", phone: "+8613800000001", role: "volunteer" }, { id: "a", name: "m", phone: "+8613800000002", role: "volunteer" }] });
  assert.match(JSON.stringify(twice.error?.issues), /used twice/);
  const reserved = carePlanSchema.safeParse({ ...base, contacts: [{ id: "elder", name: "n", phone: "+8613800000001", role: "volunteer" }] });
  assert.match(JSON.stringify(reserved.error?.issues), /reserved/);
  assert.equal(carePlanSchema.parse(base).dispatch.fire, "119", "dispatch numbers default to 110/119/120");
});
