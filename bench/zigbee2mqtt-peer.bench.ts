// Zigbee2MQTT peer (issue 14, "Baselines in the same run"): the same emulated Zigbee network driven by
// Zigbee2MQTT with the smallest rule a Home Assistant user would write, against anxin-hub on the same devices.
//   - The network: the Z-Stack ZNP coordinator emulator the tests use (test/support/znp/emulator.ts, in this
//     process, on a loopback TCP port; zigbee-herdsman's real zstack adapter connects to tcp://127.0.0.1:<port>)
//     with the virtual Heiman HS1CG gas detector and the Tuya ZN231392 genOnOff gas valve. Each side gets a
//     fresh emulator with the same two devices, forms its own network and pairs both devices (join, announce,
//     herdsman's interview with its real waits, the converters' configure).
//   - Peer: Zigbee2MQTT (npm package, pinned, installed at bench time into .tmp/z2m-<version>/) as a plain
//     `node index.js` child process, a private Mosquitto on a free port, and the rule "gas alarm → valve off" as
//     a separate plain-JS mqtt.js process: subscribed to zigbee2mqtt/<detector>, it publishes {"state":"OFF"} to
//     zigbee2mqtt/<valve>/set when `gas` turns true (what a Home Assistant automation does).
//   - anxin-hub: the real daemon (`anxin-hub run`), compiled with tsc into .tmp/z2m-peer-hub/ and run as plain
//     `node` like Zigbee2MQTT, with its gas rule (valve close; no siren is paired here). Headline with node's
//     defaults, as Zigbee2MQTT runs; a second run with the node flags of the shipped systemd unit.
// Measured on the emulator (performance.now() in this process): the IAS zone alarm frame written to the host →
// the AF.dataRequest carrying genOnOff "off" to the valve, p50/p99 over N alarms after a warm-up (the detector
// is cleared and the valve reopened between alarms). Every side is set up and paired first; the alarms then go
// round-robin, one per side in turn, so load changes on a shared machine fall on all sides alike. Memory of
// the Zigbee process from /proc/<pid>/status: VmRSS at rest (after pairing and a quiet period) and VmHWM (peak)
// at the end. The broker's and the rule process's memory are reported separately.
// Run: node --import tsx bench/zigbee2mqtt-peer.bench.ts
// BENCH_Z2M_ITER (200 measured alarms, after BENCH_Z2M_WARMUP 20), BENCH_Z2M_REST_S (15 s quiet before the
// at-rest figure), BENCH_Z2M_START_TIMEOUT_S (180: Zigbee2MQTT or the hub not up by then fails the bench),
// BENCH_Z2M_VERSION (2.14.1), BENCH_Z2M_SHIPPED=0 skips the hub run with the shipped unit's node flags.
import { fork, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { connect } from "mqtt";
import { callDaemon, streamDaemon } from "../gateway/src/control/client.js";
import { MOSQUITTO_BIN, mosquittoMissing, ownMosquitto } from "../test/support/mosquitto.js";
import { freePort } from "../test/support/relay-rig.js";
import { heimanGasHS1CG, tuyaGasValve } from "../test/support/zigbee/products.js";
import type { VirtualDevice } from "../test/support/zigbee/virtual-device.js";
import { ZnpEmulator } from "../test/support/znp/emulator.js";
import { quietHerdsman } from "../test/support/znp/herdsman-waits.js";
import { childPidByComm, describeMachine, loadNow, onCleanup, packageVersion } from "./peer-support.js";
import { pct, r2 } from "./support.js";
import { ensureZigbee2mqtt, procMem, writeRuleScript, writeZ2mConfiguration, type ProcMem, type Z2mInstall } from "./z2m-peer.js";

const ITER = Number(process.env.BENCH_Z2M_ITER ?? 200);
const WARMUP = Number(process.env.BENCH_Z2M_WARMUP ?? 20);
const REST_S = Number(process.env.BENCH_Z2M_REST_S ?? 15);
const START_TIMEOUT_MS = Number(process.env.BENCH_Z2M_START_TIMEOUT_S ?? 180) * 1000;
const PAIR_TIMEOUT_MS = 180_000;
const STEP_TIMEOUT_MS = 15_000;
const SHIPPED = process.env.BENCH_Z2M_SHIPPED !== "0";
const CHANNEL = 15;
const GAS_NAME = "kitchen-gas";
const VALVE_NAME = "gas-valve";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | undefined | false | null | Promise<T | undefined | false | null>, timeoutMs = STEP_TIMEOUT_MS, pollMs = 2): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

