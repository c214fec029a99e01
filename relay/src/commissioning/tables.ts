// The commissioning reports the relay received: one row per report event, holding the report exactly as the
// hub signed it. The signed envelope itself stays in `events.payload` (the same id): `event_id` is what proves
// that the report is the hub's own statement, not something the relay wrote. Times are ms since epoch.
import type { Kysely, Migration } from "kysely";
import type { LoopDb } from "../store/closed-loop-schema.js";

export interface CommissioningReportsTable {
  /** The report event's id. */
  id: string;
  /** The signed event in `events` (the same id; kept as its own column so the reference is explicit). */
  event_id: string;
  hub: string;
  /** The household id the hub named, if any (no foreign key: a report is kept even for an unknown home). */
  household_id: string | null;
  state: "commissioned" | "blocked";
  finished_at: number;
  received_at: number;
  /** The validated report as JSON. */
  report: string;
}

export type CommissioningDb = LoopDb & { commissioning_reports: CommissioningReportsTable };

export function commissioningDb(db: Kysely<LoopDb>): Kysely<CommissioningDb> {
  return db as unknown as Kysely<CommissioningDb>;
}

/** Part of relayExtraMigrations (whatever opens the relay's store passes them). */
export const commissioningMigrations: Record<string, Migration> = {
  "2026_12_06_commissioning_reports": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("commissioning_reports")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("event_id", "text", (c) => c.notNull())
        .addColumn("hub", "text", (c) => c.notNull())
        .addColumn("household_id", "text")
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("finished_at", "bigint", (c) => c.notNull())
        .addColumn("received_at", "bigint", (c) => c.notNull())
        .addColumn("report", "text", (c) => c.notNull())
        .execute();
      // A hub's reports, newest first.
      await db.schema.createIndex("commissioning_reports_hub").ifNotExists().on("commissioning_reports").columns(["hub", "finished_at"]).execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable("commissioning_reports").ifExists().execute();
    },
  },
};
