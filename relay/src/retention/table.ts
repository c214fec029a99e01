// The retention sweep's own table, and the indexes its deletes need on the tables it prunes.
//
// `retention_runs` is both the timer and the record. The one row with `pending_key = 'sweep'` is the next
// sweep: instances claim it with one conditional UPDATE (as escalation timers are claimed), so one sweep runs
// at a time across every instance sharing the store. When the sweep ends, that row keeps what was deleted and
// loses its pending key, and the next sweep's row is inserted in the same transaction. The unique column
// makes "at most one pending sweep" hold whichever instances race to schedule it (closed-loop-schema.ts uses
// the same pattern for open incidents).
import type { Kysely, Migration } from "kysely";
import type { LoopDb, RelayDbHandle } from "../store/closed-loop-schema.js";
import type { ForwardDb } from "../forwarders/table.js";

export const PENDING_SWEEP = "sweep";

export interface RetentionRunsTable {
  id: string;
  /** `sweep` while this row is the scheduled (or running) sweep; NULL once it finished. */
  pending_key: string | null;
  due_at: number;
  /** `<relay.id>#<boot>` of the instance running it (daemon/claims.ts); kept after the claim ends. */
  claimed_by: string | null;
  /** The claim's lease end; NULL when unclaimed or released (the holder is known to be gone). */
  claimed_until: number | null;
  started_at: number | null;
  finished_at: number | null;
  /** done | failed | interrupted */
  result: string | null;
  /** JSON `{ "<kind>": <rows deleted> }`: counts only, never a row's contents. */
  deleted: string | null;
  total: number | null;
  /** Why a failed sweep failed (a database message; no row contents). */
  error: string | null;
}

export type RetentionDb = LoopDb & ForwardDb & { retention_runs: RetentionRunsTable };

export function retentionDb(db: RelayDbHandle): Kysely<RetentionDb> {
  return db as unknown as Kysely<RetentionDb>;
}

export const retentionMigrations: Record<string, Migration> = {
  "2026_12_06_retention": {
    async up(db): Promise<void> {
      await db.schema
        .createTable("retention_runs")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("pending_key", "text", (c) => c.unique())
        .addColumn("due_at", "bigint", (c) => c.notNull())
        .addColumn("claimed_by", "text")
        .addColumn("claimed_until", "bigint")
        .addColumn("started_at", "bigint")
        .addColumn("finished_at", "bigint")
        .addColumn("result", "text")
        .addColumn("deleted", "text")
        .addColumn("total", "bigint")
        .addColumn("error", "text")
        .execute();
      await db.schema.createIndex("retention_runs_finished").ifNotExists().on("retention_runs").columns(["finished_at"]).execute();
      // Old events are found by kind and receipt; an incident's opening event is looked up by id.
      await db.schema.createIndex("events_kind_received").ifNotExists().on("events").columns(["kind", "received_at"]).execute();
      await db.schema.createIndex("incidents_event").ifNotExists().on("incidents").columns(["event_id"]).execute();
      await db.schema.createIndex("incidents_closed").ifNotExists().on("incidents").columns(["closed_at"]).execute();
      await db.schema.createIndex("audit_log_at").ifNotExists().on("audit_log").columns(["at"]).execute();
      await db.schema.createIndex("operator_alerts_incident").ifNotExists().on("operator_alerts").columns(["incident_id"]).execute();
      await db.schema.createIndex("forward_outbox_delivered").ifNotExists().on("forward_outbox").columns(["state", "delivered_at"]).execute();
    },
  },
};
