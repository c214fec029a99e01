// The hub on a Pi-class CPU (issue 14): the valve-latency and Zigbee benchmarks run once without a CPU limit
// and once with the hub held to the CPU share of one Raspberry Pi 4 core (a cgroup CPU quota calibrated in
// bench/pi-class.ts against published sysbench figures), side by side, with the hub's peak memory with
// Zigbee and eight paired devices (target ≤ 100 MB) and its idle CPU (target ≤ 1 %).
// Run: node --import tsx bench/pi-hub.bench.ts   (as root: it creates cgroups; about 8 minutes)
//   PI_HUB_BOARDS=pi4,pi3   boards to emulate (default pi4)
//   PI_HUB_ONLY=valve|zigbee  one of the two benches
//   PI_PERIOD_US=10000      CFS period of the quota
//   ZB_ITER / ZB_IDLE_S / ZB_SETTLE_S  passed to the Zigbee bench (default here 100 / 20 / 5)
//
// The Zigbee bench measures compiled JavaScript in plain node (see bench/zigbee.bench.ts); this script
// compiles the project the same way (tsc into .tmp/zigbee-bench/) outside any quota and then runs that
// bench's compiled child with the shipped systemd unit's node flags and MALLOC_* environment, so only the
// hub process is limited. The valve-latency bench runs as itself (node --import tsx, with the unit's node
// flags and MALLOC_* environment too), its Modbus bench helpers (pymodbus, socat) in the same cgroup, hence
// under the same quota.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_PERIOD_US, PI_REFERENCE, benchLines, cgroupSupport, crossCheck, quotaPercentFor, runUnderQuota, sysbenchEventsPerSec, type Board, type CrossCheck, type QuotaRun } from "./pi-class.js";
import { machineInfo, r2 } from "./support.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const TARGET_PEAK_MB = 100;
const TARGET_IDLE_CPU_PCT = 1;
const boards = (process.env.PI_HUB_BOARDS ?? "pi4")
  .split(",")
  .map((b) => b.trim())
  .filter((b): b is Board => b in PI_REFERENCE.boards);
const only = process.env.PI_HUB_ONLY;

const m = machineInfo();
console.log(`machine: ${m.cpu} x${m.cores}, node ${m.node}, ${m.os}, ${m.memGiB} GiB RAM, load ${m.loadStart.join(" ")}`);

// ---- calibration ------------------------------------------------------------------------------------------
const cg = cgroupSupport();
console.log(`cgroup CPU controller: ${cg.ok ? `${cg.flavour.kind} at ${cg.flavour.root}` : `UNAVAILABLE (${cg.reason}); running without a quota only`}`);
const sbRuns: number[] = [];
let sbError: string | null = null;
for (let i = 0; i < 3; i++) {
  const r = sysbenchEventsPerSec(3);
  if ("error" in r) {
    sbError = r.error;
    break;
  }
  sbRuns.push(r.eventsPerSec);
}
const sbHere = sbRuns.length ? ([...sbRuns].sort((a, b) => a - b)[Math.floor(sbRuns.length / 2)] as number) : null;
const quotas: Partial<Record<Board, number>> = {};
if (sbHere) for (const b of boards) quotas[b] = quotaPercentFor(b, sbHere);
console.log(
  sbHere
    ? `sysbench cpu, 1 thread, here: ${sbRuns.join(", ")} events/s (median ${sbHere}); ${boards.map((b) => `${PI_REFERENCE.boards[b].name} ${PI_REFERENCE.boards[b].eventsPerSec} → quota ${quotas[b]} % of one core`).join("; ")} (period ${DEFAULT_PERIOD_US} µs; reference ${PI_REFERENCE.source})`
    : `no calibration: ${sbError}`,
);
const canLimit = cg.ok && sbHere !== null;
const profiles: Array<{ name: string; board: Board | null; quotaPercent: number | null }> = [{ name: "unconstrained", board: null, quotaPercent: null }];
if (canLimit) for (const b of boards) profiles.push({ name: b, board: b, quotaPercent: quotas[b]! });

