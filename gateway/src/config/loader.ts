// Loads and checks the install configuration. Every problem is reported with where it is
// (file, line, key path) so an installer can fix them all in one pass.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { joinPath, readYamlFile, type ConfigProblem } from "../../../lib/config/yaml.js";
import type { Profile, Role } from "../profiles/schema.js";
import type { RadarProfile } from "../profiles/radar-schema.js";
import { configSchema, type HubConfig } from "./schema.js";

export { ConfigError, formatConfigProblems, type ConfigProblem } from "../../../lib/config/yaml.js";

export const SHIPPED_PROFILES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), locateRepoRoot(), "device-profiles");

/** src and dist put this file at different depths below the project root. */
function locateRepoRoot(): string {
  return fileURLToPath(import.meta.url).includes(`${path.sep}dist${path.sep}`) ? "../../../.." : "../../..";
}

export interface LoadedConfig {
  config: HubConfig;
  file: string;
  /** Where a key path sits in the file, for later cross-checks. */
  lineOf: (pathParts: Array<string | number>) => number | undefined;
}

/** Parses and schema-checks one file. Throws ConfigError with every problem found. */
export async function readConfigFile(file: string): Promise<LoadedConfig> {
  const loaded = await readYamlFile(file, configSchema);
  const config = loaded.value;
  const base = path.dirname(loaded.file);
  config.hub.dataDir = path.resolve(base, config.hub.dataDir);
  config.hub.controlSocket = path.resolve(base, config.hub.controlSocket ?? path.join(config.hub.dataDir, "control.sock"));
  config.hub.profilesDir = config.hub.profilesDir ? path.resolve(base, config.hub.profilesDir) : SHIPPED_PROFILES_DIR;
  return { config, file: loaded.file, lineOf: loaded.lineOf };
}

const SAFETY_ROLES: ReadonlySet<Role> = new Set(["gas_detector", "co_detector", "valve"]);
export const MAX_SAFETY_POLL_MS = 1000;

/** Cross-checks between the configuration and the device profiles it names. */
export function checkAgainstProfiles(
  loaded: LoadedConfig,
  profiles: ReadonlyMap<string, Profile>,
  radarProfiles: ReadonlyMap<string, RadarProfile> = new Map(),
): ConfigProblem[] {
  const { config, file, lineOf } = loaded;
  const out: ConfigProblem[] = [];
  const add = (parts: Array<string | number>, message: string) => out.push({ file, line: lineOf(parts), field: joinPath(parts), message });

  const buses = new Map<string, (typeof config.buses)[number]>();
  config.buses.forEach((b, i) => {
    if (buses.has(b.name)) add(["buses", i, "name"], `bus '${b.name}' is defined twice`);
    buses.set(b.name, b);
    if (b.reconnectMinMs > b.reconnectMaxMs) add(["buses", i, "reconnectMinMs"], "must not exceed reconnectMaxMs");
  });
  const paths = new Map<string, string>();
  for (const [i, b] of config.buses.entries()) {
    if (b.path !== "sim" && paths.has(b.path)) add(["buses", i, "path"], `port ${b.path} is already used by bus '${paths.get(b.path)}'`);
    paths.set(b.path, b.name);
  }

  const ids = new Set<string>();
  const units = new Map<string, string>();
  config.devices.forEach((d, i) => {
    if (ids.has(d.id)) add(["devices", i, "id"], `device '${d.id}' is defined twice`);
    ids.add(d.id);
    const bus = buses.get(d.bus);
    if (!bus) add(["devices", i, "bus"], `no bus named '${d.bus}' (buses: ${[...buses.keys()].join(", ") || "none"})`);
    const profile = profiles.get(d.profile);
    if (!profile) {
      add(["devices", i, "profile"], `unknown profile '${d.profile}' (known: ${[...profiles.keys()].sort().join(", ")})`);
      return;
    }
    const unit = d.unit ?? profile.serial.unit;
    const key = `${d.bus}/${unit}`;
    if (units.has(key)) add(["devices", i, "unit"], `unit ${unit} on bus '${d.bus}' is already device '${units.get(key)}'`);
    units.set(key, d.id);
    if (bus && bus.path !== "sim") {
      const s = profile.serial;
      const mismatch = (["baudRate", "parity", "dataBits", "stopBits"] as const).filter((k) => s[k] !== bus[k]);
      if (mismatch.length)
        add(["devices", i, "bus"], `profile '${profile.id}' expects ${s.baudRate} ${s.dataBits}${s.parity[0]!.toUpperCase()}${s.stopBits} but bus '${bus.name}' is ${bus.baudRate} ${bus.dataBits}${bus.parity[0]!.toUpperCase()}${bus.stopBits} (${mismatch.join(", ")} differ): set the device to the bus's settings and the profile's serial block to match`);
    }
    const safety = profile.roles.some((r) => SAFETY_ROLES.has(r));
    if (safety && d.pollMs !== undefined && d.pollMs > MAX_SAFETY_POLL_MS)
      add(["devices", i, "pollMs"], `a safety device (${profile.roles.join(", ")}) must be polled at least once a second (at most ${MAX_SAFETY_POLL_MS})`);
    if (d.ratedCloseMs !== undefined && !profile.roles.includes("valve")) add(["devices", i, "ratedCloseMs"], `profile '${profile.id}' is not a valve`);
  });
  config.zigbee?.devices.forEach((d, i) => {
    const zid = d.id ?? `zb-${d.ieee.slice(-6)}`;
    if (ids.has(zid)) add(["zigbee", "devices", i, d.id ? "id" : "ieee"], `device id '${zid}' is already used by another device`);
    ids.add(zid);
    if (d.ratedCloseMs !== undefined && d.roles && !d.roles.includes("valve")) add(["zigbee", "devices", i, "ratedCloseMs"], "only valves have a rated closing time");
  });
  const rooms = new Set<string>([...config.devices, ...(config.zigbee?.devices ?? [])].flatMap((d) => (d.room ? [d.room] : [])));
  config.radars.forEach((r, i) => {
    if (ids.has(r.id)) add(["radars", i, "id"], `device id '${r.id}' is already used by another device`);
    ids.add(r.id);
    if (r.room) rooms.add(r.room);
    if (!radarProfiles.has(r.profile))
      add(["radars", i, "profile"], `unknown radar profile '${r.profile}' (known: ${[...radarProfiles.keys()].sort().join(", ") || "none"})${profiles.has(r.profile) ? `; '${r.profile}' is an RS-485 Modbus profile` : ""}`);
    const other = r.path === "sim" ? undefined : paths.get(r.path);
    if (other !== undefined) add(["radars", i, "path"], `port ${r.path} is already used by ${other.startsWith("radar ") ? other : `bus '${other}'`}: one radar per port`);
    paths.set(r.path, `radar '${r.id}'`);
    if (config.zigbee && config.zigbee.path === r.path) add(["radars", i, "path"], `port ${r.path} is the Zigbee coordinator's`);
    if (r.reopenMinMs > r.reopenMaxMs) add(["radars", i, "reopenMinMs"], "must not exceed reopenMaxMs");
  });
  // A misspelt room name would silently leave a bathroom unguarded: every room given rules must have a device.
  for (const room of Object.keys(config.rooms))
    if (!rooms.has(room)) add(["rooms", room], `no device is in room '${room}' (rooms with devices: ${[...rooms].sort().join(", ") || "none"})`);
  return out;
}
