// The hub's install configuration (YAML). Every key is checked: an unknown key is an error, not ignored,
// because a typo in a safety set point must never fall back silently to a default.
import { z } from "zod";
import { cameraSchema } from "./camera.js";
import { voiceSchema } from "./voice.js";
import { cellularSchema } from "./cellular.js";
import { powerSchema } from "./power.js";

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "letters, digits, _ . - (up to 64)");
const ms = (min: number, max: number) => z.number().int().min(min).max(max);

export const busSchema = z
  .object({
    name: id,
    path: z.string().min(1).describe("serial device, e.g. /dev/ttyUSB0 (prefer /dev/serial/by-id/...); `sim` for the built-in simulator"),
    baudRate: z.number().int().positive().default(9600),
    parity: z.enum(["none", "even", "odd"]).default("none"),
    dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
    stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
    quietMs: ms(0, 5000).default(500).describe("silence after a failed request before the line is used again"),
    reconnectMinMs: ms(100, 60000).default(1000),
    reconnectMaxMs: ms(1000, 600000).default(30000),
  })
  .strict();

export const deviceSchema = z
  .object({
    id,
    profile: z.string().min(1),
    bus: id,
    unit: z.number().int().min(1).max(247).optional().describe("Modbus unit id; defaults to the profile's"),
    room: z.string().max(64).optional(),
    pollMs: ms(100, 60000).optional().describe("poll period; safety sensors default to 1000 and may not exceed it"),
    offlineAfterMs: ms(1000, 3600000).optional().describe("no good reading for this long → `offline` event"),
    timeoutMs: ms(20, 5000).optional(),
    ratedCloseMs: ms(100, 300000).optional().describe("valves: overrides the profile's rated closing time"),
  })
  .strict();

export const coTierSchema = z
  .object({ ppm: z.number().positive().max(10000), forMs: ms(0, 24 * 3600000) })
  .strict();

const rangeSchema = (lo: number, hi: number) =>
  z
    .object({ min: z.number().min(lo).max(hi), max: z.number().min(lo).max(hi) })
    .strict()
    .refine((r) => r.min < r.max, { message: "min must be below max", path: ["min"] });

const timeOfDay = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "a local time of day as HH:MM (24 h), e.g. 22:00");

export const fallRuleSchema = z
  .object({
    confirmMs: ms(0, 600000).describe("a fall report with no getting up for this long raises `fall`"),
    getUpMs: ms(500, 120000).describe("movement sustained this long after a fall report is the elder getting up"),
  })
  .strict();

export const stillnessRuleSchema = z
  .object({
    dangerous: z.boolean().describe("lying still here is dangerous (bathroom, kitchen floor): presence without movement raises `fall`"),
    windowMs: ms(10000, 24 * 3600000).describe("how long someone present may stay without moving in such a room"),
  })
  .strict();

export const vitalsRuleSchema = z
  .object({
    absentMs: ms(5000, 3600000).describe("in bed, heart rate and breathing both absent this long → `vital_absent`"),
    abnormalMs: ms(10000, 24 * 3600000).describe("out of range on every reading this long → `vital_abnormal`"),
    heartRate: rangeSchema(10, 250).describe("beats per minute"),
    breathing: rangeSchema(2, 80).describe("breaths per minute"),
    trendEveryMs: ms(10000, 3600000).describe("one trend reading per radar this often"),
  })
  .strict();

