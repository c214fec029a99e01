// Pi-class CPU for the benchmarks: a cgroup CPU quota that gives a process about the CPU of one Raspberry Pi
// core, calibrated against published single-thread figures, and `runUnderQuota` to run a bench script in it.
//
// Calibration. The reference is sysbench 1.0.20's CPU test, one thread, default --cpu-max-prime=10000
// (`sysbench cpu --threads=1 --time=60 run`), as published by leoncode.co.uk,
// https://leoncode.co.uk/articles/raspberry-pi-benchmarks :
//   Raspberry Pi 4 (Cortex-A72, 1.5 GHz)   1477.83 events/s
//   Raspberry Pi 3B+ (Cortex-A53, 1.4 GHz)  687.45 events/s
// The same test is run here (Debian's `sysbench` package); quota = Pi figure / this machine's figure × 100 %
// of one core. `crossCheck` then shows what the quota does: sysbench and a Node workload of the hub's kind
// (JSON stringify/parse of an event envelope + HMAC-SHA256) unconstrained and under the quota, whose ratio
// should come out near quota / 100.
//
// Caveats, also in docs/benchmarks.md: sysbench's prime search is integer division in a tight loop, which the
// A72 does relatively well, so it flatters the Pi against x86 for JIT-compiled JavaScript; a quota gives the
// right CPU time on average, but in slices: within each CFS period the process runs at this machine's speed
// and then waits, so a short period (10 ms by default) keeps that wait — an artefact a real Pi does not
// have — small against the latencies measured.
//
// cgroup v1's cpu controller (/sys/fs/cgroup/cpu) is used when writable, else cgroup v2 (cpu.max) when its
// cpu controller can be enabled; otherwise `cgroupSupport()` says why and quota runs are refused.
//
// Run on its own: node --import tsx bench/pi-class.ts   (prints the calibration and the cross-check)
import { spawn, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { r2 } from "./support.js";

export const PI_REFERENCE = {
  source: "https://leoncode.co.uk/articles/raspberry-pi-benchmarks",
  benchmark: "sysbench 1.0.20 cpu, --threads=1, --cpu-max-prime=10000 (default), events per second",
  boards: {
    pi4: { name: "Raspberry Pi 4 (Cortex-A72 1.5 GHz)", eventsPerSec: 1477.83 },
    pi3: { name: "Raspberry Pi 3B+ (Cortex-A53 1.4 GHz)", eventsPerSec: 687.45 },
  },
} as const;
export type Board = keyof typeof PI_REFERENCE.boards;

/** CFS period for the quota; short, so the throttled wait in each period stays small (see the header). */
export const DEFAULT_PERIOD_US = Number(process.env.PI_PERIOD_US ?? 10_000);

// ---------------------------------------------------------------------------------------------
// Calibration

/** sysbench's single-thread CPU figure on this machine, or why it cannot be had. */
export function sysbenchEventsPerSec(seconds = 5): { eventsPerSec: number } | { error: string } {
  const r = spawnSync("sysbench", ["cpu", "--threads=1", `--time=${seconds}`, "run"], { encoding: "utf8" });
  if (r.error) return { error: `sysbench not runnable (${r.error.message}): apt-get install sysbench` };
  const m = /events per second:\s*([\d.]+)/.exec(r.stdout);
  if (r.status !== 0 || !m) return { error: `sysbench exit ${r.status}: ${r.stderr.trim() || r.stdout.trim()}` };
  return { eventsPerSec: Number(m[1]) };
}

/** Share of one core (percent) that gives this machine the board's sysbench figure. */
export function quotaPercentFor(board: Board, hereEventsPerSec: number): number {
  return r2((PI_REFERENCE.boards[board].eventsPerSec / hereEventsPerSec) * 100);
}

/** The hub's kind of CPU work: an event envelope through JSON and an HMAC, `ms` milliseconds of wall time. */
export function nodeWorkload(ms: number): { opsPerSec: number; cpuPct: number } {
  const key = Buffer.alloc(32, 7);
  const event = {
    hub: "bench-hub",
    seq: 0,
    ts: 0,
    kind: "reading",
    device: "kitchen-co",
    values: { co_ppm: 12, co_status: 0, temperature_c: 21.5 },
    labels: { room: "kitchen", profile: "greystone-cmd5b4" },
    problems: [] as string[],
  };
  let ops = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < ms) {
    for (let i = 0; i < 50; i++) {
      event.seq++;
      event.ts = Date.now();
      const body = JSON.stringify(event);
      const back = JSON.parse(body) as typeof event;
      createHmac("sha256", key).update(body).digest("base64");
      if (back.seq !== event.seq) throw new Error("round trip lost the sequence");
      ops++;
    }
    now = performance.now();
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = now - t0;
  return { opsPerSec: Math.round(ops / (wall / 1000)), cpuPct: r2(((cpu.user + cpu.system) / 1000 / wall) * 100) };
}

// ---------------------------------------------------------------------------------------------
// cgroups

type Flavour = { kind: "v1"; root: string } | { kind: "v2"; root: string };

let support: { ok: true; flavour: Flavour } | { ok: false; reason: string } | undefined;

/** Which cgroup CPU controller this process can use, or why none. Root is needed for either. */
export function cgroupSupport(): { ok: true; flavour: Flavour } | { ok: false; reason: string } {
  if (support) return support;
  const reasons: string[] = [];
  const v1 = "/sys/fs/cgroup/cpu";
  if (existsSync(join(v1, "cpu.cfs_quota_us"))) {
    const probe = join(v1, `anxin-probe-${process.pid}`);
    try {
      mkdirSync(probe);
      rmdirSync(probe);
      return (support = { ok: true, flavour: { kind: "v1", root: v1 } });
    } catch (e) {
      reasons.push(`cgroup v1 cpu at ${v1} not writable (${(e as Error).message})`);
    }
  } else reasons.push(`no cgroup v1 cpu controller at ${v1}`);
  for (const v2 of ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]) {
    const ctl = join(v2, "cgroup.controllers");
    if (!existsSync(ctl)) continue;
    if (!readFileSync(ctl, "utf8").split(/\s+/).includes("cpu")) {
      reasons.push(`cgroup v2 at ${v2} has no cpu controller (controllers: ${readFileSync(ctl, "utf8").trim() || "none"})`);
      continue;
    }
    try {
      writeFileSync(join(v2, "cgroup.subtree_control"), "+cpu");
      return (support = { ok: true, flavour: { kind: "v2", root: v2 } });
    } catch (e) {
      reasons.push(`cgroup v2 at ${v2}: cannot enable cpu for children (${(e as Error).message})`);
    }
  }
  return (support = { ok: false, reason: reasons.join("; ") });
}

