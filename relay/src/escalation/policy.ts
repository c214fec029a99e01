// Escalation policies: per alarm type, ordered steps; each step calls (or texts) one or more targets at
// once, waits for an acknowledgement, repeats, then moves on. Policies are data with a version; an incident
// keeps a copy of the policy it started with, so editing a policy never changes a call tree in flight.
// The defaults below follow the district programme (docs/escalation.md explains each).
import { z } from "zod";
import { ALARM_TYPES } from "../../../protocol/envelope.js";
import { CONTACT_ROLES } from "../careplans/schema.js";

export const CHANNELS = ["voice", "sms"] as const;
export type Channel = (typeof CHANNELS)[number];

const channel = z.enum(CHANNELS);

export const targetSchema = z.discriminatedUnion("who", [
  z.object({ who: z.literal("elder"), channel: channel.optional() }).strict(),
  z
    .object({
      who: z.literal("role"),
      role: z.enum(CONTACT_ROLES),
      /** all: every contact of the role at once; each_in_turn: one step per contact, in care-plan order. */
      mode: z.enum(["all", "each_in_turn"]).default("all"),
      channel: channel.optional(),
    })
    .strict(),
  z.object({ who: z.literal("group"), group: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/), channel: channel.optional() }).strict(),
  z.object({ who: z.literal("onsite_team"), channel: channel.optional() }).strict(),
]);
export type PolicyTarget = z.infer<typeof targetSchema>;

export const stepSchema = z
  .object({
    name: z.string().min(1).max(80),
    targets: z.array(targetSchema).min(1).max(10),
    channel: channel.default("voice"),
    /** How long to wait for an acknowledgement before the next round or step. */
    waitS: z.number().int().min(0).max(86_400),
    /** Extra rounds of this step before moving on. */
    repeat: z.number().int().min(0).max(9).default(0),
  })
  .strict()
  .superRefine((s, ctx) => {
    const turns = s.targets.filter((t) => t.who === "role" && t.mode === "each_in_turn").length;
    if (turns > 0 && s.targets.length > 1) ctx.addIssue({ code: "custom", message: "a step calling contacts each in turn has only that one target", path: ["targets"] });
  });
export type PolicyStep = z.infer<typeof stepSchema>;

/**
 * A new alarm joining an open incident as new evidence (another device, a higher severity, a new episode after
 * an acknowledgement) re-opens the confirmation: the call tree restarts at this policy step (its index from
 * 0, or its name). Defaults to the first step, so a policy file written before this field keeps invariant 10.
 */
export const newEvidenceSchema = z
  .object({
    restartAtStep: z.union([z.number().int().min(0).max(19), z.string().min(1).max(80)]).default(0),
  })
  .strict();
export type NewEvidencePolicy = z.infer<typeof newEvidenceSchema>;

/**
 * After a responder answers "I will go to the door", ask them `checkAfterS` later to confirm they are with
 * the elder; without a confirmation within `giveUpAfterS` of that check the tree resumes after their step.
 * Absent: no arrival check (the tree stays stopped once someone said they are going).
 */
export const arrivalSchema = z
  .object({
    checkAfterS: z.number().int().min(60).max(86_400),
    channel: channel.default("voice"),
    giveUpAfterS: z.number().int().min(60).max(86_400),
  })
  .strict();
export type ArrivalPolicy = z.infer<typeof arrivalSchema>;

export const policySchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_-]{0,47}$/),
    version: z.number().int().min(1),
    description: z.string().max(400).default(""),
    /** Seconds before the first step (maintenance: the hub may come back by itself). */
    startDelayS: z.number().int().min(0).max(86_400).default(0),
    steps: z.array(stepSchema).min(1).max(20),
    onNewEvidence: newEvidenceSchema.default({ restartAtStep: 0 }),
    arrival: arrivalSchema.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const at = p.onNewEvidence.restartAtStep;
    const known = typeof at === "number" ? at < p.steps.length : p.steps.some((s) => s.name === at);
    if (!known) ctx.addIssue({ code: "custom", message: `no step ${typeof at === "number" ? at : `"${at}"`} in this policy`, path: ["onNewEvidence", "restartAtStep"] });
  });
export type Policy = z.infer<typeof policySchema>;

/** The index of the policy step new evidence restarts at (the schema has checked that it exists). */
export function restartStepIndex(p: Policy): number {
  const at = p.onNewEvidence.restartAtStep;
  return typeof at === "number" ? at : Math.max(0, p.steps.findIndex((s) => s.name === at));
}

export const INCIDENT_TYPES = [...ALARM_TYPES, "hub_offline"] as const;

export const policySetSchema = z
  .object({
    /** Named groups of contact roles, usable as step targets. */
    groups: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,31}$/), z.array(z.enum(CONTACT_ROLES)).min(1)).default({}),
    policies: z.array(policySchema).min(1),
    /** Which policy runs for which incident type; `default` for any type not listed. */
    byType: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,47}$/), z.string()),
  })
  .strict()
  .superRefine((set, ctx) => {
    const names = new Set(set.policies.map((p) => p.name));
    for (const [type, name] of Object.entries(set.byType))
      if (!names.has(name)) ctx.addIssue({ code: "custom", message: `policy "${name}" is not defined`, path: ["byType", type] });
    if (!set.byType.default) ctx.addIssue({ code: "custom", message: "a default policy is required", path: ["byType", "default"] });
    set.policies.forEach((p, i) =>
      p.steps.forEach((s, j) =>
        s.targets.forEach((t, k) => {
          if (t.who === "group" && !set.groups[t.group])
            ctx.addIssue({ code: "custom", message: `group "${t.group}" is not defined`, path: ["policies", i, "steps", j, "targets", k, "group"] });
        }),
      ),
    );
  });
