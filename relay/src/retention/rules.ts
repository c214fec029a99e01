// What the retention sweep may delete, one rule per kind of row, each deleting at most one bounded batch per
// call. Every rule deletes by age of data that is finished with; none touches what is still in use:
//
// - events: by kind and receipt. Never an event of a hub that has an open incident (its readings may be the
//   evidence the duty team is looking at), never an incident's opening event while the incident is kept.
//   The minimum ages (config.ts) keep every event long past its acknowledgement.
// - incidents: only closed ones, with nothing pending (no timer), together with their timeline, call
//   attempts, timers and alerts in one transaction, so an incident is never left half-deleted.
// - hub incidents: closed ones no relay incident still points to.
// - forwards: delivered ones (their payloads name addresses) soon; dead ones only after their alert went
//   out, and never a pending one. A forward's payload is complete in itself, so deleting the incident it
//   reports never stops it being delivered or resent.
// - operator alerts: acknowledged ones not belonging to a kept incident. Audit log: by age only.
//
// The conditions that make a row deletable are repeated on the DELETE itself, not only in the query that
// picks the batch: on PostgreSQL a row changed in between (a dead forward resent, say) is checked again and
// left alone.
import { sql, type Kysely } from "kysely";
import type { EventKind } from "../../../protocol/envelope.js";
import type { RetentionConfig } from "./config.js";
import type { RetentionDb } from "./table.js";

export const DAY_MS = 86_400_000;

/** What one batch deleted, by kind (the metric label and the key in a run's record), and whether more may wait. */
export interface BatchResult {
  deleted: Record<string, number>;
  more: boolean;
}

export interface RetentionRule {
  /** The configuration key, for logs: `events.heartbeat`, `incidents`, … */
  name: string;
  days: number | null;
  /** Deletes at most `limit` rows (for incidents: `limit` incidents with their rows) older than `cut`. */
  batch(db: Kysely<RetentionDb>, cut: number, limit: number): Promise<BatchResult>;
}

/** The labels the deletions are counted under (Prometheus and retention_runs). */
export const EVENT_KIND_LABEL = (kind: EventKind) => `events_${kind}`;

const n = (r: { numDeletedRows: bigint } | undefined) => Number(r?.numDeletedRows ?? 0n);

function eventRule(kind: EventKind, days: number | null): RetentionRule {
  const label = EVENT_KIND_LABEL(kind);
  return {
    name: `events.${kind}`,
    days,
    async batch(db, cut, limit) {
      const pick = db
        .selectFrom("events as e")
        .select("e.id")
        .where("e.kind", "=", kind)
        .where("e.received_at", "<", cut)
        .where((eb) =>
          eb.not(eb.exists(eb.selectFrom("incidents as i").select(sql.lit(1).as("one")).whereRef("i.hub", "=", "e.hub").where("i.closed_at", "is", null))),
        )
        .where((eb) => eb.not(eb.exists(eb.selectFrom("incidents as j").select(sql.lit(1).as("one")).whereRef("j.event_id", "=", "e.id"))))
        .orderBy("e.received_at")
        .limit(limit);
      const r = await db.deleteFrom("events").where("id", "in", pick).where("kind", "=", kind).where("received_at", "<", cut).executeTakeFirst();
      const deleted = n(r);
      return { deleted: { [label]: deleted }, more: deleted >= limit };
    },
  };
}

/** Incidents per batch is the batch size over this: each brings its timeline, calls and timers along. */
export const INCIDENT_BATCH_DIVISOR = 10;

function incidentRule(days: number | null): RetentionRule {
  return {
    name: "incidents",
    days,
    async batch(db, cut, limit) {
      const take = Math.max(1, Math.floor(limit / INCIDENT_BATCH_DIVISOR));
      return db.transaction().execute(async (trx) => {
        const rows = await trx
          .selectFrom("incidents as i")
          .select("i.id")
          .where("i.state", "=", "closed")
          .where("i.closed_at", "<", cut)
          .where((eb) =>
            eb.not(eb.exists(eb.selectFrom("escalation_timers as t").select(sql.lit(1).as("one")).whereRef("t.incident_id", "=", "i.id").where("t.done_at", "is", null))),
          )
          .orderBy("i.closed_at")
          .limit(take)
          .execute();
        const ids = rows.map((r) => r.id);
        if (ids.length === 0) return { deleted: {}, more: false };
        // The incident rows first, re-checked: only those still closed take their rows with them.
        const gone = await trx.deleteFrom("incidents").where("id", "in", ids).where("state", "=", "closed").where("closed_at", "<", cut).returning("id").execute();
        const goneIds = gone.map((r) => r.id);
        const deleted: Record<string, number> = { incidents: goneIds.length };
        if (goneIds.length > 0) {
          deleted.incident_timeline = n(await trx.deleteFrom("incident_timeline").where("incident_id", "in", goneIds).executeTakeFirst());
          deleted.call_attempts = n(await trx.deleteFrom("call_attempts").where("incident_id", "in", goneIds).executeTakeFirst());
          deleted.escalation_timers = n(await trx.deleteFrom("escalation_timers").where("incident_id", "in", goneIds).executeTakeFirst());
          deleted.operator_alerts = n(await trx.deleteFrom("operator_alerts").where("incident_id", "in", goneIds).executeTakeFirst());
        }
        return { deleted, more: ids.length >= take };
      });
    },
  };
}

