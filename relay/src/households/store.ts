// Households in the relay's store. Every change and every read of personal data writes an audit row in the
// same transaction (like care plans); the subject is the home's hub, so one audit listing per hub shows its
// care plan and its household together. Errors name fields and codes, never the values.
import type { Kysely, Transaction } from "kysely";
import { monotonicFactory } from "ulid";
import { recordAudit } from "../careplans/audit.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { isUniqueViolation } from "../store/store.js";
import { addConsented, consentProblems, derivePlan, districtMinimums, NO_CONSENT, retire, shortfalls, type Consents, type Shortfall, type Withheld } from "./plan.js";
import { recordRetirements, retirementsOf, type Retirement } from "./retirements.js";
import { CONSENT_DEVICES, type Assessment, type ConsentDevice, type HouseholdInput, type PlanItem, type RiskLevel } from "./schema.js";
import { factsOf, scoreAssessment, type RiskRules, type RiskScore } from "./scoring.js";
import { householdDb, type HouseholdDb, type HouseholdPlansTable, type HouseholdsTable } from "./tables.js";

export type HouseholdErrorCode = "not_found" | "exists" | "no_assessment" | "no_plan" | "below_minimum" | "consent_required" | "stale" | "bad_plan";

export class HouseholdError extends Error {
  constructor(
    readonly code: HouseholdErrorCode,
    message: string,
    readonly shortfalls: Shortfall[] = [],
  ) {
    super(message);
    this.name = "HouseholdError";
  }
}

/** Who acts: the actor as audited (`installer:<name>`), the token's id when there is one, why, and when. */
export interface Who {
  actor: string;
  tokenId?: string;
  purpose: string;
  at: number;
}

export interface Household {
  id: string;
  hub: string;
  elder: { name: string };
  address: string;
  street: string;
  community: string;
  owner: string | null;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
}

export interface StoredAssessment {
  id: string;
  at: number;
  by: string;
  facts: Assessment;
  level: RiskLevel;
  score: number;
  rulesVersion: string;
  matched: RiskScore["matched"];
  floors: RiskScore["floors"];
}

export interface StoredPlan {
  version: number;
  assessmentId: string;
  level: RiskLevel;
  basis: "derived" | "custom";
  status: "proposed" | "approved";
  items: PlanItem[];
  withheld: Withheld[];
  shortfalls: Shortfall[];
  reason: string | null;
  updatedAt: number;
  updatedBy: string;
  approvedAt: number | null;
  approvedBy: string | null;
}

export interface ConsentRecord {
  device: ConsentDevice;
  granted: boolean;
  givenBy: string;
  recordedBy: string;
  recordedByToken: string | null;
  at: number;
}

export interface HouseholdDetail {
  household: Household;
  assessment: StoredAssessment | null;
  plan: StoredPlan | null;
  consents: ConsentRecord[];
  /** The current consent per sensitive device (the latest record; none: false). */
  consent: Consents;
  /** The hub's care plan, by version only (reading it is its own audited route). */
  carePlanVersion: number | null;
  /** Devices the hub was asked to retire after a consent withdrawal, and where each stands (retirements.ts). */
  retirements: Retirement[];
}

const newId = monotonicFactory();
type Db = Kysely<HouseholdDb> | Transaction<HouseholdDb>;
const audit = (db: Db, who: Who, action: string, subject: string, detail?: string) =>
  recordAudit(db as unknown as Kysely<LoopDb>, { actor: who.actor, action, subject, purpose: detail ? `${who.purpose}; ${detail}` : who.purpose, at: who.at });

const toHousehold = (r: HouseholdsTable): Household => ({
  id: r.id,
  hub: r.hub,
  elder: { name: r.elder_name },
  address: r.address,
  street: r.street,
  community: r.community,
  owner: r.owner,
  createdAt: Number(r.created_at),
  createdBy: r.created_by,
  updatedAt: Number(r.updated_at),
});

