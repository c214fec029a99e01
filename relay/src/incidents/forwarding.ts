// Pushes incident updates to the duty platform and the district and street operations centres through the
// forwarders' outbox, in the same transaction as the change they report (so an update is never lost, nor
// sent for a change that rolled back). The idempotency key is the timeline entry's id: unique, and the same
// on a retried transaction. Payloads carry no phone numbers; the address goes out only with an alarm's
// opening (the responders need it: PIPL Art. 13(IV), protecting life).
import type { Kysely } from "kysely";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { isMaintenance } from "./lifecycle.js";
import type { TimelineEntry } from "./repo.js";

/** EB's enqueueForward, or anything with its shape. */
export type EnqueueForward = (db: Kysely<any>, item: { destination: string; idempotencyKey: string; payload: unknown; at: number }) => Promise<unknown>;

/** Destinations that receive maintenance (hub_offline) incidents too; the rest get alarms only. */
const ALL_INCIDENTS = new Set(["duty_platform"]);

export interface ForwardedIncident {
  id: string;
  hub: string;
  type: string;
  severity: string;
  state: string;
  openedAt: number;
}

export class IncidentForwarding {
  constructor(
    private readonly enqueue: EnqueueForward | undefined,
    private readonly destinations: string[],
  ) {}

  async push(db: Kysely<LoopDb>, incident: ForwardedIncident, entry: TimelineEntry, extra: { address?: string; riskLevel?: string } = {}): Promise<void> {
    if (!this.enqueue) return;
    const maintenance = isMaintenance(incident.type);
    const payload = {
      v: 1,
      kind: "anxin.incident",
      incident: { id: incident.id, hub: incident.hub, type: incident.type, severity: incident.severity, state: incident.state, openedAt: incident.openedAt },
      update: { id: entry.id, kind: entry.kind, from: entry.from, to: entry.to, actor: entry.actor, cause: entry.cause, at: entry.at, detail: entry.detail },
      ...(extra.address && !maintenance ? { location: { address: extra.address } } : {}),
      ...(extra.riskLevel ? { riskLevel: extra.riskLevel } : {}),
    };
    for (const destination of this.destinations) {
      if (maintenance && !ALL_INCIDENTS.has(destination)) continue;
      await this.enqueue(db, { destination, idempotencyKey: `${entry.id}:${destination}`, payload, at: entry.at });
    }
  }
}
