import type { Migration } from "kysely";
import { alertMigrations } from "../alerts/operator-alerts.js";
import { commissioningMigrations } from "../commissioning/tables.js";
import { consoleAuthMigrations } from "../console/auth/tables.js";
import { forwarderMigrations } from "../forwarders/outbox.js";
import { retirementMigrations } from "../households/retirement-table.js";
import { householdMigrations } from "../households/tables.js";
import { upkeepMigrations } from "../households/upkeep-table.js";
import { retentionMigrations } from "../retention/table.js";
import { stillsMigrations } from "../stills/table.js";
import { supervisionMigrations } from "../supervision/planned-stops.js";
import { closedLoopMigrations } from "./closed-loop-schema.js";

/**
 * Every migration beyond the store's own: the closed loop's tables, the forwarders' outbox, and the rest.
 * Whatever opens the relay's store (the daemon, the CLI) must pass all of them: the migrator refuses a
 * database that ran a migration it does not know.
 */
export const relayExtraMigrations: Record<string, Migration> = {
  ...closedLoopMigrations,
  ...forwarderMigrations,
  ...alertMigrations,
  ...supervisionMigrations,
  ...retentionMigrations,
  ...householdMigrations,
  ...upkeepMigrations,
  ...commissioningMigrations,
  ...retirementMigrations,
  ...consoleAuthMigrations,
  ...stillsMigrations,
};
