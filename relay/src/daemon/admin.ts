// What the admin commands (`anxin-relay hubs ...`) open: the configured store and a registry over it,
// built exactly as the daemon builds them. They run on the relay host, with or without the daemon.
import { readRelayConfig } from "../config/loader.js";
import type { RelayConfig } from "../config/schema.js";
import { Registry } from "../registry/registry.js";
import { openStore, type Store } from "../store/store.js";
import { registryOptions } from "./run.js";

export interface Admin {
  config: RelayConfig;
  store: Store;
  registry: Registry;
  close(): Promise<void>;
}

export async function openAdmin(configFile: string): Promise<Admin> {
  const { config } = await readRelayConfig(configFile);
  const store = await openStore(config.store, config.relay.dataDir);
  const registry = new Registry(store, registryOptions(config));
  return { config, store, registry, close: () => store.close() };
}
