// Who has taken which incident in hand at the duty console. Every take is a row: the current one holds the
// incident's id in `current_key`, a take handed over (forced) has it cleared, so the history stays and the
// unique column lets exactly one of two people taking at once win (the convention of incidents.open_key).
import type { Kysely, Migration } from "kysely";
import type { LoopDb } from "../../store/closed-loop-schema.js";

export interface IncidentTakesTable {
  id: string;
  incident_id: string;
  /** The incident's id while this is its current taker; NULL once someone else took it over. */
  current_key: string | null;
  /** The console account (its id, username and display name as they were when it took the incident). */
  user_id: string;
  username: string;
  display_name: string;
  /** As audited: the account's actor string. */
  actor: string;
  taken_at: number;
  /** The take this one replaced (a forced take); NULL for the first. */
  previous_id: string | null;
  ended_at: number | null;
  /** The actor that took it over. */
  ended_by: string | null;
}

export interface ConsoleQueueTables {
  console_incident_takes: IncidentTakesTable;
}

export type QueueDb = LoopDb & ConsoleQueueTables;

/** The same kysely instance (or transaction), seen with the queue's table. */
export function queueDb(db: Kysely<LoopDb>): Kysely<QueueDb> {
  return db as unknown as Kysely<QueueDb>;
}

/** Part of closedLoopMigrations (whatever opens the relay's store with those gets this too). */
export const consoleQueueMigrations: Record<string, Migration> = {
  "2026_12_08_console_incident_takes": {
    async up(db): Promise<void> {
      await db.schema
        .createTable("console_incident_takes")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("incident_id", "text", (c) => c.notNull())
        .addColumn("current_key", "text", (c) => c.unique())
        .addColumn("user_id", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("display_name", "text", (c) => c.notNull())
        .addColumn("actor", "text", (c) => c.notNull())
        .addColumn("taken_at", "bigint", (c) => c.notNull())
        .addColumn("previous_id", "text")
        .addColumn("ended_at", "bigint")
        .addColumn("ended_by", "text")
        .execute();
      await db.schema.createIndex("console_incident_takes_incident").ifNotExists().on("console_incident_takes").columns(["incident_id", "taken_at"]).execute();
    },
  },
};
