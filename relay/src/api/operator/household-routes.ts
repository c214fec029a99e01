// The operator API's household routes: an installer registers a home, records its risk assessment, reads the
// derived kit plan, records the elder's consent for sensitive devices and asks for the hub's claim code; an
// admin approves the plan. Installers reach only the homes they registered; a street-limited token only the
// homes on its streets (households/street-scope.ts); every read and change is audited.
import type { Kysely } from "kysely";
import { z } from "zod";
import type { Principal, Role } from "../../auth/tokens.js";
import { recordAudit } from "../../careplans/audit.js";
import {
  approvePlan,
  createHousehold,
  findHousehold,
  HouseholdError,
  listHouseholds,
  readHousehold,
  recordAssessment,
  recordConsent,
  setCustomPlan,
  type Household,
  type Who,
} from "../../households/store.js";
import { assessmentSchema, CONSENT_DEVICES, consentBodySchema, customPlanSchema, DEVICE_KINDS, householdInputSchema, planItemSchema, RISK_LEVELS } from "../../households/schema.js";
import { loadRiskRules, type RiskRules } from "../../households/scoring.js";
import { retirementsOut } from "./retirement-schema.js";
import { inStreetScope, OUTSIDE_STREETS, streetScope } from "../../households/street-scope.js";
import { CLAIM_AUDIT_ACTION, ClaimError, type Registry } from "../../registry/registry.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import { HttpError } from "../errors.js";
import { route, type OperatorRoute } from "./route.js";
import { claimBody, claimSchema } from "./schemas.js";

export interface HouseholdRouteDeps {
  db: Kysely<LoopDb>;
  registry: Registry;
  now: () => number;
  /** The risk-scoring rules (households.riskScoringFile); default: the shipped file, read on first use. */
  riskRules?: RiskRules;
}

const ms = z.number().int().describe("ms since epoch");
const FIELDS: readonly Role[] = ["installer", "admin"];
const READERS: readonly Role[] = ["operator", "admin", "installer"];
const ADMIN: readonly Role[] = ["admin"];

const householdSchema = z.object({
  id: z.string(),
  hub: z.string(),
  elder: z.object({ name: z.string() }),
  address: z.string(),
  street: z.string(),
  community: z.string(),
  owner: z.string().nullable().describe("the installer token id that registered the home (null: an admin)"),
  createdAt: ms,
  createdBy: z.string(),
  updatedAt: ms,
});
const shortfallSchema = z.object({ kind: z.enum(DEVICE_KINDS), required: z.number().int(), planned: z.number().int() });
const planSchema = z.object({
  version: z.number().int(),
  assessmentId: z.string(),
  level: z.enum(RISK_LEVELS),
  basis: z.enum(["derived", "custom"]),
  status: z.enum(["proposed", "approved"]),
  items: z.array(planItemSchema),
  withheld: z.array(z.object({ kind: z.enum(CONSENT_DEVICES), room: z.string(), reason: z.string() })).describe("devices the level calls for that the elder has not consented to"),
  shortfalls: z.array(shortfallSchema).describe("where the plan is below the district's minimums (accepted with `reason`)"),
  reason: z.string().nullable(),
  updatedAt: ms,
  updatedBy: z.string(),
  approvedAt: ms.nullable(),
  approvedBy: z.string().nullable(),
});
const assessmentOut = z.object({
  id: z.string(),
  at: ms,
  by: z.string(),
  facts: assessmentSchema,
  level: z.enum(RISK_LEVELS),
  score: z.number(),
  rulesVersion: z.string().describe("the version of the scoring rules that scored it"),
  matched: z.array(z.object({ id: z.string(), points: z.number() })),
  floors: z.array(z.object({ id: z.string(), level: z.enum(RISK_LEVELS) })),
});
const consentsOut = z.object({ camera: z.boolean(), vital_radar: z.boolean() });
const detailSchema = z.object({
  household: householdSchema,
  assessment: assessmentOut.nullable(),
  plan: planSchema.nullable(),
  consents: z.array(z.object({ device: z.enum(CONSENT_DEVICES), granted: z.boolean(), givenBy: z.string(), recordedBy: z.string(), recordedByToken: z.string().nullable(), at: ms })),
  consent: consentsOut,
  carePlanVersion: z.number().int().nullable(),
  retirements: retirementsOut,
});
const ledgerQuery = z
  .object({
    street: z.string().min(1).max(64).optional(),
    community: z.string().min(1).max(64).optional(),
    limit: z.coerce.number().int().min(1).max(5000).default(1000),
  })
  .strict();
const approveBody = z.object({ version: z.number().int().min(1).optional().describe("the plan version you reviewed: refused (409) if it changed since") }).strict();

