// One batch, one transaction: the rows go in (an id already stored is a duplicate, not an error), and the
// in-transaction hook runs over the newly inserted events before the commit. The hook is where escalation
// opens or joins incidents: an alarm and its call tree commit together or not at all, so a crash can
// neither lose a call tree nor start one for an event the hub will resend.
import type { Kysely } from "kysely";
import type { Envelope } from "../../../protocol/envelope.js";
import type { RelayDb, Store } from "../store/store.js";
import { envelopeOf, type Accepted } from "./accepted.js";

/** Work inside the batch's transaction for each newly inserted event; if it throws, the batch rolls back. */
export type WithinCommit = (trx: Kysely<RelayDb>, inserted: Envelope[]) => Promise<void>;

export interface Stored {
  /** Ids stored by this transaction (the others of this hub were there already: duplicates). */
  inserted: Set<string>;
  /** Ids already stored for another hub: neither stored nor acknowledged. */
  foreign: Set<string>;
}

/** Stores the batch and runs `withinCommit` in its transaction. Throws if the transaction failed. */
export async function storeBatch(store: Store, items: Accepted[], withinCommit: WithinCommit | undefined): Promise<Stored> {
  const res = await store.insertEvents(
    items.map((a) => a.row),
    withinCommit ? { withinCommit: newEventsHook(items, withinCommit) } : {},
  );
  return { inserted: new Set(res.inserted), foreign: new Set(res.foreign) };
}

/** The store reports new ids; the hook wants their envelopes. */
function newEventsHook(items: Accepted[], withinCommit: WithinCommit): (trx: Kysely<RelayDb>, ids: string[]) => Promise<void> {
  const byId = new Map(items.map((a) => [a.id, a]));
  return (trx, ids) => withinCommit(trx, ids.map((id) => envelopeOf(byId.get(id) as Accepted)));
}
