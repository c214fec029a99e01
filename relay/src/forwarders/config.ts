// The `forwarders` section of the relay configuration: where incident updates are pushed (the duty
// platform, the district and street operations centres) and how hard to try.
import { z } from "zod";
import { readSecret } from "../telephony/secret-source.js";

export const backoffSchema = z
  .object({
    initialMs: z.number().int().min(100).max(3_600_000).default(1000).describe("delay before the 2nd try"),
    factor: z.number().min(1).max(10).default(2).describe("each later delay is this many times the previous"),
    maxMs: z.number().int().min(100).max(86_400_000).default(300_000).describe("delays never grow beyond this"),
    jitter: z.number().min(0).max(1).default(0.2).describe("each delay is spread ±this fraction at random, so instances do not retry in step"),
  })
  .strict();

const BACKOFF_DEFAULT = { initialMs: 1000, factor: 2, maxMs: 300_000, jitter: 0.2 };

export const forwardDestinationSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/).describe('e.g. "duty_platform", "district_centre", "street_centre"'),
    url: z.string().url(),
    secretFile: z.string().min(1).optional().describe("file holding the HMAC secret (owner-only, mode 0600)"),
    secretEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional().describe("environment variable holding the HMAC secret"),
    secret: z.string().min(16).optional().describe("the HMAC secret inline (tests only; prefer secretFile)"),
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    maxAttempts: z.number().int().min(1).max(1000).default(12).describe("after this many failed tries the item is dead (operator alert)"),
    backoff: backoffSchema.default(BACKOFF_DEFAULT),
    freeText: z
      .boolean()
      .default(false)
      .describe(
        "true: updates also carry what people typed (operator notes, the resolution summary, who made the follow-up visit, dispatch and ticket references, telephony error text) and operators' token names; false (default): codes, ids, times and counts only",
      ),
  })
  .strict()
  .superRefine((d, ctx) => {
    const n = [d.secretFile, d.secretEnv, d.secret].filter((v) => v !== undefined).length;
    if (n !== 1) ctx.addIssue({ code: "custom", message: "set exactly one of secretFile, secretEnv or secret", path: ["secretFile"] });
  });

export const forwardersConfigSchema = z
  .object({
    pollMs: z.number().int().min(50).max(60_000).default(1000).describe("how often each instance looks for due items"),
    leaseMarginMs: z
      .number()
      .int()
      .min(1000)
      .max(3_600_000)
      .default(60_000)
      .describe(
        "a claimed item stays this instance's for the destination's timeoutMs plus this; an instance that died holding it frees it after that (a restart under the same relay.id takes it back at once)",
      ),
    destinations: z.array(forwardDestinationSchema).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.destinations.forEach((d, i) => {
      if (seen.has(d.name)) ctx.addIssue({ code: "custom", message: `destination name "${d.name}" used twice`, path: ["destinations", i, "name"] });
      seen.add(d.name);
    });
  });

export type ForwardersConfig = z.infer<typeof forwardersConfigSchema>;
export type ForwardDestinationConfig = z.infer<typeof forwardDestinationSchema>;
export type BackoffConfig = z.infer<typeof backoffSchema>;

/** A destination ready to use: its secret read. */
export interface ForwardDestination {
  name: string;
  url: string;
  secret: string;
  timeoutMs: number;
  maxAttempts: number;
  backoff: BackoffConfig;
  /** Whether this destination may receive free text (forwardDestinationSchema); absent: it may not. */
  freeText?: boolean;
}

/** Reads each destination's secret (relative secret files resolve against `baseDir`). */
export function resolveDestinations(cfg: ForwardersConfig, opts: { baseDir?: string; env?: NodeJS.ProcessEnv } = {}): ForwardDestination[] {
  return cfg.destinations.map((d, i) => ({
    name: d.name,
    url: d.url,
    secret: readSecret({ file: d.secretFile, env: d.secretEnv, value: d.secret }, `forwarders.destinations[${i}] (${d.name})`, opts),
    timeoutMs: d.timeoutMs,
    maxAttempts: d.maxAttempts,
    backoff: d.backoff,
    freeText: d.freeText,
  }));
}
