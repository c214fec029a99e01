// The policy fields for new evidence and the arrival check: their documented defaults (and the version bump
// that freezes them into new incidents), where a restart lands in a plan expanded for one home, what counts
// as new evidence, what an arrival answer means, and what the arrival check says.
import { test } from "node:test";
import assert from "node:assert/strict";
import { carePlanSchema, type CarePlan } from "../../relay/src/careplans/schema.js";
import { evidenceOf } from "../../relay/src/escalation/evidence.js";
import { arrivalMeaningOf } from "../../relay/src/escalation/keys.js";
import { buildArrivalMessage } from "../../relay/src/escalation/messages.js";
import { passEndTimerId, passOf, passTimerId } from "../../relay/src/escalation/passes.js";
import { expandPlan } from "../../relay/src/escalation/plan.js";
import { DEFAULT_POLICIES, loadPolicySet, policyFor } from "../../relay/src/escalation/policy.js";

const care: CarePlan = carePlanSchema.parse({
  elder: { name: "Wang Lan", phone: "+8613800000000", address: "Room 302, 12 Lane 88, Dinghai Road", riskLevel: "high" },
  contacts: [
    { id: "son", name: "Wang Wei", phone: "+8613800000001", role: "emergency_contact" },
    { id: "daughter", name: "Wang Fang", phone: "+8613800000002", role: "emergency_contact" },
    { id: "committee", name: "Zhao Min", phone: "+8613800000004", role: "neighbourhood_committee" },
    { id: "upstairs", name: "Chen Jie", phone: "+8613800000006", role: "relative_neighbour" },
  ],
  onsiteTeam: { name: "Platform team B", phone: "+8613800000009" },
});

test("defaults: every alarm policy restarts at its first step on new evidence and checks arrival; all are version 2", () => {
  const set = loadPolicySet();
  const by = (name: string) => set.policies.find((p) => p.name === name)!;
  for (const p of set.policies) assert.equal(p.version, 2, `${p.name}: bumped for the new fields in its frozen copy`);
  for (const name of ["fire_gas", "person", "welfare"]) assert.deepEqual(by(name).onNewEvidence, { restartAtStep: 0 }, name);
  assert.deepEqual(by("fire_gas").arrival, { checkAfterS: 900, channel: "voice", giveUpAfterS: 300 });
  assert.deepEqual(by("person").arrival, { checkAfterS: 900, channel: "voice", giveUpAfterS: 300 });
  assert.deepEqual(by("welfare").arrival, { checkAfterS: 1800, channel: "voice", giveUpAfterS: 600 });
  assert.equal(by("maintenance").arrival, undefined, "nobody goes to the door for a hub");
  const plan = expandPlan(policyFor(set, "sos"), set.groups, care);
  assert.equal(plan.restartAt, 0);
  assert.deepEqual(plan.arrival, { checkAfterS: 900, channel: "voice", giveUpAfterS: 300 }, "frozen into the incident's plan");
});

test("a policy written before the fields existed still restarts on new evidence (first step) and has no arrival check", () => {
  const old = structuredClone(DEFAULT_POLICIES) as { policies: Array<Record<string, unknown>> };
  for (const p of old.policies) {
    delete p.onNewEvidence;
    delete p.arrival;
  }
  const set = loadPolicySet(old);
  assert.deepEqual(policyFor(set, "smoke").onNewEvidence, { restartAtStep: 0 });
  assert.equal(policyFor(set, "smoke").arrival, undefined);
});

test("restartAtStep by index or by name; a step this home does not fill moves the restart to the next planned one", () => {
  const withRestart = (restartAtStep: number | string) => {
    const input = structuredClone(DEFAULT_POLICIES) as { policies: Array<{ name: string; onNewEvidence?: unknown }> };
    input.policies.find((p) => p.name === "person")!.onNewEvidence = { restartAtStep };
    const set = loadPolicySet(input);
    return expandPlan(policyFor(set, "sos"), set.groups, care);
  };
  // person planned here: 0 elder · 1 son · 2 daughter · 3 committee · (no fire station, no volunteers) · 4 upstairs · 5 on-site
  assert.equal(withRestart(1).restartAt, 1, "emergency contacts: the first of them");
  assert.equal(withRestart("neighbourhood committee").restartAt, 3);
  assert.equal(withRestart("community volunteers").restartAt, 4, "no volunteers here: the relatives and neighbours next");
  assert.equal(withRestart(6).restartAt, 5, "the on-site team");
  assert.throws(() => withRestart(7), /onNewEvidence\.restartAtStep: no step 7/);
  assert.throws(() => withRestart("nobody"), /onNewEvidence\.restartAtStep: no step "nobody"/);
});

