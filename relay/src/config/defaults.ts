// `anxin-relay run` with no configuration: the embedded defaults (own MQTT broker, SQLite, console
// telephony, loopback listeners), with the data in the service's state folder. The configuration used is
// written there once, so the operator can read it, change it, and point the other commands at it.
import { access, mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

/**
 * Where the relay keeps its data when no configuration says: systemd's StateDirectory when run as a
 * service, /var/lib/anxin-relay for root, else the user's XDG state folder.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? -1): string {
  const systemd = env.STATE_DIRECTORY?.split(":")[0];
  if (systemd) return systemd;
  if (uid === 0) return "/var/lib/anxin-relay";
  const xdg = env.XDG_STATE_HOME || path.join(env.HOME || os.homedir(), ".local", "state");
  return path.join(xdg, "anxin-relay");
}

/** The defaults as a file: loopback only, so nothing is reachable from the network until the operator says so. */
export const DEFAULT_RELAY_YAML = `# Written by \`anxin-relay run\` started without --config: the relay on its embedded defaults.
# Everything listens on this machine only. To accept hubs from the network, give the broker a TLS
# certificate and a public host (docs/configuration.md), then run with --config pointing at this file.
# The database lives in data/; the master key sealing the hubs' keys (relay-master.key) stays beside this
# file, outside it: a backup of data/ alone cannot be used to forge a hub's events.
relay: { id: relay-1, dataDir: ./data }
store: { kind: sqlite, path: relay.db }
broker: { kind: embedded, host: 127.0.0.1, port: 1883 }
http: { host: 127.0.0.1, port: 8080 }
telephony: { kind: console }
`;

/**
 * Makes sure `<dir>/relay.yaml` exists (an existing one, perhaps edited, is kept) and returns its path and
 * whether it was just written. The folder is owner-only: it will hold the store.
 */
export async function ensureDefaultConfig(dir: string): Promise<{ file: string; created: boolean }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, "relay.yaml");
  try {
    await access(file);
    return { file, created: false };
  } catch {
    await writeFile(file, DEFAULT_RELAY_YAML, { mode: 0o600, flag: "wx" });
    return { file, created: true };
  }
}
