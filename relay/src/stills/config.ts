// The `stills` section of the relay's configuration: what camera stills the relay takes from hubs and how long
// it keeps them (docs/camera.md).
import { z } from "zod";
import { STILL_MAX_BYTES } from "../../../protocol/stills.js";

export const stillsConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe("false: every upload is refused (503 stills_disabled) and nothing is stored"),
    retentionHours: z
      .number()
      .int()
      .min(1)
      .max(30 * 24)
      .default(72)
      .describe("hours from receipt after which a still is deleted (and no longer shown)"),
    maxBytes: z.number().int().min(1024).max(STILL_MAX_BYTES).default(STILL_MAX_BYTES).describe("the largest still taken"),
    maxPerAlarm: z.number().int().min(1).max(20).default(10).describe("stills taken for one alarm event"),
    sweepEveryS: z.number().int().min(1).max(3600).default(300).describe("how often each instance deletes expired stills"),
  })
  .strict();

export type StillsConfig = z.infer<typeof stillsConfigSchema>;
