// What the operator's commands open: the configured store with every migration the daemon applies (the
// migrator refuses a database that ran a migration it does not know) and a registry over it.
import type { Kysely } from "kysely";
import { readRelayConfig } from "../config/loader.js";
import type { RelayConfig } from "../config/schema.js";
import { registryOptions } from "../registry/options.js";
import { relayExtraMigrations } from "../store/relay-migrations.js";
import { lazyHubKeys } from "../registry/hub-keys.js";
import { Registry } from "../registry/registry.js";
import { loopDb, type LoopDb } from "../store/closed-loop-schema.js";
import { openStore, type Store } from "../store/store.js";

export interface AdminHandle {
  config: RelayConfig;
  store: Store;
  db: Kysely<LoopDb>;
  registry: Registry;
  close(): Promise<void>;
}

export async function openAdminStore(configFile: string): Promise<AdminHandle> {
  const { config } = await readRelayConfig(configFile);
  const store = await openStore(config.store, config.relay.dataDir, { migrations: relayExtraMigrations });
  // The master key is looked for only by a command that seals a key (hubs add --direct).
  const registry = new Registry(store, { ...registryOptions(config), keys: lazyHubKeys(store, config) });
  return { config, store, db: loopDb(store.db), registry, close: () => store.close() };
}
