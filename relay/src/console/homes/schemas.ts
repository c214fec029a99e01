// The homes board's answer as the console receives it: GET /console/api/homes.
import { z } from "zod";
import { PROBLEM_KINDS, URGENCIES } from "./problems.js";

const ms = z.number().int().describe("ms since epoch");

export const problemSchema = z
  .object({
    kind: z.enum(PROBLEM_KINDS),
    urgency: z.enum(URGENCIES),
    device: z.string().nullable().describe("the hub's own id of the device; null for the hub itself"),
    since: ms
      .nullable()
      .describe("when the relay received the event that raised it (second_path_untested: the last successful test); null: not known (a hub never seen) or, for second_path_untested, never"),
    battery: z.number().int().nullable().optional().describe("battery_low: the level in % the device reported with it, if it did"),
  })
  .describe("one thing at a home that needs attention");

export const homeSchema = z
  .object({
    hub: z.string(),
    homeMasked: z.string().nullable().describe("the household's address masked (road and building); null: the hub has no household"),
    street: z.string().nullable(),
    community: z.string().nullable(),
    urgency: z.enum(URGENCIES).describe("the worst problem's urgency"),
    rank: z.number().int().describe("the worst problem's rank, 0 most urgent (the board is sorted by it)"),
    hubOnline: z.boolean(),
    lastSeenAt: ms.nullable().describe("the hub's latest sign of life"),
    problems: z.array(problemSchema).min(1).describe("most urgent first"),
  })
  .describe("a home needing attention");

export const boardSchema = z.object({
  homes: z.array(homeSchema).describe("most urgent first, at most `limit`"),
  total: z.number().int().describe("homes needing attention in the caller's streets (before `limit`)"),
  counts: z.object(Object.fromEntries(URGENCIES.map((u) => [u, z.number().int()])) as Record<(typeof URGENCIES)[number], z.ZodNumber>),
  generatedAt: ms.describe("when the relay computed the board (it is shared for a few seconds)"),
});

export const boardQuery = z.object({ limit: z.coerce.number().int().min(1).max(5000).default(1000) });

export type BoardHome = z.infer<typeof homeSchema>;
export type Board = z.infer<typeof boardSchema>;
