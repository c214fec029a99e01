// (being built) Where hubs upload the camera stills of an alarm: signed, over HTTPS.
import type { FastifyPluginAsync } from "fastify";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { RelayConfig } from "../config/schema.js";
import type { Registry } from "../registry/registry.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import type { Store } from "../store/store.js";

export interface StillsUploadDeps {
  db: Kysely<LoopDb>;
  store: Store;
  registry: Registry;
  now: () => number;
  log: Logger;
  config: RelayConfig;
}

export function stillsUploadPlugin(d: StillsUploadDeps): FastifyPluginAsync {
  void d;
  return async () => {};
}