// ------------------------------------------------------------------------------------------- child processes

interface Kid {
  proc: ChildProcess;
  name: string;
  /** Last output lines (diagnostics). */
  output(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

/** Everything registered for cleanup, so a failed run undoes it too (onCleanup covers SIGINT/SIGTERM). */
const undo: Array<() => Promise<void>> = [];
function cleanup(fn: () => Promise<void> | void): () => Promise<void> {
  const run = onCleanup(fn);
  undo.push(run);
  return run;
}

const live = new Set<ChildProcess>();
// Whatever happens (an exception, process.exit), no child outlives the bench.
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

function track(name: string, proc: ChildProcess): Kid {
  live.add(proc);
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-6000);
  };
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  const gone = new Promise<void>((r) => proc.once("exit", () => r()));
  void gone.then(() => live.delete(proc));
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;
  const stop = cleanup(async () => {
    if (exited()) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    await gone;
    clearTimeout(timer);
  });
  return { proc, name, output: () => out, exited, stop };
}

// ------------------------------------------------------------------------------------------ the radio side

interface Radio {
  emulator: ZnpEmulator;
  gas: VirtualDevice;
  valve: VirtualDevice;
  close(): Promise<void>;
}

/** A fresh emulator with the two devices, its alarm frames time-stamped as they go to the host. */
async function radio(ieeeAddr: string): Promise<Radio & { lastAlarmAt(): number }> {
  const emulator = new ZnpEmulator({ ieeeAddr });
  await emulator.listen();
  const gas = emulator.addDevice(heimanGasHS1CG());
  const valve = emulator.addDevice(tuyaGasValve());
  let alarmAt = 0;
  const zclFromDevice = emulator.zclFromDevice.bind(emulator);
  emulator.zclFromDevice = (device, frame) => {
    // the IAS zone status change from the detector, just before its AF.incomingMsg is written to the host
    if (device === gas && frame.clusterId === 0x0500) alarmAt = performance.now();
    zclFromDevice(device, frame);
  };
  const close = cleanup(() => emulator.close());
  return { emulator, gas, valve, close, lastAlarmAt: () => alarmAt };
}

/** ZCL genOnOff "off": cluster-specific frame (not manufacturer-specific), command 0x00. */
function isOff(data: Buffer): boolean {
  return data.length >= 3 && (data[0]! & 0x07) === 0x01 && data[2] === 0x00;
}

interface Lat {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}
const stat = (xs: number[]): Lat => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: r2(pct(s, 50)), p90: r2(pct(s, 90)), p99: r2(pct(s, 99)), max: r2(s.at(-1) ?? NaN), mean: r2(s.reduce((a, b) => a + b, 0) / (s.length || 1)) };
};

/**
 * One alarm: alarm frame → valve off on the air (the figure); then the close, the clear and the reopen, each
 * waited for, so the next alarm starts from a quiet network, a clear detector and an open valve.
 */
async function oneAlarm(side: Side, i: number): Promise<number> {
  const r = side.radio;
  const from = r.emulator.dataRequests.length;
  await r.gas.zoneStatus(0b1); // alarm1: the HS1CG's gas alarm
  const at = r.lastAlarmAt();
  const off = await until(`${side.name}: valve off on the air (alarm ${i + 1})`, () =>
    r.emulator.dataRequests.slice(from).find((d) => d.nwk === r.valve.nwk && d.clusterId === 0x0006 && isOff(d.data)),
  );
  await until(`${side.name}: valve closed (alarm ${i + 1})`, () => !r.valve.onOff());
  await side.afterClose();
  await until(`${side.name}: valve open again (alarm ${i + 1})`, () => r.valve.onOff());
  await sleep(100); // the reopen's own traffic (the valve's report, its handling) settles before the next alarm
  return off.at - at;
}

