// The commissioning report: what the hub proved about a home's kit when it was installed. The hub builds it
// at the end of `anxin-hub commission` and journals it as an audit event (type "commissioning_report"), so it
// is signed with the hub's key and reaches the relay with the journal's guarantees; the relay stores and
// renders exactly this shape. No personal data: the household is its id, the installer a name they chose.
import { z } from "zod";

/** The event `type` the report travels under (kind "audit", severity "info"). */
export const COMMISSIONING_REPORT_TYPE = "commissioning_report" as const;

/** The device kinds a household plan names (the relay's households/schema.ts DEVICE_KINDS, same order). */
export const PLAN_DEVICE_KINDS = [
  "smoke_detector", "gas_detector", "gas_valve", "co_detector", "sos_button", "camera", "fall_radar", "vital_radar",
] as const;
export type PlanDeviceKind = (typeof PLAN_DEVICE_KINDS)[number];

export const PLAN_LEVELS = ["low", "medium", "high"] as const;
export const DEVICE_RESULTS = ["passed", "failed", "missing", "waived"] as const;
export type DeviceResult = (typeof DEVICE_RESULTS)[number];

/**
 * Bound on the report's serialized size (UTF-8). The relay refuses an MQTT payload over 64 KiB; the envelope
 * around `data` (ids, signature, keys) is well under 4 KiB, so 56 KiB leaves room without a tight calculation.
 */
export const MAX_REPORT_BYTES = 56 * 1024;
/** More devices than any plan the relay derives (a high-risk home has ~15); a custom plan could list more. */
export const MAX_REPORT_DEVICES = 100;

const ms = z.number().int().nonnegative();
const short = (max: number) => z.string().min(1).max(max);

export const commissioningPlanItemSchema = z
  .object({
    kind: z.enum(PLAN_DEVICE_KINDS),
    count: z.number().int().min(1).max(20),
    rooms: z.array(short(32)).max(20).optional(),
  })
  .strict();

export const waiverSchema = z
  .object({
    reason: short(200),
    by: short(64),
    at: ms,
  })
  .strict();
export type Waiver = z.infer<typeof waiverSchema>;

export const commissionedDeviceSchema = z
  .object({
    /** The hub's device id; null when the device is planned but no device of that kind is configured. */
    id: short(64).nullable(),
    kind: z.enum(PLAN_DEVICE_KINDS),
    model: short(64).optional(),
    /** RS-485: "rs485:<port>#<unit>"; Zigbee: the IEEE address "0x…". */
    address: short(64).optional(),
    room: short(32).optional(),
    /** Zigbee link quality (LQI 0–255) where known. */
    signal: z.number().int().min(0).max(255).optional(),
    /** Battery percent where known. */
    battery: z.number().min(0).max(100).optional(),
    result: z.enum(DEVICE_RESULTS),
    /** When the installer's trigger was seen (the test event's time). */
    testedAt: ms.optional(),
    /** The test event that proved the path. */
    eventId: z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/).optional(),
    /** When the relay acknowledged the test event (committed there). */
    ackedAt: ms.optional(),
    /** Why it failed or is missing, in English (the relay shows it as is). */
    detail: z.string().max(200).optional(),
    waiver: waiverSchema.optional(),
  })
  .strict()
  .refine((d) => (d.result === "waived") === (d.waiver !== undefined), { message: "a waiver is present exactly when the result is waived" });
export type CommissionedDevice = z.infer<typeof commissionedDeviceSchema>;

/** The hub's cellular second path as checked at commissioning (absent: the hub has no cellular module). */
export const secondPathCheckSchema = z
  .object({
    result: z.enum(["passed", "failed", "waived"]),
    sim: short(16).optional(),
    registration: short(16).optional(),
    rssiDbm: z.number().int().min(-120).max(0).nullable().optional(),
    operator: short(64).nullable().optional(),
    /** Characters of the longest alarm text this hub's ids can produce (one SMS holds 160). */
    longestSms: z.number().int().min(0).max(1000),
    /** When the test SMS was handed to the module, and the network's reference for it. */
    testedAt: ms.optional(),
    mr: z.number().int().min(0).max(255).optional(),
    detail: z.string().max(200).optional(),
    waiver: waiverSchema.optional(),
  })
  .strict()
  .refine((d) => (d.result === "waived") === (d.waiver !== undefined), { message: "a waiver is present exactly when the result is waived" });
export type SecondPathCheck = z.infer<typeof secondPathCheckSchema>;

/** The waiver target that names the second path (`--waive second-path:<reason>`). */
export const SECOND_PATH_TARGET = "second-path";

export const commissioningReportSchema = z
  .object({
    v: z.literal(1),
    hub: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/),
    /** The relay's household id (never its name or address). */
    household: short(64).optional(),
    plan: z
      .object({
        version: z.number().int().min(0),
        level: z.enum(PLAN_LEVELS),
        items: z.array(commissioningPlanItemSchema).min(1).max(60),
      })
      .strict(),
    installer: short(64),
    startedAt: ms,
    finishedAt: ms,
    state: z.enum(["commissioned", "blocked"]),
    devices: z.array(commissionedDeviceSchema).max(MAX_REPORT_DEVICES),
    secondPath: secondPathCheckSchema.optional(),
  })
  .strict()
  .refine((r) => r.finishedAt >= r.startedAt, { message: "finishedAt before startedAt", path: ["finishedAt"] })
  .refine((r) => r.state === "blocked" || r.devices.every((d) => d.result === "passed" || d.result === "waived"), {
    message: "commissioned while a device is failed or missing",
    path: ["state"],
  })
  .refine((r) => r.state === "blocked" || r.secondPath === undefined || r.secondPath.result !== "failed", {
    message: "commissioned while the second path failed",
    path: ["state"],
  })
  .refine((r) => new TextEncoder().encode(JSON.stringify(r)).length <= MAX_REPORT_BYTES, {
    message: `larger than ${MAX_REPORT_BYTES} bytes serialized`,
  });
export type CommissioningReport = z.infer<typeof commissioningReportSchema>;
