// Zigbee benchmark: (1) hub start to ready with the Zigbee stack loaded and the hub's resident memory, at
// ready, after pairing and once pairing's converter files are released; (2) the hub's CPU while idle with
// eight Zigbee devices paired; (3) a Zigbee gas alarm frame arriving at the coordinator adapter → the valve
// close and the siren start frames handed to the adapter (hub processing: herdsman's frame parsing, the
// converters' decode, the gas rule, the actuators, the converters' encode). Targets: RSS ≤ 120 MB and idle
// CPU ≤ 1 % with Zigbee loaded; start to ready ≤ 5 s plus the coordinator's own start. Radio time is not
// included (see docs/benchmarks.md).
// Run: node --import tsx bench/zigbee.bench.ts   (ZB_ITER=300 alarms, ZB_IDLE_S=30 idle seconds after
// ZB_SETTLE_S=10 settling ones by default;
// ZB_EXTRA_FLAGS="--max-semi-space-size=2" adds a third run with those node flags; ZB_VARIANTS="--a --b;--c"
// adds one run per ;-separated set, where NAME=value words are set in that child's environment (the shipped
// run takes the unit's MALLOC_* Environment= settings that way);
// ZB_NO_DEFAULTS=1 leaves out the run with node's defaults; ZB_IDLE_PROFILE=file.cpuprofile profiles the idle period;
// ZB_ZIGBEE_ONLY=1 leaves out the RS-485 detector polled every second; ZB_RS485_LINE=pty|sim chooses its line,
// see RS485 below)
//
// Memory and start time under tsx would include the TypeScript loader, so the script first compiles the
// project with tsc into .tmp/zigbee-bench/ and measures there, in plain `node` child processes, as the
// daemon runs on a hub (ZB_INPROCESS=1 measures under tsx instead). The children run one after the other in
// one invocation, with the node flags of the shipped systemd unit and with node's defaults, so their
// figures compare on the same machine under the same load.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { machineInfo, pct, r2 } from "./support.js";

const scriptStart = performance.now();
const loadStart = loadavg().map(r2);
const here = dirname(fileURLToPath(import.meta.url));
const compiled = here.includes(`${join(".tmp", "zigbee-bench")}`);
const root = compiled ? resolve(here, "../../..") : resolve(here, "..");

/** The node flags the systemd unit starts the daemon with (between the node binary and the script). */
function shippedNodeFlags(): string[] {
  const unit = readFileSync(join(root, "systemd", "anxin-hub.service"), "utf8");
  const exec = /^ExecStart=\S+\s+(.*)$/m.exec(unit)?.[1] ?? "";
  return exec.split(/\s+/).filter((w, i, all) => w.startsWith("--") && all.slice(0, i).every((x) => x.startsWith("--")));
}

/** The unit's Environment= settings that shape the process's memory (glibc's malloc), as NAME=value words. */
function shippedEnv(): string[] {
  const unit = readFileSync(join(root, "systemd", "anxin-hub.service"), "utf8");
  return [...unit.matchAll(/^Environment=(MALLOC_\w+=\S+)$/gm)].map((m) => m[1]!);
}