const toPlan = (r: HouseholdPlansTable): StoredPlan => ({
  version: Number(r.version),
  assessmentId: r.assessment_id,
  level: r.level as RiskLevel,
  basis: r.basis,
  status: r.status,
  items: JSON.parse(r.items) as PlanItem[],
  withheld: JSON.parse(r.withheld) as Withheld[],
  shortfalls: JSON.parse(r.shortfalls) as Shortfall[],
  reason: r.reason,
  updatedAt: Number(r.updated_at),
  updatedBy: r.updated_by,
  approvedAt: r.approved_at === null ? null : Number(r.approved_at),
  approvedBy: r.approved_by,
});

export async function createHousehold(db0: Kysely<LoopDb>, input: HouseholdInput, who: Who & { owner: string | null }): Promise<Household> {
  const db = householdDb(db0);
  const row: HouseholdsTable = {
    id: newId(who.at),
    hub: input.hub,
    elder_name: input.elder.name,
    address: input.address,
    street: input.street,
    community: input.community,
    owner: who.owner,
    created_at: who.at,
    created_by: who.actor,
    updated_at: who.at,
  };
  try {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("households").values(row).execute();
      await audit(trx, who, "household.create", input.hub, `household ${row.id}`);
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw new HouseholdError("exists", `hub ${input.hub} already serves a household`);
    throw e;
  }
  return toHousehold(row);
}

/** The register row without an audit: for ownership checks, never handed out as is. */
export async function findHousehold(db0: Kysely<LoopDb>, id: string): Promise<Household | undefined> {
  const r = await householdDb(db0).selectFrom("households").selectAll().where("id", "=", id).executeTakeFirst();
  return r && toHousehold(r);
}

async function consentsOf(db: Db, id: string): Promise<ConsentRecord[]> {
  const rows = await db.selectFrom("household_consents").selectAll().where("household_id", "=", id).orderBy("at").orderBy("id").execute();
  return rows.map((r) => ({ device: r.device as ConsentDevice, granted: r.granted === 1, givenBy: r.given_by, recordedBy: r.recorded_by, recordedByToken: r.recorded_by_token, at: Number(r.at) }));
}

export function currentConsent(records: ConsentRecord[]): Consents {
  const c: Consents = { ...NO_CONSENT };
  for (const r of records) c[r.device] = r.granted;
  return c;
}

async function latestAssessment(db: Db, id: string): Promise<StoredAssessment | null> {
  const r = await db.selectFrom("household_assessments").selectAll().where("household_id", "=", id).orderBy("at", "desc").orderBy("id", "desc").executeTakeFirst();
  if (!r) return null;
  const d = JSON.parse(r.detail) as { matched: RiskScore["matched"]; floors: RiskScore["floors"] };
  return { id: r.id, at: Number(r.at), by: r.by_actor, facts: JSON.parse(r.facts) as Assessment, level: r.level as RiskLevel, score: Number(r.score), rulesVersion: r.rules_version, ...d };
}

async function planOf(db: Db, id: string): Promise<StoredPlan | null> {
  const r = await db.selectFrom("household_plans").selectAll().where("household_id", "=", id).executeTakeFirst();
  return r ? toPlan(r) : null;
}

/** Replaces the plan if it is still at `expected` (undefined: none yet); a concurrent change → stale. */
async function putPlan(db: Db, id: string, expected: number | undefined, p: Omit<StoredPlan, "version">): Promise<StoredPlan> {
  const version = (expected ?? 0) + 1;
  const values = {
    version,
    assessment_id: p.assessmentId,
    level: p.level,
    items: JSON.stringify(p.items),
    withheld: JSON.stringify(p.withheld),
    shortfalls: JSON.stringify(p.shortfalls),
    reason: p.reason,
    basis: p.basis,
    status: p.status,
    updated_at: p.updatedAt,
    updated_by: p.updatedBy,
    approved_at: p.approvedAt,
    approved_by: p.approvedBy,
  };
  const done =
    expected === undefined
      ? (await db.insertInto("household_plans").values({ household_id: id, ...values }).onConflict((oc) => oc.column("household_id").doNothing()).executeTakeFirst()).numInsertedOrUpdatedRows
      : (await db.updateTable("household_plans").set(values).where("household_id", "=", id).where("version", "=", expected).executeTakeFirst()).numUpdatedRows;
  if (Number(done) !== 1) throw new HouseholdError("stale", "the plan changed meanwhile; read it and try again");
  // `p` is often the previous plan spread: its own version must not override the new one.
  return { ...p, version };
}

