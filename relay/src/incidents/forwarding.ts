// Pushes incident updates to the duty platform and the district and street operations centres through the
// forwarders' outbox, in the same transaction as the change they report (so an update is never lost, nor
// sent for a change that rolled back). The idempotency key is the timeline entry's id: unique, and the same
// on a retried transaction. Each destination gets a payload of its own: structured fields only, unless it
// is configured to receive free text (forward-payload.ts). Payloads carry no phone numbers; the address goes
// out only with an alarm's opening (the responders need it: PIPL Art. 13(IV), protecting life).
import type { Kysely } from "kysely";
import type { LoopDb, RelayDbHandle } from "../store/closed-loop-schema.js";
import { incidentPayload, structuredActor, TOKEN_ROLES, type ForwardedIncident, type OpeningExtra } from "./forward-payload.js";
import { isMaintenance } from "./lifecycle.js";
import type { TimelineEntry } from "./repo.js";

export type { ForwardedIncident } from "./forward-payload.js";

/** EB's enqueueForward, or anything with its shape. */
export type EnqueueForward = (db: RelayDbHandle, item: { destination: string; idempotencyKey: string; payload: unknown; at: number }) => Promise<unknown>;

/** A destination as configured (forwarders.destinations[]); a bare name may not receive free text. */
export type ForwardingDestination = string | { name: string; freeText?: boolean };

/** Destinations that receive maintenance (hub_offline) incidents too; the rest get alarms only. */
const ALL_INCIDENTS = new Set(["duty_platform"]);

export class IncidentForwarding {
  private readonly destinations: Array<{ name: string; freeText: boolean }>;

  constructor(
    private readonly enqueue: EnqueueForward | undefined,
    destinations: readonly ForwardingDestination[],
  ) {
    this.destinations = destinations.map((d) => (typeof d === "string" ? { name: d, freeText: false } : { name: d.name, freeText: d.freeText === true }));
  }

  async push(db: Kysely<LoopDb>, incident: ForwardedIncident, entry: TimelineEntry, extra: OpeningExtra = {}): Promise<void> {
    if (!this.enqueue) return;
    const maintenance = isMaintenance(incident.type);
    const to = this.destinations.filter((d) => !maintenance || ALL_INCIDENTS.has(d.name));
    if (to.length === 0) return;
    const full = to.some((d) => d.freeText) ? incidentPayload(incident, entry, extra, { freeText: true, actor: entry.actor }) : undefined;
    const structured = to.some((d) => !d.freeText) ? incidentPayload(incident, entry, extra, { freeText: false, actor: await this.actorOf(db, entry.actor) }) : undefined;
    for (const d of to) {
      await this.enqueue(db, { destination: d.name, idempotencyKey: `${entry.id}:${d.name}`, payload: d.freeText ? full : structured, at: entry.at });
    }
  }

  /** The actor as a role and an id: an operator's token name is swapped for the token's id. */
  private async actorOf(db: Kysely<LoopDb>, actor: string): Promise<string> {
    const i = actor.indexOf(":");
    if (i < 0 || !TOKEN_ROLES.has(actor.slice(0, i))) return structuredActor(actor);
    const row = await db.selectFrom("api_tokens").select("id").where("name", "=", actor.slice(i + 1)).executeTakeFirst();
    return structuredActor(actor, row?.id);
  }
}
