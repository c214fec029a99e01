// Per-street access: an operator or installer token may be limited to streets (街道). Such a token reaches
// only the households on its streets, with their plans, consent, ledger rows and commissioning reports;
// anything else answers exactly as a household that does not exist would (404, or absent from a listing),
// so a limited token cannot learn which homes other streets serve. The routes decide here and nowhere else.
import type { Kysely } from "kysely";
import type { Principal } from "../auth/tokens.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { householdDb } from "./tables.js";

/** The streets a caller may reach; undefined: every street (admins, unlimited tokens, the relay host's CLI). */
export type StreetScope = readonly string[] | undefined;

export function streetScope(p: Pick<Principal, "streets"> | undefined): StreetScope {
  // An empty list (a stored list that no longer parses) reaches nothing, never everything.
  return p?.streets;
}

/** Whether a household on `street` is visible; a hub without a household (undefined) only to an unlimited caller. */
export function inStreetScope(scope: StreetScope, street: string | undefined): boolean {
  return scope === undefined || (street !== undefined && scope.includes(street));
}

/** For the audit row of a hidden household: the fact, never which streets. */
export const OUTSIDE_STREETS = "outside the token's streets";

/**
 * The hubs of the households on `streets`, as a subquery for `hub IN (…)`: records kept per hub (incidents,
 * events) are filtered in SQL rather than fetched and dropped. An empty list selects no hub.
 */
export function hubsOnStreets(db: Kysely<LoopDb>, streets: readonly string[]) {
  return householdDb(db)
    .selectFrom("households")
    .select("households.hub")
    .where((eb) => (streets.length ? eb("households.street", "in", [...streets]) : eb.lit(false)));
}
