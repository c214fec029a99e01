// The operator API's request and response shapes: the zod schemas that check requests are the ones the
// OpenAPI description is generated from (openapi.ts), so the two cannot drift apart.
import { z } from "zod";
import { carePlanSchema } from "../../careplans/schema.js";
import { DISPATCH_SERVICES, FALSE_ALARM_REASONS, INCIDENT_STATES, OPS_CENTRES } from "../../incidents/lifecycle.js";
import { ALERT_KINDS } from "../../alerts/operator-alerts.js";
import { isHubId } from "../../mqtt/topics.js";
import { EVENT_KINDS, SEVERITIES } from "../../../../protocol/envelope.js";

const note = z.string().max(1000).optional().describe("free text for the timeline");
const ms = z.number().int().describe("ms since epoch");

export const noteBody = z.object({ note }).strict();
export const falseAlarmBody = z
  .object({
    reason: z
      .enum(FALSE_ALARM_REASONS)
      .describe("why it was no emergency; lying_down_to_rest, out_of_radar_range, visitor and pet are for the radar alarms (fall, vital_absent, vital_abnormal, inactivity)"),
    note,
  })
  .strict();
export const dispatchBody = z
  .object({
    service: z.enum(DISPATCH_SERVICES).describe("police_110, fire_119, ambulance_120, gas_company, or door (a person sent to the door)"),
    by: z.string().max(120).optional().describe("who went or who was called (e.g. a contact's care-plan id, or a unit number)"),
    ref: z.string().max(120).optional().describe("the service's own reference, if given"),
    note,
  })
  .strict();
export const ticketBody = z.object({ centre: z.enum(OPS_CENTRES), ref: z.string().min(1).max(120).describe("the operations centre's ticket reference"), note }).strict();
export const resolveBody = z.object({ summary: z.string().min(1).max(1000) }).strict();
export const followUpBody = z
  .object({ visitedBy: z.string().min(1).max(120), outcome: z.enum(["well", "needs_support", "referred", "not_home"]), note })
  .strict();

export const incidentSchema = z
  .object({
    id: z.string(),
    hub: z.string(),
    type: z.string(),
    state: z.enum(INCIDENT_STATES),
    severity: z.string(),
    eventId: z.string().nullable(),
    sourceRef: z.string().nullable(),
    device: z.string().nullable(),
    deviceModel: z.string().nullable(),
    policyName: z.string(),
    policyVersion: z.number().int(),
    escalation: z.enum(["running", "acknowledged", "exhausted", "stopped"]),
    acknowledgedAt: ms.nullable(),
    acknowledgedBy: z.string().nullable(),
    falseAlarmReason: z.string().nullable(),
    followUpRecorded: z.boolean(),
    alarms: z.number().int().describe("alarms joined into this incident, the first included"),
    openedAt: ms,
    updatedAt: ms,
    closedAt: ms.nullable(),
  })
  .describe("an incident");

export const timelineEntrySchema = z.object({
  id: z.string(),
  at: ms,
  actor: z.string().describe("operator:<token name>, user:<console username>, system, system:escalation, elder, <role>:<contact id>, hub:<id>"),
  kind: z.string().describe("transition, joined, new_evidence, call, outcome, acknowledged, arrival, arrival_unconfirmed, dispatch, ticket, follow_up, escalation, alarm_cleared, taken (taken in hand at the console)"),
  from: z.string().nullable(),
  to: z.string().nullable(),
  cause: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()).nullable(),
});

export const callAttemptSchema = z.object({
  id: z.string(),
  step: z.number().int(),
  round: z.number().int(),
  role: z.string(),
  target: z.string().describe("the contact's care-plan id, elder or onsite_team"),
  channel: z.enum(["voice", "sms"]),
  status: z.string(),
  digits: z.string().nullable(),
  requestedAt: ms,
  placedAt: ms.nullable(),
  outcomeAt: ms.nullable(),
});

export const incidentDetailSchema = z.object({ incident: incidentSchema, timeline: z.array(timelineEntrySchema), calls: z.array(callAttemptSchema) });
export const actionResultSchema = z.object({ incident: incidentSchema, entry: timelineEntrySchema });

