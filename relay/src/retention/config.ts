// The `retention` section of the relay configuration: how many days each kind of row is kept after it stopped
// being needed, and how the sweep that deletes them runs. `null` or `0` keeps a kind forever. The minimums
// are not matters of taste: each one guards something (see docs/configuration.md, "retention").
import { z } from "zod";
import type { EventKind } from "../../../protocol/envelope.js";

const MAX_DAYS = 36_500;

/**
 * Whole days, at least `min` (the reason is in the error), or null / 0 for "keep forever". A value below the
 * minimum is refused rather than raised quietly: whoever wrote it meant something else.
 */
function days(min: number, why: string) {
  return z
    .number({ error: `expected whole days (a number), or null to keep forever` })
    .int({ error: "expected whole days" })
    .nullable()
    .refine((v) => v === null || v === 0 || (v >= min && v <= MAX_DAYS), {
      error: `expected null or 0 (keep forever), or ${min} to ${MAX_DAYS} days: ${why}`,
    });
}

// Events: what hubs sent. The minimum of one day keeps a row long past its acknowledgement, so a hub that
// missed the ack and sends the event again finds it and it stays a duplicate; alarms keep a longer floor,
// since a resent alarm whose row is gone would open a new incident.
const ROUTINE_MIN = 1;
const ALARM_MIN = 30;

export const EVENT_DAYS_DEFAULT: Record<EventKind, number | null> = {
  heartbeat: 7,
  reading: 30,
  device: 180,
  alarm: 1095,
  alarm_cleared: 1095,
  audit: 1095,
};

const eventMin: Record<EventKind, [number, string]> = {
  heartbeat: [ROUTINE_MIN, "an event must outlive a resend after a lost acknowledgement"],
  reading: [ROUTINE_MIN, "an event must outlive a resend after a lost acknowledgement"],
  device: [ROUTINE_MIN, "an event must outlive a resend after a lost acknowledgement"],
  alarm: [ALARM_MIN, "a resent alarm whose row is gone would open a new incident"],
  alarm_cleared: [ALARM_MIN, "cleared alarms belong with the alarms they clear"],
  audit: [ALARM_MIN, "a hub's audit events (a valve reopened on site) are safety records"],
};

const eventDays = (k: EventKind) => days(...eventMin[k]).default(EVENT_DAYS_DEFAULT[k]);
const eventsSchema = z
  .object({
    heartbeat: eventDays("heartbeat"),
    reading: eventDays("reading"),
    device: eventDays("device"),
    alarm: eventDays("alarm"),
    alarm_cleared: eventDays("alarm_cleared"),
    audit: eventDays("audit"),
  })
  .strict();

export const retentionConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe("run the retention sweep; false keeps everything (nothing is deleted)"),
    everyS: z.number().int().min(60).max(7 * 86_400).default(3600).describe("from the end of one sweep to the next, across all instances"),
    batchSize: z.number().int().min(10).max(10_000).default(500).describe("rows per delete statement: each batch is its own short transaction"),
    leaseS: z.number().int().min(30).max(86_400).default(300).describe("how long a sweep's claim lasts without a batch renewing it; after that another instance may take the sweep over"),
    events: eventsSchema.prefault({}).describe("days per event kind, counted from receipt"),
    forwards: z
      .object({
        delivered: days(1, "an operator checks what a receiver was sent").default(1).describe("delivered forwards (their payloads name addresses), from delivery"),
        dead: days(7, "an operator needs time to fix the receiver and resend").default(90).describe("dead forwards whose alert went out, from that alert"),
      })
      .strict()
      .prefault({}),
    incidents: days(30, "a closed incident is reviewed and reported on for some weeks after")
      .default(1095)
      .describe("closed incidents with their timeline, call attempts, timers and alerts, from closing"),
    hubIncidents: days(7, "supervision history explains recent outages").default(365).describe("closed hub supervision incidents (hub offline), from closing"),
    operatorAlerts: days(7, "acknowledged alerts explain recent operator work").default(365).describe("acknowledged operator alerts not tied to an incident, from acknowledgement"),
    auditLog: days(1095, "processing records of personal data are kept at least three years (PIPL art. 56)")
      .default(1095)
      .describe("who read or changed personal data (care plans, events), from the record"),
  })
  .strict();

export type RetentionConfig = z.infer<typeof retentionConfigSchema>;

/** The configuration with every default, as the relay uses it when the section is absent. */
export function defaultRetentionConfig(): RetentionConfig {
  return retentionConfigSchema.parse({});
}
