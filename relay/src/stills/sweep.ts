// The stills' retention: every instance deletes, on its own timer, the stills received longer ago than the
// retention (a delete by age is the same whichever instance runs it). The reads also leave out expired stills,
// so nothing is shown past its time even between two sweeps.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { sweepStills } from "./repo.js";

export interface StillsSweep {
  /** One sweep now (also what the timer runs); the number deleted. */
  run(): Promise<number>;
  /** Clears the timer and waits for a sweep under way. */
  stop(): Promise<void>;
}

export function startStillsSweep(o: { db: Kysely<LoopDb>; now: () => number; retentionMs: number; everyMs: number; log: Pick<Logger, "info" | "error"> }): StillsSweep {
  let running: Promise<number> | null = null;
  let stopped = false;
  const run = () =>
    (running ??= sweepStills(o.db, o.now(), o.retentionMs)
      .then((n) => {
        if (n > 0) o.log.info({ deleted: n }, "camera stills past their retention deleted");
        return n;
      })
      .finally(() => (running = null)));
  const timer = setInterval(() => {
    if (!stopped) run().catch((e: Error) => o.log.error({ err: e.message }, "camera stills retention sweep failed"));
  }, o.everyMs);
  timer.unref();
  return {
    run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