export const alertCallSchema = z
  .object({
    attemptId: z.string(),
    incidentId: z.string(),
    hub: z.string().nullable(),
    incidentState: z.string().nullable().describe("the incident's state now: a closed one needs no call"),
    escalation: z.string().nullable().describe("the incident's escalation now: acknowledged means someone has it in hand"),
    role: z.string().describe("elder, onsite_team or a contact role"),
    target: z.string().describe("the contact's care-plan id (elder, onsite_team)"),
    channel: z.enum(["voice", "sms"]),
    step: z.number().int(),
    round: z.number().int(),
    status: z.string().describe("the attempt's status now (unavailable unless a later callback changed it)"),
    at: ms.describe("when the alert was raised for it"),
  })
  .describe("a call an alert names (telephony_down: a call that could not be placed); no number");

export const alertSchema = z.object({
  id: z.string(),
  kind: z.enum(ALERT_KINDS),
  detail: z.string(),
  incidentId: z.string().nullable(),
  count: z.number().int(),
  firstAt: ms,
  lastAt: ms,
  ackedAt: ms.nullable(),
  ackedBy: z.string().nullable(),
  callCount: z.number().int().describe("how many calls the alert names"),
  calls: z.array(alertCallSchema).describe("the calls it names, oldest first: whom to call by hand (at most 50 in a listing; GET /v1/alerts/{id} has all)"),
});

export const alertCallsSchema = z.object({
  alert: z.string(),
  calls: z.array(
    alertCallSchema.extend({
      number: z.string().nullable().describe("the number to dial, from the hub's current care plan; null for a closed incident or a contact no longer in the plan"),
      note: z.string().optional().describe("why there is no number"),
    }),
  ),
});

export const forwardSummarySchema = z
  .object({
    id: z.string(),
    destination: z.string(),
    idempotencyKey: z.string(),
    state: z.enum(["pending", "delivered", "dead"]),
    attempts: z.number().int().describe("tries so far (counted from zero again after a resend)"),
    lastError: z.string().nullable(),
    createdAt: ms,
    nextAttemptAt: ms,
    deliveredAt: ms.nullable(),
    incidentId: z.string().nullable(),
    hub: z.string().nullable(),
    type: z.string().nullable(),
    update: z.string().nullable().describe("what the update reports, e.g. transition → confirmed"),
  })
  .describe("an outbox row without its payload");

