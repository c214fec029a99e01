// Who holds a claim on an escalation timer or an outbox row, and taking back the claims an earlier run of
// this relay left behind when it died.
//
// A claim names its owner as `<relay.id>#<boot>`: the instance's stable name from the configuration and a
// token drawn afresh at every start. An instance that finds claims under its own relay.id but another boot
// knows they belong to an earlier run of itself that is gone (it died mid-step, or was killed), so it
// releases them at once instead of waiting out their lease (escalation.claimS, 60 s by default; the
// destination's timeout plus forwarders.leaseMarginMs for the outbox). Claims of any other relay.id are
// left alone until their lease runs out: that instance may be alive and busy. This is why every instance
// sharing a store must have its own relay.id (docs/relay.md).
import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { releaseForwardClaims } from "../forwarders/outbox.js";
import { releaseTimerClaims } from "../escalation/timers.js";
import type { LoopDb } from "../store/closed-loop-schema.js";

/** `<relay.id>#<8 hex digits>`, new at every start. relay.id cannot contain `#`. */
export function claimOwner(relayId: string, boot: string = randomBytes(4).toString("hex")): string {
  return `${relayId}#${boot}`;
}

/**
 * True for a claim owner that is an earlier run of the relay named `relayId`, other than `self`: the
 * `<relay.id>#<boot>` form, and the `<relay.id>-<8 hex>` owners of relays before this form.
 */
export function isEarlierRun(relayId: string, self: string): (claimedBy: string) => boolean {
  const legacy = new RegExp(`^${relayId.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-[0-9a-f]{8}$`);
  return (claimedBy) => claimedBy !== self && (claimedBy.startsWith(`${relayId}#`) || legacy.test(claimedBy));
}

export interface TakenOver {
  timers: number;
  forwards: number;
  /** The earlier runs' owner names whose claims were released. */
  owners: string[];
}

/**
 * Releases every claim an earlier run of this relay still holds, so this run (or any instance) takes the
 * work over at its next poll. Call it at start, before the loops.
 */
export async function takeOverEarlierClaims(db: Kysely<LoopDb>, relayId: string, self: string): Promise<TakenOver> {
  const mine = isEarlierRun(relayId, self);
  const t = await releaseTimerClaims(db, mine);
  const f = await releaseForwardClaims(db, mine);
  return { timers: t.released, forwards: f.released, owners: [...new Set([...t.owners, ...f.owners])].sort() };
}