if (!compiled && !process.env.ZB_INPROCESS) {
  const out = join(root, ".tmp", "zigbee-bench");
  console.log(`compiling the project into ${out} (tsc) ...`);
  const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.test.json"), "--noEmit", "false", "--sourceMap", "false", "--outDir", out], { stdio: "ignore" });
  const js = join(out, "bench", "zigbee.bench.js");
  if (!existsSync(js)) throw new Error(`tsc produced no ${js} (exit ${tsc.status})`);
  const variants: Array<{ name: string; flags: string[] }> = [{ name: "shipped unit", flags: [...shippedNodeFlags(), ...shippedEnv()] }];
  if (!process.env.ZB_NO_DEFAULTS) variants.push({ name: "node defaults", flags: [] });
  if (process.env.ZB_EXTRA_FLAGS) variants.push({ name: "extra", flags: process.env.ZB_EXTRA_FLAGS.split(/\s+/).filter(Boolean) });
  for (const set of (process.env.ZB_VARIANTS ?? "").split(";").filter((x) => x.trim()))
    variants.push({ name: "variant", flags: set.split(/\s+/).filter(Boolean) });
  const results: Array<{ name: string; flags: string[]; r: Result }> = [];
  for (const v of variants) {
    console.log(`\n== ${v.name}: node ${v.flags.join(" ") || "(no flags)"}`);
    const env = { ...process.env, ...Object.fromEntries(v.flags.filter((f) => /^[A-Z_][A-Z0-9_]*=/.test(f)).map((f) => [f.slice(0, f.indexOf("=")), f.slice(f.indexOf("=") + 1)])) };
    const nodeFlags = v.flags.filter((f) => !/^[A-Z_][A-Z0-9_]*=/.test(f));
    const child = spawnSync(process.execPath, [...nodeFlags, js], { stdio: ["ignore", "pipe", "inherit"], env, encoding: "utf8" });
    process.stdout.write(child.stdout);
    if (child.status !== 0) process.exit(child.status ?? 1);
    const last = child.stdout.trim().split("\n").at(-1)!;
    results.push({ ...v, r: JSON.parse(last) as Result });
  }
  console.log("\n| node flags | RSS ready / paired / released + idle / after alarms (MB) | peak (VmHWM, MB) | V8 heap used, same points (MB) | CPU % settling / idle | valve off p50 / p99 (ms) | load + startHub (ms) |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const { flags, r } of results) {
    const m = r.rssMB;
    console.log(`| ${flags.map((f) => `\`${f}\``).join(" ") || "none"} | ${m.afterStart} / ${m.afterPairing} / ${m.afterIdle} / ${m.afterPairingAndRun} | ${m.peak} | ${Object.values(r.heapUsedMB).join(" / ")} | ${r.settling.cpuPct} / ${r.idle.cpuPct} | ${r.alarmToValveCloseMs.p50} / ${r.alarmToValveCloseMs.p99} | ${r.start.moduleLoadMs} + ${r.start.startHubMs} |`);
  }
  process.exit(0);
}

const ITER = Number(process.env.ZB_ITER ?? 300);
const IDLE_S = Number(process.env.ZB_IDLE_S ?? 30);
const SETTLE_S = Number(process.env.ZB_SETTLE_S ?? 10);
const WARMUP = 20;
const MB = 2 ** 20;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

const rssAtBoot = process.memoryUsage().rss;
// Loading the daemon's modules (herdsman and the converters among them) is part of a real start.
const tLoad0 = performance.now();
const { startHub } = await import("../gateway/src/daemon/run.js");
const { createLogger } = await import("../lib/daemon/logger.js");
const { streamDaemon } = await import("../gateway/src/control/client.js");
const { vendorModulesLoaded, VENDOR_RELEASE_AFTER_MS } = await import("../gateway/src/transports/zigbee/definitions.js");
const loadMs = performance.now() - tLoad0;
const { installFakeZigbee } = await import("../test/support/zigbee/rig.js");
const products = await import("../test/support/zigbee/products.js");

const devices = {
  gas: products.heimanGasHS3CG(),
  smoke: products.heimanSmokeHS1SA(),
  co: products.heimanCoHS1CAE(),
  sos: products.heimanSosHS1EB(),
  siren: products.heimanSirenHS2WDE(),
  valve: products.tuyaGasValve(),
  fall: products.tuyaFallRadar(),
  presence: products.tuyaPresenceZYM100(),
};
const rig = installFakeZigbee({ devices: Object.values(devices) });
/**
 * One RS-485 gas detector polled every second, unless ZB_ZIGBEE_ONLY=1 (a Zigbee-only home). ZB_RS485_LINE:
 * `pty` (the default where Debian's pymodbus and socat are installed) puts it on a real serial line, a PTY
 * pair to pymodbus in its own process, so the hub pays what a real line costs it (serialport's reads,
 * modbus-serial) and nothing else; `sim` uses the hub's built-in simulated line, whose device and byte
 * timing run inside the hub's process and are counted as the hub's.
 */
const ZIGBEE_ONLY = process.env.ZB_ZIGBEE_ONLY === "1";
const wantedLine = ZIGBEE_ONLY ? null : (process.env.ZB_RS485_LINE || "auto");
if (wantedLine !== null && !["pty", "sim", "auto"].includes(wantedLine)) throw new Error(`ZB_RS485_LINE must be pty or sim, not ${wantedLine}`);
// The Modbus bench helper only when a PTY line may be used: whatever this process loads counts as the hub's memory.
const modbusBenchLib = wantedLine === "pty" || wantedLine === "auto" ? await import("../test/support/modbus-bench.js") : null;
const RS485_LINE = wantedLine === "auto" ? (modbusBenchLib!.benchAvailable().ok ? "pty" : "sim") : wantedLine;
if (RS485_LINE === "pty" && compiled) cpSync(join(root, "test", "bench"), join(here, "..", "test", "bench"), { recursive: true }); // the slave's Python scripts, beside the compiled helper
const modbusBench = RS485_LINE === "pty" ? await modbusBenchLib!.startBench({ devices: { lel: 2 } }) : null;
const RS485 = `buses:
  - { name: line1, path: ${JSON.stringify(modbusBench?.path ?? "sim")} }
devices:
  - { id: rs-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen }
`;
const dir = mkdtempSync(join(tmpdir(), "anxin-zb-bench-"));
const config = join(dir, "hub.yaml");
writeFileSync(
  config,
  `hub: { id: bench-hub, dataDir: ./data, profilesDir: ${JSON.stringify(join(root, "device-profiles"))} }
${ZIGBEE_ONLY ? "" : RS485}rules:
  gas: { clearHoldMs: 0 }
zigbee:
  adapter: zstack
  path: /dev/ttyFAKE0
  devices:
    - { ieee: "${devices.gas.ieee}", id: boiler-gas }
    - { ieee: "${devices.valve.ieee}", id: zb-valve }
    - { ieee: "${devices.siren.ieee}", id: zb-siren }
`,
);

const log = createLogger({ name: "anxin-hub", level: "silent" });
const t0 = performance.now();
const running = await startHub(config, { log });
const startMs = performance.now() - t0;
const rssAfterStart = process.memoryUsage().rss;
const heapAfterStart = process.memoryUsage().heapUsed;

// Pair the eight devices through the control socket, as an installer would.
let joined = false;
const tp = performance.now();
const pairing = await streamDaemon(running.config.hub.controlSocket!, { cmd: "pair", seconds: 60, expect: Object.values(devices).map((d) => d.ieee) }, (p) => {
  if ((p as { event: string }).event === "open" && !joined) {
    joined = true;
    for (const d of Object.values(devices)) void d.join();
  }
});
const pairMs = performance.now() - tp;
if (!pairing.ok) throw new Error(`pairing failed: ${JSON.stringify(pairing)}`);
const paired = (pairing.result as { devices: Array<{ outcome: string }> }).devices.filter((d) => d.outcome === "paired").length;
const rssAfterPairing = process.memoryUsage().rss;
const heapAfterPairing = process.memoryUsage().heapUsed;
const vendorFilesAfterPairing = vendorModulesLoaded();

// Idle: the hub ready with eight Zigbee devices paired and nothing happening. The converters' vendor files
// loaded for pairing are released a few seconds after the last lookup; the idle period starts after that.
await until("converter vendor files released", () => vendorModulesLoaded() === 0, VENDOR_RELEASE_AFTER_MS + 10_000);
/**
 * ZB_IDLE_PROFILE=file.cpuprofile: V8's sampling profiler over the idle period only (what wakes the hub when
 * nothing happens); the top functions by self time are printed and the profile written for DevTools.
 */
async function startIdleProfile() {
  const { Session } = await import("node:inspector/promises");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  return {
    async stop(file: string) {
      const { profile } = await session.post("Profiler.stop");
      session.disconnect();
      writeFileSync(file, JSON.stringify(profile));
      const dt = profile.timeDeltas ?? [];
      const self = new Map<number, number>();
      (profile.samples ?? []).forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0)));
      const rows = new Map<string, number>();
      for (const n of profile.nodes) {
        const f = n.callFrame;
        if (f.functionName === "(idle)" || f.functionName === "(program)") continue;
        const key = `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/zigbee-bench\//, "")}:${f.lineNumber + 1}`;
        rows.set(key, (rows.get(key) ?? 0) + (self.get(n.id) ?? 0));
      }
      console.log(`idle profile (${file}), self time in ms:`);
      for (const [k, us] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${(us / 1000).toFixed(1).padStart(7)}  ${k}`);
    },
  };
}
/** This process's CPU over `seconds` of doing nothing, as a share of one core. */
async function cpuOver(seconds: number) {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;
  return { seconds: r2(wallMs / 1000), cpuPct: r2(((cpu.user + cpu.system) / 1000 / wallMs) * 100), userMs: Math.round(cpu.user / 1000), systemMs: Math.round(cpu.system / 1000) };
}
// The first seconds after the release include the one-off collection of what pairing loaded; the steady
// idle figure is taken after them.
const settling = await cpuOver(SETTLE_S);
const idleProfile = process.env.ZB_IDLE_PROFILE ? await startIdleProfile() : null;
const idle = await cpuOver(IDLE_S);
if (idleProfile) await idleProfile.stop(process.env.ZB_IDLE_PROFILE!);
const rssAfterIdle = process.memoryUsage().rss;
const heapAfterIdle = process.memoryUsage().heapUsed;

// ---- alarm → command latency ------------------------------------------------------------------------------
const adapter = rig.adapter();
let tIn = 0;
let tValve = 0;
let tSiren = 0;
const origIn = adapter.zclFromDevice.bind(adapter);
adapter.zclFromDevice = (dev, f) => {
  if (dev === devices.gas) tIn = performance.now();
  origIn(dev, f);
};
const origOut = adapter.sendZclFrameToEndpoint.bind(adapter);
adapter.sendZclFrameToEndpoint = (ieee, nwk, ep, frame, ...rest) => {
  const t = performance.now();
  if (nwk === devices.valve.nwk && frame.cluster.name === "genOnOff" && frame.command.name === "off" && !tValve) tValve = t;
  if (nwk === devices.siren.nwk && frame.cluster.name === "ssIasWd" && frame.command.name === "startWarning" && !tSiren) tSiren = t;
  return origOut(ieee, nwk, ep, frame, ...rest);
};

const valveLat: number[] = [];
const sirenLat: number[] = [];
let cold: { valve: number; siren: number } | null = null;
const hub = running.hub;
for (let i = 0; i < ITER + WARMUP; i++) {
  tIn = tValve = tSiren = 0;
  await devices.gas.zoneStatus(2); // alarm2: this model's gas alarm
  await until("valve and siren commands", () => tValve && tSiren);
  const v = tValve - tIn;
  const s = tSiren - tIn;
  if (i === 0) cold = { valve: v, siren: s };
  if (i >= WARMUP) {
    valveLat.push(v);
    sirenLat.push(s);
  }
  // Clear, let the close be verified, then reopen on site so the next alarm starts from an open valve.
  await until("valve verified", () => hub.rule.valves["zb-valve"]?.verifiedAt !== null && hub.rule.valves["zb-valve"]?.closed === true);
  await devices.gas.zoneStatus(0);
  await until("gas clear", () => !hub.rule.alarms.gas);
  const r = await hub.reopenValves({ person: "bench", osUser: "bench" });
  if (!r.ok) throw new Error(`reopen refused: ${r.reasons.join("; ")}`);
  await until("valve open again", () => devices.valve.onOff());
}
const rssAfterRun = process.memoryUsage().rss;
/** The process's resident peak so far (Linux: VmHWM), MB. */
const peakMB = () => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? NaN) / 1024;
const rssPeak = peakMB();
const heapMB = process.memoryUsage().heapUsed / MB;

await running.stop();
rig.restore();
await modbusBench?.stop();
rmSync(dir, { recursive: true, force: true });

const stat = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: r2(pct(s, 50)), p90: r2(pct(s, 90)), p99: r2(pct(s, 99)), max: r2(s.at(-1) ?? NaN) };
};
const machine = { ...machineInfo(), loadStart, loadEnd: loadavg().map(r2) };
const result = {
  bench: "zigbee",
  runtime: compiled ? "node (tsc output)" : "node --import tsx",
  machine,
  start: {
    processToReadyMs: Math.round(performance.now() - scriptStart - (performance.now() - t0 - startMs)),
    moduleLoadMs: Math.round(loadMs),
    startHubMs: Math.round(startMs),
    pairEightDevicesMs: Math.round(pairMs),
    paired,
  },
  nodeFlags: process.execArgv,
  rssMB: { boot: r2(rssAtBoot / MB), afterStart: r2(rssAfterStart / MB), afterPairing: r2(rssAfterPairing / MB), afterIdle: r2(rssAfterIdle / MB), afterPairingAndRun: r2(rssAfterRun / MB), peak: r2(rssPeak), heapUsedMB: r2(heapMB) },
  heapUsedMB: { afterStart: r2(heapAfterStart / MB), afterPairing: r2(heapAfterPairing / MB), afterIdle: r2(heapAfterIdle / MB), afterPairingAndRun: r2(heapMB) },
  vendorFilesAfterPairing,
  rs485PolledDevices: ZIGBEE_ONLY ? 0 : 1,
  rs485Line: RS485_LINE,
  settling,
  idle,
  alarmToValveCloseMs: stat(valveLat),
  alarmToSirenStartMs: stat(sirenLat),
  coldMs: cold && { valve: r2(cold.valve), siren: r2(cold.siren) },
};
console.log(`${compiled ? "compiled JS, plain node" : "under tsx (TypeScript loader in memory)"}`);
console.log(`Zigbee: ${paired} devices paired in ${result.start.pairEightDevicesMs} ms (fake coordinator, compressed herdsman waits)`);
console.log(`start: module load ${result.start.moduleLoadMs} ms, startHub ${result.start.startHubMs} ms (coordinator start included; ~0 with the fake adapter)`);
console.log(`RSS: ${result.rssMB.afterStart} MB after start, ${result.rssMB.afterPairing} MB after pairing (${vendorFilesAfterPairing} converter vendor files loaded), ${result.rssMB.afterIdle} MB once they were released and after ${idle.seconds} s idle, ${result.rssMB.afterPairingAndRun} MB after ${ITER + WARMUP} alarms (heap ${result.rssMB.heapUsedMB} MB); peak ${result.rssMB.peak} MB (VmHWM)`);
console.log(`idle CPU with ${paired} Zigbee devices paired${ZIGBEE_ONLY ? "" : ` and one RS-485 detector polled every second (${RS485_LINE === "pty" ? "serial line: PTY to pymodbus" : "simulated line"})`}: ${idle.cpuPct} % of one core (${idle.userMs} ms user + ${idle.systemMs} ms system in ${idle.seconds} s); ${settling.cpuPct} % in the ${settling.seconds} s before, right after the release`);
console.log("| path | n | p50 | p90 | p99 | max (ms) |\n| --- | --- | --- | --- | --- | --- |");
for (const [name, s] of [["gas frame → valve off", result.alarmToValveCloseMs], ["gas frame → siren startWarning", result.alarmToSirenStartMs]] as const)
  console.log(`| ${name} | ${s.n} | ${s.p50} | ${s.p90} | ${s.p99} | ${s.max} |`);
console.log(JSON.stringify(result));
type Result = typeof result;
