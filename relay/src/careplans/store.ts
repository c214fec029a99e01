// Care plans in the relay's store. Every read goes through readCarePlan, which writes an audit row in the
// same transaction: there is no unaudited way to get a plan out of this module.
import { readFile } from "node:fs/promises";
import type { Kysely } from "kysely";
import { parse as parseYaml } from "yaml";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { recordAudit, recordAudits } from "./audit.js";
import { carePlanProblems, carePlanSchema, type CarePlan } from "./schema.js";

export class CarePlanError extends Error {
  constructor(
    message: string,
    readonly problems: string[] = [],
  ) {
    super(problems.length ? `${message}:\n  ${problems.join("\n  ")}` : message);
    this.name = "CarePlanError";
  }
}

export interface StoredCarePlan {
  hub: string;
  version: number;
  updatedAt: number;
  updatedBy: string;
  plan: CarePlan;
}

/** Checks a care plan from a wire or a file; the error lists paths, never the values. */
export function parseCarePlan(raw: unknown, where: string): CarePlan {
  const r = carePlanSchema.safeParse(raw);
  if (!r.success) throw new CarePlanError(`invalid care plan in ${where}`, carePlanProblems(r.error));
  return r.data;
}

/** A care plan from a YAML or JSON file (JSON is YAML). */
export async function loadCarePlanFile(file: string): Promise<CarePlan> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new CarePlanError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new CarePlanError(`${file} is not YAML or JSON: ${(e as Error).message.split("\n")[0]}`);
  }
  return parseCarePlan(raw, file);
}

/** Stores (or replaces) a hub's plan; the version goes up by one each time. Audited as a write. */
export async function setCarePlan(db: Kysely<LoopDb>, hub: string, plan: CarePlan, by: { actor: string; purpose: string; at: number }): Promise<number> {
  const checked = parseCarePlan(plan, "the request");
  return db.transaction().execute(async (trx) => {
    // One statement, so two first writes at once (two operators, two relay instances) cannot both insert.
    const got = await trx
      .insertInto("care_plans")
      .values({ hub, plan: JSON.stringify(checked), version: 1, updated_at: by.at, updated_by: by.actor })
      .onConflict((oc) =>
        oc.column("hub").doUpdateSet((eb) => ({ plan: eb.ref("excluded.plan"), version: eb("care_plans.version", "+", 1), updated_at: eb.ref("excluded.updated_at"), updated_by: eb.ref("excluded.updated_by") })),
      )
      .returning("version")
      .executeTakeFirstOrThrow();
    const version = Number(got.version);
    await recordAudit(trx, { actor: by.actor, action: "careplan.write", subject: hub, purpose: by.purpose, at: by.at });
    return version;
  });
}

/**
 * Reads a hub's plan and records who read it and why. `db` may be a transaction (the escalation reads a plan
 * inside the commit that opens an incident).
 */
export async function readCarePlan(db: Kysely<LoopDb>, hub: string, by: { actor: string; purpose: string; at: number }): Promise<StoredCarePlan | undefined> {
  const r = await db.selectFrom("care_plans").selectAll().where("hub", "=", hub).executeTakeFirst();
  await recordAudit(db, { actor: by.actor, action: r ? "careplan.read" : "careplan.read_missing", subject: hub, purpose: by.purpose, at: by.at });
  return r ? storedPlan(r) : undefined;
}

/**
 * readCarePlan for many reads at once (incidents opened together): one query, and the audit rows each read
 * would have written, one per entry of `hubs` (a hub named twice was read for two purposes). A plan that no
 * longer validates comes back as its CarePlanError.
 */
export async function readCarePlans(db: Kysely<LoopDb>, hubs: readonly string[], by: { actor: string; purpose: string; at: number }): Promise<Map<string, StoredCarePlan | CarePlanError | undefined>> {
  const rows = hubs.length > 0 ? await db.selectFrom("care_plans").selectAll().where("hub", "in", [...new Set(hubs)]).execute() : [];
  const byHub = new Map(rows.map((r) => [r.hub, r]));
  await recordAudits(db, hubs.map((hub) => ({ actor: by.actor, action: byHub.has(hub) ? "careplan.read" : "careplan.read_missing", subject: hub, purpose: by.purpose, at: by.at })));
  const out = new Map<string, StoredCarePlan | CarePlanError | undefined>();
  for (const hub of hubs) {
    const r = byHub.get(hub);
    try {
      out.set(hub, r ? storedPlan(r) : undefined);
    } catch (err) {
      if (!(err instanceof CarePlanError)) throw err;
      out.set(hub, err);
    }
  }
  return out;
}

function storedPlan(r: { hub: string; plan: string; version: number; updated_at: number; updated_by: string }): StoredCarePlan {
  // Stored plans were valid when written; one that no longer parses (a schema change) is reported, not guessed at.
  const parsed = carePlanSchema.safeParse(JSON.parse(r.plan));
  if (!parsed.success) throw new CarePlanError(`the stored care plan of hub ${r.hub} is no longer valid; set it again`, carePlanProblems(parsed.error));
  return { hub: r.hub, version: r.version, updatedAt: r.updated_at, updatedBy: r.updated_by, plan: parsed.data };
}

export async function deleteCarePlan(db: Kysely<LoopDb>, hub: string, by: { actor: string; purpose: string; at: number }): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const r = await trx.deleteFrom("care_plans").where("hub", "=", hub).executeTakeFirst();
    await recordAudit(trx, { actor: by.actor, action: "careplan.delete", subject: hub, purpose: by.purpose, at: by.at });
    return Number(r.numDeletedRows) === 1;
  });
}
