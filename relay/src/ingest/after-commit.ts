// What follows a commit: metrics, the acks (invariant 4: only now may a hub delete its journal rows), and
// the hand-on of each newly stored event. A duplicate is acknowledged again (the hub may have missed the
// first ack) but never handed on, so it cannot start a second call tree (invariant 5).
import type { Logger } from "pino";
import { notifyQueue } from "../console/queue/notifier.js";
import type { Metrics } from "../metrics.js";
import { envelopeOf, type Accepted } from "./accepted.js";
import type { Rejections } from "./rejections.js";
import type { Stored } from "./transaction.js";

/** ackSchema allows at most this many ids per message. */
export const ACK_MAX_IDS = 5000;

export interface AfterCommitDeps {
  metrics: Metrics;
  log: Logger;
  rejections: Pick<Rejections, "idCollision">;
  now: () => number;
  onAck: (hub: string, ids: string[], now: number) => void;
  onCommitted?: ((hub: string, envelope: unknown) => void) | undefined;
}

export interface Ack {
  hub: string;
  ids: string[];
}

/**
 * The acks for a committed batch: per hub (in the order hubs first appear), every id of that hub, new and
 * duplicate, in batch order, at most ACK_MAX_IDS a message. An id stored for another hub is left out:
 * it stays in this hub's journal for an operator to see, rather than being deleted as if it were stored.
 */
export function acksFor(items: readonly Pick<Accepted, "hub" | "id">[], foreign: ReadonlySet<string>, maxIds = ACK_MAX_IDS): Ack[] {
  const perHub = new Map<string, string[]>();
  for (const a of items) {
    if (foreign.has(a.id)) continue;
    let ids = perHub.get(a.hub);
    if (!ids) perHub.set(a.hub, (ids = []));
    ids.push(a.id);
  }
  const acks: Ack[] = [];
  for (const [hub, ids] of perHub) for (let i = 0; i < ids.length; i += maxIds) acks.push({ hub, ids: ids.slice(i, i + maxIds) });
  return acks;
}

/** Never throws for a callback's error: committed is committed, whatever a listener does with it. */
export function afterCommit(d: AfterCommitDeps, items: Accepted[], stored: Stored, commitSeconds: number): void {
  const m = d.metrics;
  m.commitSeconds.observe(commitSeconds);
  m.batchSize.observe(items.length);

  const now = d.now();
  for (const a of items) if (stored.foreign.has(a.id)) d.rejections.idCollision(a.hub, a.id);
  for (const { hub, ids } of acksFor(items, stored.foreign)) {
    try {
      d.onAck(hub, ids, now);
    } catch (err) {
      d.log.error({ err, hub }, "ingest: onAck failed");
    }
  }
  handOn(d, items, stored);
}

/**
 * The hand-on of each newly stored event (never a duplicate, nor an id of another hub), whichever path it
 * came by. Never throws for a callback's error.
 */
export function handOn(d: Pick<AfterCommitDeps, "metrics" | "log" | "onCommitted">, items: Accepted[], stored: Stored): void {
  const m = d.metrics;
  for (const a of items) {
    if (stored.foreign.has(a.id)) continue;
    if (!stored.inserted.has(a.id)) {
      m.eventsDuplicate.inc();
      continue;
    }
    m.eventsCommitted.inc({ kind: a.kind });
    if (!d.onCommitted) continue;
    try {
      d.onCommitted(a.hub, envelopeOf(a));
    } catch (err) {
      d.log.error({ err, hub: a.hub, id: a.id }, "ingest: onCommitted failed");
    }
  }
  if (items.some((a) => a.kind === "alarm" && stored.inserted.has(a.id))) notifyQueue(); // the console's queue: an alarm opened or joined an incident
}
