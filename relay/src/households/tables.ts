// The households' tables: the register (one row per home served), its assessments (kept, each with the
// rules version that scored it), the current kit plan, and the consent records (append-only: who gave or
// withdrew consent for which device, and when). Times are ms since epoch; JSON in text columns.
import type { Kysely, Migration } from "kysely";
import type { LoopDb } from "../store/closed-loop-schema.js";

export interface HouseholdsTable {
  id: string;
  hub: string;
  elder_name: string;
  address: string;
  street: string;
  community: string;
  /** The installer token (its id) that registered the home; only it, and admins, may change it. NULL: an admin did. */
  owner: string | null;
  created_at: number;
  created_by: string;
  updated_at: number;
}

export interface HouseholdAssessmentsTable {
  id: string;
  household_id: string;
  at: number;
  by_actor: string;
  facts: string;
  rules_version: string;
  level: string;
  score: number;
  /** The rules that matched: {matched, floors}. */
  detail: string;
}

export interface HouseholdPlansTable {
  household_id: string;
  version: number;
  assessment_id: string;
  level: string;
  items: string;
  withheld: string;
  /** Where the plan is below the district minimums (accepted with `reason`). */
  shortfalls: string;
  reason: string | null;
  basis: "derived" | "custom";
  status: "proposed" | "approved";
  updated_at: number;
  updated_by: string;
  approved_at: number | null;
  approved_by: string | null;
}

export interface HouseholdConsentsTable {
  id: string;
  household_id: string;
  device: string;
  granted: number;
  given_by: string;
  recorded_by: string;
  /** The recording token's id (an actor's name can be reissued to another token). */
  recorded_by_token: string | null;
  at: number;
}

export interface HouseholdTables {
  households: HouseholdsTable;
  household_assessments: HouseholdAssessmentsTable;
  household_plans: HouseholdPlansTable;
  household_consents: HouseholdConsentsTable;
}
export type HouseholdDb = LoopDb & HouseholdTables;

export function householdDb(db: Kysely<LoopDb>): Kysely<HouseholdDb> {
  return db as unknown as Kysely<HouseholdDb>;
}

/** Part of relayExtraMigrations (whatever opens the relay's store passes them). */
export const householdMigrations: Record<string, Migration> = {
  "2026_12_06_households": {
    async up(db): Promise<void> {
      await db.schema
        .createTable("households")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("hub", "text", (c) => c.notNull().unique())
        .addColumn("elder_name", "text", (c) => c.notNull())
        .addColumn("address", "text", (c) => c.notNull())
        .addColumn("street", "text", (c) => c.notNull())
        .addColumn("community", "text", (c) => c.notNull())
        .addColumn("owner", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("created_by", "text", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      // The street's ledger lists its homes by community.
      await db.schema.createIndex("households_street").ifNotExists().on("households").columns(["street", "community"]).execute();

      await db.schema
        .createTable("household_assessments")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("household_id", "text", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("by_actor", "text", (c) => c.notNull())
        .addColumn("facts", "text", (c) => c.notNull())
        .addColumn("rules_version", "text", (c) => c.notNull())
        .addColumn("level", "text", (c) => c.notNull())
        .addColumn("score", "double precision", (c) => c.notNull())
        .addColumn("detail", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("household_assessments_household").ifNotExists().on("household_assessments").columns(["household_id", "at"]).execute();

      await db.schema
        .createTable("household_plans")
        .ifNotExists()
        .addColumn("household_id", "text", (c) => c.primaryKey())
        .addColumn("version", "integer", (c) => c.notNull())
        .addColumn("assessment_id", "text", (c) => c.notNull())
        .addColumn("level", "text", (c) => c.notNull())
        .addColumn("items", "text", (c) => c.notNull())
        .addColumn("withheld", "text", (c) => c.notNull())
        .addColumn("shortfalls", "text", (c) => c.notNull())
        .addColumn("reason", "text")
        .addColumn("basis", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addColumn("updated_by", "text", (c) => c.notNull())
        .addColumn("approved_at", "bigint")
        .addColumn("approved_by", "text")
        .execute();

      await db.schema
        .createTable("household_consents")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("household_id", "text", (c) => c.notNull())
        .addColumn("device", "text", (c) => c.notNull())
        .addColumn("granted", "integer", (c) => c.notNull())
        .addColumn("given_by", "text", (c) => c.notNull())
        .addColumn("recorded_by", "text", (c) => c.notNull())
        .addColumn("recorded_by_token", "text")
        .addColumn("at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("household_consents_household").ifNotExists().on("household_consents").columns(["household_id", "at"]).execute();
    },
  },
};