export async function readHousehold(db0: Kysely<LoopDb>, id: string, who: Who): Promise<HouseholdDetail | undefined> {
  const db = householdDb(db0);
  return db.transaction().execute(async (trx) => {
    const r = await trx.selectFrom("households").selectAll().where("id", "=", id).executeTakeFirst();
    await audit(trx, who, r ? "household.read" : "household.read_missing", r?.hub ?? id, `household ${id}`);
    if (!r) return undefined;
    const consents = await consentsOf(trx, id);
    const cp = await trx.selectFrom("care_plans").select("version").where("hub", "=", r.hub).executeTakeFirst();
    return {
      household: toHousehold(r),
      assessment: await latestAssessment(trx, id),
      plan: await planOf(trx, id),
      consents,
      consent: currentConsent(consents),
      carePlanVersion: cp ? Number(cp.version) : null,
      retirements: await retirementsOf(trx, id),
    };
  });
}

export interface LedgerRow extends Household {
  level: RiskLevel | null;
  planStatus: "proposed" | "approved" | null;
}

/**
 * A street's ledger: every home it serves with its risk level and plan status. One audit row for the read.
 * `streets`: only these (a street-limited token's scope, households/street-scope.ts); absent: every street.
 */
export async function listHouseholds(db0: Kysely<LoopDb>, q: { street?: string; streets?: readonly string[]; community?: string; owner?: string; limit: number }, who: Who): Promise<LedgerRow[]> {
  const db = householdDb(db0);
  return db.transaction().execute(async (trx) => {
    let query = trx
      .selectFrom("households as h")
      .leftJoin("household_plans as p", "p.household_id", "h.id")
      .selectAll("h")
      .select(["p.level as plan_level", "p.status as plan_status"]);
    if (q.street !== undefined) query = query.where("h.street", "=", q.street);
    const streets = q.streets;
    if (streets !== undefined) query = query.where((eb) => (streets.length ? eb("h.street", "in", streets) : eb.lit(false)));
    if (q.community !== undefined) query = query.where("h.community", "=", q.community);
    if (q.owner !== undefined) query = query.where("h.owner", "=", q.owner);
    const rows = await query.orderBy("h.street").orderBy("h.community").orderBy("h.id").limit(q.limit).execute();
    // The filters are places, not people: they may go in the audit log.
    const filters = [q.street !== undefined ? "street" : "", q.community !== undefined ? "community" : ""].filter(Boolean).join(",");
    await audit(trx, who, "household.list", "*", `${rows.length} household(s)${filters ? ` by ${filters}` : ""}`);
    return rows.map((r) => ({ ...toHousehold(r), level: (r.plan_level as RiskLevel | null) ?? null, planStatus: r.plan_status ?? null }));
  });
}

/**
 * Records an assessment: scored by `rules`, and the plan derived from it replaces the current one (proposed
 * again: an admin approves the new kit).
 */
