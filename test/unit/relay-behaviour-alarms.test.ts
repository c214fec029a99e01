// The radars' behaviour alarms (fall, vital_absent, vital_abnormal, inactivity) in the relay's pure parts:
// which policy each runs and what its plan looks like, and the false-alarm reasons added for them in the
// lifecycle, the operator API's request schema and its OpenAPI description. The daemon end to end, on
// both stores, is in test/integration/relay-behaviour-alarms.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { falseAlarmBody } from "../../relay/src/api/operator/schemas.js";
import { carePlanSchema } from "../../relay/src/careplans/schema.js";
import { openApiDescription } from "../../relay/src/cli/loop-commands.js";
import { expandPlan } from "../../relay/src/escalation/plan.js";
import { loadPolicySet, policyFor } from "../../relay/src/escalation/policy.js";
import { FALSE_ALARM_REASONS, transition } from "../../relay/src/incidents/lifecycle.js";

const RADAR_REASONS = ["lying_down_to_rest", "out_of_radar_range", "visitor", "pet"] as const;
const RADAR_TYPES = ["fall", "vital_absent", "vital_abnormal", "inactivity"] as const;

const care = carePlanSchema.parse({
  elder: { name: "Wang Lan", phone: "+8613800000000", address: "Room 302, 12 Lane 88, Dinghai Road", riskLevel: "high" },
  contacts: [
    { id: "son", name: "Wang Wei", phone: "+8613800000001", role: "emergency_contact" },
    { id: "committee", name: "Zhao Min", phone: "+8613800000004", role: "neighbourhood_committee" },
    { id: "helper", name: "Sun Hui", phone: "+8613800000007", role: "volunteer" },
    { id: "upstairs", name: "Chen Jie", phone: "+8613800000006", role: "relative_neighbour" },
  ],
  onsiteTeam: { name: "Platform team B", phone: "+8613800000009" },
});

test("the radar false-alarm reasons are accepted beside the earlier ones, from every state a false alarm may be marked in", () => {
  for (const reason of [...RADAR_REASONS, "cooking_smoke", "device_test", "device_fault", "pressed_by_mistake", "other"]) {
    assert.ok((FALSE_ALARM_REASONS as readonly string[]).includes(reason), `${reason} is a reason`);
    assert.deepEqual(falseAlarmBody.parse({ reason }), { reason }, `${reason}: the API body accepts it`);
  }
  for (const reason of RADAR_REASONS)
    for (const type of RADAR_TYPES)
      for (const from of ["received", "confirming", "confirmed"] as const)
        assert.deepEqual(transition(from, { kind: "mark_false_alarm", reason }, { type, followUpRecorded: false }), { ok: true, to: "false_alarm", changed: true }, `${type} ${from} → ${reason}`);
  assert.equal(falseAlarmBody.safeParse({ reason: "sleepwalking" }).success, false, "an unknown reason is refused");
});

test("the OpenAPI description lists the radar reasons for the false-alarm action", () => {
  const doc = openApiDescription() as { paths: Record<string, { post: { requestBody: { content: { "application/json": { schema: { properties: { reason: { enum: string[] } } } } } } } }> };
  const reason = doc.paths["/v1/incidents/{id}/false-alarm"]!.post.requestBody.content["application/json"].schema.properties.reason;
  for (const r of RADAR_REASONS) assert.ok(reason.enum.includes(r), `${r} in the description`);
});

test("fall and vital signs run the person policy, inactivity the welfare check; each starts with the elder alone", () => {
  const set = loadPolicySet();
  const expected = { fall: "person", vital_absent: "person", vital_abnormal: "person", inactivity: "welfare" } as const;
  for (const type of RADAR_TYPES) {
    const p = policyFor(set, type);
    assert.equal(p.name, expected[type], `${type}: policy`);
    assert.equal(p.startDelayS, 0, `${type}: no grace period`);
    const plan = expandPlan(p, set.groups, care);
    assert.deepEqual(plan.steps[0]!.targets.map((t) => [t.ref, t.channel]), [["elder", "voice"]], `${type}: the elder first, by voice, alone`);
    assert.equal(plan.steps[0]!.repeat, 1, `${type}: the elder is called twice`);
    assert.deepEqual(plan.steps[1]!.targets.map((t) => t.ref), ["son"], `${type}: then the emergency contacts`);
    assert.deepEqual(plan.steps.at(-1)!.targets.map((t) => t.ref), ["onsite_team"], `${type}: the on-site team last`);
  }
});

test("the welfare check waits longer than the person policy at each stage: elder, family, community, on-site team", () => {
  const set = loadPolicySet();
  const person = expandPlan(policyFor(set, "fall"), set.groups, care).steps;
  const welfare = expandPlan(policyFor(set, "inactivity"), set.groups, care).steps;
  // Compare the same audience: the first step naming each of these targets.
  const waitFor = (steps: typeof person, ref: string) => steps.find((s) => s.targets.some((t) => t.ref === ref))!.waitS;
  for (const ref of ["elder", "son", "committee", "helper", "upstairs", "onsite_team"]) {
    assert.ok(waitFor(welfare, ref) > waitFor(person, ref), `${ref}: welfare waits ${waitFor(welfare, ref)} s, person ${waitFor(person, ref)} s`);
  }
  const total = (steps: typeof person) => steps.reduce((s, x) => s + x.waitS * (x.repeat + 1), 0);
  assert.ok(total(welfare) > total(person), "the whole welfare tree takes longer");
});
