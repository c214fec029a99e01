// A household at the relay: the elder (the fewest fields the ledger needs), where they live, the hub that
// serves them, and the risk assessment an installer records on the first visit. Personal data (PIPL: minimum
// necessary): the name and address live only in the store and are read through audited paths; the
// assessment holds health facts, so it is as sensitive as the name.
import { z } from "zod";
import { RISK_LEVELS } from "../careplans/schema.js";
import { isHubId } from "../mqtt/topics.js";

export { RISK_LEVELS };
export type RiskLevel = (typeof RISK_LEVELS)[number];

export const ROOM_KINDS = ["bedroom", "living", "kitchen", "bathroom", "other"] as const;
export const MOBILITY = ["independent", "walking_aid", "wheelchair", "bedbound"] as const;
export const COGNITION = ["normal", "mild_impairment", "dementia"] as const;
export const COOKING = ["none", "regular", "leaves_unattended"] as const;
export const HOUSING = ["apartment", "old_lane_house", "single_storey", "shared", "other"] as const;
export const GAS_APPLIANCES = ["stove", "water_heater", "space_heater", "other"] as const;

/** The devices a plan names; each maps to what the hub supports (docs/households.md). */
export const DEVICE_KINDS = ["smoke_detector", "gas_detector", "gas_valve", "co_detector", "sos_button", "camera", "fall_radar", "vital_radar"] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];
/** Devices that see or measure the elder: installed only with the elder's recorded consent. */
export const CONSENT_DEVICES = ["camera", "vital_radar"] as const;
export type ConsentDevice = (typeof CONSENT_DEVICES)[number];

const roomId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "a room id: lower-case letters, digits, _ or - (up to 32), e.g. bedroom, kitchen-2");
const text = (max: number) => z.string().trim().min(1).max(max);

export const roomSchema = z.object({ id: roomId, kind: z.enum(ROOM_KINDS) }).strict();

export const assessmentSchema = z
  .object({
    livingAlone: z.boolean(),
    age: z.number().int().min(40).max(130),
    chronicIllness: z.boolean().describe("a chronic illness needing regular care (heart disease, a past stroke, diabetes, COPD, …)"),
    mobility: z.enum(MOBILITY),
    fallsLastYear: z.number().int().min(0).max(100).describe("falls in the last 12 months, as the elder or family report them"),
    cognition: z.enum(COGNITION),
    smokes: z.boolean(),
    cooking: z.enum(COOKING).describe("leaves_unattended: pots left on the stove, forgotten flames"),
    electricalHazards: z.boolean().describe("old wiring, overloaded sockets, electric heaters or blankets"),
    housing: z.enum(HOUSING).describe("old_lane_house: older lane or terrace houses (wooden stairs, shared kitchens)"),
    rooms: z.array(roomSchema).min(1).max(20).describe("the rooms of the home, by id (no personal data)"),
    gasAppliances: z
      .array(z.object({ kind: z.enum(GAS_APPLIANCES), room: roomId }).strict())
      .max(10)
      .default([])
      .describe("gas appliances and the room each is in; empty when the home has no gas"),
  })
  .strict()
  .superRefine((a, ctx) => {
    const ids = new Set<string>();
    a.rooms.forEach((r, i) => {
      if (ids.has(r.id)) ctx.addIssue({ code: "custom", message: `room id "${r.id}" used twice`, path: ["rooms", i, "id"] });
      ids.add(r.id);
    });
    a.gasAppliances.forEach((g, i) => {
      if (!ids.has(g.room)) ctx.addIssue({ code: "custom", message: `no room "${g.room}" in rooms`, path: ["gasAppliances", i, "room"] });
    });
  });
export type Assessment = z.infer<typeof assessmentSchema>;

export const householdInputSchema = z
  .object({
    hub: z.string().refine(isHubId, "not a hub id").describe("the hub installed in this home (its care plan is keyed by it)"),
    elder: z.object({ name: text(64) }).strict().describe("the elder: the name only; phone and contacts are in the hub's care plan"),
    address: text(200),
    street: text(64).describe("the street (街道) whose ledger lists this home"),
    community: text(64).describe("the residents' committee (社区)"),
  })
  .strict();
export type HouseholdInput = z.infer<typeof householdInputSchema>;

export const planItemSchema = z
  .object({
    kind: z.enum(DEVICE_KINDS),
    room: roomId,
    count: z.number().int().min(1).max(20),
    why: z.string().max(200).optional(),
    retiredAt: z.number().int().optional().describe("set when the device was retired (its consent withdrawn)"),
    retiredReason: z.string().max(200).optional(),
  })
  .strict();
export type PlanItem = z.infer<typeof planItemSchema>;

export const customPlanSchema = z
  .object({
    items: z.array(planItemSchema.omit({ retiredAt: true, retiredReason: true })).min(1).max(60),
    reason: text(500).optional().describe("required when the plan falls below the district's minimums: why (e.g. no piped gas in this home)"),
  })
  .strict();

export const consentBodySchema = z
  .object({
    device: z.enum(CONSENT_DEVICES),
    granted: z.boolean().describe("false withdraws (or refuses) consent: the device is retired from the plan"),
    givenBy: z.enum(["elder", "guardian"]).describe("who gave or withdrew it: the elder, or a legal guardian"),
  })
  .strict();
