// Zigbee benchmark: (1) hub start to ready with the Zigbee stack loaded and the hub's resident memory;
// (2) a Zigbee gas alarm frame arriving at the coordinator adapter → the valve close and the siren start
// frames handed to the adapter (hub processing: herdsman's frame parsing, the converters' decode, the gas
// rule, the actuators, the converters' encode). Targets: RSS ≤ 120 MB; start to ready ≤ 5 s plus the
// coordinator's own start. Radio time is not included (see docs/benchmarks.md).
// Run: node --import tsx bench/zigbee.bench.ts   (ZB_ITER=300 by default)
//
// Memory and start time under tsx would include the TypeScript loader, so the script first compiles the
// project with tsc into .tmp/zigbee-bench/ and measures there, in a plain `node` child process, as the
// daemon runs on a hub (ZB_INPROCESS=1 measures under tsx instead).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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

if (!compiled && !process.env.ZB_INPROCESS) {
  const out = join(root, ".tmp", "zigbee-bench");
  console.log(`compiling the project into ${out} (tsc) ...`);
  const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.test.json"), "--noEmit", "false", "--sourceMap", "false", "--outDir", out], { stdio: "ignore" });
  const js = join(out, "bench", "zigbee.bench.js");
  if (!existsSync(js)) throw new Error(`tsc produced no ${js} (exit ${tsc.status})`);
  const child = spawnSync(process.execPath, [js], { stdio: "inherit", env: process.env });
  process.exit(child.status ?? 1);
}

const ITER = Number(process.env.ZB_ITER ?? 300);
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
const dir = mkdtempSync(join(tmpdir(), "anxin-zb-bench-"));
const config = join(dir, "hub.yaml");
writeFileSync(
  config,
  `hub: { id: bench-hub, dataDir: ./data, profilesDir: ${JSON.stringify(join(root, "device-profiles"))} }
buses:
  - { name: line1, path: sim }
devices:
  - { id: rs-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen }
rules:
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
const heapMB = process.memoryUsage().heapUsed / MB;

await running.stop();
rig.restore();
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
  rssMB: { boot: r2(rssAtBoot / MB), afterStart: r2(rssAfterStart / MB), afterPairing: r2(rssAfterPairing / MB), afterPairingAndRun: r2(rssAfterRun / MB), heapUsedMB: r2(heapMB) },
  alarmToValveCloseMs: stat(valveLat),
  alarmToSirenStartMs: stat(sirenLat),
  coldMs: cold && { valve: r2(cold.valve), siren: r2(cold.siren) },
};
console.log(`${compiled ? "compiled JS, plain node" : "under tsx (TypeScript loader in memory)"}`);
console.log(`Zigbee: ${paired} devices paired in ${result.start.pairEightDevicesMs} ms (fake coordinator, compressed herdsman waits)`);
console.log(`start: module load ${result.start.moduleLoadMs} ms, startHub ${result.start.startHubMs} ms (coordinator start included; ~0 with the fake adapter)`);
console.log(`RSS: ${result.rssMB.afterStart} MB after start, ${result.rssMB.afterPairing} MB after pairing, ${result.rssMB.afterPairingAndRun} MB after pairing and ${ITER + WARMUP} alarms (heap ${result.rssMB.heapUsedMB} MB)`);
console.log("| path | n | p50 | p90 | p99 | max (ms) |\n| --- | --- | --- | --- | --- | --- |");
for (const [name, s] of [["gas frame → valve off", result.alarmToValveCloseMs], ["gas frame → siren startWarning", result.alarmToSirenStartMs]] as const)
  console.log(`| ${name} | ${s.n} | ${s.p50} | ${s.p90} | ${s.p99} | ${s.max} |`);
console.log(JSON.stringify(result));