function hubIncidentRule(days: number | null): RetentionRule {
  return {
    name: "hubIncidents",
    days,
    async batch(db, cut, limit) {
      const pick = db
        .selectFrom("hub_incidents as h")
        .select("h.id")
        .where("h.closed_at", "is not", null)
        .where("h.closed_at", "<", cut)
        .where((eb) => eb.not(eb.exists(eb.selectFrom("incidents as i").select(sql.lit(1).as("one")).whereRef("i.source_ref", "=", "h.id"))))
        .orderBy("h.closed_at")
        .limit(limit);
      const deleted = n(await db.deleteFrom("hub_incidents").where("id", "in", pick).where("closed_at", "<", cut).executeTakeFirst());
      return { deleted: { hub_incidents: deleted }, more: deleted >= limit };
    },
  };
}

function deliveredForwardRule(days: number | null): RetentionRule {
  return {
    name: "forwards.delivered",
    days,
    async batch(db, cut, limit) {
      const pick = db.selectFrom("forward_outbox").select("id").where("state", "=", "delivered").where("delivered_at", "<", cut).orderBy("delivered_at").limit(limit);
      const deleted = n(await db.deleteFrom("forward_outbox").where("id", "in", pick).where("state", "=", "delivered").where("delivered_at", "<", cut).executeTakeFirst());
      return { deleted: { forwards_delivered: deleted }, more: deleted >= limit };
    },
  };
}

function deadForwardRule(days: number | null): RetentionRule {
  return {
    name: "forwards.dead",
    days,
    async batch(db, cut, limit) {
      // Aged from the operator alert, so a dead row nobody was told about yet is never deleted.
      const pick = db.selectFrom("forward_outbox").select("id").where("state", "=", "dead").where("dead_reported_at", "is not", null).where("dead_reported_at", "<", cut).orderBy("dead_reported_at").limit(limit);
      const deleted = n(await db.deleteFrom("forward_outbox").where("id", "in", pick).where("state", "=", "dead").where("dead_reported_at", "<", cut).executeTakeFirst());
      return { deleted: { forwards_dead: deleted }, more: deleted >= limit };
    },
  };
}

function operatorAlertRule(days: number | null): RetentionRule {
  return {
    name: "operatorAlerts",
    days,
    async batch(db, cut, limit) {
      const pick = db
        .selectFrom("operator_alerts as a")
        .select("a.id")
        .where("a.acked_at", "is not", null)
        .where("a.acked_at", "<", cut)
        .where((eb) => eb.or([eb("a.incident_id", "is", null), eb.not(eb.exists(eb.selectFrom("incidents as i").select(sql.lit(1).as("one")).whereRef("i.id", "=", "a.incident_id")))]))
        .orderBy("a.acked_at")
        .limit(limit);
      const deleted = n(await db.deleteFrom("operator_alerts").where("id", "in", pick).where("acked_at", "<", cut).executeTakeFirst());
      return { deleted: { operator_alerts_acked: deleted }, more: deleted >= limit };
    },
  };
}

function auditRule(days: number | null): RetentionRule {
  return {
    name: "auditLog",
    days,
    async batch(db, cut, limit) {
      const pick = db.selectFrom("audit_log").select("id").where("at", "<", cut).orderBy("at").limit(limit);
      const deleted = n(await db.deleteFrom("audit_log").where("id", "in", pick).where("at", "<", cut).executeTakeFirst());
      return { deleted: { audit_log: deleted }, more: deleted >= limit };
    },
  };
}

/**
 * The rules in the order a sweep runs them: incidents before events, so the opening events of incidents
 * deleted in this sweep are free to go in the same sweep.
 */
export function retentionRules(c: RetentionConfig): RetentionRule[] {
  const e = c.events;
  return [
    incidentRule(c.incidents),
    hubIncidentRule(c.hubIncidents),
    eventRule("heartbeat", e.heartbeat),
    eventRule("reading", e.reading),
    eventRule("device", e.device),
    eventRule("alarm", e.alarm),
    eventRule("alarm_cleared", e.alarm_cleared),
    eventRule("audit", e.audit),
    deliveredForwardRule(c.forwards.delivered),
    deadForwardRule(c.forwards.dead),
    operatorAlertRule(c.operatorAlerts),
    auditRule(c.auditLog),
  ];
}

/** Null and 0 keep a kind forever. */
export function keepsForever(days: number | null): boolean {
  return days === null || days === 0;
}
