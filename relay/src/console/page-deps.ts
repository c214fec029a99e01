// What each of the console's page plugins (incident/, homes/, reports/, stills/) is given: the relay's store,
// its clock, a logger, and its configuration. Routes put app.consoleUser(roles) in front of themselves.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { RelayConfig } from "../config/schema.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import type { Store } from "../store/store.js";

export interface ConsolePageDeps {
  db: Kysely<LoopDb>;
  store: Store;
  now: () => number;
  log: Logger;
  config: RelayConfig;
}
