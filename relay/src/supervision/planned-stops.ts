// Planned stops the relay is waiting out: a hub said (signed) that it is stopping on purpose, so instead of a
// hub_offline incident at once it gets a grace period to come back. One row per hub, in the store, so that
// with several relay instances whichever one sees the hub's return (its birth) or the end of the grace acts on
// it, and a relay restart in between forgets nothing. Every change is conditional, so exactly one instance
// wins each: the upsert never moves a deadline of the same boot, the delete names the row it expires.
import type { Kysely, Migration } from "kysely";
import type { RelayDb } from "../store/schema.js";

export interface HubPlannedStopsTable {
  hub: string;
  /** The boot that announced the stop: its birth (or a later boot's) ends the wait. */
  boot: number;
  /** Relay clock when the planned stop arrived. */
  stopped_at: number;
  /** Relay clock when the grace runs out: a hub_offline incident opens then if the hub is not back. */
  until_at: number;
  /** The hub's reason token (`stopping`). */
  reason: string;
  /** What the hub said about coming back, if it did. */
  expect_back_s: number | null;
}

export interface SupervisionDb extends RelayDb {
  hub_planned_stops: HubPlannedStopsTable;
}

export interface PlannedStop {
  hub: string;
  boot: number;
  stoppedAt: number;
  until: number;
  reason: string;
  expectBackS: number | null;
}

/** The supervision tables; part of relayExtraMigrations (whatever opens the relay's store passes them). */
export const supervisionMigrations: Record<string, Migration> = {
  "0200_hub_planned_stops": {
    async up(db): Promise<void> {
      await db.schema
        .createTable("hub_planned_stops")
        .ifNotExists()
        .addColumn("hub", "text", (c) => c.primaryKey())
        .addColumn("boot", "bigint", (c) => c.notNull())
        .addColumn("stopped_at", "bigint", (c) => c.notNull())
        .addColumn("until_at", "bigint", (c) => c.notNull())
        .addColumn("reason", "text", (c) => c.notNull())
        .addColumn("expect_back_s", "bigint")
        .execute();
      await db.schema.createIndex("hub_planned_stops_until").ifNotExists().on("hub_planned_stops").column("until_at").execute();
    },
  },
};

export function supervisionDb(db: Kysely<RelayDb>): Kysely<SupervisionDb> {
  return db as unknown as Kysely<SupervisionDb>;
}

const SELECT_CHUNK = 500;

function toPlannedStop(r: HubPlannedStopsTable): PlannedStop {
  return {
    hub: r.hub,
    boot: Number(r.boot),
    stoppedAt: Number(r.stopped_at),
    until: Number(r.until_at),
    reason: r.reason,
    expectBackS: r.expect_back_s === null ? null : Number(r.expect_back_s),
  };
}

/**
 * Records a planned stop. A row of the same (or a later) boot is kept as it is, so a copy delivered again
 * (the retained message after a relay restart) never lengthens the grace; an earlier boot's row is replaced.
 */
export async function putPlannedStop(db: Kysely<SupervisionDb>, p: PlannedStop): Promise<void> {
  await db
    .insertInto("hub_planned_stops")
    .values({ hub: p.hub, boot: p.boot, stopped_at: p.stoppedAt, until_at: p.until, reason: p.reason, expect_back_s: p.expectBackS })
    .onConflict((oc) =>
      oc
        .column("hub")
        .doUpdateSet({
          boot: (eb) => eb.ref("excluded.boot"),
          stopped_at: (eb) => eb.ref("excluded.stopped_at"),
          until_at: (eb) => eb.ref("excluded.until_at"),
          reason: (eb) => eb.ref("excluded.reason"),
          expect_back_s: (eb) => eb.ref("excluded.expect_back_s"),
        })
        .where("hub_planned_stops.boot", "<", p.boot),
    )
    .execute();
}

/** The pending planned stops of these hubs, by hub. */
export async function plannedStopsOf(db: Kysely<SupervisionDb>, hubs: string[]): Promise<Map<string, PlannedStop>> {
  const out = new Map<string, PlannedStop>();
  const unique = [...new Set(hubs)];
  for (let i = 0; i < unique.length; i += SELECT_CHUNK) {
    const rows = await db.selectFrom("hub_planned_stops").selectAll().where("hub", "in", unique.slice(i, i + SELECT_CHUNK)).execute();
    for (const r of rows) out.set(r.hub, toPlannedStop(r));
  }
  return out;
}

/**
 * Planned stops whose grace is over at `now`. With `recordedSince`, only those that arrived since then (a
 * relay just started does not yet know who came back while it was away).
 */
export async function duePlannedStops(db: Kysely<SupervisionDb>, now: number, recordedSince: number | undefined, limit: number): Promise<PlannedStop[]> {
  let q = db.selectFrom("hub_planned_stops").selectAll().where("until_at", "<=", now);
  if (recordedSince !== undefined) q = q.where("stopped_at", ">=", recordedSince);
  const rows = await q.orderBy("until_at").orderBy("hub").limit(limit).execute();
  return rows.map(toPlannedStop);
}

/** Deletes exactly this planned stop (not a newer one of the same hub); true if this call deleted it. */
export async function removePlannedStop(db: Kysely<SupervisionDb>, p: Pick<PlannedStop, "hub" | "boot" | "stoppedAt">): Promise<boolean> {
  const r = await db.deleteFrom("hub_planned_stops").where("hub", "=", p.hub).where("boot", "=", p.boot).where("stopped_at", "=", p.stoppedAt).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Every pending planned stop, soonest deadline first (status, tests). */
export async function listPlannedStops(db: Kysely<SupervisionDb>): Promise<PlannedStop[]> {
  const rows = await db.selectFrom("hub_planned_stops").selectAll().orderBy("until_at").orderBy("hub").execute();
  return rows.map(toPlannedStop);
}
