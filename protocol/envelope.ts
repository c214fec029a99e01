// The event envelope of wire contract v1: the one shape both daemons agree on.
import { z } from "zod";

export const PROTOCOL_VERSION = 1 as const;

export const EVENT_KINDS = ["alarm", "alarm_cleared", "device", "heartbeat", "reading", "audit"] as const;
export const ALARM_TYPES = [
  "smoke", "gas", "co", "sos", "fall", "vital_absent", "vital_abnormal", "inactivity", "valve_fault",
] as const;
export const SEVERITIES = ["critical", "high", "warning", "info"] as const;

export type EventKind = (typeof EVENT_KINDS)[number];
export type AlarmType = (typeof ALARM_TYPES)[number];
export type Severity = (typeof SEVERITIES)[number];

/** Lower is more urgent: the journal and the uplink send in this order. */
export const SEVERITY_RANK: Record<Severity, number> = { critical: 0, high: 1, warning: 2, info: 3 };

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const actionSchema = z
  .object({
    action: z.string().min(1).max(64),
    target: z.string().max(64).optional(),
    ok: z.boolean().optional(),
    detail: z.string().max(256).optional(),
    at: z.number().int().nonnegative().optional(),
  })
  .strict();
export type EventAction = z.infer<typeof actionSchema>;

export const envelopeSchema = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    hub: z.string().regex(ID),
    boot: z.number().int().nonnegative(),
    seq: z.number().int().nonnegative(),
    id: z.string().regex(ULID),
    ts: z.number().int().nonnegative(),
    kind: z.enum(EVENT_KINDS),
    type: z.string().regex(/^[a-z][a-z0-9_]{0,47}$/),
    severity: z.enum(SEVERITIES),
    device: z.string().regex(ID).optional(),
    room: z.string().max(64).optional(),
    data: z.record(z.string(), z.unknown()).optional(),
    actions: z.array(actionSchema).max(32).optional(),
    historical: z.boolean().optional(),
    sig: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  })
  .strict();
export type Envelope = z.infer<typeof envelopeSchema>;

/** What a producer on the hub fills in; the journal adds v, hub, boot, seq, id and ts. */
export type EventDraft = Omit<Envelope, "v" | "hub" | "boot" | "seq" | "id" | "ts" | "sig" | "historical"> & {
  ts?: number;
};
