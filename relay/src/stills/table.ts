// The stills table, written once for SQLite and PostgreSQL (ms timestamps as bigint, the image as BLOB/bytea),
// created by the relay's shared migrations (store/relay-migrations.ts) like every other table.
import { PostgresAdapter, sql, type Kysely, type Migration } from "kysely";
import type { LoopDb } from "../store/closed-loop-schema.js";

export interface StillsTable {
  /** The hub's id for the still (a ULID): unique, so a replayed upload is refused. */
  id: string;
  hub: string;
  /** The alarm event it belongs to. */
  event_id: string;
  incident_id: string;
  /** 1.. within the alarm's burst. */
  idx: number;
  /** Hub clock when read from the camera. */
  taken_at: number;
  received_at: number;
  sha256: string;
  size: number;
  data: Buffer;
}

export interface StillsTables {
  anxin_stills: StillsTable;
}

export type StillsDb = LoopDb & StillsTables;

/** The same kysely instance (or transaction), seen with the stills table. */
export function stillsDb(db: Kysely<LoopDb>): Kysely<StillsDb> {
  return db as unknown as Kysely<StillsDb>;
}

export const stillsMigrations: Record<string, Migration> = {
  "2026_12_10_anxin_stills": {
    async up(db): Promise<void> {
      // The one column whose type differs: PostgreSQL has no BLOB.
      const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
      await db.schema
        .createTable("anxin_stills")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("hub", "text", (c) => c.notNull())
        .addColumn("event_id", "text", (c) => c.notNull())
        .addColumn("incident_id", "text", (c) => c.notNull())
        .addColumn("idx", "integer", (c) => c.notNull())
        .addColumn("taken_at", "bigint", (c) => c.notNull())
        .addColumn("received_at", "bigint", (c) => c.notNull())
        .addColumn("sha256", "text", (c) => c.notNull())
        .addColumn("size", "integer", (c) => c.notNull())
        .addColumn("data", postgres ? sql`bytea` : "blob", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("anxin_stills_incident").ifNotExists().on("anxin_stills").columns(["incident_id", "taken_at"]).execute();
      await db.schema.createIndex("anxin_stills_received").ifNotExists().on("anxin_stills").column("received_at").execute();
      await db.schema.createIndex("anxin_stills_event").ifNotExists().on("anxin_stills").column("event_id").execute();
    },
  },
};

