// Starts the hub daemon in-process against a bench's serial path, with a config the test shapes.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import type { Envelope } from "../../protocol/envelope.js";

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface HubRig {
  running: RunningHub;
  dir: string;
  configFile: string;
  events(): Promise<Envelope[]>;
  stop(): Promise<void>;
}

/** `yaml` is the body after the hub section; `{{path}}` is replaced by the serial path. */
export async function startHubRig(serialPath: string, yaml: string): Promise<HubRig> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-hub-"));
  const configFile = path.join(dir, "hub.yaml");
  await writeFile(configFile, `hub: { id: test-hub, dataDir: ./data }\n${yaml.replaceAll("{{path}}", serialPath)}`);
  const running = await startHub(configFile, { log: createLogger({ name: "anxin-hub", level: process.env.ANXIN_TEST_LOG ?? "silent" }) });
  return {
    running,
    dir,
    configFile,
    events: async () => (await running.journal.pending(100_000, Number.MAX_SAFE_INTEGER)).map((e) => e.envelope).sort((a, b) => a.seq - b.seq),
    stop: async () => {
      await running.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
