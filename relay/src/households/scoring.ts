// Risk scoring: an assessment's facts → high, medium or low, by rules that are data. The district owns the
// rules file (config/risk-scoring.yaml by default): it can change the weights, thresholds and floors and give
// the file a new version without a code change; each assessment records the version that scored it.
// scoreAssessment is pure; loadRiskRules reads and checks the file, naming the file, line and key of each problem.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { readYamlFile } from "../../../lib/config/yaml.js";
import { COGNITION, COOKING, HOUSING, MOBILITY, RISK_LEVELS, type Assessment, type RiskLevel } from "./schema.js";

/** The facts a rule may test, and their values: the assessment, flattened (gasAppliances is a count). */
const FACTORS = {
  livingAlone: { type: "boolean" },
  age: { type: "number" },
  chronicIllness: { type: "boolean" },
  mobility: { type: "enum", values: MOBILITY },
  fallsLastYear: { type: "number" },
  cognition: { type: "enum", values: COGNITION },
  smokes: { type: "boolean" },
  cooking: { type: "enum", values: COOKING },
  electricalHazards: { type: "boolean" },
  housing: { type: "enum", values: HOUSING },
  gasAppliances: { type: "number" },
} as const satisfies Record<string, { type: "boolean" | "number" | "enum"; values?: readonly string[] }>;
export type Factor = keyof typeof FACTORS;
export const FACTOR_NAMES = Object.keys(FACTORS) as Factor[];
export type Facts = Record<Factor, boolean | number | string>;

export function factsOf(a: Assessment): Facts {
  return {
    livingAlone: a.livingAlone,
    age: a.age,
    chronicIllness: a.chronicIllness,
    mobility: a.mobility,
    fallsLastYear: a.fallsLastYear,
    cognition: a.cognition,
    smokes: a.smokes,
    cooking: a.cooking,
    electricalHazards: a.electricalHazards,
    housing: a.housing,
    gasAppliances: a.gasAppliances.length,
  };
}

/** A test on one fact: equal to a value, one of a list, or a number in a range (min/max inclusive). */
const conditionSchema = z.union([
  z.boolean(),
  z.number(),
  z.string(),
  z.object({ in: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1) }).strict(),
  z
    .object({ min: z.number().optional(), max: z.number().optional() })
    .strict()
    .refine((c) => c.min !== undefined || c.max !== undefined, "give min, max or both"),
]);
type Condition = z.infer<typeof conditionSchema>;

const ruleId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,47}$/, "lower-case letters, digits, _ or - (up to 48)");
// Checked here rather than on the whole file, so a problem elsewhere in the same rule does not hide these.
const whenSchema = z.record(z.string(), conditionSchema).superRefine((w, ctx) => {
  if (Object.keys(w).length === 0) ctx.addIssue({ code: "custom", message: "name at least one fact" });
  for (const [fact, cond] of Object.entries(w)) {
    const problem = conditionProblem(fact, cond);
    if (problem) ctx.addIssue({ code: "custom", message: problem, path: [fact] });
  }
});
const sourceSchema = z.enum(["district", "assumed"]).describe("district: taken from the district plan; assumed: ours, to be confirmed");

export const riskRulesSchema = z
  .object({
    version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/, "letters, digits, _ . + - (up to 64)"),
    thresholds: z
      .object({ medium: z.number(), high: z.number() })
      .strict()
      .refine((t) => t.high > t.medium, { message: "must be above thresholds.medium", path: ["high"] })
      .describe("a score at or above `high` is high risk, at or above `medium` medium, else low"),
    points: z.array(z.object({ id: ruleId, when: whenSchema, points: z.number(), source: sourceSchema, note: z.string().max(300).optional() }).strict()).default([]),
    floors: z
      .array(z.object({ id: ruleId, when: whenSchema, level: z.enum(["medium", "high"]), source: sourceSchema, note: z.string().max(300).optional() }).strict())
      .default([])
      .describe("whatever the score, a home matching `when` is at least `level`"),
  })
  .strict()
  .superRefine((r, ctx) => {
    const ids = new Set<string>();
    const checkId = (list: "points" | "floors", i: number, id: string) => {
      if (ids.has(id)) ctx.addIssue({ code: "custom", message: `rule id "${id}" used twice`, path: [list, i, "id"] });
      ids.add(id);
    };
    r.points.forEach((p, i) => checkId("points", i, p.id));
    r.floors.forEach((f, i) => checkId("floors", i, f.id));
  });
