// A hub daemon with no devices, only an uplink, under a hub id the test chooses (hub-rig fixes it to
// `test-hub`, which would collide with other runs on a shared broker). Secrets go where the daemon
// looks by default: <dataDir>/secrets.json, folder 0700, file 0600.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import type { EventDraft, Envelope } from "../../protocol/envelope.js";
import type { EnrolResponse } from "../../protocol/messages.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import { writeSecrets } from "../../gateway/src/uplink/secrets.js";
import { testLogger } from "./relay-external.js";

/** Writes hub.yaml (hub + uplink, nothing else) and the secrets into `dir`; returns the config file. */
export async function writeUplinkHubConfig(dir: string, hub: string, enrol: EnrolResponse, uplink: Record<string, unknown> = {}): Promise<string> {
  const configFile = path.join(dir, "hub.yaml");
  await writeFile(configFile, stringify({ hub: { id: hub, dataDir: "./data" }, uplink }));
  await writeSecrets(path.join(dir, "data", "secrets.json"), enrol);
  return configFile;
}

export interface UplinkHub {
  running: RunningHub;
  dir: string;
  configFile: string;
  /** Journals an event the way the daemon does (commit, then nudge the uplink). */
  append(d: EventDraft): Promise<Envelope>;
  rows(): Promise<number>;
  stop(): Promise<void>;
}

export async function startUplinkHub(hub: string, enrol: EnrolResponse, uplink: Record<string, unknown> = {}): Promise<UplinkHub> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-hub-up-"));
  const configFile = await writeUplinkHubConfig(dir, hub, enrol, uplink);
  let running: RunningHub;
  try {
    running = await startHub(configFile, { log: testLogger("anxin-hub") });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    running,
    dir,
    configFile,
    append: async (d) => {
      const e = await running.journal.append(d);
      running.uplink?.nudge();
      return e;
    },
    rows: async () => (await running.journal.stats()).rows,
    stop: async () => {
      await running.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
