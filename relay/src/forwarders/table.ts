// The forward_outbox table: one row per message to push, written in the same transaction as the change it
// reports, delivered later by a ForwarderWorker. Times are ms since epoch, as everywhere in the relay.
import type { Migration } from "kysely";

export type ForwardState = "pending" | "delivered" | "dead";

export interface ForwardOutboxTable {
  id: string;
  destination: string;
  /** Sent as Idempotency-Key on every try; unique, so enqueueing the same message twice adds nothing. */
  idempotency_key: string;
  /** JSON text, sent as the request body exactly as stored. */
  payload: string;
  attempts: number;
  next_attempt_at: number;
  state: ForwardState;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
  /** The relay instance holding the row while it delivers (or reports it dead). */
  claimed_by: string | null;
  /** The claim's lease end; 0 when unclaimed. A crashed instance's claim lapses by itself. */
  claimed_until: number;
  /** When onDeadLetter succeeded for a dead row; null until then (retried by every runDue). */
  dead_reported_at: number | null;
}

/** What sending a dead row again sets: pending, due now (next_attempt_at is set beside it), tries from zero. */
export const REQUEUED = { state: "pending", attempts: 0, claimed_by: null, claimed_until: 0, dead_reported_at: null } as const satisfies Partial<ForwardOutboxTable>;

export interface ForwardDb {
  forward_outbox: ForwardOutboxTable;
}

export const forwarderMigrations: Record<string, Migration> = {
  "0100_forward_outbox": {
    async up(db): Promise<void> {
      await db.schema
        .createTable("forward_outbox")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("destination", "text", (c) => c.notNull())
        .addColumn("idempotency_key", "text", (c) => c.notNull().unique())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("next_attempt_at", "bigint", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("last_error", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("delivered_at", "bigint")
        .addColumn("claimed_by", "text")
        .addColumn("claimed_until", "bigint", (c) => c.notNull().defaultTo(0))
        .addColumn("dead_reported_at", "bigint")
        .execute();
      // Workers scan pending rows by due time.
      await db.schema.createIndex("forward_outbox_due").ifNotExists().on("forward_outbox").columns(["state", "next_attempt_at"]).execute();
    },
  },
};
