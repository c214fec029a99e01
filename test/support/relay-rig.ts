// Starts the relay in-process for a test: a config in a temp dir, the embedded broker and the HTTP API on
// free loopback ports, a SQLite store, a silent logger (ANXIN_TEST_LOG=debug to see it).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { createLogger } from "../../lib/daemon/logger.js";
import type { EnrolResponse } from "../../protocol/messages.js";
import { startRelay, type RunningRelay, type StartRelayOptions } from "../../relay/src/daemon/run.js";

/** A port free right now on `host` (the OS picks it; closed again before returning). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * One master key for every relay this test process starts on PostgreSQL: instances sharing a schema must
 * share it, as in production (a SQLite relay makes its own, secrets.localMasterKeyFile, in its dir).
 */
const PG_MASTER_KEY = `${randomBytes(32).toString("base64")}\n`;

/** Writes the shared test master key into `dir` (0600) and returns the `secrets` section naming it. */
export async function pgTestSecrets(dir: string): Promise<{ masterKeyFile: string }> {
  const masterKeyFile = path.join(dir, "pg-master.key");
  await writeFile(masterKeyFile, PG_MASTER_KEY, { mode: 0o600 });
  return { masterKeyFile };
}

export interface RelayRigOptions {
  /** Merged (deeply) over the generated configuration, e.g. `{ supervision: { heartbeatIntervalS: 5 } }`. */
  config?: Record<string, unknown>;
  onCommitted?: StartRelayOptions["onCommitted"];
  now?: () => number;
  /** Replace parts with fakes (unit tests of the wiring). */
  parts?: StartRelayOptions["parts"];
  /** Keep the temp dir after stop() (debugging). */
  keep?: boolean;
  /** Reuse this directory (a restart on the same SQLite file); it is kept after stop(). */
  dir?: string;
  /** Replace the configured telephony. */
  telephony?: StartRelayOptions["telephony"];
  instanceId?: string;
  /** Where the console's built page is (default dist/console). */
  consoleDir?: string;
  /** Use this logger instead of a silent one (tests that read the log lines). */
  log?: StartRelayOptions["log"];
}

export interface RelayRig {
  relay: RunningRelay;
  /** Where hubs connect: `mqtt://127.0.0.1:<port>`. */
  mqttUrl: string;
  /** Where the HTTP API listens: `http://127.0.0.1:<port>`. */
  httpUrl: string;
  configFile: string;
  dir: string;
  /** Registers the hub and enrols it over HTTP, as `anxin-hub provision` would. */
  enrolHub(hub: string): Promise<EnrolResponse>;
  stop(): Promise<void>;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    // A section that names another `kind` (store: postgres) replaces the default rather than merging into it.
    const otherKind = v && typeof v === "object" && "kind" in v && b && typeof b === "object" && (b as { kind?: unknown }).kind !== (v as { kind?: unknown }).kind;
    out[k] =
      !otherKind && v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export async function startRelayForTest(opts: RelayRigOptions = {}): Promise<RelayRig> {
  const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), "anxin-relay-")));
  const keep = opts.keep ?? opts.dir !== undefined;
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const config = merge(
    {
      relay: { id: "test-relay", dataDir: "./data" },
      log: { level: "info" },
      store: { kind: "sqlite", path: "relay.db" },
      broker: { kind: "embedded", host: "127.0.0.1", port: mqttPort, publicUrl: mqttUrl },
      http: { host: "127.0.0.1", port: httpPort, publicUrl: httpUrl },
    },
    opts.config ?? {},
  );
  const store = config.store as { kind?: string } | undefined;
  // PostgreSQL never gets a generated master key, and a store handed in (parts.openStore) may outlive this
  // relay's temp dir, so both use the one fixed test key.
  if ((store?.kind === "postgres" || opts.parts?.openStore) && config.secrets === undefined) config.secrets = await pgTestSecrets(dir);
  const configFile = path.join(dir, "relay.yaml");
  await writeFile(configFile, stringify(config));
  const log = opts.log ?? createLogger({ name: "anxin-relay", level: process.env.ANXIN_TEST_LOG ?? "silent" });
  let relay: RunningRelay;
  try {
    relay = await startRelay(configFile, { log, onCommitted: opts.onCommitted, now: opts.now, parts: opts.parts, telephony: opts.telephony, instanceId: opts.instanceId, consoleDir: opts.consoleDir });
  } catch (e) {
    if (!keep) await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    relay,
    mqttUrl: relay.broker?.url ?? mqttUrl,
    httpUrl: relay.httpUrl,
    configFile,
    dir,
    enrolHub: async (hub) => {
      const { code } = await relay.registry.createClaim(hub);
      const res = await fetch(`${relay.httpUrl}/v1/enrol`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ hub, code }) });
      const body = (await res.json()) as unknown;
      if (res.status !== 200) throw new Error(`enrolment of ${hub} failed: ${res.status} ${JSON.stringify(body)}`);
      return body as EnrolResponse;
    },
    stop: async () => {
      await relay.stop();
      if (!keep) await rm(dir, { recursive: true, force: true });
    },
  };
}