export interface CpuGroup {
  dir: string;
  procsFile: string;
  quotaPercent: number | null;
  periodUs: number;
  /** Pids now in the group. */
  pids(): number[];
  /** Throttling so far: periods, throttled periods, time held back. */
  stat(): { periods: number; throttled: number; throttledMs: number };
  /** Stops what is left in the group (only processes this run started) and removes it. */
  remove(): void;
}

let seq = 0;
const live = new Set<CpuGroup>();
process.on("exit", () => {
  for (const g of live) g.remove();
});

/** A fresh cgroup limited to `quotaPercent` of one core (null: no limit, for a like-for-like baseline). */
export function createCpuGroup(quotaPercent: number | null, periodUs = DEFAULT_PERIOD_US): CpuGroup {
  const s = cgroupSupport();
  if (!s.ok) throw new Error(`no usable cgroup CPU controller: ${s.reason}`);
  const { kind, root } = s.flavour;
  const dir = join(root, `anxin-pi-${process.pid}-${++seq}`);
  mkdirSync(dir);
  const quotaUs = quotaPercent === null ? null : Math.max(1000, Math.round((periodUs * quotaPercent) / 100));
  try {
    if (kind === "v1") {
      writeFileSync(join(dir, "cpu.cfs_period_us"), String(periodUs));
      writeFileSync(join(dir, "cpu.cfs_quota_us"), String(quotaUs ?? -1));
    } else writeFileSync(join(dir, "cpu.max"), `${quotaUs ?? "max"} ${periodUs}`);
  } catch (e) {
    rmdirSync(dir);
    throw e;
  }
  const procsFile = join(dir, "cgroup.procs");
  const pids = () =>
    readFileSync(procsFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map(Number);
  let removed = false;
  const group: CpuGroup = {
    dir,
    procsFile,
    quotaPercent,
    periodUs,
    pids,
    stat() {
      const kv = Object.fromEntries(
        readFileSync(join(dir, "cpu.stat"), "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => l.split(/\s+/) as [string, string]),
      );
      const throttledMs = kind === "v1" ? Number(kv.throttled_time ?? 0) / 1e6 : Number(kv.throttled_usec ?? 0) / 1e3;
      return { periods: Number(kv.nr_periods ?? 0), throttled: Number(kv.nr_throttled ?? 0), throttledMs: Math.round(throttledMs) };
    },
    remove() {
      if (removed) return;
      // Anything still here was started by the run in this group (children inherit it): end it by pid.
      for (let round = 0; round < 20; round++) {
        let left: number[];
        try {
          left = pids();
        } catch {
          break;
        }
        if (left.length === 0) break;
        for (const pid of left)
          try {
            process.kill(pid, round < 10 ? "SIGTERM" : "SIGKILL");
          } catch {
            /* already gone */
          }
        spawnSync("sleep", ["0.1"]);
      }
      try {
        rmdirSync(dir);
        removed = true;
        live.delete(group);
      } catch (e) {
        process.stderr.write(`pi-class: could not remove ${dir}: ${(e as Error).message}\n`);
      }
    },
  };
  live.add(group);
  return group;
}

// ---------------------------------------------------------------------------------------------
// Running a command in a group

export interface PeakRss {
  pid: number;
  cmd: string;
  /** Peak resident set (VmHWM) as last sampled, MiB. */
  peakMB: number;
}

export interface QuotaRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  wallMs: number;
  quotaPercent: number | null;
  periodUs: number;
  /** Whether the run was in a cgroup at all (a baseline without cgroup support runs outside one). */
  inCgroup: boolean;
  throttle: { periods: number; throttled: number; throttledMs: number } | null;
  /** Every process seen in the group, with its peak RSS (sampled every `sampleMs`; VmHWM is a high-water mark). */
  processes: PeakRss[];
}

export interface QuotaOptions {
  /** Share of one core, percent; null or undefined: no limit (still in a cgroup, for the memory sampling). */
  quotaPercent?: number | null;
  env?: NodeJS.ProcessEnv;
  periodUs?: number;
  /** Pass the child's stdout through to ours as it comes (default true). */
  echo?: boolean;
  timeoutMs?: number;
  sampleMs?: number;
}

function readStatusKB(pid: number, field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "?";
  }
}