/** A side set up and paired, ready for alarms. */
interface Side {
  name: string;
  runtime: string;
  radio: Radio & { lastAlarmAt(): number };
  pid: number | undefined;
  startMs: number;
  pairMs: number;
  afterStart: ProcMem;
  afterClose(): Promise<void>;
  stop(): Promise<void>;
  extra: Record<string, unknown>;
}

interface SideResult {
  side: string;
  runtime: string;
  startMs: number;
  pairMs: number;
  mem: { afterStart: ProcMem; atRest: ProcMem; afterAlarms: ProcMem };
  latency: Lat;
  coldMs: number;
  emulatorUnhandled: string[];
  extra?: Record<string, unknown>;
}

function randomNetwork() {
  return {
    panId: 1 + (randomBytes(2).readUInt16LE(0) % 0xfffd),
    extPanId: [...randomBytes(8)],
    networkKey: [...randomBytes(16)],
    channel: CHANNEL,
  };
}

const childEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS; // the children run as plain node, never with this process's loader
  return env;
};

// ------------------------------------------------------------------------------------------------ Zigbee2MQTT

async function zigbee2mqttSide(install: Z2mInstall, brokerUrl: string): Promise<Side> {
  const r = await radio("0x00124b00a1b2c3e1");
  const dataDir = mkdtempSync(join(tmpdir(), "anxin-z2m-peer-"));
  const removeDir = cleanup(() => rmSync(dataDir, { recursive: true, force: true }));
  writeZ2mConfiguration(dataDir, {
    serialPath: r.emulator.path,
    mqttUrl: brokerUrl,
    network: randomNetwork(),
    devices: { [r.gas.ieee]: GAS_NAME, [r.valve.ieee]: VALVE_NAME },
  });
  // The bench's own view of the bridge (start, pairing) and its hand on the valve between alarms.
  const mq = connect(brokerUrl, { clientId: "bench-observer", clean: true, reconnectPeriod: 0 });
  const closeMq = cleanup(() => mq.endAsync(true));
  let online = false;
  const interviews = new Map<string, string>();
  const responses: string[] = [];
  mq.on("message", (topic, payload) => {
    const text = payload.toString();
    if (topic === "zigbee2mqtt/bridge/state") online = text === "online" || (JSON.parse(text) as { state?: string }).state === "online";
    if (topic.startsWith("zigbee2mqtt/bridge/response/")) responses.push(`${topic}: ${text}`);
    if (topic === "zigbee2mqtt/bridge/event") {
      const e = JSON.parse(text) as { type?: string; data?: { ieee_address?: string; status?: string } };
      if (e.type === "device_interview" && e.data?.ieee_address) interviews.set(e.data.ieee_address, e.data.status ?? "?");
    }
  });
  await new Promise<void>((resolve, reject) => {
    mq.once("error", reject);
    mq.once("connect", () => void mq.subscribeAsync(["zigbee2mqtt/bridge/state", "zigbee2mqtt/bridge/event", "zigbee2mqtt/bridge/response/#"], { qos: 0 }).then(() => resolve(), reject));
  });

  // cwd outside any git work tree: Zigbee2MQTT's index.js compares `git rev-parse HEAD` with its dist hash and
  // would try to rebuild itself inside ours.
  const t0 = performance.now();
  const z2m = track(
    "zigbee2mqtt",
    spawn(process.execPath, [install.entry], { cwd: dataDir, env: childEnv({ ZIGBEE2MQTT_DATA: dataDir, Z2M_ONBOARD_NO_SERVER: "1" }), stdio: ["ignore", "pipe", "pipe"] }),
  );
  try {
    await until(
      "Zigbee2MQTT to come up (bridge/state online)",
      () => {
        if (z2m.exited()) throw new Error(`Zigbee2MQTT exited (${z2m.proc.exitCode ?? z2m.proc.signalCode}) before it came up`);
        return online;
      },
      START_TIMEOUT_MS,
      20,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}; emulator unhandled: ${JSON.stringify(r.emulator.unhandled)}; its output:\n${z2m.output()}`);
  }
  const startMs = performance.now() - t0;
  const afterStart = procMem(z2m.proc.pid);
  console.log(`zigbee2mqtt: up in ${Math.round(startMs)} ms (fresh network), RSS ${afterStart.rssMB} MB`);

  // Pairing as a user does it: permit join over MQTT, the devices join, Zigbee2MQTT interviews and configures them.
  const tp = performance.now();
  // bridge/state goes online before the bridge extension subscribes to its requests: ask until it answers
  await until(
    "Zigbee2MQTT to answer permit_join",
    async () => {
      if (responses.some((x) => x.startsWith("zigbee2mqtt/bridge/response/permit_join"))) return true;
      await mq.publishAsync("zigbee2mqtt/bridge/request/permit_join", JSON.stringify({ time: 254 }));
      await sleep(500);
      return responses.some((x) => x.startsWith("zigbee2mqtt/bridge/response/permit_join"));
    },
    STEP_TIMEOUT_MS,
    0,
  );
  await until("the coordinator to permit joining", () => r.emulator.permitsJoin(), STEP_TIMEOUT_MS, 10).catch((e: Error) => {
    throw new Error(`${e.message}; last MT commands: ${r.emulator.commands(Math.max(0, r.emulator.trace.length - 12)).join(", ")}; responses: ${responses.join(" | ")}; output:\n${z2m.output()}`);
  });
  const interviewed = async (d: VirtualDevice) => {
    await d.join();
    const status = await until(`Zigbee2MQTT's interview of ${d.product}`, () => (interviews.get(d.ieee) ?? "started") !== "started" && interviews.get(d.ieee), PAIR_TIMEOUT_MS, 20);
    if (status !== "successful") throw new Error(`Zigbee2MQTT's interview of ${d.product}: ${status}; output:\n${z2m.output()}`);
  };
  await interviewed(r.gas);
  await interviewed(r.valve);
  // The valve's definition has a configure step (Tuya magic packet, reads); done when herdsman's database says so.
  const database = join(dataDir, "database.db");
  const configured = await until(
    "Zigbee2MQTT to configure the valve",
    () => {
      if (!existsSync(database)) return false;
      return readFileSync(database, "utf8")
        .split("\n")
        .some((l) => l.includes(r.valve.ieee) && /"configured":/.test(l));
    },
    60_000,
    50,
  ).catch(() => false);
  await mq.publishAsync("zigbee2mqtt/bridge/request/permit_join", JSON.stringify({ time: 0 }));
  const pairMs = performance.now() - tp;
  console.log(`zigbee2mqtt: both devices interviewed${configured ? ", valve configured" : " (valve configure not seen within 60 s)"} in ${Math.round(pairMs)} ms`);

  // The rule, as its own process.
  const rulePath = writeRuleScript(dataDir);
  let ruleGas: boolean | null = null;
  const rule = track(
    "gas rule",
    fork(rulePath, [brokerUrl, `zigbee2mqtt/${GAS_NAME}`, `zigbee2mqtt/${VALVE_NAME}/set`], {
      execArgv: [],
      env: childEnv({ RULE_MQTT_MODULE: install.mqttModule }),
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the rule process did not subscribe: ${rule.output()}`)), STEP_TIMEOUT_MS);
    rule.proc.on("message", (m: { t: string; error?: string | null; gas?: boolean }) => {
      if (m.t === "gas") ruleGas = m.gas ?? null;
      if (m.t === "ready" || m.t === "error") {
        clearTimeout(timer);
        if (m.error) reject(new Error(`rule process: ${m.error}`));
        else resolve();
      }
    });
  });

  return {
    name: "zigbee2mqtt",
    runtime: `node ${process.version} (no flags), zigbee2mqtt ${install.versions.zigbee2mqtt}`,
    radio: r,
    pid: z2m.proc.pid,
    startMs: Math.round(startMs),
    pairMs: Math.round(pairMs),
    afterStart,
    afterClose: async () => {
      await until("the rule to see gas: true", () => ruleGas === true);
      await r.gas.zoneStatus(0);
      await until("the rule to see gas: false", () => ruleGas === false);
      await mq.publishAsync(`zigbee2mqtt/${VALVE_NAME}/set`, JSON.stringify({ state: "ON" }));
    },
    stop: async () => {
      await rule.stop();
      await z2m.stop();
      await closeMq();
      await r.close();
      await removeDir();
    },
    extra: { valveConfigured: configured, rulePid: rule.proc.pid },
  };
}

// ----------------------------------------------------------------------------------------------- anxin-hub

/** The node flags the systemd unit starts the daemon with (between the node binary and the script). */
function shippedNodeFlags(): string[] {
  const unit = readFileSync(join(root, "systemd", "anxin-hub.service"), "utf8");
  const exec = /^ExecStart=\S+\s+(.*)$/m.exec(unit)?.[1] ?? "";
  return exec.split(/\s+/).filter((w, i, all) => w.startsWith("--") && all.slice(0, i).every((x) => x.startsWith("--")));
}

/** The project compiled with tsc (as the daemon ships, plain JS), into .tmp/z2m-peer-hub/. */
function compileHub(): string {
  const out = join(root, ".tmp", "z2m-peer-hub");
  const main = join(out, "gateway", "src", "cli", "main.js");
  console.log(`compiling the project into ${out} (tsc) ...`);
  rmSync(main, { force: true });
  const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.test.json"), "--noEmit", "false", "--sourceMap", "false", "--outDir", out], {
    stdio: "ignore",
    env: childEnv({}),
  });
  if (!existsSync(main)) throw new Error(`tsc produced no ${main} (exit ${tsc.status})`);
  return main;
}

async function hubSide(main: string, flags: string[], ieeeAddr: string): Promise<Side> {
  const r = await radio(ieeeAddr);
  const dir = mkdtempSync(join(tmpdir(), "anxin-hub-peer-"));
  const removeDir = cleanup(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, "control.sock");
  const config = join(dir, "hub.yaml");
  writeFileSync(
    config,
    `hub: { id: bench-hub, dataDir: ./data, controlSocket: ${JSON.stringify(socket)}, profilesDir: ${JSON.stringify(join(root, "device-profiles"))} }
log: { level: warn }
rules:
  gas: { clearHoldMs: 0 }
zigbee:
  adapter: zstack
  path: "${r.emulator.path}"
  channel: ${CHANNEL}
  devices:
    - { ieee: "${r.gas.ieee}", id: ${GAS_NAME}, room: kitchen }
    - { ieee: "${r.valve.ieee}", id: ${VALVE_NAME}, room: kitchen, ratedCloseMs: 3000 }
`,
  );
  const t0 = performance.now();
  const hub = track("anxin-hub", spawn(process.execPath, [...flags, main, "run", "--config", config], { cwd: dir, env: childEnv({}), stdio: ["ignore", "pipe", "pipe"] }));
  try {
    await until(
      "anxin-hub to come up (status: zigbee up)",
      async () => {
        if (hub.exited()) throw new Error(`anxin-hub exited (${hub.proc.exitCode ?? hub.proc.signalCode}) before it came up`);
        if (!existsSync(socket)) return false;
        // up: the daemon answers and its coordinator runs (the hub starts the Zigbee stack in the background)
        const s = await callDaemon(socket, { cmd: "status" }, 2000).catch(() => null);
        return s?.ok === true && (s.result as { zigbee?: { state?: string } }).zigbee?.state === "up";
      },
      START_TIMEOUT_MS,
      20,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}; emulator unhandled: ${JSON.stringify(r.emulator.unhandled)}; its output:\n${hub.output()}`);
  }
  const startMs = performance.now() - t0;
  const afterStart = procMem(hub.proc.pid);
  console.log(`anxin-hub (${flags.join(" ") || "no flags"}): up in ${Math.round(startMs)} ms (fresh network), RSS ${afterStart.rssMB} MB`);

  const tp = performance.now();
  let joined = false;
  const pairing = await streamDaemon(
    socket,
    { cmd: "pair", seconds: 254, expect: [r.gas.ieee, r.valve.ieee] },
    (p) => {
      if ((p as { event?: string }).event === "open" && !joined) {
        joined = true;
        void r.gas.join().then(() => r.valve.join());
      }
    },
    PAIR_TIMEOUT_MS,
  );
  if (!pairing.ok) throw new Error(`anxin-hub pairing failed: ${JSON.stringify(pairing)}; output:\n${hub.output()}`);
  const outcomes = (pairing.result as { devices: Array<{ ieee: string; outcome: string; model: string }> }).devices;
  if (outcomes.filter((d) => d.outcome === "paired").length !== 2) throw new Error(`anxin-hub pairing: ${JSON.stringify(outcomes)}`);
  const pairMs = performance.now() - tp;
  console.log(`anxin-hub: both devices paired (${outcomes.map((d) => d.model).join(", ")}) in ${Math.round(pairMs)} ms`);

  type Status = { valves: Array<{ id: string; verifiedAt: number | null }> };
  return {
    name: flags.length ? "anxin-hub (shipped unit flags)" : "anxin-hub",
    runtime: `node ${process.version} ${flags.join(" ") || "(no flags)"}, compiled JS (tsc)`,
    radio: r,
    pid: hub.proc.pid,
    startMs: Math.round(startMs),
    pairMs: Math.round(pairMs),
    afterStart,
    // the close verified from the valve's own report, then the clear, then the on-site reopen (refused while an alarm holds)
    afterClose: async () => {
      await until(
        "the hub to verify the close",
        async () => {
          const s = await callDaemon(socket, { cmd: "status" });
          return (s.ok ? (s.result as Status).valves.find((x) => x.id === VALVE_NAME) : undefined)?.verifiedAt != null;
        },
        STEP_TIMEOUT_MS,
        5,
      );
      await r.gas.zoneStatus(0);
      await until("the hub to accept the reopen", async () => (await callDaemon(socket, { cmd: "valve_reopen", by: "bench", osUser: "bench" })).ok, STEP_TIMEOUT_MS, 10);
    },
    stop: async () => {
      await hub.stop();
      await r.close();
      await removeDir();
    },
    extra: { flags },
  };
}

// ------------------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const started = performance.now();
  quietHerdsman(); // the emulator frames MT with herdsman's own parser, which logs every frame otherwise
  const machine = describeMachine();
  const install = ensureZigbee2mqtt(root);
  const hubMain = compileHub();

  // the private broker: Mosquitto on a free port, or an aedes broker in this process when Mosquitto is absent
  let brokerUrl: string;
  let brokerName: string;
  let brokerPid: number | undefined;
  let stopBroker: () => Promise<void>;
  if (!mosquittoMissing()) {
    const broker = await ownMosquitto();
    stopBroker = cleanup(() => broker.close());
    brokerUrl = broker.url;
    const mq = spawnSync(MOSQUITTO_BIN, ["-h"], { encoding: "utf8" });
    brokerName = `${mq.stdout ?? ""}${mq.stderr ?? ""}`.split("\n")[0]?.trim() || "mosquitto";
    brokerPid = childPidByComm("mosquitto");
  } else {
    const { Aedes } = await import("aedes");
    const { createServer } = await import("node:net");
    const aedes = await Aedes.createBroker();
    const server = createServer((s) => aedes.handle(s));
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    stopBroker = cleanup(async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => aedes.close(() => r()));
    });
    brokerUrl = `mqtt://127.0.0.1:${port}`;
    brokerName = `aedes ${packageVersion("aedes")} (in the bench process; ${MOSQUITTO_BIN} not found)`;
  }
  const versions = {
    ...install.versions,
    anxinHub: (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version,
    anxinZigbeeHerdsman: packageVersion("zigbee-herdsman"),
    anxinZigbeeHerdsmanConverters: packageVersion("zigbee-herdsman-converters"),
    broker: brokerName,
    node: process.version,
  };
  console.log(`versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join("; ")}`);
  console.log(`zigbee2mqtt ${install.installed === "now" ? `installed in ${install.installSeconds} s` : "from the cache"}: ${install.dir}`);
  console.log(`${ITER} alarms measured after ${WARMUP} warm-up ones per side; ${REST_S} s quiet before the at-rest memory`);

  try {
    // All sides set up and paired first, then the alarms go round-robin (one per side in turn, the order
    // rotating), so a change in the machine's load during the run falls on every side alike.
    const peerSide = await zigbee2mqttSide(install, brokerUrl);
    const hubSideDefault = await hubSide(hubMain, [], "0x00124b00a1b2c3e2");
    const shippedFlags = shippedNodeFlags();
    const hubSideShipped = SHIPPED && shippedFlags.length > 0 ? await hubSide(hubMain, shippedFlags, "0x00124b00a1b2c3e3") : null;
    const sides = [peerSide, hubSideDefault, ...(hubSideShipped ? [hubSideShipped] : [])];
    console.log(`all sides paired; ${REST_S} s quiet, then ${ITER + WARMUP} alarms per side, interleaved`);
    await sleep(REST_S * 1000);
    const atRest = new Map(sides.map((x) => [x, procMem(x.pid)]));
    const lat = new Map(sides.map((x) => [x, [] as number[]]));
    const cold = new Map<Side, number>();
    const tAlarms = performance.now();
    for (let i = 0; i < ITER + WARMUP; i++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(i + k) % sides.length]!;
        const ms = await oneAlarm(side, i);
        if (i === 0) cold.set(side, r2(ms));
        if (i >= WARMUP) lat.get(side)!.push(ms);
      }
    }
    const alarmsS = Math.round((performance.now() - tAlarms) / 1000);
    const results = new Map<Side, SideResult>();
    for (const x of sides) {
      results.set(x, {
        side: x.name,
        runtime: x.runtime,
        startMs: x.startMs,
        pairMs: x.pairMs,
        mem: { afterStart: x.afterStart, atRest: atRest.get(x)!, afterAlarms: procMem(x.pid) },
        latency: stat(lat.get(x)!),
        coldMs: cold.get(x) ?? NaN,
        emulatorUnhandled: [...x.radio.emulator.unhandled],
        extra: x.extra,
      });
    }
    const ruleMem = procMem(peerSide.extra.rulePid as number | undefined);
    const brokerMem = procMem(brokerPid);
    for (const x of [...sides].reverse()) await x.stop();
    const peer = results.get(peerSide)!;
    const hub = results.get(hubSideDefault)!;
    const hubShipped = hubSideShipped ? results.get(hubSideShipped)! : null;
    machine.loadEnd = loadNow();

    const ratio = (a: number, b: number) => r2(a / b);
    const rows: Array<[string, number, number, number | null]> = [
      ["alarm frame → valve off, p50 (ms)", hub.latency.p50, peer.latency.p50, hubShipped?.latency.p50 ?? null],
      ["alarm frame → valve off, p99 (ms)", hub.latency.p99, peer.latency.p99, hubShipped?.latency.p99 ?? null],
      ["RSS peak, VmHWM (MB)", hub.mem.afterAlarms.hwmMB, peer.mem.afterAlarms.hwmMB, hubShipped?.mem.afterAlarms.hwmMB ?? null],
      ["RSS at rest, VmRSS after pairing (MB)", hub.mem.atRest.rssMB, peer.mem.atRest.rssMB, hubShipped?.mem.atRest.rssMB ?? null],
      ["RSS after the alarms, VmRSS (MB)", hub.mem.afterAlarms.rssMB, peer.mem.afterAlarms.rssMB, hubShipped?.mem.afterAlarms.rssMB ?? null],
    ];
    console.log("");
    console.log(`| measure | anxin-hub | Zigbee2MQTT + rule | ratio (anxin ÷ peer) |${hubShipped ? ` anxin-hub, shipped unit flags (${shippedFlags.join(" ")}) | ratio |` : ""}`);
    console.log(`| --- | --- | --- | --- |${hubShipped ? " --- | --- |" : ""}`);
    for (const [name, a, p, s] of rows) console.log(`| ${name} | ${a} | ${p} | ${ratio(a, p)} |${s !== null ? ` ${s} | ${ratio(s, p)} |` : ""}`);
    console.log("");
    for (const s of [hub, peer, ...(hubShipped ? [hubShipped] : [])]) {
      console.log(
        `${s.side} [${s.runtime}]: start ${s.startMs} ms, pairing ${s.pairMs} ms, first alarm ${s.coldMs} ms; latency n ${s.latency.n}, p90 ${s.latency.p90}, max ${s.latency.max}, mean ${s.latency.mean} ms; ` +
          `RSS after start ${s.mem.afterStart.rssMB} MB${s.emulatorUnhandled.length ? `; emulator unhandled: ${s.emulatorUnhandled.join(", ")}` : ""}`,
      );
    }
    console.log(`peer's other processes: rule (mqtt.js) RSS ${ruleMem.rssMB} MB, peak ${ruleMem.hwmMB} MB; broker ${brokerPid ? `RSS ${brokerMem.rssMB} MB, peak ${brokerMem.hwmMB} MB` : "in this process"}`);
    console.log(`load average: ${machine.loadStart.join(" ")} at start, ${machine.loadEnd.join(" ")} at end; alarms ${alarmsS} s, ${Math.round((performance.now() - started) / 1000)} s in all`);
    const wins = hub.latency.p50 < peer.latency.p50 && hub.latency.p99 < peer.latency.p99 && hub.mem.afterAlarms.hwmMB < peer.mem.afterAlarms.hwmMB && hub.mem.atRest.rssMB < peer.mem.atRest.rssMB;
    console.log(`anxin-hub ${wins ? "wins" : "does NOT win"} on latency (p50, p99) and memory (peak, at rest)`);
    console.log(
      JSON.stringify({
        bench: "zigbee2mqtt-peer",
        machine,
        versions,
        iterations: ITER,
        warmup: WARMUP,
        restS: REST_S,
        measure:
          "emulator: IAS zone alarm frame (AF.incomingMsg) written to the host → AF.dataRequest genOnOff off to the valve received; memory of the Zigbee process (/proc VmRSS, VmHWM)",
        anxinHub: hub,
        zigbee2mqtt: peer,
        anxinHubShippedFlags: hubShipped,
        rule: { process: "plain node, mqtt.js (zigbee2mqtt's copy)", mem: ruleMem },
        broker: { name: brokerName, mem: brokerPid ? brokerMem : null },
        ratios: {
          p50: ratio(hub.latency.p50, peer.latency.p50),
          p99: ratio(hub.latency.p99, peer.latency.p99),
          rssPeak: ratio(hub.mem.afterAlarms.hwmMB, peer.mem.afterAlarms.hwmMB),
          rssAtRest: ratio(hub.mem.atRest.rssMB, peer.mem.atRest.rssMB),
        },
        anxinWins: wins,
        seconds: Math.round((performance.now() - started) / 1000),
      }),
    );
  } finally {
    await stopBroker();
  }
}

main().then(
  () => process.exit(0),
  async (e: unknown) => {
    console.error(`zigbee2mqtt-peer: ${e instanceof Error ? e.message : String(e)}`);
    for (const run of undo.reverse()) await Promise.resolve(run()).catch(() => {});
    process.exit(1);
  },
);