const ERROR_STATUS: Record<HouseholdError["code"], number> = {
  not_found: 404,
  exists: 409,
  no_assessment: 409,
  no_plan: 409,
  below_minimum: 422,
  consent_required: 422,
  stale: 409,
  bad_plan: 400,
};

function mapped<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => {
    if (e instanceof HouseholdError) throw new HttpError(ERROR_STATUS[e.code], e.code, e.message);
    throw e;
  });
}

export function householdRoutes(d: HouseholdRouteDeps): OperatorRoute[] {
  let rules: Promise<RiskRules> | undefined = d.riskRules ? Promise.resolve(d.riskRules) : undefined;
  const riskRules = () => (rules ??= loadRiskRules());
  const who = (actor: string, principal: Principal | undefined): Who => ({ actor, tokenId: principal?.id, purpose: "api", at: d.now() });

  /**
   * The household, if this principal may act on it: a street-limited token only on its streets (anything
   * else is answered as not found, so it learns nothing of it), installers only on the homes they registered.
   */
  const reach = async (id: string, principal: Principal | undefined, actor: string, doing: string): Promise<Household> => {
    const h = await findHousehold(d.db, id);
    if (!h) throw new HttpError(404, "not_found", `no household ${id}`);
    if (!inStreetScope(streetScope(principal), h.street)) {
      await recordAudit(d.db, { actor, action: "household.refused", subject: h.hub, purpose: `api; ${doing} household ${id}; ${OUTSIDE_STREETS}`, at: d.now() });
      throw new HttpError(404, "not_found", `no household ${id}`);
    }
    if (principal?.role === "installer" && h.owner !== principal.id) {
      await recordAudit(d.db, { actor, action: "household.refused", subject: h.hub, purpose: `api; ${doing} household ${id}`, at: d.now() });
      throw new HttpError(403, "forbidden", `household ${id} was registered by an admin or another installer`);
    }
    return h;
  };

  return [
    route<z.infer<typeof householdInputSchema>>({
      method: "POST",
      path: "/v1/households",
      roles: FIELDS,
      tag: "households",
      summary: "register a home: the elder's name, address, street and community, and its hub (personal data; audited). An installer's homes are theirs to assess.",
      body: householdInputSchema,
      response: householdSchema,
      okStatus: 201,
      errors: { 409: "the hub already serves a household" },
      handle: async ({ body, principal, actor }) => {
        if (!inStreetScope(streetScope(principal), body.street)) {
          await recordAudit(d.db, { actor, action: "household.refused", subject: body.hub, purpose: `api; create household; ${OUTSIDE_STREETS}`, at: d.now() });
          throw new HttpError(403, "forbidden", "this token registers homes on its own streets only");
        }
        const owner = principal?.role === "installer" ? principal.id : null;
        return { status: 201, body: await mapped(createHousehold(d.db, body, { ...who(actor, principal), owner })) };
      },
    }),
    route<undefined, z.infer<typeof ledgerQuery>>({
      method: "GET",
      path: "/v1/households",
      roles: READERS,
      tag: "households",
      summary: "the ledger: every home served, by street and community, with its risk level and plan status (installers: their own homes; audited)",
      query: ledgerQuery,
      response: z.object({ households: z.array(householdSchema.extend({ level: z.enum(RISK_LEVELS).nullable(), planStatus: z.enum(["proposed", "approved"]).nullable() })) }),
      handle: async ({ query, principal, actor }) => {
        const owner = principal?.role === "installer" ? principal.id : undefined;
        return { body: { households: await listHouseholds(d.db, { ...query, owner, streets: streetScope(principal) }, who(actor, principal)) } };
      },
    }),
    route({
      method: "GET",
      path: "/v1/households/{id}",
      roles: READERS,
      tag: "households",
      summary: "a home with its latest assessment, plan and consent records (personal data: every read is audited)",
      response: detailSchema,
      errors: { 404: "no such household" },
      handle: async ({ params, principal, actor }) => {
        await reach(params.id as string, principal, actor, "read");
        const got = await readHousehold(d.db, params.id as string, who(actor, principal));
        if (!got) throw new HttpError(404, "not_found", `no household ${params.id}`);
        return { body: got };
      },
    }),
    route<z.infer<typeof assessmentSchema>>({
      method: "PUT",
      path: "/v1/households/{id}/assessment",
      roles: FIELDS,
      tag: "households",
      summary: "record the risk assessment: scored into high/medium/low by the district's rules; the kit plan is derived from it (proposed: an admin approves)",
      body: assessmentSchema,
      response: z.object({ assessment: assessmentOut, plan: planSchema }),
      errors: { 404: "no such household", 409: "changed meanwhile" },
      handle: async ({ params, body, principal, actor }) => {
        await reach(params.id as string, principal, actor, "assess");
        return { body: await mapped(recordAssessment(d.db, params.id as string, body, await riskRules(), who(actor, principal))) };
      },
    }),
    route({
      method: "GET",
      path: "/v1/households/{id}/plan",
      roles: READERS,
      tag: "households",
      summary: "the home's kit plan: devices, counts and rooms, what consent withholds, and any shortfall against the district's minimums",
      response: planSchema,
      errors: { 404: "no such household, or no plan yet" },
      handle: async ({ params, principal, actor }) => {
        await reach(params.id as string, principal, actor, "read plan of");
        const got = await readHousehold(d.db, params.id as string, who(actor, principal));
        if (!got?.plan) throw new HttpError(404, "no_plan", `household ${params.id} has no plan yet: record the assessment first`);
        return { body: got.plan };
      },
    }),
    route<z.infer<typeof customPlanSchema>>({
      method: "PUT",
      path: "/v1/households/{id}/plan",
      roles: FIELDS,
      tag: "households",
      summary: "replace the derived plan with your own; below the district's minimums only with a reason (recorded and audited)",
      body: customPlanSchema,
      response: planSchema,
      errors: { 404: "no such household", 409: "no assessment yet, or changed meanwhile", 422: "below_minimum without a reason, or consent_required for a camera or vital-sign radar" },
      handle: async ({ params, body, principal, actor }) => {
        await reach(params.id as string, principal, actor, "plan");
        return { body: await mapped(setCustomPlan(d.db, params.id as string, body, who(actor, principal))) };
      },
    }),
    route<z.infer<typeof consentBodySchema>>({
      method: "POST",
      path: "/v1/households/{id}/consents",
      roles: FIELDS,
      tag: "households",
      summary: "record the elder's consent to (or withdrawal from) a camera or vital-sign radar; withdrawal retires the device from the plan",
      body: consentBodySchema,
      response: z.object({ consent: consentsOut, plan: planSchema.nullable(), retirements: retirementsOut }),
      errors: { 404: "no such household", 409: "changed meanwhile" },
      handle: async ({ params, body, principal, actor }) => {
        await reach(params.id as string, principal, actor, "consent");
        return { body: await mapped(recordConsent(d.db, params.id as string, body, who(actor, principal))) };
      },
    }),
    route<z.infer<typeof approveBody>>({
      method: "POST",
      path: "/v1/households/{id}/approve",
      roles: ADMIN,
      tag: "households",
      summary: "approve the home's plan (audited)",
      body: approveBody,
      response: planSchema,
      errors: { 404: "no such household", 409: "no plan yet, or not the version given" },
      handle: async ({ params, body, principal, actor }) => ({ body: await mapped(approvePlan(d.db, params.id as string, body.version, who(actor, principal))) }),
    }),
    route<z.infer<typeof claimBody>>({
      method: "POST",
      path: "/v1/households/{id}/claim",
      roles: FIELDS,
      tag: "households",
      summary: "the one-time claim code for the home's hub, once its plan exists; the same rules as POST /v1/hubs/{hub}/claim (audited)",
      body: claimBody,
      response: claimSchema,
      errors: { 404: "no such household", 409: "no plan yet; or the hub is enrolled or revoked" },
      handle: async ({ params, body, principal, actor }) => {
        const h = await reach(params.id as string, principal, actor, "claim for");
        const detail = await readHousehold(d.db, h.id, { ...who(actor, principal), purpose: "api; claim" });
        if (!detail?.plan) throw new HttpError(409, "no_plan", "record the assessment first: the kit is installed from its plan");
        const installer = principal?.role === "installer" ? principal.id : undefined;
        try {
          const c = await d.registry.createClaim(h.hub, { rotate: body.rotate, installer });
          await recordAudit(d.db, { actor, action: CLAIM_AUDIT_ACTION[c.action], subject: h.hub, purpose: `api; household ${h.id}`, at: d.now() });
          return { status: 201, body: { hub: h.hub, code: c.code, expiresAt: c.expiresAt } };
        } catch (e) {
          if (e instanceof ClaimError) {
            await recordAudit(d.db, { actor, action: `hub.claim_refused:${e.code}`, subject: h.hub, purpose: `api; household ${h.id}`, at: d.now() });
            throw new HttpError(e.code === "bad_hub_id" ? 400 : e.code === "forbidden" ? 403 : 409, e.code, e.message);
          }
          throw e;
        }
      },
    }),
  ];
}
