// Device retirements: when the elder withdraws consent to a sensitive device, the relay asks the home's hub to
// take that device out of its configuration (the signed `retire_device` command). The request is a row here,
// written in the consent's own transaction, because a command sent only over MQTT is lost while the hub is
// offline and expires after 60 s anyway; the row stays `pending` until the hub's signed answer arrives.
// Times are ms since epoch.
import type { Kysely, Migration } from "kysely";
import type { LoopDb } from "../store/closed-loop-schema.js";

export const RETIREMENT_STATES = ["pending", "done", "refused", "no_device"] as const;
export type RetirementState = (typeof RETIREMENT_STATES)[number];

export interface HouseholdRetirementsTable {
  id: string;
  household_id: string;
  hub: string;
  /** The plan kind retired (vital_radar). */
  kind: string;
  /** The retired plan item's room. */
  room: string;
  /** The hub's device id, from its latest commissioning report; NULL: the relay knows of none (`no_device`). */
  device: string | null;
  state: RetirementState;
  requested_at: number;
  /** When the hub's answer was stored (done or refused), by the relay's clock. */
  done_at: number | null;
  /** no_device: why none is known; refused: the hub's reason; done: set when the hub no longer had it. */
  reason: string | null;
  /** The commissioning report the device id was read from. */
  report_id: string | null;
  /** How many commands went out, the last one's time and id (each send has a fresh id). */
  sends: number;
  last_sent_at: number | null;
  command_id: string | null;
  /** The hub's `audit/device_retired` or `audit/device_retire_refused` event that settled it. */
  outcome_event: string | null;
}

export type RetirementDb = LoopDb & { household_retirements: HouseholdRetirementsTable };

export function retirementDb(db: Kysely<LoopDb>): Kysely<RetirementDb> {
  return db as unknown as Kysely<RetirementDb>;
}

/** Part of relayExtraMigrations (whatever opens the relay's store passes them). */
export const retirementMigrations: Record<string, Migration> = {
  "2026_12_07_household_retirements": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("household_retirements")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("household_id", "text", (c) => c.notNull())
        .addColumn("hub", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("room", "text", (c) => c.notNull())
        .addColumn("device", "text")
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("requested_at", "bigint", (c) => c.notNull())
        .addColumn("done_at", "bigint")
        .addColumn("reason", "text")
        .addColumn("report_id", "text")
        .addColumn("sends", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("last_sent_at", "bigint")
        .addColumn("command_id", "text")
        .addColumn("outcome_event", "text")
        .execute();
      await db.schema.createIndex("household_retirements_household").ifNotExists().on("household_retirements").columns(["household_id", "requested_at"]).execute();
      // The sender's scan (pending ones) and the hub's answer (its device) both go by state and hub.
      await db.schema.createIndex("household_retirements_pending").ifNotExists().on("household_retirements").columns(["state", "hub", "device"]).execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable("household_retirements").ifExists().execute();
    },
  },
};
