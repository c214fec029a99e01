// Starts a relay in-process against an external broker (Mosquitto), with a SQLite or PostgreSQL store:
// what relay-rig's startRelayForTest (always the embedded broker) does not cover.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { stringify } from "yaml";
import { startRelay, type RunningRelay, type StartRelayOptions } from "../../relay/src/daemon/run.js";
import { freePort, pgTestSecrets } from "./relay-rig.js";

export interface ExternalRelayOptions {
  /** relay.id: names the instance in logs and its MQTT client id. */
  id?: string;
  brokerUrl: string;
  /** null: plain subscriptions (one instance only). */
  sharedGroup: string | null;
  /** Default: SQLite in the temp dir. */
  store?: { kind: "sqlite" } | { kind: "postgres"; url: string; schema: string; poolSize?: number };
  onCommitted?: StartRelayOptions["onCommitted"];
}

export interface ExternalRelay {
  relay: RunningRelay;
  configFile: string;
  dir: string;
  stop(): Promise<void>;
}

export function testLogger(name: string) {
  // stderr: a child process may use stdout for its own protocol.
  return pino({ name, level: process.env.ANXIN_TEST_LOG ?? "silent" }, pino.destination(2));
}

export async function startExternalRelay(o: ExternalRelayOptions): Promise<ExternalRelay> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-relay-ext-"));
  const httpPort = await freePort();
  const store =
    o.store?.kind === "postgres"
      ? { kind: "postgres", url: o.store.url, schema: o.store.schema, poolSize: o.store.poolSize ?? 4 }
      : { kind: "sqlite", path: "relay.db" };
  const config = {
    relay: { id: o.id ?? "test-relay", dataDir: "./data" },
    log: { level: "info" },
    store,
    broker: { kind: "external", url: o.brokerUrl, sharedGroup: o.sharedGroup },
    http: { host: "127.0.0.1", port: httpPort },
    // Instances sharing a PostgreSQL schema share the master key that seals hub keys.
    ...(store.kind === "postgres" ? { secrets: await pgTestSecrets(dir) } : {}),
  };
  const configFile = path.join(dir, "relay.yaml");
  await writeFile(configFile, stringify(config));
  let relay: RunningRelay;
  try {
    relay = await startRelay(configFile, { log: testLogger("anxin-relay"), onCommitted: o.onCommitted });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    relay,
    configFile,
    dir,
    stop: async () => {
      await relay.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
