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

/**
 * An operator alert as a street-limited caller sees it: the alert itself (it is about the service — telephony
 * down, forwards dead — and concerns every desk) but only the calls of homes on the caller's streets.
 */
export async function alertInScope<A extends { calls: { hub: string | null }[]; callCount: number }>(db: Kysely<LoopDb>, scope: StreetScope, alert: A): Promise<A> {
  if (scope === undefined) return alert;
  const seen = new Map<string, boolean>();
  const calls: A["calls"] = [];
  for (const c of alert.calls) {
    if (c.hub === null) continue;
    let ok = seen.get(c.hub);
    if (ok === undefined) seen.set(c.hub, (ok = await hubInScope(db, scope, c.hub)));
    if (ok) calls.push(c);
  }
  // A listing shows only the first calls of an alert: the count is of those seen, never of other streets'.
  return { ...alert, calls, callCount: calls.length };
}