export async function recordAssessment(db0: Kysely<LoopDb>, id: string, a: Assessment, rules: RiskRules, who: Who): Promise<{ assessment: StoredAssessment; plan: StoredPlan }> {
  const db = householdDb(db0);
  return db.transaction().execute(async (trx) => {
    const h = await trx.selectFrom("households").select(["hub"]).where("id", "=", id).executeTakeFirst();
    if (!h) throw new HouseholdError("not_found", `no household ${id}`);
    const score = scoreAssessment(rules, factsOf(a));
    const assessment: StoredAssessment = { id: newId(who.at), at: who.at, by: who.actor, facts: a, level: score.level, score: score.score, rulesVersion: score.rulesVersion, matched: score.matched, floors: score.floors };
    await trx
      .insertInto("household_assessments")
      .values({
        id: assessment.id,
        household_id: id,
        at: who.at,
        by_actor: who.actor,
        facts: JSON.stringify(a),
        rules_version: score.rulesVersion,
        level: score.level,
        score: score.score,
        detail: JSON.stringify({ matched: score.matched, floors: score.floors }),
      })
      .execute();
    const consent = currentConsent(await consentsOf(trx, id));
    const derived = derivePlan(a, score.level, consent);
    const before = await planOf(trx, id);
    const plan = await putPlan(trx, id, before?.version, {
      assessmentId: assessment.id,
      level: score.level,
      basis: "derived",
      status: "proposed",
      items: derived.items,
      withheld: derived.withheld,
      shortfalls: [],
      reason: null,
      updatedAt: who.at,
      updatedBy: who.actor,
      approvedAt: null,
      approvedBy: null,
    });
    await trx.updateTable("households").set({ updated_at: who.at }).where("id", "=", id).execute();
    await audit(trx, who, "household.assess", h.hub, `household ${id}; level ${score.level} by rules ${score.rulesVersion}; plan v${plan.version}`);
    return { assessment, plan };
  });
}

/**
 * An installer's or admin's own kit for the home. Refused when it names a camera or vital-sign radar without
 * the elder's consent, and when it falls below the district's minimums unless a reason is given (recorded
 * with the plan and in the audit log).
 */
export async function setCustomPlan(db0: Kysely<LoopDb>, id: string, body: { items: PlanItem[]; reason?: string }, who: Who): Promise<StoredPlan> {
  const db = householdDb(db0);
  return db.transaction().execute(async (trx) => {
    const h = await trx.selectFrom("households").select(["hub"]).where("id", "=", id).executeTakeFirst();
    if (!h) throw new HouseholdError("not_found", `no household ${id}`);
    const a = await latestAssessment(trx, id);
    if (!a) throw new HouseholdError("no_assessment", "record the risk assessment first: the minimums depend on it");
    const rooms = new Set(a.facts.rooms.map((r) => r.id));
    const unknown = body.items.filter((i) => !rooms.has(i.room)).map((i) => `${i.kind} in ${i.room}`);
    if (unknown.length) throw new HouseholdError("bad_plan", `rooms not in the assessment: ${unknown.join(", ")}`);
    const consent = currentConsent(await consentsOf(trx, id));
    const problems = consentProblems(body.items, consent);
    if (problems.length) throw new HouseholdError("consent_required", problems.join("; "));
    const short = shortfalls(body.items, districtMinimums(a.facts, a.level, consent));
    if (short.length && !body.reason) {
      throw new HouseholdError("below_minimum", `below the district's minimums (${describe(short)}); give a reason to accept it`, short);
    }
    const before = await planOf(trx, id);
    const plan = await putPlan(trx, id, before?.version, {
      assessmentId: a.id,
      level: a.level,
      basis: "custom",
      status: "proposed",
      items: body.items,
      withheld: derivePlan(a.facts, a.level, consent).withheld,
      shortfalls: short,
      reason: short.length ? (body.reason as string) : (body.reason ?? null),
      updatedAt: who.at,
      updatedBy: who.actor,
      approvedAt: null,
      approvedBy: null,
    });
    // The reason is the installer's words about the home, not about the elder: kept with the plan; the audit
    // row says that the minimums were waived and for which devices.
    await audit(trx, who, "household.plan_write", h.hub, `household ${id}; plan v${plan.version}${short.length ? `; below minimum: ${describe(short)} (reason recorded)` : ""}`);
    return plan;
  });
}

const describe = (s: Shortfall[]) => s.map((x) => `${x.kind} ${x.planned} of ${x.required}`).join(", ");

