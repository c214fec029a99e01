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

/** An event id: a ULID in Crockford base 32. */
export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * How deeply `data` may nest: the object itself is level 1, an object or array inside it level 2, and so on.
 * Readings are flat or nearly so; a bound keeps a hostile event from exhausting the stack of anything that
 * walks it recursively (the canonical form for the signature, JSON.stringify).
 */
export const MAX_DATA_DEPTH = 16;

/**
 * True when `value` nests objects or arrays deeper than `max` levels (a plain value is level 0). Iterative,
 * so it cannot itself run out of stack whatever it is given.
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  if (value === null || typeof value !== "object") return false;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
    }
  }
  return false;
}

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
    /** Per boot, from 1. */
    seq: z.number().int().min(1),
    id: z.string().regex(ULID_PATTERN),
    ts: z.number().int().nonnegative(),
    kind: z.enum(EVENT_KINDS),
    type: z.string().regex(/^[a-z][a-z0-9_]{0,47}$/),
    severity: z.enum(SEVERITIES),
    device: z.string().regex(ID).optional(),
    room: z.string().max(64).optional(),
    data: z
      .record(z.string(), z.unknown())
      .refine((d) => !nestedDeeperThan(d, MAX_DATA_DEPTH), { message: `nested deeper than ${MAX_DATA_DEPTH} levels` })
      .optional(),
    actions: z.array(actionSchema).max(32).optional(),
    historical: z.boolean().optional(),
    /**
     * A commissioning test: the installer triggered the device on purpose. Stored and acknowledged like any
     * event (the relay's record that the path works) but never opens or joins an incident. Signed like the rest.
     */
    test: z.literal(true).optional(),
    sig: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  })
  .strict();
export type Envelope = z.infer<typeof envelopeSchema>;

/** What a producer on the hub fills in; the journal adds v, hub, boot, seq, id and ts. */
export type EventDraft = Omit<Envelope, "v" | "hub" | "boot" | "seq" | "id" | "ts" | "sig" | "historical"> & {
  ts?: number;
};
