// Device profiles for radars on a serial line (`transport: uart-frame`): which frame protocol the model
// speaks, which readings it gives (in the vocabulary the Zigbee radars are mapped to, so the rules do not
// care how a radar is wired), its serial settings, how long it needs to settle after power-up, and its
// check-in window.
import { z } from "zod";

import { PROTOCOLS } from "../transports/uart/codecs.js";

/** Frame protocols the hub can parse: exactly those with a codec in `transports/uart/codecs.ts`. */
export const UART_PROTOCOLS = PROTOCOLS;

export const RADAR_ROLES = ["presence", "fall_detector", "breathing_monitor"] as const;
export type RadarRole = (typeof RADAR_ROLES)[number];

export const RADAR_GIVES = ["presence", "motion", "fall", "heartRate", "breathing", "inBed", "distanceCm"] as const;
export type RadarGives = (typeof RADAR_GIVES)[number];

export const radarSerialSchema = z
  .object({
    baudRate: z.literal([9600, 19200, 38400, 57600, 115200, 230400, 256000]).default(115200),
    parity: z.enum(["none", "even", "odd"]).default("none"),
    dataBits: z.literal([7, 8]).default(8),
    stopBits: z.literal([1, 2]).default(1),
  })
  .strict();

export const radarProfileSchema = z
  .object({
    $schema: z.string().optional(),
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{1,63}$/, "lower-case letters, digits and - (2 to 64)").describe("unique; the file is named <id>.yaml"),
    model: z.string().min(1).max(120),
    vendor: z.string().min(1).max(80),
    transport: z.literal("uart-frame"),
    protocol: z.enum(UART_PROTOCOLS).describe("the frame protocol the model speaks"),
    roles: z.array(z.enum(RADAR_ROLES)).min(1).describe("what the hub uses the radar for"),
    gives: z.array(z.enum(RADAR_GIVES)).min(1).describe("the readings the model reports; a reading not listed is never expected of it"),
    source: z.string().min(1).max(300).describe("where the protocol and the values come from"),
    assumed: z.array(z.string().max(300)).default([]).describe("what in this profile is assumed rather than taken from the manual"),
    serial: radarSerialSchema.default(radarSerialSchema.parse({})),
    settleMs: z.number().int().min(0).max(300000).default(20000).describe("readings are ignored this long after the radar powers up (its first byte)"),
    checkInMs: z.number().int().min(2000).max(3600000).default(15000).describe("no valid frame this long → `offline`; a heartbeat query goes out after half of it"),
  })
  .strict()
  .superRefine((p, ctx) => {
    const need: Record<RadarRole, RadarGives[]> = {
      presence: ["presence"],
      fall_detector: ["fall"],
      breathing_monitor: ["heartRate", "breathing"],
    };
    p.roles.forEach((r, i) => {
      const missing = need[r].filter((g) => !p.gives.includes(g));
      if (missing.length) ctx.addIssue({ code: "custom", path: ["roles", i], message: `role ${r} needs the radar to give ${missing.join(" and ")}` });
    });
  });

export type RadarProfile = z.infer<typeof radarProfileSchema>;