export const inactivityRuleSchema = z
  .object({
    enabled: z.boolean().default(true),
    spanMs: ms(600000, 7 * 86400000).default(12 * 3600000).describe("no sign of life anywhere for this long (night not counted) → `inactivity`"),
    night: z
      .object({ from: timeOfDay, to: timeOfDay })
      .strict()
      .refine((n) => n.from !== n.to, { message: "from and to must differ", path: ["to"] })
      .nullable()
      .default({ from: "22:00", to: "07:00" })
      .describe("hours not counted (sleep); null counts every hour"),
    timeZone: z
      .string()
      .refine((tz) => {
        try {
          new Intl.DateTimeFormat("en-GB", { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, "an IANA time zone such as Asia/Shanghai")
      .default("Asia/Shanghai"),
  })
  .strict();

const FALL_DEFAULT = { confirmMs: 30000, getUpMs: 5000 };
const STILLNESS_DEFAULT = { windowMs: 600000 };
const VITALS_DEFAULT = { absentMs: 60000, abnormalMs: 300000, heartRate: { min: 40, max: 130 }, breathing: { min: 8, max: 30 }, trendEveryMs: 60000 };

export const rulesSchema = z
  .object({
    fall: fallRuleSchema.partial().strict().transform((f) => ({ ...FALL_DEFAULT, ...f })).default(FALL_DEFAULT),
    stillness: stillnessRuleSchema.omit({ dangerous: true }).partial().strict().transform((f) => ({ ...STILLNESS_DEFAULT, ...f })).default(STILLNESS_DEFAULT),
    vitals: vitalsRuleSchema.partial().strict().transform((f) => ({ ...VITALS_DEFAULT, ...f })).default(VITALS_DEFAULT),
    inactivity: inactivityRuleSchema.default(inactivityRuleSchema.parse({})),
    gas: z
      .object({
        setpointLel: z.number().positive().max(60).default(20),
        hysteresisLel: z.number().min(0).max(30).default(5),
        clearHoldMs: ms(0, 3600000).default(60000),
      })
      .strict()
      .default({ setpointLel: 20, hysteresisLel: 5, clearHoldMs: 60000 }),
    co: z
      .object({
        tiers: z.array(coTierSchema).min(1).default([
          { ppm: 300, forMs: 0 },
          { ppm: 100, forMs: 15 * 60000 },
          { ppm: 50, forMs: 70 * 60000 },
        ]),
        hysteresisPpm: z.number().min(0).max(200).default(10),
        clearHoldMs: ms(0, 3600000).default(60000),
      })
      .strict()
      .default({
        tiers: [
          { ppm: 300, forMs: 0 },
          { ppm: 100, forMs: 15 * 60000 },
          { ppm: 50, forMs: 70 * 60000 },
        ],
        hysteresisPpm: 10,
        clearHoldMs: 60000,
      }),
    valve: z
      .object({
        ratedCloseMs: ms(100, 300000).default(15000).describe("used when neither the device nor its profile says"),
        retryMs: ms(100, 60000).default(2000),
        verifyPollMs: ms(50, 5000).default(250),
      })
      .strict()
      .default({ ratedCloseMs: 15000, retryMs: 2000, verifyPollMs: 250 }),
  })
  .strict();

/** Per-room overrides of the behaviour rules; a room not listed uses the install's `rules`. */
export const roomSchema = z
  .object({
    fall: fallRuleSchema.partial().strict().optional(),
    stillness: stillnessRuleSchema.partial().strict().optional(),
    vitals: vitalsRuleSchema.partial().strict().optional(),
  })
  .strict();

/** A radar on its own serial port (USB-UART, or a UART-to-RS-485 pair): one radar per port. */
export const radarSchema = z
  .object({
    id,
    profile: z.string().min(1).describe("a `transport: uart-frame` device profile"),
    path: z.string().min(1).describe("serial device, e.g. /dev/serial/by-id/usb-...; one radar per port; `sim` for the built-in simulator"),
    room: z.string().max(64).optional(),
    baudRate: z.number().int().positive().optional().describe("default: the profile's"),
    settleMs: ms(0, 300000).optional().describe("readings ignored this long after the radar powers up; default: the profile's"),
    offlineAfterMs: ms(2000, 3600000).optional().describe("check-in window: no valid frame this long → `offline`; default: the profile's"),
    reopenMinMs: ms(100, 60000).default(1000),
    reopenMaxMs: ms(1000, 600000).default(30000),
  })
  .strict();

export const ZIGBEE_ROLES = [
  "smoke_detector", "gas_detector", "co_detector", "sos_button", "siren", "valve", "presence", "fall_detector", "breathing_monitor",
] as const;

const ieee = z
  .string()
  .regex(/^0x[0-9a-f]{16}$/, "an IEEE address: 0x and 16 lower-case hex digits, e.g. 0x00124b0012345678");

export const zigbeeDeviceSchema = z
  .object({
    ieee,
    id: id.optional().describe("the device's id in events; default zb-<last 6 hex digits of the ieee>"),
    room: z.string().max(64).optional(),
    roles: z.array(z.enum(ZIGBEE_ROLES)).min(1).optional().describe("replaces the roles read from the converter's exposes (each must be possible for it)"),
    offlineAfterMs: ms(1000, 7 * 86400000).optional().describe("check-in window: no frame for this long → `offline` event"),
    reportS: z.number().int().min(1).max(65000).optional().describe("battery devices: ask for a report at least this often (seconds)"),
    ratedCloseMs: ms(100, 300000).optional().describe("valves: rated closing time"),
  })
  .strict();

const checkInSchema = z.object({ reportS: z.number().int().min(1).max(65000), windowS: z.number().int().min(2).max(7 * 86400) }).strict();

export const zigbeeSchema = z
  .object({
    adapter: z.enum(["zstack", "ember", "deconz", "zigate", "zboss"]).describe("the coordinator's firmware family"),
    path: z
      .string()
      .min(1)
      .regex(/^(\/|tcp:\/\/[^\s:]+:\d{1,5}$)/, "a serial device path (/dev/...) or tcp://host:port")
      .describe("serial path (prefer /dev/serial/by-id/...) or tcp://host:port for a network coordinator"),
    baudRate: z.number().int().positive().optional().describe("default: the adapter's own (115200 for most)"),
    rtscts: z.boolean().optional(),
    channel: z.number().int().min(11).max(26).default(15).describe("2.4 GHz channel 11–26; 15, 20 and 25 sit between common Wi-Fi channels"),
    restartMinMs: ms(10, 600000).default(1000).describe("first wait before restarting a coordinator that dropped out"),
    restartMaxMs: ms(100, 3600000).default(60000).describe("longest wait between restarts"),
    startTimeoutMs: ms(1000, 600000).default(60000).describe("a start attempt longer than this is abandoned and retried"),
    pingS: z.number().int().min(1).max(86400).default(120).describe("mains devices quiet this long are pinged; no answer → `offline`"),
    sirenSeconds: z.number().int().min(5).max(3600).default(300).describe("one siren command's length; re-sent while the alarm lasts"),
    chirpSeconds: z.number().int().min(1).max(10).default(1).describe("SOS feedback: a short sound on the Zigbee sirens"),
    fallConfirmMs: ms(0, 600000).optional().describe("deprecated: use rules.fall.confirmMs (when given, it is used for every radar)"),
    checkIn: z.partialRecord(z.enum(ZIGBEE_ROLES), checkInSchema).default({}).describe("per-role check-in overrides (seconds)"),
    devices: z.array(zigbeeDeviceSchema).default([]),
  })
  .strict()
  .superRefine((zb, ctx) => {
    if (zb.restartMinMs > zb.restartMaxMs) ctx.addIssue({ code: "custom", path: ["restartMinMs"], message: "must not exceed restartMaxMs" });
    const seen = new Set<string>();
    zb.devices.forEach((d, i) => {
      if (seen.has(d.ieee)) ctx.addIssue({ code: "custom", path: ["devices", i, "ieee"], message: `${d.ieee} is listed twice` });
      seen.add(d.ieee);
    });
  });

/** Optional: without it the hub guards the home and journals everything, but sends nothing. */
export const uplinkSchema = z
  .object({
    url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/[^\s]+$/, "an mqtt://, mqtts://, ws:// or wss:// URL")
      .optional()
      .describe("broker URL; overrides the one in the secrets file"),
    secretsFile: z.string().min(1).optional().describe("default: <dataDir>/secrets.json, written by `anxin-hub provision`"),
    heartbeatS: z.number().int().min(5).max(3600).optional().describe("default: the period the relay assigned at enrolment"),
    window: z.number().int().min(2).max(1000).default(256).describe("events in flight without an ack; one slot is kept for critical events"),
    ackTimeoutMs: ms(100, 600000).default(5000).describe("no ack this long → send again, doubling per attempt up to 5 min; routine events wait longer while the relay's acks are measured slower"),
    historicalAfterMs: ms(0, 86400000).default(60000).describe("an event first sent this late, and every resend, is flagged historical"),
    reconnectMinMs: ms(100, 600000).default(1000),
    reconnectMaxMs: ms(1000, 3600000).default(60000),
    caFile: z.string().min(1).optional().describe("PEM CA bundle for the broker's certificate"),
    certFile: z.string().min(1).optional().describe("PEM client certificate"),
    keyFile: z.string().min(1).optional().describe("PEM client private key"),
    allowPlaintext: z
      .boolean()
      .optional()
      .describe("true: allow an unencrypted broker URL (mqtt://, ws://) to another machine, with a warning at every start; default: only to this machine"),
  })
  .strict()
  .superRefine((u, ctx) => {
    if (u.reconnectMinMs > u.reconnectMaxMs) ctx.addIssue({ code: "custom", path: ["reconnectMinMs"], message: "must not exceed reconnectMaxMs" });
    if (Boolean(u.certFile) !== Boolean(u.keyFile)) ctx.addIssue({ code: "custom", path: [u.certFile ? "keyFile" : "certFile"], message: "certFile and keyFile go together" });
  });

export const configSchema = z
  .object({
    hub: z
      .object({
        id,
        dataDir: z.string().min(1).describe("journal and state; relative paths are relative to this file"),
        controlSocket: z.string().min(1).optional().describe("default: <dataDir>/control.sock"),
        profilesDir: z.string().min(1).optional().describe("default: the device-profiles folder shipped with Anxin"),
      })
      .strict(),
    log: z.object({ level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info") }).strict().default({ level: "info" }),
    buses: z.array(busSchema).default([]),
    devices: z.array(deviceSchema).default([]),
    radars: z.array(radarSchema).default([]),
    rooms: z.record(z.string().min(1).max(64), roomSchema).default({}),
    rules: rulesSchema.default(rulesSchema.parse({})),
    journal: z.object({ maxRows: z.number().int().min(1000).max(10_000_000).default(200000) }).strict().default({ maxRows: 200000 }),
    uplink: uplinkSchema.optional(),
    zigbee: zigbeeSchema.optional(),
    camera: cameraSchema.optional().describe("a home camera read only when an alarm is raised, with recorded consent (docs/camera.md)"),
    voice: voiceSchema.optional().describe("spoken prompts for the elder on the hub's speaker, rendered offline (docs/voice.md)"),
    cellular: cellularSchema.optional().describe("a USB cellular module as the second path for alarms (docs/cellular.md)"),
    power: powerSchema.optional().describe("the hub's own power supply: mains loss and battery state as events (docs/power.md)"),
  })
  .strict();

export type HubConfig = z.infer<typeof configSchema>;
export type BusConfig = z.infer<typeof busSchema>;
export type DeviceConfig = z.infer<typeof deviceSchema>;
export type RulesConfig = z.infer<typeof rulesSchema>;
export type UplinkConfig = z.infer<typeof uplinkSchema>;
export type ZigbeeConfig = z.infer<typeof zigbeeSchema>;
export type RadarConfig = z.infer<typeof radarSchema>;
export type RoomConfig = z.infer<typeof roomSchema>;
export type ZigbeeDeviceConfig = z.infer<typeof zigbeeDeviceSchema>;
export type { CameraConfig } from "./camera.js";
export type { CellularConfig } from "./cellular.js";
