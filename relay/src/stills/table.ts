// The stills table, written once for SQLite and PostgreSQL (ms timestamps as bigint, the image as BLOB/bytea).
// The stills parts migrate it themselves, with a migration table of their own (stills_migrations): the
// relay's shared migrator refuses a database holding a migration it does not know, and this keeps a relay or
// CLI that never loads the stills parts working on a store that has them.
import { Migrator, sql, type Kysely, type Migration } from "kysely";
import type { RelayConfig } from "../config/schema.js";
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

function stillsMigrations(dialect: "sqlite" | "postgres"): Record<string, Migration> {
  return {
    "2026_12_10_anxin_stills": {
      async up(db): Promise<void> {
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
          .addColumn("data", dialect === "postgres" ? sql`bytea` : "blob", (c) => c.notNull())
          .execute();
        await db.schema.createIndex("anxin_stills_incident").ifNotExists().on("anxin_stills").columns(["incident_id", "taken_at"]).execute();
        await db.schema.createIndex("anxin_stills_received").ifNotExists().on("anxin_stills").column("received_at").execute();
        await db.schema.createIndex("anxin_stills_event").ifNotExists().on("anxin_stills").column("event_id").execute();
      },
    },
  };
}

const migrated = new WeakMap<object, Promise<void>>();

/** Creates the table once per store (both stills plugins call it; the second waits for the first). */
export function ensureStillsTable(db: Kysely<LoopDb>, config: Pick<RelayConfig, "store">): Promise<void> {
  let p = migrated.get(db);
  if (!p) {
    const dialect = config.store.kind;
    const migrator = new Migrator({
      db,
      provider: { getMigrations: async () => stillsMigrations(dialect) },
      migrationTableName: "stills_migrations",
      migrationLockTableName: "stills_migrations_lock",
      ...(config.store.kind === "postgres" ? { migrationTableSchema: config.store.schema } : {}),
      allowUnorderedMigrations: true,
    });
    p = migrator.migrateToLatest().then(({ error }) => {
      if (error) throw new Error(`stills: migration failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`, { cause: error });
    });
    p.catch(() => migrated.delete(db));
    migrated.set(db, p);
  }
  return p;
}
