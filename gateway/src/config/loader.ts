// Loads and checks the install configuration. Every problem is reported with where it is
// (file, line, key path) so an installer can fix them all in one pass.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { configSchema, type HubConfig } from "./schema.js";
import type { Profile, Role } from "../profiles/schema.js";

export interface ConfigProblem {
  file: string;
  line?: number;
  field: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(`invalid configuration:\n${formatConfigProblems(problems)}`);
    this.name = "ConfigError";
  }
}

export function formatConfigProblems(problems: ConfigProblem[]): string {
  return problems.map((p) => `  ${p.file}${p.line ? `:${p.line}` : ""}: ${p.field || "(top)"}: ${p.message}`).join("\n");
}

export const SHIPPED_PROFILES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), locateRepoRoot(), "device-profiles");

/** src and dist put this file at different depths below the project root. */
function locateRepoRoot(): string {
  return fileURLToPath(import.meta.url).includes(`${path.sep}dist${path.sep}`) ? "../../../.." : "../../..";
}

function joinPath(p: ReadonlyArray<PropertyKey>): string {
  return p.map((k, i) => (typeof k === "number" ? `[${k}]` : `${i ? "." : ""}${String(k)}`)).join("");
}

export interface LoadedConfig {
  config: HubConfig;
  file: string;
  /** Where a key path sits in the file, for later cross-checks. */
  lineOf(pathParts: Array<string | number>): number | undefined;
}

/** Parses and schema-checks one file. Throws ConfigError with every problem found. */
export async function readConfigFile(file: string): Promise<LoadedConfig> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (e) {
    throw new ConfigError([{ file: abs, field: "", message: `cannot read: ${(e as Error).message}` }]);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => ({ file: abs, line: lc.linePos(e.pos[0]).line, field: "", message: `YAML: ${e.message.split("\n")[0]}` })));
  }
  const lineOf = (parts: Array<string | number>): number | undefined => {
    for (let n = parts.length; n > 0; n--) {
      const node = doc.getIn(parts.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === "object" && node.range) return lc.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const parsed = configSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) throw new ConfigError(zodProblems(parsed.error, abs, lineOf));
  const config = parsed.data;
  const base = path.dirname(abs);
  config.hub.dataDir = path.resolve(base, config.hub.dataDir);
  config.hub.controlSocket = path.resolve(base, config.hub.controlSocket ?? path.join(config.hub.dataDir, "control.sock"));
  config.hub.profilesDir = config.hub.profilesDir ? path.resolve(base, config.hub.profilesDir) : SHIPPED_PROFILES_DIR;
  return { config, file: abs, lineOf };
}

function zodProblems(err: z.ZodError, file: string, lineOf: LoadedConfig["lineOf"]): ConfigProblem[] {
  return err.issues.map((i) => {
    const parts = i.path.filter((k): k is string | number => typeof k !== "symbol");
    let message = i.message;
    if (i.code === "unrecognized_keys") message = `unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `'${k}'`).join(", ")}`;
    const field = i.code === "unrecognized_keys" && i.keys.length === 1 ? joinPath([...parts, i.keys[0]!]) : joinPath(parts);
    const line = lineOf(i.code === "unrecognized_keys" && i.keys.length === 1 ? [...parts, i.keys[0]!] : parts);
    return { file, line, field, message };
  });
}

const SAFETY_ROLES: ReadonlySet<Role> = new Set(["gas_detector", "co_detector", "valve"]);
export const MAX_SAFETY_POLL_MS = 1000;

/** Cross-checks between the configuration and the device profiles it names. */
export function checkAgainstProfiles(loaded: LoadedConfig, profiles: ReadonlyMap<string, Profile>): ConfigProblem[] {
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
  return out;
}
