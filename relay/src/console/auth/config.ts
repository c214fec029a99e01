// The console's own section of the relay configuration (`console:`), checked with the rest of it in
// config/schema.ts: the sign-in sessions and the limit on failed sign-ins from one address.
import { z } from "zod";

export const consoleConfigSchema = z
  .object({
    session: z
      .object({
        idleMinutes: z.number().int().min(1).max(24 * 60).default(30).describe("a console session with no request for this long is ended (the person walked away from the desk)"),
        maxHours: z.number().int().min(1).max(7 * 24).default(12).describe("a console session ends this long after sign-in whatever happens (one shift); the person signs in again"),
      })
      .strict()
      .prefault({}),
    signIn: z
      .object({
        maxFailuresPerAddress: z
          .number()
          .int()
          .min(3)
          .max(10_000)
          .default(30)
          .describe("failed sign-ins from one address (any usernames) before it gets 429 until the window ends; each account is also locked after its own failures"),
        windowMinutes: z.number().int().min(1).max(24 * 60).default(15).describe("the window those failures are counted in, from the first"),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type ConsoleConfig = z.infer<typeof consoleConfigSchema>;
