// Household risk scoring and kit plans, pure: every risk level from realistic assessments under the shipped
// rules; a changed rules file changes the outcome with no code change; a bad rules file names the file, the
// line and the key; each level's plan meets the district's minimums; consent gates and retires the camera and
// vital-sign radar; a plan below the minimums is found out.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ConfigError } from "../../lib/config/yaml.js";
import { addConsented, consentProblems, derivePlan, districtMinimums, NO_CONSENT, retire, shortfalls, type Consents } from "../../relay/src/households/plan.js";
import { assessmentSchema, type Assessment, type DeviceKind, type PlanItem } from "../../relay/src/households/schema.js";
import { BEDBOUND, FLAT, HIGH, LOW, MEDIUM } from "../support/households.js";
import { factsOf, loadRiskRules, scoreAssessment, SHIPPED_RISK_RULES } from "../../relay/src/households/scoring.js";

const count = (items: PlanItem[], kind: DeviceKind) => items.filter((i) => i.kind === kind && i.retiredAt === undefined).reduce((s, i) => s + i.count, 0);
const ALL: Consents = { camera: true, vital_radar: true };

test("the shipped rules score realistic homes into each level, recording the rules' version and why", async () => {
  const rules = await loadRiskRules();
  assert.equal(rules.version, "district-default-2026.1");
  const low = scoreAssessment(rules, factsOf(LOW));
  assert.deepEqual([low.level, low.score], ["low", 1]);
  assert.deepEqual(low.matched, [{ id: "gas-in-home", points: 1 }]);
  const medium = scoreAssessment(rules, factsOf(MEDIUM));
  assert.deepEqual([medium.level, medium.score], ["medium", 6]);
  const high = scoreAssessment(rules, factsOf(HIGH));
  assert.equal(high.level, "high");
  assert.ok(high.score >= rules.thresholds.high, `score ${high.score}`);
  const bed = scoreAssessment(rules, factsOf(BEDBOUND));
  assert.equal(bed.level, "high", "a floor, not the score, makes a bed-bound elder high risk");
  assert.ok(bed.score < rules.thresholds.medium);
  assert.deepEqual(bed.floors, [{ id: "bedbound", level: "high" }]);
  // Two falls last year: a floor; dementia alone at home: a floor.
  assert.equal(scoreAssessment(rules, factsOf({ ...LOW, fallsLastYear: 2 })).level, "high");
  assert.equal(scoreAssessment(rules, factsOf({ ...LOW, cognition: "dementia" })).level, "medium");
  assert.equal(scoreAssessment(rules, factsOf({ ...LOW, cognition: "dementia", livingAlone: true })).level, "high");
  assert.equal(high.rulesVersion, rules.version);
});

test("a district's rules file changes the outcome without a code change", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-rules-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const shipped = await readFile(SHIPPED_RISK_RULES, "utf8");
  // The district counts living alone for more and lowers the medium threshold.
  const changed = shipped
    .replace("version: district-default-2026.1", "version: putuo-2027.1")
    .replace("{ id: living-alone, when: { livingAlone: true }, points: 2,", "{ id: living-alone, when: { livingAlone: true }, points: 5,");
  assert.notEqual(changed, shipped);
  const file = path.join(dir, "rules.yaml");
  await writeFile(file, changed);
  const rules = await loadRiskRules(file);
  const lowAlone: Assessment = { ...LOW, livingAlone: true };
  assert.equal(scoreAssessment(await loadRiskRules(), factsOf(lowAlone)).level, "low");
  const s = scoreAssessment(rules, factsOf(lowAlone));
  assert.equal(s.level, "medium");
  assert.equal(s.rulesVersion, "putuo-2027.1");
  assert.equal(scoreAssessment(rules, factsOf(MEDIUM)).level, "high", "5 + 2 + 1 + 1 = 9");
});

