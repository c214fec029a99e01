// The upkeep sweep's tables. `upkeep_runs` is its timer and record, as `retention_runs` is retention's: the
// one row with `pending_key = 'sweep'` is the next sweep, claimed by one conditional UPDATE so one instance
// sweeps at a time; a finished sweep keeps its counts and the next one is inserted in the same transaction.
// `upkeep_items` holds each household's upkeep as the last sweep computed it, and which due date an operator
// alert was raised for (so each overdue item raises exactly one, whichever instances sweep).
import type { Kysely, Migration } from "kysely";
import type { LoopDb } from "../store/closed-loop-schema.js";
import type { HouseholdTables } from "./tables.js";

export const PENDING_UPKEEP = "sweep";

export interface UpkeepRunsTable {
  id: string;
  pending_key: string | null;
  due_at: number;
  /** `<relay.id>#<boot>` (daemon/claims.ts). */
  claimed_by: string | null;
  claimed_until: number | null;
  started_at: number | null;
  finished_at: number | null;
  /** done | failed */
  result: string | null;
  items: number | null;
  overdue: number | null;
  /** Alerts raised by this sweep (items newly overdue). */
  alerts: number | null;
  error: string | null;
}

export interface UpkeepItemsTable {
  /** `<household id>/<item key>` */
  id: string;
  household_id: string;
  hub: string;
  /** self_test:<device> | battery:<device> | reassessment */
  item_key: string;
  what: string;
  device: string | null;
  kind: string | null;
  since: number;
  due_at: number;
  overdue_at: number;
  /** ok | due | overdue, at the last sweep. */
  status: string;
  /** The due date the overdue alert was raised for; NULL: none yet. */
  alerted_due_at: number | null;
  alert_id: string | null;
  updated_at: number;
}

export type UpkeepDb = LoopDb & HouseholdTables & { upkeep_runs: UpkeepRunsTable; upkeep_items: UpkeepItemsTable };

export function upkeepDb(db: Kysely<LoopDb>): Kysely<UpkeepDb> {
  return db as unknown as Kysely<UpkeepDb>;
}

/** Part of relayExtraMigrations (whatever opens the relay's store passes them). */
export const upkeepMigrations: Record<string, Migration> = {
  "2026_12_06_upkeep": {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration sees the schema as it is then
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable("upkeep_runs")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("pending_key", "text", (c) => c.unique())
        .addColumn("due_at", "bigint", (c) => c.notNull())
        .addColumn("claimed_by", "text")
        .addColumn("claimed_until", "bigint")
        .addColumn("started_at", "bigint")
        .addColumn("finished_at", "bigint")
        .addColumn("result", "text")
        .addColumn("items", "bigint")
        .addColumn("overdue", "bigint")
        .addColumn("alerts", "bigint")
        .addColumn("error", "text")
        .execute();
      await db.schema.createIndex("upkeep_runs_finished").ifNotExists().on("upkeep_runs").columns(["finished_at"]).execute();
      await db.schema
        .createTable("upkeep_items")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("household_id", "text", (c) => c.notNull())
        .addColumn("hub", "text", (c) => c.notNull())
        .addColumn("item_key", "text", (c) => c.notNull())
        .addColumn("what", "text", (c) => c.notNull())
        .addColumn("device", "text")
        .addColumn("kind", "text")
        .addColumn("since", "bigint", (c) => c.notNull())
        .addColumn("due_at", "bigint", (c) => c.notNull())
        .addColumn("overdue_at", "bigint", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("alerted_due_at", "bigint")
        .addColumn("alert_id", "text")
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("upkeep_items_household").ifNotExists().on("upkeep_items").columns(["household_id"]).execute();
      await db.schema.createIndex("upkeep_items_status").ifNotExists().on("upkeep_items").columns(["status", "due_at"]).execute();
    },
  },
};
