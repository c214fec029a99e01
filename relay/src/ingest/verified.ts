// An event verified on another path than MQTT, e.g. an SMS alarm whose truncated HMAC the SMS intake
// checked with the hub's key (relay/src/sms/). It has no envelope signature, so it never goes through the
// MQTT checks (which stay as strict as ever); it is stored in a transaction of its own, with the same
// in-transaction hook (the incident and its call tree) and the same hand-on as an MQTT event. It is not
// acknowledged to the hub: the hub keeps it and sends the full envelope over MQTT once that path is back,
// which completes the row (store.ts completePath) and is acknowledged then.
import type { Envelope } from "../../../protocol/envelope.js";
import type { EventPath, Store } from "../store/store.js";
import { accepted, skewToFlag } from "./accepted.js";
import { handOn, type AfterCommitDeps } from "./after-commit.js";
import { storeBatch, type WithinCommit } from "./transaction.js";

/** stored: new, handed on; duplicate: the id was stored already (by either path); foreign: stored for another hub. */
export type VerifiedOutcome = "stored" | "duplicate" | "foreign";

export interface VerifiedDeps extends Pick<AfterCommitDeps, "metrics" | "log" | "rejections" | "onCommitted"> {
  store: Store;
  withinCommit: WithinCommit | undefined;
  clockSkewFlagMs: number;
}

/** Stores one verified event; resolves once committed and handed on, rejects if the transaction failed. */
export async function storeVerified(d: VerifiedDeps, env: Envelope, path: Exclude<EventPath, "mqtt">, receivedAt: number): Promise<VerifiedOutcome> {
  const skewMs = skewToFlag(env, receivedAt, d.clockSkewFlagMs);
  const item = accepted(env, env, JSON.stringify(env), receivedAt, skewMs);
  item.row.path = path;
  const stored = await storeBatch(d.store, [item], d.withinCommit);
  if (stored.foreign.has(env.id)) {
    d.rejections.idCollision(env.hub, env.id, { path });
    return "foreign";
  }
  handOn(d, [item], stored);
  return stored.inserted.has(env.id) ? "stored" : "duplicate";
}
