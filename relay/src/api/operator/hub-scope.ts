// Per-street access for the operator routes that name a hub rather than a household: incidents, care plans,
// hub status and events. The rules are households/street-scope.ts's: a street-limited caller reaches a hub
// only when its household is on one of the caller's streets (a hub without a household: unlimited callers
// only; an empty list: nothing), and anything else answers exactly as an unknown id would. Unlimited callers
// (admins, tokens without streets, the CLI) cost no query and see no change.
import type { Kysely } from "kysely";
import type { Principal } from "../../auth/tokens.js";
import { recordAudit } from "../../careplans/audit.js";
import { inStreetScope, OUTSIDE_STREETS, streetScope, type StreetScope } from "../../households/street-scope.js";
import { householdDb } from "../../households/tables.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import { HttpError } from "../errors.js";

/** Whether the hub's household is on one of the streets (one query; none for an unlimited caller). */
export async function hubInScope(db: Kysely<LoopDb>, scope: StreetScope, hub: string): Promise<boolean> {
  if (scope === undefined) return true;
  const h = await householdDb(db).selectFrom("households").select("street").where("hub", "=", hub).executeTakeFirst();
  return inStreetScope(scope, h?.street);
}

/** The audit row of a refusal, for routes whose reads are audited: the fact, never which streets. */
export interface RefusalAudit {
  actor: string;
  action: string;
  /** What was asked, e.g. "read care plan". */
  doing: string;
  at: number;
}

/**
 * Throws `notFound` (the route's own answer for an unknown id, so nothing tells the two apart) unless the
 * caller's streets reach the hub; with `audit`, the refusal is recorded first.
 */
export async function reachHub(db: Kysely<LoopDb>, principal: Principal | undefined, hub: string, notFound: HttpError, audit?: RefusalAudit): Promise<void> {
  if (await hubInScope(db, streetScope(principal), hub)) return;
  if (audit) await recordAudit(db, { actor: audit.actor, action: audit.action, subject: hub, purpose: `api; ${audit.doing}; ${OUTSIDE_STREETS}`, at: audit.at });
  throw notFound;
}

/** Of these hubs, the ones whose household is on one of the streets: one query for them all. */
async function hubsInScope(db: Kysely<LoopDb>, scope: readonly string[], hubs: readonly string[]): Promise<Set<string>> {
  if (hubs.length === 0) return new Set();
  const rows = await householdDb(db).selectFrom("households").select(["hub", "street"]).where("hub", "in", [...new Set(hubs)]).execute();
  return new Set(rows.filter((r) => inStreetScope(scope, r.street)).map((r) => r.hub));
}

type WithCalls = { calls: { hub: string | null }[]; callCount: number };

/**
 * Operator alerts as a street-limited caller sees them: each alert itself (they are about the service —
 * telephony down, forwards dead — and concern every desk) but only the calls of homes on the caller's
 * streets. One query for every hub the alerts name.
 */
export async function alertsInScope<A extends WithCalls>(db: Kysely<LoopDb>, scope: StreetScope, alerts: readonly A[]): Promise<A[]> {
  if (scope === undefined) return [...alerts];
  const reach = await hubsInScope(db, scope, alerts.flatMap((a) => a.calls.flatMap((c) => (c.hub === null ? [] : [c.hub]))));
  return alerts.map((a) => {
    const calls = a.calls.filter((c) => c.hub !== null && reach.has(c.hub));
    // A listing shows only the first calls of an alert: the count is of those seen, never of other streets'.
    return { ...a, calls, callCount: calls.length };
  });
}

/** One alert as alertsInScope sees it. */
export async function alertInScope<A extends WithCalls>(db: Kysely<LoopDb>, scope: StreetScope, alert: A): Promise<A> {
  return (await alertsInScope(db, scope, [alert]))[0] as A;
}
