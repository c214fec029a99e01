// What bench/zigbee2mqtt-peer.bench.ts needs around the peer itself: Zigbee2MQTT installed at bench time into a
// cache folder outside the project's dependencies, its configuration, the Home Assistant style rule as a tiny
// plain-JS MQTT client process, and the memory of a process from /proc.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The Zigbee2MQTT release the peer runs (override: BENCH_Z2M_VERSION). */
export const Z2M_VERSION = process.env.BENCH_Z2M_VERSION ?? "2.14.1";

function versionIn(dir: string, name: string): string {
  try {
    return (JSON.parse(readFileSync(join(dir, "node_modules", name, "package.json"), "utf8")) as { version?: string }).version ?? "?";
  } catch {
    return "?";
  }
}

export interface Z2mInstall {
  dir: string;
  /** node_modules/zigbee2mqtt/index.js */
  entry: string;
  /** mqtt.js as installed with Zigbee2MQTT (the rule client uses it, as a separate program would). */
  mqttModule: string;
  installed: "cached" | "now";
  installSeconds: number;
  versions: { zigbee2mqtt: string; zigbeeHerdsman: string; zigbeeHerdsmanConverters: string; mqttJs: string };
}

/**
 * Zigbee2MQTT `version` in `<root>/.tmp/z2m-<version>/` (git-ignored), installed with npm on first use
 * (exact version, no audit, no funding notice), reused afterwards.
 */
export function ensureZigbee2mqtt(root: string, version = Z2M_VERSION): Z2mInstall {
  const dir = join(root, ".tmp", `z2m-${version}`);
  const entry = join(dir, "node_modules", "zigbee2mqtt", "index.js");
  let installed: Z2mInstall["installed"] = "cached";
  const t0 = Date.now();
  if (!existsSync(entry) || versionIn(dir, "zigbee2mqtt") !== version) {
    mkdirSync(dir, { recursive: true });
    console.log(`installing zigbee2mqtt@${version} into ${dir} (npm) ...`);
    const npm = process.platform === "win32" ? "npm.cmd" : "npm";
    const r = spawnSync(npm, ["install", "--prefix", dir, "--no-audit", "--no-fund", "--save-exact", "--loglevel=error", `zigbee2mqtt@${version}`], {
      stdio: ["ignore", "inherit", "inherit"],
      timeout: 600_000,
    });
    if (r.status !== 0 || !existsSync(entry)) throw new Error(`npm install zigbee2mqtt@${version} failed (exit ${r.status ?? r.signal ?? r.error?.message})`);
    installed = "now";
  }
  return {
    dir,
    entry,
    mqttModule: join(dir, "node_modules", "mqtt"),
    installed,
    installSeconds: Math.round((Date.now() - t0) / 100) / 10,
    versions: {
      zigbee2mqtt: versionIn(dir, "zigbee2mqtt"),
      zigbeeHerdsman: versionIn(dir, "zigbee-herdsman"),
      zigbeeHerdsmanConverters: versionIn(dir, "zigbee-herdsman-converters"),
      mqttJs: versionIn(dir, "mqtt"),
    },
  };
}

export interface Z2mNetwork {
  panId: number;
  extPanId: number[];
  networkKey: number[];
  channel: number;
}

/** configuration.yaml (JSON is YAML): the coordinator, the broker, nothing extra running, the two devices named. */
export function writeZ2mConfiguration(dataDir: string, o: { serialPath: string; mqttUrl: string; network: Z2mNetwork; devices: Record<string, string> }): void {
  const config = {
    version: 5,
    homeassistant: { enabled: false },
    frontend: { enabled: false },
    availability: { enabled: false },
    mqtt: { base_topic: "zigbee2mqtt", server: o.mqttUrl, client_id: "zigbee2mqtt-peer" },
    serial: { port: o.serialPath, adapter: "zstack", disable_led: false },
    ota: { disable_automatic_update_check: true },
    advanced: {
      log_level: "warning",
      log_output: ["console"],
      channel: o.network.channel,
      pan_id: o.network.panId,
      ext_pan_id: o.network.extPanId,
      network_key: o.network.networkKey,
    },
    devices: Object.fromEntries(Object.entries(o.devices).map(([ieee, name]) => [ieee, { friendly_name: name }])),
  };
  writeFileSync(join(dataDir, "configuration.yaml"), `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * The smallest rule a Home Assistant user would write, "gas alarm → valve off", as its own plain node process
 * (CommonJS, mqtt.js): subscribed to the detector's topic; when `gas` turns true it publishes {"state":"OFF"}
 * to the valve's set topic, as an automation with a state trigger does. It tells the bench over IPC when it
 * is subscribed and when it saw the gas state change (after it acted, so off the measured path).
 */
export function writeRuleScript(dir: string): string {
  const file = join(dir, "gas-rule.cjs");
  writeFileSync(
    file,
    `"use strict";
const mqtt = require(process.env.RULE_MQTT_MODULE);
const [url, gasTopic, valveSetTopic] = process.argv.slice(2);
const client = mqtt.connect(url, { clientId: "ha-gas-rule", clean: true, reconnectPeriod: 0 });
let gas = null;
client.on("error", (err) => { process.send({ t: "error", error: String(err) }); });
client.on("connect", () => client.subscribe(gasTopic, { qos: 0 }, (err) => process.send({ t: "ready", error: err ? String(err) : null })));
client.on("message", (_topic, payload) => {
  let state;
  try { state = JSON.parse(payload.toString()); } catch { return; }
  if (typeof state.gas !== "boolean") return;
  if (state.gas && gas !== true) client.publish(valveSetTopic, JSON.stringify({ state: "OFF" }));
  if (state.gas !== gas) { gas = state.gas; process.send({ t: "gas", gas }); }
});
process.on("disconnect", () => process.exit(0));
`,
  );
  return file;
}

export interface ProcMem {
  /** VmRSS, MB */
  rssMB: number;
  /** VmHWM (peak resident set), MB */
  hwmMB: number;
}

/** VmRSS and VmHWM of `pid` from /proc (NaN when gone or not Linux). */
export function procMem(pid: number | undefined): ProcMem {
  const out = { rssMB: NaN, hwmMB: NaN };
  if (!pid) return out;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    out.rssMB = Math.round((kb("VmRSS") / 1024) * 100) / 100;
    out.hwmMB = Math.round((kb("VmHWM") / 1024) * 100) / 100;
  } catch {
    // gone
  }
  return out;
}

