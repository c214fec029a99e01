// Retention: how long each kind of row is kept, and the sweep that deletes the rest (docs/relay.md,
// "Retention"). The daemon calls startRetention; the CLI and tests use the parts.
import type { Logger } from "pino";
import { isEarlierRun } from "../daemon/claims.js";
import type { Metrics } from "../metrics.js";
import type { RelayDbHandle } from "../store/closed-loop-schema.js";
import type { RetentionConfig } from "./config.js";
import { RetentionSweeper } from "./sweeper.js";

export { retentionConfigSchema, defaultRetentionConfig, EVENT_DAYS_DEFAULT, type RetentionConfig } from "./config.js";
export { retentionMigrations, retentionDb, type RetentionDb, type RetentionRunsTable } from "./table.js";
export { retentionRules, keepsForever, DAY_MS, type RetentionRule, type BatchResult } from "./rules.js";
export { listRuns, pendingSweep, pullSweep, claimSweep, finishSweep, scheduleSweep, type RetentionRun, type SweepResult } from "./schedule.js";
export { RetentionSweeper, type RetentionSweeperOptions, type SweepReport } from "./sweeper.js";

/** Builds the sweeper for the daemon and starts it; stop() it with the relay. */
export async function startRetention(o: {
  db: RelayDbHandle;
  config: RetentionConfig;
  relayId: string;
  instanceId: string;
  metrics: Pick<Metrics, "retentionDeleted" | "retentionSweeps">;
  log: Logger;
  now?: () => number;
}): Promise<RetentionSweeper> {
  const sweeper = new RetentionSweeper({
    db: o.db,
    config: o.config,
    owner: o.instanceId,
    isEarlierRun: isEarlierRun(o.relayId, o.instanceId),
    log: o.log,
    now: o.now,
    deletedCounter: o.metrics.retentionDeleted,
    sweepsCounter: o.metrics.retentionSweeps,
  });
  await sweeper.start();
  return sweeper;
}