/**
 * Runs `command args` with its pid in a fresh cgroup before it executes anything: a shell writes its own pid
 * to cgroup.procs and then execs the command, so the command and all its children run under the quota from
 * their first instruction. The group is removed afterwards, also on failure or timeout.
 */
export async function runInCgroup(command: string, args: string[], o: QuotaOptions = {}): Promise<QuotaRun> {
  const quotaPercent = o.quotaPercent ?? null;
  const periodUs = o.periodUs ?? DEFAULT_PERIOD_US;
  const s = cgroupSupport();
  if (!s.ok && quotaPercent !== null) throw new Error(`cannot limit the CPU: ${s.reason}`);
  const group = s.ok ? createCpuGroup(quotaPercent, periodUs) : null;
  const seen = new Map<number, PeakRss>();
  const sample = () => {
    if (!group) return;
    let pids: number[] = [];
    try {
      pids = group.pids();
    } catch {
      return;
    }
    for (const pid of pids) {
      const hwm = readStatusKB(pid, "VmHWM");
      if (hwm === null) continue;
      const prev = seen.get(pid);
      const cmd = prev && !prev.cmd.startsWith("/bin/sh") ? prev.cmd : cmdline(pid);
      seen.set(pid, { pid, cmd, peakMB: r2(Math.max(prev?.peakMB ?? 0, hwm / 1024)) });
    }
  };
  const t0 = performance.now();
  try {
    const argv = group ? ["-c", 'p="$1"; shift; echo $$ > "$p" && exec "$@"', "sh", group.procsFile, command, ...args] : null;
    const child = argv ? spawn("/bin/sh", argv, { stdio: ["ignore", "pipe", "inherit"], env: o.env ?? process.env }) : spawn(command, args, { stdio: ["ignore", "pipe", "inherit"], env: o.env ?? process.env });
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      stdout += d;
      if (o.echo ?? true) process.stdout.write(d);
    });
    const timer = setInterval(sample, o.sampleMs ?? 200);
    let timedOut = false;
    const limit = o.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          process.stderr.write(`pi-class: ${command} still running after ${o.timeoutMs} ms, stopping it\n`);
          child.kill("SIGTERM");
        }, o.timeoutMs)
      : null;
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (c, sig) => resolve([c, sig]));
    });
    clearInterval(timer);
    if (limit) clearTimeout(limit);
    if (timedOut && code === 0) throw new Error(`${command} timed out`);
    return {
      code,
      signal,
      stdout,
      wallMs: Math.round(performance.now() - t0),
      quotaPercent,
      periodUs,
      inCgroup: group !== null,
      throttle: group?.stat() ?? null,
      processes: [...seen.values()],
    };
  } finally {
    group?.remove();
  }
}

/** `node --import tsx <script> args` under a quota of `quotaPercent` of one core (see runInCgroup). */
export function runUnderQuota(script: string, args: string[], o: QuotaOptions & { nodeArgs?: string[]; tsx?: boolean } = {}): Promise<QuotaRun> {
  const pre = [...(o.tsx === false ? [] : ["--import", "tsx"]), ...(o.nodeArgs ?? [])];
  return runInCgroup(process.execPath, [...pre, script, ...args], o);
}