export type PolicySet = z.infer<typeof policySetSchema>;
export type PolicySetInput = z.input<typeof policySetSchema>;

const onsite = (waitS: number, repeat: number): z.input<typeof stepSchema> => ({ name: "platform on-site team", targets: [{ who: "onsite_team" }], waitS, repeat });
const emergencyContactsInTurn = (waitS: number): z.input<typeof stepSchema> => ({ name: "emergency contacts in turn", targets: [{ who: "role", role: "emergency_contact", mode: "each_in_turn" }], waitS });
// A neighbour, committee member or relative nearby reaches the door well within 15 minutes; 5 more minutes
// to answer the check before the next people are called. A welfare check is not an emergency: longer.
const arrivalCheck = (checkAfterS: number, giveUpAfterS: number): z.input<typeof arrivalSchema> => ({ checkAfterS, channel: "voice", giveUpAfterS });

/** The documented defaults (docs/escalation.md). */
export const DEFAULT_POLICIES: PolicySetInput = {
  groups: {
    community_responders: ["neighbourhood_committee", "property_fire_station"],
  },
  policies: [
    {
      name: "fire_gas",
      version: 2,
      description: "smoke, gas, CO, a valve that did not close: call the elder and the community responders at once, then the family, then the on-site team",
      steps: [
        { name: "elder and community responders at once", targets: [{ who: "elder" }, { who: "group", group: "community_responders" }], waitS: 60 },
        emergencyContactsInTurn(45),
        { name: "volunteers, relatives and neighbours", targets: [{ who: "role", role: "volunteer" }, { who: "role", role: "relative_neighbour" }], waitS: 60 },
        onsite(120, 2),
      ],
      // The elder and the people nearest the door first again: a second detector may be a spreading fire.
      onNewEvidence: { restartAtStep: 0 },
      arrival: arrivalCheck(900, 300),
    },
    {
      name: "person",
      version: 2,
      description: "SOS, fall, vital signs: call the elder back first, then contacts in the programme's order, then the on-site team",
      steps: [
        { name: "call the elder back", targets: [{ who: "elder" }], waitS: 45, repeat: 1 },
        emergencyContactsInTurn(45),
        { name: "neighbourhood committee", targets: [{ who: "role", role: "neighbourhood_committee" }], waitS: 60 },
        { name: "property and micro fire station duty staff", targets: [{ who: "role", role: "property_fire_station" }], waitS: 60 },
        { name: "community volunteers", targets: [{ who: "role", role: "volunteer" }], waitS: 60 },
        { name: "relatives and neighbours", targets: [{ who: "role", role: "relative_neighbour" }], waitS: 60 },
        onsite(120, 2),
      ],
      // An SOS pressed again after "I am fine" is the elder asking again: call them back first.
      onNewEvidence: { restartAtStep: 0 },
      arrival: arrivalCheck(900, 300),
    },
    {
      name: "welfare",
      version: 2,
      description: "inactivity: a gentler welfare check with longer waits",
      steps: [
        { name: "call the elder", targets: [{ who: "elder" }], waitS: 120, repeat: 1 },
        emergencyContactsInTurn(120),
        { name: "neighbourhood, volunteers, relatives", targets: [{ who: "role", role: "neighbourhood_committee" }, { who: "role", role: "volunteer" }, { who: "role", role: "relative_neighbour" }], waitS: 300 },
        onsite(600, 1),
      ],
      onNewEvidence: { restartAtStep: 0 },
      arrival: arrivalCheck(1800, 600),
    },
    {
      name: "maintenance",
      // v2: the frozen copy carries onNewEvidence (its default); hub_offline incidents are joined by
      // supervision, not by alarms, so it never applies, and nobody "goes to the door" for a hub.
      version: 2,
      description: "hub_offline: wait for the hub to come back, then ask the elder to check power, text the family, then a maintenance visit",
      startDelayS: 900,
      steps: [
        { name: "ask the elder to check the hub", targets: [{ who: "elder" }], waitS: 1800 },
        { name: "text the emergency contacts", targets: [{ who: "role", role: "emergency_contact" }], channel: "sms", waitS: 3600 },
        { name: "maintenance visit by the on-site team", targets: [{ who: "onsite_team" }], channel: "sms", waitS: 0 },
      ],
    },
  ],
  byType: {
    smoke: "fire_gas",
    gas: "fire_gas",
    co: "fire_gas",
    valve_fault: "fire_gas",
    sos: "person",
    fall: "person",
    vital_absent: "person",
    vital_abnormal: "person",
    inactivity: "welfare",
    hub_offline: "maintenance",
    default: "person",
  },
};

/** The checked policy set (defaults unless given). Throws with every problem's path when invalid. */
export function loadPolicySet(input: unknown = DEFAULT_POLICIES, where = "the default policies"): PolicySet {
  const r = policySetSchema.safeParse(input);
  if (!r.success) throw new Error(`invalid escalation policies in ${where}:\n  ${r.error.issues.map((i) => `${i.path.map(String).join(".")}: ${i.message}`).join("\n  ")}`);
  return r.data;
}

/** The policy that runs for an incident type. */
export function policyFor(set: PolicySet, type: string): Policy {
  const name = set.byType[type] ?? set.byType.default;
  const p = set.policies.find((x) => x.name === name);
  if (!p) throw new Error(`no policy "${name}" for ${type}`);
  return p;
}

/** Policies from a YAML/JSON file (escalation.policiesFile); problems come with file, line and key. */
export async function readPolicyFile(file: string): Promise<PolicySet> {
  const { readYamlFile } = await import("../../../lib/config/yaml.js");
  return (await readYamlFile(file, policySetSchema)).value;
}
