// The `voice` section: short spoken prompts for the elder on the hub's own speaker (ALSA), rendered offline
// at install time (`anxin-hub voice render`) and played from files, so speaking never needs a network.
// docs/voice.md.
import { z } from "zod";

const timeOfDay = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "HH:MM (24-hour)");

export const voiceSchema = z
  .object({
    enabled: z.boolean().default(true).describe("speak prompts to the elder; false keeps the speaker silent"),
    language: z.enum(["zh-CN", "en"]).default("zh-CN").describe("the prompts' language: Mandarin (default) or English"),
    device: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[^\s]+$/, "an ALSA device name without spaces (e.g. default, plughw:0,0, null)")
      .default("default")
      .describe("the ALSA playback device (`aplay -D`)"),
    promptsDir: z.string().min(1).default("/var/lib/anxin-hub/voice").describe("where `anxin-hub voice render` wrote the prompts (relative: to this file's folder)"),
    volume: z.number().int().min(10).max(200).default(100).describe("loudness at render time, espeak-ng amplitude (100 its normal, up to 200); change it, render again"),
    quietHours: z
      .object({ from: timeOfDay, to: timeOfDay })
      .strict()
      .refine((q) => q.from !== q.to, { message: "from and to must differ", path: ["to"] })
      .nullable()
      .default(null)
      .describe("hours (the hub's time zone, rules.inactivity.timeZone) in which only alarm prompts are spoken; null: none"),
  })
  .strict();

export type VoiceConfig = z.infer<typeof voiceSchema>;