test("arrival settings are checked: a check within a minute or an unknown channel is refused", () => {
  const input = structuredClone(DEFAULT_POLICIES) as { policies: Array<{ name: string; arrival?: unknown }> };
  input.policies[0]!.arrival = { checkAfterS: 10, channel: "pigeon", giveUpAfterS: 300 };
  assert.throws(() => loadPolicySet(input), (e: Error) => /arrival\.checkAfterS/.test(e.message) && /arrival\.channel/.test(e.message));
});

test("what is new evidence: another device, a higher severity, or any new alarm once the calls stopped", () => {
  const running = { escalation: "running", severity: "critical" };
  const alarm = (device: string | null, severity = "critical") => ({ kind: "alarm" as const, device, severity });
  assert.deepEqual(evidenceOf(running, ["smoke-1"], alarm("smoke-1")), [], "the same detector again while the calls run: the same emergency");
  assert.deepEqual(evidenceOf(running, ["smoke-1"], alarm("smoke-2")), ["another_device"]);
  assert.deepEqual(evidenceOf({ escalation: "running", severity: "high" }, ["radar-bed"], alarm("radar-bed", "critical")), ["higher_severity"]);
  assert.deepEqual(evidenceOf({ escalation: "running", severity: "critical" }, ["radar-bed"], alarm("radar-bed", "high")), [], "a lower severity is not news");
  for (const escalation of ["acknowledged", "stopped", "exhausted"]) assert.deepEqual(evidenceOf({ escalation, severity: "critical" }, ["sos-1"], alarm("sos-1")), ["new_episode"], escalation);
  assert.deepEqual(evidenceOf({ escalation: "acknowledged", severity: "critical" }, ["smoke-1"], { kind: "reading", device: "smoke-1", severity: "high" }), [], "a reading from a device already in it");
  assert.deepEqual(evidenceOf({ escalation: "acknowledged", severity: "critical" }, ["smoke-1"], { kind: "reading", device: "smoke-2", severity: "high" }), ["another_device"]);
});

test("passes: the first keeps the original ids; later ones are told apart", () => {
  assert.equal(passTimerId("INC", 0, 1, 0), "INC:1:0");
  assert.equal(passTimerId("INC", 2, 1, 0), "INC:p2:1:0");
  assert.equal(passEndTimerId("INC", 0), "INC:end");
  assert.equal(passEndTimerId("INC", 3), "INC:p3:end");
  for (const [id, pass] of [["INC:1:0", 0], ["INC:1:0:son", 0], ["INC:end", 0], ["INC:p2:1:0:son", 2], ["INC:p3:end", 3]] as const) assert.equal(passOf("INC", id), pass, id);
});

test("arrival answers: 1 = with the elder, 2 = could not get there; the check names the keys, tells the address, never a number", () => {
  assert.equal(arrivalMeaningOf("1"), "with_elder");
  assert.equal(arrivalMeaningOf("2"), "could_not_get_there");
  assert.equal(arrivalMeaningOf("9"), undefined);
  assert.equal(arrivalMeaningOf(undefined), undefined);
  for (const language of ["zh", "en"] as const) {
    const c = { ...care, language };
    const voice = buildArrivalMessage({ channel: "voice", care: c });
    const sms = buildArrivalMessage({ channel: "sms", care: c });
    for (const m of [voice, sms]) {
      assert.ok(m.includes(care.elder.address), `${language}: the address`);
      assert.match(m, /1/);
      assert.match(m, /2/);
      assert.doesNotMatch(m, /\+86\d+/);
    }
    assert.match(voice, language === "zh" ? /请按1/ : /Press 1/);
    assert.match(sms, language === "zh" ? /请回复1/ : /Reply 1/);
  }
});