/**
 * Records consent for a sensitive device (or its withdrawal) with who took it and when. Withdrawal retires
 * every such device in the plan; consent adds the derived plan's devices of that kind (and the plan is
 * proposed again, since its kit grew).
 */
export async function recordConsent(
  db0: Kysely<LoopDb>,
  id: string,
  c: { device: ConsentDevice; granted: boolean; givenBy: string },
  who: Who,
): Promise<{ consent: Consents; plan: StoredPlan | null; retirements: Retirement[] }> {
  const db = householdDb(db0);
  return db.transaction().execute(async (trx) => {
    const h = await trx.selectFrom("households").select(["hub"]).where("id", "=", id).executeTakeFirst();
    if (!h) throw new HouseholdError("not_found", `no household ${id}`);
    await trx
      .insertInto("household_consents")
      .values({ id: newId(who.at), household_id: id, device: c.device, granted: c.granted ? 1 : 0, given_by: c.givenBy, recorded_by: who.actor, recorded_by_token: who.tokenId ?? null, at: who.at })
      .execute();
    const consent = currentConsent(await consentsOf(trx, id));
    let plan = await planOf(trx, id);
    const before = plan?.items ?? [];
    const a = await latestAssessment(trx, id);
    if (plan && a) {
      const derived = derivePlan(a.facts, a.level, consent);
      const items = c.granted ? addConsented(plan.items, derived.items, c.device) : retire(plan.items, c.device, who.at, `consent withdrawn by the ${c.givenBy}`);
      const changed = JSON.stringify(items) !== JSON.stringify(plan.items);
      if (changed || JSON.stringify(derived.withheld) !== JSON.stringify(plan.withheld)) {
        // A retirement only takes a device away: an approved plan stays approved. A new device needs approval.
        const grew = c.granted && changed;
        plan = await putPlan(trx, id, plan.version, {
          ...plan,
          items,
          withheld: derived.withheld,
          status: grew ? "proposed" : plan.status,
          approvedAt: grew ? null : plan.approvedAt,
          approvedBy: grew ? null : plan.approvedBy,
          updatedAt: who.at,
          updatedBy: who.actor,
        });
      }
    }
    await audit(trx, who, c.granted ? "household.consent_granted" : "household.consent_withdrawn", h.hub, `household ${id}; ${c.device} by the ${c.givenBy}${plan ? `; plan v${plan.version}` : ""}`);
    // A withdrawal asks the hub to take the retired devices out too, durably (households/retirement-sender.ts).
    const retirements = c.granted ? [] : await recordRetirements(trx, { householdId: id, hub: h.hub, kind: c.device, before, after: plan?.items ?? [], who });
    return { consent, plan, retirements };
  });
}

/** An admin approves the plan; `version`, when given, must be the current one (what the admin looked at). */
export async function approvePlan(db0: Kysely<LoopDb>, id: string, version: number | undefined, who: Who): Promise<StoredPlan> {
  const db = householdDb(db0);
  return db.transaction().execute(async (trx) => {
    const h = await trx.selectFrom("households").select(["hub"]).where("id", "=", id).executeTakeFirst();
    if (!h) throw new HouseholdError("not_found", `no household ${id}`);
    const plan = await planOf(trx, id);
    if (!plan) throw new HouseholdError("no_plan", "no plan yet: record the assessment first");
    if (version !== undefined && version !== plan.version) throw new HouseholdError("stale", `the plan is at version ${plan.version}, not ${version}; read it again`);
    const approved = await putPlan(trx, id, plan.version, { ...plan, status: "approved", approvedAt: who.at, approvedBy: who.actor, updatedAt: who.at, updatedBy: who.actor });
    await audit(trx, who, "household.approve", h.hub, `household ${id}; plan v${approved.version}${plan.shortfalls.length ? `; below minimum: ${describe(plan.shortfalls)}` : ""}`);
    return approved;
  });
}

export { CONSENT_DEVICES };
