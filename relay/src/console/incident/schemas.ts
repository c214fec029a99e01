// The incident page's answers. The serializer sends only the fields named here, so nothing the readers hold
// beyond them (a full care plan inside a closure, a household's street) can reach the browser by mistake.
import { z } from "zod";
import { carePlanSchema } from "../../careplans/schema.js";
import { INCIDENT_STATES } from "../../incidents/lifecycle.js";
import { CONSOLE_ACTIONS } from "./actions.js";

const ms = z.number().int().describe("ms since epoch");

export const idParams = z.object({ id: z.string().min(1).max(64).regex(/^[\x20-\x7e]+$/, "printable ASCII") });
export const errorSchema = z.object({ error: z.string(), message: z.string() });

const maskedWho = z.object({ name: z.string(), phone: z.string() });

const attemptSchema = z.object({
  id: z.string(),
  pass: z.number().int(),
  round: z.number().int(),
  arrivalCheck: z.boolean(),
  channel: z.string(),
  status: z.string(),
  meaning: z.string().nullable(),
  digits: z.string().nullable(),
  requestedAt: ms,
  placedAt: ms.nullable(),
  outcomeAt: ms.nullable(),
});

export const callTreeResponse = z.object({
  incident: z.object({
    id: z.string(),
    hub: z.string(),
    type: z.string(),
    severity: z.string(),
    state: z.enum(INCIDENT_STATES),
    homeMasked: z.string(),
    openedAt: ms,
    closedAt: ms.nullable(),
  }),
  allowedActions: z.array(z.enum(CONSOLE_ACTIONS)).describe("the lifecycle actions the incident's state allows now"),
  takenBy: z.object({ username: z.string(), displayName: z.string(), at: ms }).nullable(),
  serverNow: ms.describe("the relay's clock when it answered: countdowns are drawn against it"),
  tree: z.object({
    escalation: z.string(),
    pass: z.number().int(),
    startDelayS: z.number().int(),
    current: z.object({ label: z.string(), index: z.number().int(), of: z.number().int(), nextAt: ms.optional() }).nullable(),
    steps: z.array(
      z.object({
        index: z.number().int(),
        name: z.string(),
        waitS: z.number().int(),
        repeat: z.number().int(),
        status: z.enum(["done", "current", "next", "not_reached"]),
        targets: z.array(z.object({ ref: z.string(), role: z.string(), channel: z.string(), who: maskedWho.nullable(), attempts: z.array(attemptSchema) })),
      }),
    ),
  }),
});

export const maskedPlanResponse = z.object({
  hub: z.string(),
  plan: z
    .object({
      version: z.number().int(),
      updatedAt: ms,
      elder: z.object({ name: z.string(), phone: z.string(), address: z.string(), riskLevel: z.string() }),
      contacts: z.array(z.object({ ref: z.string(), role: z.string(), name: z.string(), phone: z.string(), hasNote: z.boolean() })),
      onsiteTeam: maskedWho,
      dispatch: z.object({ police: z.string(), fire: z.string(), ambulance: z.string(), gasCompany: z.string().optional() }),
      language: z.string(),
    })
    .nullable()
    .describe("null: the hub has no care plan"),
});

export const revealResponse = z.object({
  hub: z.string(),
  version: z.number().int(),
  updatedAt: ms,
  plan: carePlanSchema,
  revealed: z.object({ at: ms, by: z.string().describe("the actor recorded, user:<username>"), action: z.string(), purpose: z.string() }),
});
