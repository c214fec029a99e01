// The rules' state saved across a restart (invariant 9): its format, the check a saved document must pass
// before anything of it is used, and what counts as a change worth writing. A document that fails the check
// (not JSON, another hub's, another version, a wrong shape) is never used in part: the hub starts clean.
import { z } from "zod";
import type { GasRuleState } from "../rules/gas.js";
import type { SmokeRuleState } from "../rules/smoke.js";
import type { SosRuleState } from "../rules/sos.js";
import type { FallRuleState } from "../rules/fall.js";
import type { VitalsRuleState } from "../rules/vitals.js";
import type { InactivityRuleState } from "../rules/inactivity.js";

/** Raised when the format changes in a way an older reader would misread; a document of another version is not used. */
export const SNAPSHOT_VERSION = 1;

/** A behaviour alarm raised and not yet cleared, as `status` shows it. */
export interface ActiveAlarm {
  alarm: string;
  device: string;
  room?: string;
  since: number;
  trigger: string;
}

/** Every rule's state, as the rules keep it (plain JSON by design). */
export interface RulesState {
  gas: GasRuleState;
  smoke: SmokeRuleState;
  sos: SosRuleState;
  fall: FallRuleState;
  vitals: VitalsRuleState;
  inactivity: InactivityRuleState;
  /** The behaviour alarms raised and not yet cleared. */
  active: ActiveAlarm[];
}

export interface Snapshot extends RulesState {
  v: typeof SNAPSHOT_VERSION;
  /** The hub that wrote it: a data directory copied from another hub is not taken for this one's state. */
  hub: string;
  /** The boot that wrote it. */
  boot: number;
  /** The hub's clock when it was written. */
  savedAt: number;
}

// --- the check ------------------------------------------------------------------------------------------

const t = z.number().finite();
const tn = t.nullable();
const str = z.string().max(256);
const room = z.string().max(64).optional();
const count = z.number().int().nonnegative();

const detector = z.object({
  kind: z.enum(["gas", "co"]),
  room,
  value: tn,
  flag: z.boolean(),
  over: z.boolean(),
  trigger: str.nullable(),
  fault: z.boolean(),
  offline: z.boolean(),
  at: t,
  tierSince: z.array(tn).max(16),
  eventDriven: z.boolean().optional(),
});
const gasAlarm = z.object({ since: t, device: str, trigger: str, peak: tn, belowSince: tn });
const valve = z.object({
  commandedAt: tn,
  lastSentAt: tn,
  attempts: count,
  closed: z.boolean().nullable(),
  verifiedAt: tn,
  fault: str.nullable(),
  offline: z.boolean(),
});
const gas: z.ZodType<GasRuleState> = z.object({
  detectors: z.record(str, detector),
  alarms: z.object({ gas: gasAlarm.optional(), co: gasAlarm.optional() }),
  valves: z.record(str, valve),
  sirenOn: z.boolean(),
});

const smoke: z.ZodType<SmokeRuleState> = z.object({
  detectors: z.record(str, z.object({ smoke: z.boolean(), room, at: t, offline: z.boolean() })),
  alarm: z.object({ since: t, device: str, room, devices: z.array(str).max(256) }).nullable(),
});

const sos: z.ZodType<SosRuleState> = z.object({ last: z.record(str, z.object({ raisedAt: t, presses: count })) });

const motion = z.enum(["none", "still", "moving"]).nullable();
const fall: z.ZodType<FallRuleState> = z.object({
  devices: z.record(
    str,
    z.object({
      room: z.string().max(64).nullable(),
      online: z.boolean(),
      seesMotion: z.boolean(),
      presence: z.boolean().nullable(),
      motion,
      flag: z.enum(["fall", "maybe", "clear"]).nullable(),
      movingSince: tn,
      maybeAt: tn,
      armed: z.boolean(),
      pendingSince: tn,
      stillSince: tn,
      raised: z.object({ at: t, since: t, trigger: z.enum(["fall_report", "no_movement"]), fallReportAt: tn }).nullable(),
      retry: z.object({ reportAt: t, upAt: t, stillSince: tn }).nullable().default(null),
      reopened: z.boolean().default(false),
    }),
  ),
});

const watch = z.object({ since: tn, n: count, min: tn, max: tn, abnormal: z.boolean(), inRange: count });
const acc = z.object({ n: count, sum: t, min: t, max: t }).nullable();
const vitals: z.ZodType<VitalsRuleState> = z.object({
  devices: z.record(
    str,
    z.object({
      room: z.string().max(64).nullable(),
      online: z.boolean(),
      givesInBed: z.boolean(),
      inBed: z.boolean().nullable(),
      presence: z.boolean().nullable(),
      heartRate: tn,
      breathing: tn,
      lastVitalAt: tn,
      absentSince: tn,
      absent: z.object({ at: t, since: t }).nullable(),
      hr: watch,
      br: watch,
      abnormal: z.object({ at: t, since: t, signal: z.enum(["heartRate", "breathing"]) }).nullable(),
      trend: z.object({ from: t, readings: count, heartRate: acc, breathing: acc }).nullable(),
    }),
  ),
});