/** The `{"bench":...}` JSON lines of a bench's output, by bench name (the last one of each name wins). */
export function benchLines(stdout: string): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const line of stdout.split("\n")) {
    if (!line.startsWith('{"bench":')) continue;
    try {
      const j = JSON.parse(line) as Record<string, unknown>;
      out.set(String(j.bench), j);
    } catch {
      /* a line that only looks like one */
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cross-check: does the quota do what it claims?

export interface CrossCheck {
  quotaPercent: number;
  sysbench: { free: number | null; limited: number | null; ratioPct: number | null };
  node: { freeOpsPerSec: number; limitedOpsPerSec: number; ratioPct: number };
  throttle: QuotaRun["throttle"];
}

const self = fileURLToPath(import.meta.url);

async function workloadIn(quotaPercent: number | null, ms: number): Promise<{ opsPerSec: number; cpuPct: number; throttle: QuotaRun["throttle"] }> {
  const r = await runUnderQuota(self, ["--workload", String(ms)], { quotaPercent, echo: false });
  const j = benchLines(r.stdout).get("pi-class-workload");
  if (r.code !== 0 || !j) throw new Error(`workload run failed (exit ${r.code}): ${r.stdout}`);
  return { opsPerSec: Number(j.opsPerSec), cpuPct: Number(j.cpuPct), throttle: r.throttle };
}

async function sysbenchIn(quotaPercent: number | null, seconds: number): Promise<number | null> {
  const r = await runInCgroup("sysbench", ["cpu", "--threads=1", `--time=${seconds}`, "run"], { quotaPercent, echo: false }).catch(() => null);
  const m = r && /events per second:\s*([\d.]+)/.exec(r.stdout);
  return m ? Number(m[1]) : null;
}

/** sysbench and the Node workload, each in a cgroup without a limit and then under `quotaPercent`. */
export async function crossCheck(quotaPercent: number, seconds = 3): Promise<CrossCheck> {
  const sbFree = await sysbenchIn(null, seconds);
  const sbLim = await sysbenchIn(quotaPercent, seconds);
  const free = await workloadIn(null, seconds * 1000);
  const lim = await workloadIn(quotaPercent, seconds * 1000);
  return {
    quotaPercent,
    sysbench: { free: sbFree, limited: sbLim, ratioPct: sbFree && sbLim ? r2((sbLim / sbFree) * 100) : null },
    node: { freeOpsPerSec: free.opsPerSec, limitedOpsPerSec: lim.opsPerSec, ratioPct: r2((lim.opsPerSec / free.opsPerSec) * 100) },
    throttle: lim.throttle,
  };
}

/** Calibration figures for the report: this machine's sysbench figure and the quota per board. */
export function calibrate(seconds = 5): { hereEventsPerSec: number; quotas: Record<Board, number> } | { error: string } {
  const here = sysbenchEventsPerSec(seconds);
  if ("error" in here) return here;
  return { hereEventsPerSec: here.eventsPerSec, quotas: { pi4: quotaPercentFor("pi4", here.eventsPerSec), pi3: quotaPercentFor("pi3", here.eventsPerSec) } };
}

// ---------------------------------------------------------------------------------------------

if (process.argv[1] === self) {
  const i = process.argv.indexOf("--workload");
  if (i > 0) {
    console.log(JSON.stringify({ bench: "pi-class-workload", ...nodeWorkload(Number(process.argv[i + 1] ?? 3000)) }));
  } else {
    const s = cgroupSupport();
    console.log(`cgroup: ${s.ok ? `${s.flavour.kind} at ${s.flavour.root}` : `unavailable: ${s.reason}`}`);
    const cal = calibrate();
    if ("error" in cal) {
      console.log(`calibration impossible: ${cal.error}`);
      process.exit(1);
    }
    console.log(`sysbench here: ${cal.hereEventsPerSec} events/s; Pi 4 ${PI_REFERENCE.boards.pi4.eventsPerSec}, Pi 3B+ ${PI_REFERENCE.boards.pi3.eventsPerSec} (${PI_REFERENCE.source})`);
    console.log(`quota: Pi 4 ${cal.quotas.pi4} %, Pi 3B+ ${cal.quotas.pi3} % of one core, period ${DEFAULT_PERIOD_US} µs`);
    if (s.ok)
      for (const board of ["pi4", "pi3"] as const) {
        const c = await crossCheck(cal.quotas[board]);
        console.log(`${board}: sysbench ${c.sysbench.free} → ${c.sysbench.limited} events/s (${c.sysbench.ratioPct} %), node workload ${c.node.freeOpsPerSec} → ${c.node.limitedOpsPerSec} ops/s (${c.node.ratioPct} %)`);
      }
  }
}