const auditEntrySchema = z.object({ actor: z.string(), action: z.string(), subject: z.string(), purpose: z.string(), at: ms });
export const forwardDetailSchema = forwardSummarySchema.extend({
  payload: z.unknown().describe("the body sent on every try (an opening carries the elder's address: the read is audited)"),
  history: z.array(auditEntrySchema).describe("reads and resends of this forward, oldest first"),
});
export const listForwardsQuery = z.object({
  state: z.enum(["dead", "pending", "delivered"]).default("dead"),
  destination: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export const resendBody = z.object({ reason: z.string().min(1).max(100).optional().describe("recorded in the audit log with the resend (default: api)") }).strict();

export const storedCarePlanSchema = z.object({ hub: z.string(), version: z.number().int(), updatedAt: ms, updatedBy: z.string(), plan: carePlanSchema });

const rateRow = z.object({ key: z.string(), incidents: z.number().int(), falseAlarms: z.number().int(), rate: z.number(), reasons: z.record(z.string(), z.number().int()) });
export const falseAlarmReportSchema = z.object({ since: ms.nullable(), perHome: z.array(rateRow), perDeviceModel: z.array(rateRow) });

export const hubStatusSchema = z.object({
  id: z.string(),
  status: z.enum(["pending", "active", "revoked"]),
  online: z.boolean(),
  enrolled: z.boolean(),
  lastSeenAt: ms.nullable(),
  claimExpiresAt: ms.nullable(),
  paths: z
    .object({
      mqtt: z.object({ lastAt: ms.nullable().describe("receipt of the latest event over MQTT (the broadband path)") }),
      sms: z.object({ lastAt: ms.nullable().describe("receipt of the latest event by SMS (the last-resort path: alarms and the path notices); recent and newer than mqtt: the home's broadband is probably down") }),
      secondPathTest: z.object({
        lastOkAt: ms.nullable().describe("receipt of the latest second_path_test that arrived by SMS (the hub's periodic test of its second path); null: never"),
      }),
      onSecondPath: z.boolean().describe("the hub is offline over MQTT and something verified arrived from it by SMS since its last sight over MQTT: primary path down, second path working"),
    })
    .describe("path health: when each path last brought an event of this hub"),
});
export const claimSchema = z.object({ hub: z.string(), code: z.string(), expiresAt: ms });
export const claimBody = z
  .object({ rotate: z.boolean().optional().describe("admin only: a new code for an enrolled hub (re-enrolling replaces its credentials and key), or admit a revoked hub again") })
  .strict();

export const errorSchema = z.object({ error: z.string(), message: z.string() });

export const listIncidentsQuery = z.object({
  state: z.enum(["open", "all"]).default("open"),
  hub: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});
export const listAlertsQuery = z.object({ state: z.enum(["open", "all"]).default("open"), limit: z.coerce.number().int().min(1).max(1000).default(200) });
export const reportQuery = z.object({ since: z.coerce.number().int().min(0).optional() });

// ---- events: what hubs sent, read back (personal data in `data`: every read is audited)

const eventTime = z
  .union([
    z.string().regex(/^\d{1,15}$/, "ms since epoch").transform(Number),
    z.iso.datetime({ offset: true }).transform((t) => Date.parse(t)),
  ], { error: "an ISO 8601 date-time with a zone (2026-01-02T03:04:05Z, +08:00) or ms since epoch" })
  .describe("an ISO 8601 date-time with a zone (2026-01-02T03:04:05Z) or ms since epoch");

export const EVENTS_DEFAULT_LIMIT = 100;
export const EVENTS_MAX_LIMIT = 1000;

export const listEventsQuery = z
  .object({
    hub: z.string().max(64).refine(isHubId, "not a hub id").optional().describe("one hub (required for installers)"),
    kind: z.enum(EVENT_KINDS).optional(),
    type: z.string().regex(/^[a-z][a-z0-9_]{0,47}$/, "an event type: lower-case letters, digits, _ (e.g. fall, smoke)").optional(),
    severity: z.enum(SEVERITIES).optional(),
    path: z.enum(["mqtt", "sms"]).optional().describe("came by this path: sms also matches sms+mqtt (an SMS completed later over MQTT), and mqtt matches it too"),
    since: eventTime.optional().describe("event time (the hub's ts) at or after this: ISO 8601 with a zone, or ms"),
    until: eventTime.optional().describe("event time before this: ISO 8601 with a zone, or ms"),
    order: z.enum(["desc", "asc"]).default("desc").describe("by the relay's receipt: desc newest first, asc oldest first"),
    limit: z.coerce.number().int().min(1).max(EVENTS_MAX_LIMIT).default(EVENTS_DEFAULT_LIMIT),
    cursor: z.string().max(512).optional().describe("nextCursor from the previous page (same filters and order)"),
  })
  .strict()
  .refine((q) => q.since === undefined || q.until === undefined || q.since < q.until, { message: "since must be before until", path: ["since"] });

export const storedEventSchema = z
  .object({
    id: z.string(),
    hub: z.string(),
    boot: z.number().int(),
    seq: z.number().int(),
    ts: ms.describe("event time, the hub's clock"),
    receivedAt: ms.describe("when the relay stored it"),
    kind: z.string(),
    type: z.string(),
    severity: z.string(),
    device: z.string().nullable(),
    path: z.enum(["mqtt", "sms", "sms+mqtt"]).describe("how it reached the relay: mqtt (the signed envelope), sms (the compact text only), sms+mqtt (a text first, its full envelope later)"),
    historical: z.boolean().describe("sent late from the hub's journal"),
    skewMs: z.number().int().nullable().describe("the hub's clock minus the relay's at receipt, when known"),
    envelope: z.unknown().describe("the signed envelope as the hub sent it (its data may hold personal data)"),
  })
  .describe("an event as stored");

export const eventsPageSchema = z.object({
  events: z.array(storedEventSchema),
  nextCursor: z.string().nullable().describe("pass as cursor= for the next page; null when this page is the last"),
});

/** A keyset position: the order it belongs to and the last row's (receivedAt, id). */
export interface EventCursor {
  order: "asc" | "desc";
  receivedAt: number;
  id: string;
}
const cursorShape = z.tuple([z.enum(["asc", "desc"]), z.number().int().min(0), z.string().min(1).max(200)]);
export const encodeEventCursor = (c: EventCursor): string => Buffer.from(JSON.stringify([c.order, c.receivedAt, c.id]), "utf8").toString("base64url");
/** The cursor, or undefined if it is not one this API issued. */
export function decodeEventCursor(s: string): EventCursor | undefined {
  try {
    const p = cursorShape.safeParse(JSON.parse(Buffer.from(s, "base64url").toString("utf8")));
    return p.success ? { order: p.data[0], receivedAt: p.data[1], id: p.data[2] } : undefined;
  } catch {
    return undefined;
  }
}
