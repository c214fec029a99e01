// The forwarders' outbox: enqueue inside the transaction that makes the change, deliver afterwards with
// retries (worker.ts). Everything the rest of the relay needs is exported from here.
import type { Kysely } from "kysely";
import { ulid } from "ulid";
import { pooledRandom } from "../../../lib/ids/pooled-random.js";
import type { RelayDbHandle } from "../store/closed-loop-schema.js";
import { REQUEUED, type ForwardDb, type ForwardState } from "./table.js";

export { forwarderMigrations, type ForwardDb, type ForwardOutboxTable, type ForwardState } from "./table.js";
export { ForwarderWorker, type ForwardItem, type ForwarderWorkerOptions, type ForwarderCounters, backoffDelay, DEAD_ALERT_RETRY_MS } from "./worker.js";
export { forwardersConfigSchema, forwardDestinationSchema, resolveDestinations, type ForwardDestination, type ForwardersConfig } from "./config.js";
export { getForward, listForwardSummaries, resendForward, ResendError, forwardSummary, type ForwardSummary, type ForwardDetail } from "./admin.js";

export interface EnqueueItem {
  /** A configured destination's name. */
  destination: string;
  /** Stable for this message (e.g. `${incidentId}:${transition}:${destination}`): the receiver dedupes on it. */
  idempotencyKey: string;
  /** Serialised to JSON once, here; the body of every try. */
  payload: unknown;
  /** Now (ms); the first try is due at once. */
  at: number;
}

/**
 * Adds one message to the outbox; `db` may be a transaction so the message commits with the change it
 * reports. A duplicate idempotency key adds no second row. Resolves true when a row was added.
 */
export async function enqueueForward(db: RelayDbHandle, item: EnqueueItem): Promise<boolean> {
  const payload = JSON.stringify(item.payload);
  if (payload === undefined) throw new TypeError("enqueueForward: payload is not JSON-serialisable");
  const got = await (db as unknown as Kysely<ForwardDb>)
    .insertInto("forward_outbox")
    .values({
      id: ulid(item.at, pooledRandom),
      destination: item.destination,
      idempotency_key: item.idempotencyKey,
      payload,
      attempts: 0,
      next_attempt_at: item.at,
      state: "pending",
      last_error: null,
      created_at: item.at,
      delivered_at: null,
      claimed_by: null,
      claimed_until: 0,
      dead_reported_at: null,
    })
    .onConflict((oc) => oc.column("idempotency_key").doNothing())
    .returning("id")
    .execute();
  return got.length === 1;
}

export interface OutboxRow {
  id: string;
  destination: string;
  idempotencyKey: string;
  payload: unknown;
  attempts: number;
  state: ForwardState;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
  deliveredAt: number | null;
}

/** Outbox rows for the operator API and tests, newest first. */
export async function listForwards(db: RelayDbHandle, q: { state?: ForwardState; destination?: string; limit?: number } = {}): Promise<OutboxRow[]> {
  let query = (db as unknown as Kysely<ForwardDb>).selectFrom("forward_outbox").selectAll();
  if (q.state) query = query.where("state", "=", q.state);
  if (q.destination) query = query.where("destination", "=", q.destination);
  const rows = await query.orderBy("id", "desc").limit(q.limit ?? 100).execute();
  return rows.map((r) => ({
    id: r.id,
    destination: r.destination,
    idempotencyKey: r.idempotency_key,
    payload: JSON.parse(r.payload) as unknown,
    attempts: r.attempts,
    state: r.state,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    createdAt: r.created_at,
    deliveredAt: r.delivered_at,
  }));
}

/** An operator sends a dead row again (after fixing the receiver): pending, due now, attempts reset. */
export async function requeueDead(db: RelayDbHandle, id: string, now: number): Promise<boolean> {
  const r = await (db as unknown as Kysely<ForwardDb>)
    .updateTable("forward_outbox")
    .set({ ...REQUEUED, next_attempt_at: now })
    .where("id", "=", id)
    .where("state", "=", "dead")
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * Releases the claims held by owners that `isGone` names (an earlier run of this relay, which died
 * mid-delivery or while reporting a dead row): the rows are free for the next run of any instance at once,
 * instead of after their lease. Claims of other owners are untouched until their lease runs out.
 */
export async function releaseForwardClaims(db: RelayDbHandle, isGone: (claimedBy: string) => boolean): Promise<{ released: number; owners: string[] }> {
  const d = db as unknown as Kysely<ForwardDb>;
  // Only pending and dead rows are ever claimed; delivered ones (most of the table) are not looked at.
  const held = await d.selectFrom("forward_outbox").select("claimed_by").distinct().where("state", "in", ["pending", "dead"]).where("claimed_by", "is not", null).execute();
  const owners = held.map((r) => r.claimed_by as string).filter(isGone);
  if (owners.length === 0) return { released: 0, owners };
  const r = await d
    .updateTable("forward_outbox")
    .set({ claimed_by: null, claimed_until: 0 })
    .where("state", "in", ["pending", "dead"])
    .where("claimed_by", "in", owners)
    .executeTakeFirst();
  return { released: Number(r.numUpdatedRows), owners };
}