const inactivity: z.ZodType<InactivityRuleState> = z.object({
  lastActivityAt: t,
  lastActivityDevice: str.nullable(),
  lastActivityRoom: z.string().max(64).nullable(),
  countedMs: t,
  countedTo: t,
  raised: z.object({ at: t, device: str, room: z.string().max(64).nullable() }).nullable(),
  devices: z.record(str, z.object({ senses: z.boolean(), online: z.boolean(), presence: z.boolean().nullable(), motion, room: z.string().max(64).nullable() })),
});

const active: z.ZodType<ActiveAlarm> = z.object({ alarm: str, device: str, room, since: t, trigger: str });

const snapshotSchema = z.object({
  v: z.literal(SNAPSHOT_VERSION),
  hub: str,
  boot: count,
  savedAt: t,
  gas,
  smoke,
  sos,
  fall,
  vitals,
  inactivity,
  active: z.array(active).max(1024),
});

export type Decoded = { ok: true; snapshot: Snapshot } | { ok: false; reason: string; found?: { v?: unknown; hub?: unknown; boot?: unknown; savedAt?: unknown } };

/** Checks a saved document for this hub; never throws. Only a document that passes whole is used. */
export function decodeSnapshot(json: string, hub: string): Decoded {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    return { ok: false, reason: `not JSON (${(err as Error).message})` };
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return { ok: false, reason: "not a JSON object" };
  const head = raw as Record<string, unknown>;
  const found = { v: head.v, hub: head.hub, boot: head.boot, savedAt: head.savedAt };
  if (head.v !== SNAPSHOT_VERSION) return { ok: false, reason: `format version ${JSON.stringify(head.v)}, this build reads version ${SNAPSHOT_VERSION}`, found };
  if (head.hub !== hub) return { ok: false, reason: `written by hub ${JSON.stringify(head.hub)}, this is hub ${JSON.stringify(hub)}`, found };
  const parsed = snapshotSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `wrong shape at ${issue?.path.map(String).join(".") || "(top)"}: ${issue?.message ?? parsed.error.message}`, found };
  }
  return { ok: true, snapshot: parsed.data };
}

/** The document written: the header first, then the rules' state. */
export function encodeSnapshot(head: { hub: string; boot: number; savedAt: number }, body: string): string {
  return `{"v":${SNAPSHOT_VERSION},"hub":${JSON.stringify(head.hub)},"boot":${head.boot},"savedAt":${head.savedAt},${body.slice(1)}`;
}

// --- what is worth a write ------------------------------------------------------------------------------

/**
 * Last signs of life closer together than this are one for the write policy; the restore does not trust a
 * counted time saved less than this after the last sign of life it knows (a later one may not have been saved).
 */
export const ACTIVITY_BUCKET_MS = 60_000;

/**
 * The part of the state a restart must not lose, as one string: a change here is written at once (with the
 * events of the same tick). What is left out changes with every reading and is either re-read after a restart
 * (readings, a valve's retry bookkeeping, trend sums) or safe to restore somewhat old (a peak, counted
 * inactivity, see ACTIVITY_BUCKET_MS); it is written at the next change or periodic refresh.
 *
 * Every window start that a reading can reset is in here, so a reset is never lost and an old start is never
 * restored after it (that would raise early). The one exception is the absence of vital signs, whose window
 * restarts with every reading of a vital sign: only whether it is running is in here, and the restore starts
 * it afresh when the vital signs were still coming at the last write.
 */
export function significantKey(s: RulesState): string {
  const g = s.gas;
  return JSON.stringify([
    Object.entries(g.alarms).map(([k, a]) => [k, a?.since, a?.device, a?.trigger]),
    Object.entries(g.detectors).map(([id, d]) => [id, d.kind, d.room ?? null, d.tierSince]),
    Object.entries(g.valves).map(([id, v]) => [id, v.commandedAt, v.verifiedAt, v.closed, v.fault]),
    g.sirenOn,
    s.smoke.alarm,
    s.sos.last,
    Object.entries(s.fall.devices).map(([id, d]) => [id, d.room, d.online, d.seesMotion, d.armed, d.flag === "fall", d.pendingSince, d.stillSince, d.raised, d.retry, d.reopened]),
    Object.entries(s.vitals.devices).map(([id, d]) => [
      id, d.room, d.online, d.givesInBed, d.inBed, d.presence,
      d.absentSince === null ? null : d.heartRate === null && d.breathing === null ? d.absentSince : "restarting",
      d.absent, d.abnormal, d.hr.since, d.hr.abnormal, d.br.since, d.br.abnormal,
    ]),
    [
      Math.floor(s.inactivity.lastActivityAt / ACTIVITY_BUCKET_MS),
      s.inactivity.raised,
      Object.entries(s.inactivity.devices).map(([id, d]) => [id, d.senses, d.presence, d.room]),
    ],
    s.active,
  ]);
}
