// What every reports query counts: the incidents opened within the period, each with its home, and for a
// street-limited account only the homes on its streets (a hub without a household is on no street, so such an
// account never counts it — the same rule as the queue and the households routes, street-scope.ts).
import { sql, type Kysely } from "kysely";
import type { HouseholdTables } from "../../households/tables.js";
import type { StreetScope } from "../../households/street-scope.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";

export type ReportDb = LoopDb & HouseholdTables;

export interface ReportScope {
  /** ms, inclusive. */
  since: number;
  /** ms, exclusive. */
  until: number;
  streets: StreetScope;
}

/** `incidents as i` left-joined to `households as h`, narrowed to the period and the streets. */
export function scopedIncidents(db: Kysely<ReportDb>, s: ReportScope) {
  let q = db
    .selectFrom("incidents as i")
    .leftJoin("households as h", "h.hub", "i.hub")
    .where("i.opened_at", ">=", s.since)
    .where("i.opened_at", "<", s.until);
  if (s.streets !== undefined) q = s.streets.length > 0 ? q.where("h.street", "in", [...s.streets]) : q.where(sql<boolean>`1 = 0`);
  return q;
}