export type RiskRules = z.infer<typeof riskRulesSchema>;

/** Why a condition cannot apply to a fact (unknown fact, wrong type, a value the fact never takes), or undefined. */
function conditionProblem(fact: string, cond: Condition): string | undefined {
  const f = (FACTORS as Record<string, (typeof FACTORS)[Factor]>)[fact];
  if (!f) return `unknown fact "${fact}" (known: ${FACTOR_NAMES.join(", ")})`;
  const values = typeof cond === "object" && "in" in cond ? cond.in : typeof cond === "object" ? undefined : [cond];
  if (values === undefined) return f.type === "number" ? undefined : `min/max apply to numbers only; ${fact} is ${f.type === "enum" ? "one of a list" : "true or false"}`;
  for (const v of values) {
    if (f.type === "enum" && !(f.values as readonly unknown[]).includes(v)) return `${fact} is never ${JSON.stringify(v)} (one of: ${f.values.join(", ")})`;
    if (f.type !== "enum" && typeof v !== f.type) return `${fact} is a ${f.type}, not ${JSON.stringify(v)}`;
  }
  return undefined;
}

function holds(cond: Condition, value: boolean | number | string): boolean {
  if (typeof cond !== "object") return cond === value;
  if ("in" in cond) return cond.in.includes(value);
  if (typeof value !== "number") return false;
  return (cond.min === undefined || value >= cond.min) && (cond.max === undefined || value <= cond.max);
}

const matches = (when: Record<string, Condition>, facts: Facts) => Object.entries(when).every(([k, c]) => holds(c, facts[k as Factor]));

export interface RiskScore {
  level: RiskLevel;
  score: number;
  rulesVersion: string;
  /** The point rules that matched, with their points. */
  matched: Array<{ id: string; points: number }>;
  /** The floor rules that matched (each raised the level to at least its own). */
  floors: Array<{ id: string; level: RiskLevel }>;
}

const rank = (l: RiskLevel) => RISK_LEVELS.indexOf(l);

/** Pure: the same facts and rules always give the same level. */
export function scoreAssessment(rules: RiskRules, facts: Facts): RiskScore {
  const matched = rules.points.filter((p) => matches(p.when, facts)).map((p) => ({ id: p.id, points: p.points }));
  const score = matched.reduce((s, m) => s + m.points, 0);
  let level: RiskLevel = score >= rules.thresholds.high ? "high" : score >= rules.thresholds.medium ? "medium" : "low";
  const floors = rules.floors.filter((f) => matches(f.when, facts)).map((f) => ({ id: f.id, level: f.level }));
  for (const f of floors) if (rank(f.level) > rank(level)) level = f.level;
  return { level, score, rulesVersion: rules.version, matched, floors };
}

/** The rules shipped with Anxin (the district's default), beside the other example configuration. */
export const SHIPPED_RISK_RULES = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  fileURLToPath(import.meta.url).includes(`${path.sep}dist${path.sep}`) ? "../../../.." : "../../..",
  "config/risk-scoring.yaml",
);

/** Reads and checks a rules file; a ConfigError lists every problem as file:line: key: message. */
export async function loadRiskRules(file: string = SHIPPED_RISK_RULES): Promise<RiskRules> {
  return (await readYamlFile(file, riskRulesSchema)).value;
}