const checks: Partial<Record<Board, CrossCheck>> = {};
if (canLimit)
  for (const b of boards) {
    const c = await crossCheck(quotas[b]!);
    checks[b] = c;
    console.log(
      `cross-check ${b} (quota ${c.quotaPercent} %): sysbench ${c.sysbench.free} → ${c.sysbench.limited} events/s (${c.sysbench.ratioPct} % of unlimited; Pi reference ${PI_REFERENCE.boards[b].eventsPerSec}), node JSON+HMAC workload ${c.node.freeOpsPerSec} → ${c.node.limitedOpsPerSec} ops/s (${c.node.ratioPct} %)`,
    );
  }

// ---- the Zigbee bench's compiled child ---------------------------------------------------------------------
function shippedNodeFlags(): string[] {
  const unit = readFileSync(join(root, "systemd", "anxin-hub.service"), "utf8");
  const exec = /^ExecStart=\S+\s+(.*)$/m.exec(unit)?.[1] ?? "";
  return exec.split(/\s+/).filter((w, i, all) => w.startsWith("--") && all.slice(0, i).every((x) => x.startsWith("--")));
}
/** The unit's Environment= settings that shape the process's memory (glibc's malloc). */
function shippedEnv(): Record<string, string> {
  const unit = readFileSync(join(root, "systemd", "anxin-hub.service"), "utf8");
  return Object.fromEntries([...unit.matchAll(/^Environment=(MALLOC_\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}
const zbOut = join(root, ".tmp", "zigbee-bench");
const zbJs = join(zbOut, "bench", "zigbee.bench.js");
const zbFlags = shippedNodeFlags();
const unitEnv = shippedEnv();
const zbEnv = { ...process.env, ...unitEnv, ZB_ITER: process.env.ZB_ITER ?? "100", ZB_IDLE_S: process.env.ZB_IDLE_S ?? "20", ZB_SETTLE_S: process.env.ZB_SETTLE_S ?? "5" };
if (only !== "valve") {
  console.log(`compiling the project into ${zbOut} (tsc, no quota) ...`);
  const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.test.json"), "--noEmit", "false", "--sourceMap", "false", "--outDir", zbOut], { stdio: "ignore" });
  if (!existsSync(zbJs)) throw new Error(`tsc produced no ${zbJs} (exit ${tsc.status})`);
}

// ---- runs --------------------------------------------------------------------------------------------------
interface ValveRow {
  label: string;
  n: number;
  p50: number;
  p99: number;
  max: number;
  syncP99: number;
}
interface ZigbeeJson {
  start: { moduleLoadMs: number; startHubMs: number; pairEightDevicesMs: number; paired: number };
  rssMB: { afterStart: number; afterPairing: number; afterIdle: number; afterPairingAndRun: number };
  settling: { cpuPct: number };
  idle: { seconds: number; cpuPct: number };
  alarmToValveCloseMs: { n: number; p50: number; p99: number; max: number };
  alarmToSirenStartMs: { n: number; p50: number; p99: number; max: number };
}
interface Run {
  profile: string;
  quotaPercent: number | null;
  valve?: { ok: boolean; wallS: number; throttle: QuotaRun["throttle"]; benchAvailable: unknown; rows: ValveRow[]; idleP99Ms: number | null };
  zigbee?: { ok: boolean; wallS: number; throttle: QuotaRun["throttle"]; hubPeakRssMB: number | null; idleCpuPct: number | null; idleCpuPiCorePct: number | null; json: ZigbeeJson | null };
}

function failed(what: string, r: QuotaRun): void {
  console.log(`${what}: FAILED (exit ${r.code}${r.signal ? `, ${r.signal}` : ""}); last output:\n${r.stdout.split("\n").slice(-15).join("\n")}`);
}

const runs: Run[] = [];
for (const p of profiles) {
  const run: Run = { profile: p.name, quotaPercent: p.quotaPercent };
  runs.push(run);
  if (only !== "zigbee") {
    console.log(`\n== valve-latency (node ${zbFlags.join(" ")}), ${p.name}${p.quotaPercent === null ? "" : ` (quota ${p.quotaPercent} % of one core)`} ...`);
    // With the unit's node flags and malloc settings, as the daemon runs (the flags change V8's compilers).
    const r = await runUnderQuota(join(here, "valve-latency.bench.ts"), [], { quotaPercent: p.quotaPercent, nodeArgs: zbFlags, env: { ...process.env, ...unitEnv }, echo: false, timeoutMs: 330_000 });
    const j = benchLines(r.stdout).get("valve-latency") as { results: ValveRow[]; idleP99Ms: number; benchAvailable: unknown } | undefined;
    if (r.code !== 0 || !j) failed("valve-latency", r);
    run.valve = {
      ok: r.code === 0 && !!j,
      wallS: r2(r.wallMs / 1000),
      throttle: r.throttle,
      benchAvailable: j?.benchAvailable,
      rows: (j?.results ?? []).map((x) => ({ label: x.label, n: x.n, p50: x.p50, p99: x.p99, max: x.max, syncP99: x.syncP99 })),
      idleP99Ms: j?.idleP99Ms ?? null,
    };
    console.log(`   ${r2(r.wallMs / 1000)} s; idle-bus p99 ${run.valve.idleP99Ms} ms; throttled ${r.throttle?.throttled ?? 0} of ${r.throttle?.periods ?? 0} periods`);
  }
  if (only !== "valve") {
    console.log(`== zigbee (node ${zbFlags.join(" ")}${Object.entries(unitEnv).map(([k, v]) => ` ${k}=${v}`).join("")}), ${p.name} ...`);
    const r = await runUnderQuota(zbJs, [], { quotaPercent: p.quotaPercent, tsx: false, nodeArgs: zbFlags, env: zbEnv, echo: false, timeoutMs: 300_000 });
    const j = (benchLines(r.stdout).get("zigbee") as ZigbeeJson | undefined) ?? null;
    if (r.code !== 0 || !j) failed("zigbee", r);
    const hub = r.processes.filter((x) => x.cmd.includes("zigbee.bench.js"));
    const peak = hub.length ? Math.max(...hub.map((x) => x.peakMB)) : null;
    const idle = j?.idle.cpuPct ?? null;
    run.zigbee = {
      ok: r.code === 0 && !!j,
      wallS: r2(r.wallMs / 1000),
      throttle: r.throttle,
      hubPeakRssMB: peak,
      idleCpuPct: idle,
      // CPU seconds here are quota/100 times as fast as a Pi core's: the same idle work takes the Pi this share.
      idleCpuPiCorePct: idle !== null && p.quotaPercent ? r2((idle * 100) / p.quotaPercent) : null,
      json: j,
    };
    console.log(`   ${r2(r.wallMs / 1000)} s; hub peak RSS ${peak} MB; idle CPU ${idle} % of this machine's core; alarm → valve p99 ${j?.alarmToValveCloseMs.p99} ms`);
  }
}

// ---- table -------------------------------------------------------------------------------------------------
const base = runs[0]!;
const ratio = (x: number | null | undefined, b: number | null | undefined) => (x != null && b != null && b > 0 ? `${r2(x / b)}×` : "");
const fmt = (x: number | null | undefined) => (x == null || Number.isNaN(x) ? "–" : String(x));
const heads = runs.map((r) => (r.quotaPercent === null ? r.profile : `${r.profile} (${r.quotaPercent} %)`));
console.log(`\n| metric | ${heads.join(" | ")} | ${runs.slice(1).map((r) => `${r.profile} / unconstrained`).join(" | ")} |`);
console.log(`| --- | ${runs.map(() => "---").join(" | ")} | ${runs.slice(1).map(() => "---").join(" | ")} |`);
const row = (name: string, get: (r: Run) => number | null | undefined, pair?: (r: Run) => number | null | undefined) => {
  const cells = runs.map((r) => (pair ? `${fmt(pair(r))} / ${fmt(get(r))}` : fmt(get(r))));
  console.log(`| ${name} | ${cells.join(" | ")} | ${runs.slice(1).map((r) => ratio(get(r), get(base))).join(" | ")} |`);
};
if (only !== "zigbee")
  for (const label of base.valve?.rows.map((x) => x.label) ?? []) {
    const v = (r: Run) => r.valve?.rows.find((x) => x.label === label);
    row(`valve ${label}: p50 / p99 ms`, (r) => v(r)?.p99, (r) => v(r)?.p50);
  }
if (only !== "valve") {
  const z = (r: Run) => r.zigbee?.json;
  row("Zigbee gas frame → valve off: p50 / p99 ms", (r) => z(r)?.alarmToValveCloseMs.p99, (r) => z(r)?.alarmToValveCloseMs.p50);
  row("Zigbee gas frame → siren: p50 / p99 ms", (r) => z(r)?.alarmToSirenStartMs.p99, (r) => z(r)?.alarmToSirenStartMs.p50);
  row("module load + startHub ms", (r) => (z(r) ? z(r)!.start.moduleLoadMs + z(r)!.start.startHubMs : null));
  row("pair 8 devices ms", (r) => z(r)?.start.pairEightDevicesMs);
  row("RSS after pairing MB", (r) => z(r)?.rssMB.afterPairing);
  row("RSS after idle / after alarms MB", (r) => z(r)?.rssMB.afterPairingAndRun, (r) => z(r)?.rssMB.afterIdle);
  row(`hub peak RSS (VmHWM) MB, target ≤ ${TARGET_PEAK_MB}`, (r) => r.zigbee?.hubPeakRssMB);
  row("CPU settling after release, % of this core", (r) => z(r)?.settling.cpuPct);
  row(`idle CPU, 8 paired, % of this core, target ≤ ${TARGET_IDLE_CPU_PCT}`, (r) => r.zigbee?.idleCpuPct);
  row("idle CPU as % of the emulated Pi core", (r) => r.zigbee?.idleCpuPiCorePct);
}
row("throttled periods (valve run)", (r) => r.valve?.throttle?.throttled);
row("throttled periods (Zigbee run)", (r) => r.zigbee?.throttle?.throttled);
console.log("ratios are the quota run over the unconstrained one (p99 where two figures are shown).");
console.log("idle CPU as % of the emulated Pi core = the idle CPU here × 100 / quota: a Pi core needs that much longer for the same work.");

const peaks = runs.map((r) => r.zigbee?.hubPeakRssMB).filter((x): x is number => x != null);
const piIdle = runs.slice(1).map((r) => r.zigbee?.idleCpuPiCorePct).filter((x): x is number => x != null);
const loadEnd = loadavg().map(r2);
console.log(`load average at end: ${loadEnd.join(" ")}`);
console.log(
  JSON.stringify({
    bench: "pi-hub",
    machine: { ...m, loadEnd },
    cgroup: cg.ok ? `${cg.flavour.kind} ${cg.flavour.root}` : `unavailable: ${cg.reason}`,
    calibration: {
      reference: PI_REFERENCE,
      hereEventsPerSec: sbHere,
      hereRuns: sbRuns,
      error: sbError,
      quotaPercent: quotas,
      periodUs: DEFAULT_PERIOD_US,
      crossCheck: checks,
    },
    zigbeeNodeFlags: zbFlags,
    zigbeeEnv: { ZB_ITER: zbEnv.ZB_ITER, ZB_IDLE_S: zbEnv.ZB_IDLE_S, ZB_SETTLE_S: zbEnv.ZB_SETTLE_S },
    runs: runs.map((r) => ({ ...r, zigbee: r.zigbee && { ...r.zigbee, json: undefined, zigbee: r.zigbee.json } })),
    target: { hubPeakRssMB: TARGET_PEAK_MB, idleCpuPct: TARGET_IDLE_CPU_PCT },
    hubPeakRssMB: peaks.length ? Math.max(...peaks) : null,
    meetsMemoryTarget: peaks.length ? Math.max(...peaks) <= TARGET_PEAK_MB : null,
    idleCpuPiCorePct: piIdle.length ? Math.max(...piIdle) : null,
    meetsIdleCpuTarget: piIdle.length ? Math.max(...piIdle) <= TARGET_IDLE_CPU_PCT : null,
    ok: runs.every((r) => (r.valve?.ok ?? true) && (r.zigbee?.ok ?? true)),
  }),
);
process.exit(runs.every((r) => (r.valve?.ok ?? true) && (r.zigbee?.ok ?? true)) ? 0 : 1);