test("a bad rules file is refused with the file, the line and the key of each problem", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-rules-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "bad.yaml");
  await writeFile(
    file,
    [
      "version: bad-1",
      "thresholds: { medium: 8, high: 4 }",
      "points:",
      "  - { id: a, when: { livingAlne: true }, points: 2, source: district }",
      "  - { id: b, when: { mobility: crawling }, points: 2, source: district }",
      "  - { id: c, when: { smokes: { min: 1 } }, points: 2, source: assumed }",
      "  - { id: d, when: { age: { min: 80 } }, points: 2, source: guessed }",
      "floors: []",
      "",
    ].join("\n"),
  );
  const err = await loadRiskRules(file).then(
    () => assert.fail("accepted"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigError, String(err));
  const msg = err.message;
  assert.match(msg, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:2: thresholds\\.high: must be above thresholds\\.medium`));
  assert.match(msg, /:4: points\[0\]\.when\.livingAlne: unknown fact "livingAlne"/);
  assert.match(msg, /:5: points\[1\]\.when\.mobility: mobility is never "crawling" \(one of: independent, walking_aid, wheelchair, bedbound\)/);
  assert.match(msg, /:6: points\[2\]\.when\.smokes: min\/max apply to numbers only/);
  assert.match(msg, /:7: points\[3\]\.source: /);

  await writeFile(file, "version: dup-1\nthresholds: { medium: 1, high: 2 }\npoints:\n  - { id: a, when: { smokes: true }, points: 1, source: district }\nfloors:\n  - { id: a, when: { smokes: true }, level: high, source: assumed }\n");
  await assert.rejects(loadRiskRules(file), (e: unknown) => e instanceof ConfigError && /bad\.yaml:6: floors\[0\]\.id: rule id "a" used twice/.test(e.message));

  await writeFile(file, "version: x\nthresholds: { medium: 1, high: 2\n");
  await assert.rejects(loadRiskRules(file), (e: unknown) => e instanceof ConfigError && /bad\.yaml:\d+: \(top\): YAML: /.test(e.message));
  await assert.rejects(loadRiskRules(path.join(dir, "missing.yaml")), (e: unknown) => e instanceof ConfigError && /missing\.yaml: \(top\): cannot read/.test(e.message));
});

test("each level's derived plan meets the district's minimums", async () => {
  const rules = await loadRiskRules();
  for (const [name, a] of Object.entries({ LOW, MEDIUM, HIGH, BEDBOUND })) {
    const level = scoreAssessment(rules, factsOf(a)).level;
    for (const consent of [NO_CONSENT, ALL]) {
      const plan = derivePlan(a, level, consent);
      const min = districtMinimums(a, level, consent);
      assert.deepEqual(shortfalls(plan.items, min), [], `${name} ${JSON.stringify(consent)}`);
      assert.deepEqual(consentProblems(plan.items, consent), []);
      // Everyone: smoke, gas detection with the shut-off valve, the one-key call.
      for (const k of ["smoke_detector", "gas_detector", "gas_valve", "sos_button"] as const) assert.ok(count(plan.items, k) >= 1, `${name}: ${k}`);
    }
  }
  const low = derivePlan(LOW, "low", NO_CONSENT).items;
  assert.equal(count(low, "smoke_detector"), 1);
  assert.deepEqual(low.find((i) => i.kind === "gas_valve")?.room, "kitchen");
  assert.equal(count(low, "camera") + count(low, "fall_radar") + count(low, "vital_radar") + count(low, "co_detector"), 0);

  const medium = derivePlan(MEDIUM, "medium", ALL).items;
  assert.ok(count(medium, "smoke_detector") >= 2, "more smoke detection from medium");
  assert.equal(count(medium, "camera"), 0, "no camera below high risk, even with consent");

  const high = derivePlan(HIGH, "high", ALL);
  assert.ok(count(high.items, "smoke_detector") > count(medium, "smoke_detector"));
  assert.deepEqual(high.items.filter((i) => i.kind === "camera").map((i) => i.room), ["living"]);
  assert.deepEqual(high.items.filter((i) => i.kind === "gas_detector").map((i) => i.room).sort(), ["bathroom", "kitchen"]);
  assert.deepEqual(high.items.filter((i) => i.kind === "co_detector").map((i) => i.room), ["bathroom"], "CO where the water heater burns");
  const highNoConsent = derivePlan(HIGH, "high", NO_CONSENT);
  assert.equal(count(highNoConsent.items, "camera"), 0);
  assert.deepEqual(highNoConsent.withheld, [{ kind: "camera", room: "living", reason: "no consent recorded" }]);

  const bed = derivePlan(BEDBOUND, "high", ALL).items;
  assert.deepEqual(bed.filter((i) => i.kind === "vital_radar").map((i) => i.room), ["bedroom"]);
  assert.deepEqual(bed.filter((i) => i.kind === "fall_radar").map((i) => i.room), ["bedroom"]);
  assert.equal(districtMinimums(BEDBOUND, "high", NO_CONSENT).fall_radar, 1, "fall radar for the bed-bound whatever the consent");
  assert.equal(districtMinimums(BEDBOUND, "high", NO_CONSENT).vital_radar, undefined, "vital-sign radar only with consent");

  // A one-room home still gets two smoke detectors at medium (the minimum), both where the elder sleeps.
  const studio: Assessment = { ...MEDIUM, rooms: [{ id: "room", kind: "living" }], gasAppliances: [] };
  const s = derivePlan(studio, "medium", NO_CONSENT).items;
  assert.deepEqual(s.filter((i) => i.kind === "smoke_detector").map((i) => [i.room, i.count]), [["room", 2]]);
  assert.deepEqual(shortfalls(s, districtMinimums(studio, "medium", NO_CONSENT)), []);
});

test("a plan below the minimums is found out; a sensitive device without consent is a problem", () => {
  const plan = derivePlan(HIGH, "high", ALL).items;
  const noValve = plan.filter((i) => i.kind !== "gas_valve" && i.kind !== "smoke_detector").concat([{ kind: "smoke_detector", room: "bedroom", count: 1 }]);
  assert.deepEqual(shortfalls(noValve, districtMinimums(HIGH, "high", ALL)), [
    { kind: "smoke_detector", required: 2, planned: 1 },
    { kind: "gas_valve", required: 1, planned: 0 },
  ]);
  assert.deepEqual(consentProblems(plan, { camera: false, vital_radar: true }), ["camera in living: the elder's consent is not recorded"]);
});

test("consent withdrawn retires the camera and the vital-sign radar; given again, they come back", () => {
  const a: Assessment = { ...HIGH, fallsLastYear: 1 };
  const plan = derivePlan(a, "high", ALL).items;
  assert.equal(count(plan, "camera"), 1);
  assert.equal(count(plan, "vital_radar"), 1);
  const noCam = retire(plan, "camera", 1_000, "consent withdrawn by the elder");
  assert.equal(count(noCam, "camera"), 0);
  assert.deepEqual(
    noCam.filter((i) => i.kind === "camera").map((i) => [i.retiredAt, i.retiredReason]),
    [[1_000, "consent withdrawn by the elder"]],
    "kept in the plan, marked retired",
  );
  assert.equal(count(noCam, "vital_radar"), 1, "only that device");
  const consent = { camera: false, vital_radar: true };
  assert.deepEqual(shortfalls(noCam, districtMinimums(a, "high", consent)), [], "no longer required without consent");
  assert.deepEqual(consentProblems(noCam, consent), []);
  const back = addConsented(noCam, derivePlan(a, "high", ALL).items, "camera");
  assert.equal(count(back, "camera"), 1);
  assert.equal(count(addConsented(back, plan, "camera"), "camera"), 1, "not twice");
});

test("the assessment is checked: rooms unique, appliances in a listed room, no unknown fields", () => {
  const bad = assessmentSchema.safeParse({ ...LOW, rooms: [...FLAT, { id: "kitchen", kind: "kitchen" }], gasAppliances: [{ kind: "stove", room: "attic" }], pets: 2 });
  assert.equal(bad.success, false);
  const paths = bad.error.issues.map((i) => i.path.join("."));
  assert.ok(paths.includes(""), "unknown key pets");
  const more = assessmentSchema.safeParse({ ...LOW, rooms: [...FLAT, { id: "kitchen", kind: "kitchen" }], gasAppliances: [{ kind: "stove", room: "attic" }] });
  assert.deepEqual(more.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`), ['rooms.4.id: room id "kitchen" used twice', 'gasAppliances.0.room: no room "attic" in rooms']);
});
