// Scores the real hub on the radar corpus: for each trace a fresh data dir and configuration, the real daemon
// (`startHub`: SQLite journal, serial radars on PTYs), the trace played onto its lines, the journaled alarms and
// device events compared with the trace's labels. Prints the confusion matrix per alarm type, sensitivity,
// false alarms per simulated day, latency after the event, a table per category and every failed trace.
//
//   npm run score:radars -- [--seed 1] [--traces N] [--filter category[,category]] [--name trace[,trace]]
//                           [--max-hours H] [--json out.json] [--jobs 2] [--tick-ms 1000] [--realtime] [--demo] [--quiet]
//
// --traces N picks N traces round-robin over the categories (deterministic); --max-hours drops longer traces;
// --realtime plays at wall-clock speed with the hub on its own clock (pick short traces); --demo plays one
// 15 s fall in real time.
//
// The exit code is always 0: this reports. "TARGETS MET" or the targets missed is the last line.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import type { Envelope } from "../../protocol/envelope.js";
import { ALARM_TYPES, CATEGORIES, corpus, demoTrace, render, type AlarmType, type Category, type Expectation, type Trace, type TraceSpec } from "./generate.js";
import { openPtyPair, playRealTime, playVirtual, RadarEnd, type PlayStats, type PtyPair } from "./player.js";

// --- targets ------------------------------------------------------------------------------------------------

export const TARGETS = {
  /** sensitivity (on time) for these alarm types */
  sensitivity: { fall: 0.95, vital_absent: 0.95 } as Partial<Record<AlarmType, number>>,
  /** false alarms of every type together, per simulated day */
  falseAlarmsPerDay: 0.1,
};

// --- one trace ----------------------------------------------------------------------------------------------

export interface Raised {
  kind: "alarm" | "device";
  type: string;
  device?: string;
  trigger?: string;
  /** ms from the trace's start */
  at: number;
  /** alarms: the rule's own start of the episode (data.since), ms from the trace's start */
  since?: number;
}

export type Outcome = "tp" | "late" | "missed";

export interface ExpectResult {
  type: Expectation["type"];
  device?: string;
  trigger?: string;
  event: number;
  windowMs: number;
  by: number;
  outcome: Outcome;
  raisedAt: number | null;
  raisedTrigger?: string;
  /** raised − event */
  latencyMs: number | null;
  why: string;
}

export interface TraceResult {
  name: string;
  category: Category;
  seed: number;
  durationMs: number;
  ambiguous?: string;
  notes: string;
  expects: ExpectResult[];
  /** alarms nobody expected (or forbidden types), with when */
  falseAlarms: Raised[];
  /** device events nobody expected (an offline of a radar that kept talking) */
  unexpectedDevice: Raised[];
  /** further alarms of an expected type while its condition lasted */
  repeats: number;
  /** every alarm and radar device event the hub journaled */
  raised: Raised[];
  failures: string[];
  warnings: string[];
  play: PlayStats;
  frames: Record<string, { intact: number; damaged: number; decoded: number; replies: number; noiseBytes: number; checksum: number; tail: number; oversize: number }>;
  wallMs: number;
  pass: boolean;
}

export interface RunOptions {
  realtime?: boolean;
  tickMs?: number;
  fineTickMs?: number;
  logLevel?: string;
}

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function hubConfig(trace: Trace, dir: string, pairs: Map<string, PtyPair>): unknown {
  const r = trace.rules;
  return {
    hub: { id: "corpus-hub", dataDir: path.join(dir, "data") },
    log: { level: "warn" },
    radars: trace.radars.map((x) => ({
      id: x.id,
      profile: x.profile,
      path: pairs.get(x.id)!.hubEnd,
      room: x.room,
      ...(x.settleMs !== undefined ? { settleMs: x.settleMs } : {}),
      ...(x.offlineAfterMs !== undefined ? { offlineAfterMs: x.offlineAfterMs } : {}),
      // a radar's port never disappears in the corpus; reopening quickly keeps a glitch short
      reopenMinMs: 100,
      reopenMaxMs: 1000,
    })),
    rooms: trace.rooms,
    rules: { fall: r.fall, stillness: r.stillness, vitals: r.vitals, inactivity: r.inactivity },
  };
}

/** Runs one trace on a fresh hub and scores it. */
export async function runTrace(trace: Trace, o: RunOptions = {}): Promise<TraceResult> {
  const started = Date.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), "radar-corpus-"));
  const pairs = new Map<string, PtyPair>();
  const ends = new Map<string, RadarEnd>();
  let running: RunningHub | null = null;
  const clock = { t: trace.startAt };
  const base = { t: trace.startAt };
  const statusSeen: Array<{ device: string; online: boolean; at: number }> = [];
  try {
    for (const r of trace.radars) {
      const pair = await openPtyPair(path.join(dir, `${r.id}-hub`), path.join(dir, `${r.id}-radar`));
      pairs.set(r.id, pair);
      const end = new RadarEnd(r.id, pair.deviceEnd, r.profile);
      await end.open();
      ends.set(r.id, end);
    }
    const file = path.join(dir, "hub.yaml");
    // JSON is YAML: no hand-written YAML to get wrong
    await writeFile(file, JSON.stringify(hubConfig(trace, dir, pairs), null, 1));
    const log = createLogger({ name: "anxin-hub", level: o.logLevel ?? process.env.ANXIN_CORPUS_LOG ?? "silent", destination: 2 });
    running = await startHub(file, o.realtime ? { log } : { log, now: () => clock.t });
    const hub = running;
    for (const r of hub.radars) r.on("status", (online) => statusSeen.push({ device: r.id, online, at: (o.realtime ? Date.now() : clock.t) - base.t }));
    // The hub asks every radar for a heartbeat and its product information when it opens the port.
    for (const [id, e] of ends) if (!(await e.heard(5000))) throw new Error(`the hub never wrote to ${id}'s line`);

    let play: PlayStats;
    if (o.realtime) {
      const p = await playRealTime(trace, ends, { onStart: (t0) => (base.t = t0) });
      play = p;
    } else {
      const byId = new Map(hub.radars.map((r) => [r.id, r]));
      play = await playVirtual(
        trace,
        ends,
        {
          setNow: (t) => (clock.t = t),
          tick: () => hub.hub.tickNow(),
          bytesIn: (id) => byId.get(id)?.stats().bytesIn ?? 0,
          queriesSent: (id) => byId.get(id)?.stats().queriesSent ?? 0,
        },
        { tickMs: o.tickMs, fineTickMs: o.fineTickMs },
      );
    }
    // let the last appends reach the journal's worker before reading it back
    await new Promise((r) => setTimeout(r, 20));
    const events = (await hub.journal.pending(1_000_000, Number.MAX_SAFE_INTEGER)).map((e) => e.envelope).sort((a, b) => a.seq - b.seq);
    const frames: TraceResult["frames"] = {};
    for (const r of hub.radars) {
      const st = r.stats();
      const end = ends.get(r.id)!;
      frames[r.id] = {
        intact: trace.framesIntact[r.id] ?? 0,
        damaged: trace.framesDamaged[r.id] ?? 0,
        decoded: st.frames,
        replies: end.repliesWritten,
        noiseBytes: st.counters.noiseBytes,
        checksum: st.counters.checksum,
        tail: st.counters.tail,
        oversize: st.counters.oversize,
      };
    }
    return judge(trace, events, statusSeen, base.t, play, frames, Date.now() - started);
  } finally {
    await running?.stop().catch(() => {});
    for (const e of ends.values()) await e.close().catch(() => {});
    for (const p of pairs.values()) await p.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** The journal's alarms and device events as trace times. */
function raisedFrom(events: Envelope[], statusSeen: Array<{ device: string; online: boolean; at: number }>, base: number, radarIds: Set<string>): { raised: Raised[]; warnings: string[] } {
  const raised: Raised[] = [];
  const warnings: string[] = [];
  const seen = new Map<string, number>();
  for (const e of events) {
    const data = (e.data ?? {}) as { since?: unknown; afterMs?: unknown; trigger?: unknown };
    if (e.kind === "alarm" && (ALARM_TYPES as readonly string[]).includes(e.type)) {
      // The rule's own clock: since + afterMs is when it raised, in hub time (the journal's ts is the
      // journal's clock, which need not be the hub's).
      const at = typeof data.since === "number" && typeof data.afterMs === "number" ? data.since + data.afterMs : e.ts;
      raised.push({ kind: "alarm", type: e.type, device: e.device, trigger: typeof data.trigger === "string" ? data.trigger : undefined, at: at - base, ...(typeof data.since === "number" ? { since: data.since - base } : {}) });
    } else if (e.kind === "alarm") {
      warnings.push(`unexpected alarm type ${e.type} from ${e.device ?? "?"}`);
      raised.push({ kind: "alarm", type: e.type, device: e.device, at: e.ts - base });
    } else if (e.kind === "device" && (e.type === "offline" || e.type === "online") && e.device && radarIds.has(e.device)) {
      // device events carry no hub time: take the k-th matching status change the radar emitted
      const key = `${e.device}/${e.type}`;
      const k = seen.get(key) ?? 0;
      seen.set(key, k + 1);
      const s = statusSeen.filter((x) => x.device === e.device && x.online === (e.type === "online"))[e.type === "online" ? k + 1 : k];
      // (the first "online" of each radar is the first frame, which the hub does not journal)
      raised.push({ kind: "device", type: e.type, device: e.device, at: s ? s.at : e.ts - base });
      if (!s) warnings.push(`no status timestamp for ${key} #${k + 1}`);
    }
  }
  raised.sort((a, b) => a.at - b.at);
  return { raised, warnings };
}

function judge(
  trace: Trace,
  events: Envelope[],
  statusSeen: Array<{ device: string; online: boolean; at: number }>,
  base: number,
  play: PlayStats,
  frames: TraceResult["frames"],
  wallMs: number,
): TraceResult {
  const { raised, warnings } = raisedFrom(events, statusSeen, base, new Set(trace.radars.map((r) => r.id)));
  const used = new Set<Raised>();
  const failures: string[] = [];
  const expects: ExpectResult[] = [];
  let repeats = 0;
  for (const e of [...trace.expect].sort((a, b) => a.event - b.event)) {
    const earliest = e.earliest ?? e.event;
    const match = (x: Raised) => !used.has(x) && x.type === e.type && (e.device === undefined || x.device === e.device) && x.at >= earliest && x.at <= e.until + 5000;
    const first = raised.find(match);
    let outcome: Outcome = "missed";
    if (first) {
      used.add(first);
      outcome = first.at <= e.by ? "tp" : "late";
      for (const x of raised)
        if (match(x) && x.at >= e.event) {
          used.add(x);
          repeats++;
        }
    }
    const r: ExpectResult = {
      type: e.type,
      device: e.device,
      trigger: e.trigger,
      event: e.event,
      windowMs: e.windowMs,
      by: e.by,
      outcome,
      raisedAt: first?.at ?? null,
      raisedTrigger: first?.trigger,
      latencyMs: first ? first.at - e.event : null,
      why: e.why,
    };
    expects.push(r);
    const what = `${e.type}${e.device ? ` on ${e.device}` : ""}`;
    if (outcome === "missed") failures.push(`${what} not raised (due ${sec(e.by)}: event ${sec(e.event)} + window ${sec(e.windowMs)} + 2 s; ${e.why})`);
    else if (outcome === "late") failures.push(`${what} late: raised at ${sec(first!.at)}, due by ${sec(e.by)} (event ${sec(e.event)}, ${sec(first!.at - e.event - e.windowMs)} past the window)`);
    if (first && e.trigger && first.trigger && first.trigger !== e.trigger) warnings.push(`${what} raised by trigger ${first.trigger}, expected ${e.trigger}`);
  }
  const falseAlarms = raised.filter((x) => x.kind === "alarm" && !used.has(x));
  const unexpectedDevice = raised.filter((x) => x.kind === "device" && !used.has(x));
  for (const x of falseAlarms) failures.push(`false alarm ${x.type}${x.trigger ? ` (${x.trigger})` : ""} from ${x.device ?? "?"} at ${sec(x.at)}`);
  for (const x of unexpectedDevice) failures.push(`unexpected ${x.type} of ${x.device} at ${sec(x.at)}`);
  if (play.unread > 0) failures.push(`the hub never read ${play.unread} bytes written to its lines (${play.catchUpTimeouts} catch-up timeouts)`);
  if (play.queriesUnheard > 0) failures.push(`${play.queriesUnheard} queries the hub sent never reached the player`);
  for (const [id, f] of Object.entries(frames)) {
    if (f.decoded !== f.intact + f.replies) warnings.push(`${id}: hub decoded ${f.decoded} frames, ${f.intact} intact + ${f.replies} replies were sent (${f.damaged} damaged)`);
  }
  return {
    name: trace.name,
    category: trace.category,
    seed: trace.seed,
    durationMs: trace.durationMs,
    ambiguous: trace.ambiguous,
    notes: trace.notes,
    expects,
    falseAlarms,
    unexpectedDevice,
    repeats,
    raised,
    failures,
    warnings,
    play,
    frames,
    wallMs,
    pass: failures.length === 0,
  };
}

// --- the corpus ---------------------------------------------------------------------------------------------

/** N traces spread over the categories: round-robin in corpus order, so any N is deterministic and stratified. */
export function stratified(specs: TraceSpec[], n: number): TraceSpec[] {
  const by = new Map<Category, TraceSpec[]>();
  for (const s of specs) by.set(s.category, [...(by.get(s.category) ?? []), s]);
  const out: TraceSpec[] = [];
  for (let round = 0; out.length < n; round++) {
    let any = false;
    for (const list of by.values()) {
      const s = list[round];
      if (s && out.length < n) {
        out.push(s);
        any = true;
      }
    }
    if (!any) break;
  }
  const keep = new Set(out);
  return specs.filter((s) => keep.has(s));
}

export interface CorpusOptions extends RunOptions {
  seed?: number;
  /** a stratified subset of this many traces */
  traces?: number;
  /** only these categories */
  categories?: string[];
  /** only these trace names */
  names?: string[];
  /** only traces at most this long (simulated) */
  maxDurationMs?: number;
  jobs?: number;
  onTrace?: (r: TraceResult, done: number, total: number) => void;
}

export async function runCorpus(o: CorpusOptions = {}): Promise<Report> {
  const seed = o.seed ?? 1;
  let specs = corpus(seed);
  if (o.categories?.length) {
    const bad = o.categories.filter((c) => !(CATEGORIES as readonly string[]).includes(c));
    if (bad.length) throw new Error(`unknown categories: ${bad.join(", ")} (known: ${CATEGORIES.join(", ")})`);
    specs = specs.filter((s) => o.categories!.includes(s.category));
  }
  if (o.names?.length) specs = specs.filter((s) => o.names!.includes(s.name));
  if (o.maxDurationMs !== undefined) specs = specs.filter((s) => s.durationMs <= o.maxDurationMs!);
  if (o.traces !== undefined) specs = stratified(specs, o.traces);
  const started = Date.now();
  const results = new Array<TraceResult>(specs.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < specs.length) {
      const i = next++;
      const trace = render(specs[i]!);
      let r: TraceResult;
      try {
        r = await runTrace(trace, o);
      } catch (e) {
        r = crashed(trace, e as Error);
      }
      results[i] = r;
      o.onTrace?.(r, ++done, specs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.jobs ?? 2) }, worker));
  return report(seed, results, Date.now() - started, o);
}

function crashed(trace: Trace, e: Error): TraceResult {
  return {
    name: trace.name,
    category: trace.category,
    seed: trace.seed,
    durationMs: trace.durationMs,
    ambiguous: trace.ambiguous,
    notes: trace.notes,
    expects: trace.expect.map((x) => ({ type: x.type, device: x.device, trigger: x.trigger, event: x.event, windowMs: x.windowMs, by: x.by, outcome: "missed" as const, raisedAt: null, latencyMs: null, why: x.why })),
    falseAlarms: [],
    unexpectedDevice: [],
    repeats: 0,
    raised: [],
    failures: [`the run failed: ${e.message}`],
    warnings: [],
    play: { chunks: 0, bytes: 0, ticks: 0, unread: 0, catchUpTimeouts: 0, queriesUnheard: 0, wallMs: 0 },
    frames: {},
    wallMs: 0,
    pass: false,
  };
}

// --- the report ---------------------------------------------------------------------------------------------

export interface TypeRow {
  type: string;
  expected: number;
  tp: number;
  late: number;
  missed: number;
  /** false alarms (events) of this type */
  fp: number;
  fpPerDay: number;
  sensitivity: number | null;
  /** traces where the type was forbidden: raised at least once (FP traces) or never (TN traces) */
  fpTraces: number;
  tnTraces: number;
}

export interface LatencyRow {
  /** type, or type/trigger */
  key: string;
  /** the window(s) in force */
  windowMs: { min: number; max: number };
  detected: number;
  p50: number;
  p95: number;
  max: number;
  /** the largest latency beyond the window in force (the hub's own delay; the target is ≤ 2 s) */
  maxOverWindow: number;
}

export interface Report {
  seed: number;
  machine: { nproc: number; cpu: string; node: string };
  mode: string;
  traces: number;
  scored: number;
  simulatedDays: number;
  wallMs: number;
  rows: TypeRow[];
  deviceRows: TypeRow[];
  latency: LatencyRow[];
  totalFalseAlarms: number;
  falseAlarmsPerDay: number;
  categories: Array<{ category: string; traces: number; pass: number; expected: number; tp: number; fn: number; fp: number; simHours: number; wallS: number }>;
  failed: Array<{ name: string; category: string; failures: string[] }>;
  ambiguous: Array<{ name: string; why: string; falseAlarms: string[] }>;
  warnings: Array<{ name: string; warnings: string[] }>;
  targets: { met: boolean; missed: string[] };
  results: TraceResult[];
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

function row(type: string, results: TraceResult[], days: number, alarm: boolean): TypeRow {
  const ex = results.flatMap((r) => r.expects.filter((e) => e.type === type));
  const fp = results.reduce((n, r) => n + (alarm ? r.falseAlarms : r.unexpectedDevice).filter((x) => x.type === type).length, 0);
  const negatives = results.filter((r) => !r.expects.some((e) => e.type === type));
  const fpTraces = negatives.filter((r) => (alarm ? r.falseAlarms : r.unexpectedDevice).some((x) => x.type === type)).length;
  return {
    type,
    expected: ex.length,
    tp: ex.filter((e) => e.outcome === "tp").length,
    late: ex.filter((e) => e.outcome === "late").length,
    missed: ex.filter((e) => e.outcome === "missed").length,
    fp,
    fpPerDay: days > 0 ? fp / days : 0,
    sensitivity: ex.length ? ex.filter((e) => e.outcome === "tp").length / ex.length : null,
    fpTraces,
    tnTraces: negatives.length - fpTraces,
  };
}

function cpuModel(): string {
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return m?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
  } catch {
    return os.cpus()[0]?.model ?? "unknown";
  }
}

export function report(seed: number, results: TraceResult[], wallMs: number, o: RunOptions & { jobs?: number } = {}): Report {
  const scored = results.filter((r) => !r.ambiguous);
  const days = scored.reduce((n, r) => n + r.durationMs, 0) / 86_400_000;
  const rows = ALARM_TYPES.map((t) => row(t, scored, days, true));
  const deviceRows = (["offline", "online"] as const).map((t) => row(t, scored, days, false));
  const totalFalseAlarms = rows.reduce((n, r) => n + r.fp, 0);
  const groups = new Map<string, ExpectResult[]>();
  for (const e of scored.flatMap((r) => r.expects)) {
    if (e.latencyMs === null) continue;
    const key = e.trigger ? `${e.type}/${e.trigger}` : e.type;
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  const latency: LatencyRow[] = [...groups].map(([key, es]) => {
    const l = es.map((e) => e.latencyMs!);
    return {
      key,
      windowMs: { min: Math.min(...es.map((e) => e.windowMs)), max: Math.max(...es.map((e) => e.windowMs)) },
      detected: es.length,
      p50: pct(l, 50),
      p95: pct(l, 95),
      max: Math.max(...l),
      maxOverWindow: Math.max(...es.map((e) => e.latencyMs! - e.windowMs)),
    };
  });
  const categories = CATEGORIES.map((c) => {
    const rs = results.filter((r) => r.category === c);
    const ex = rs.flatMap((r) => r.expects);
    return {
      category: c,
      traces: rs.length,
      pass: rs.filter((r) => r.pass).length,
      expected: ex.length,
      tp: ex.filter((e) => e.outcome === "tp").length,
      fn: ex.filter((e) => e.outcome !== "tp").length,
      fp: rs.reduce((n, r) => n + r.falseAlarms.length + r.unexpectedDevice.length, 0),
      simHours: rs.reduce((n, r) => n + r.durationMs, 0) / 3_600_000,
      wallS: rs.reduce((n, r) => n + r.wallMs, 0) / 1000,
    };
  }).filter((c) => c.traces > 0);
  const missed: string[] = [];
  for (const [t, min] of Object.entries(TARGETS.sensitivity)) {
    const r = rows.find((x) => x.type === t)!;
    if (r.sensitivity === null) missed.push(`${t}: no ${t} traces in this run, sensitivity not measured`);
    else if (r.sensitivity < min) missed.push(`${t} sensitivity ${(r.sensitivity * 100).toFixed(1)} % < ${min * 100} %`);
  }
  const fpd = days > 0 ? totalFalseAlarms / days : 0;
  if (fpd > TARGETS.falseAlarmsPerDay) missed.push(`false alarms ${fpd.toFixed(2)} per simulated day > ${TARGETS.falseAlarmsPerDay}`);
  for (const r of rows) if (r.late > 0) missed.push(`${r.type}: ${r.late} alarm(s) later than window + 2 s`);
  return {
    seed,
    machine: { nproc: os.cpus().length, cpu: cpuModel(), node: process.version },
    mode: o.realtime ? "real time" : `virtual clock, tick ${o.tickMs ?? 1000} ms (${o.fineTickMs ?? 250} ms in the 3 s before a deadline), ${o.jobs ?? 2} traces at a time`,
    traces: results.length,
    scored: scored.length,
    simulatedDays: days,
    wallMs,
    rows,
    deviceRows,
    latency,
    totalFalseAlarms,
    falseAlarmsPerDay: fpd,
    categories,
    failed: scored.filter((r) => !r.pass).map((r) => ({ name: r.name, category: r.category, failures: r.failures })),
    ambiguous: results.filter((r) => r.ambiguous).map((r) => ({ name: r.name, why: r.ambiguous!, falseAlarms: r.falseAlarms.map((x) => `${x.type} (${x.trigger ?? "?"}) at ${sec(x.at)}`) })),
    warnings: results.filter((r) => r.warnings.length).map((r) => ({ name: r.name, warnings: r.warnings })),
    targets: { met: missed.length === 0, missed },
    results,
  };
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
const fmtS = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export function formatReport(r: Report): string {
  const L: string[] = [];
  L.push(`Radar corpus, seed ${r.seed}: ${r.traces} traces (${r.scored} scored, ${r.traces - r.scored} ambiguous reported apart), ${r.simulatedDays.toFixed(2)} simulated days scored`);
  L.push(`Run: ${r.mode}; wall ${(r.wallMs / 1000).toFixed(1)} s on ${r.machine.nproc} × ${r.machine.cpu}, node ${r.machine.node}`);
  L.push("");
  L.push("Per alarm type (TP: raised by event + window in force + 2 s; late: raised after that; FP: raised where not expected)");
  L.push(`${"type".padEnd(15)}${pad("expected", 9)}${pad("TP", 5)}${pad("late", 6)}${pad("missed", 8)}${pad("sensitivity", 13)}${pad("FP", 5)}${pad("FP/day", 8)}`);
  for (const x of [...r.rows, ...r.deviceRows])
    L.push(`${x.type.padEnd(15)}${pad(x.expected, 9)}${pad(x.tp, 5)}${pad(x.late, 6)}${pad(x.missed, 8)}${pad(x.sensitivity === null ? "-" : `${(x.sensitivity * 100).toFixed(1)} %`, 13)}${pad(x.fp, 5)}${pad(x.fpPerDay.toFixed(2), 8)}`);
  L.push(`${"all alarms".padEnd(15)}${pad("", 41)}${pad(r.totalFalseAlarms, 5)}${pad(r.falseAlarmsPerDay.toFixed(2), 8)}`);
  L.push("");
  L.push("Latency after the event (raised − first intact frame showing the condition; TP and late), and beyond the window");
  L.push(`${"type/trigger".padEnd(28)}${pad("window", 14)}${pad("n", 4)}${pad("p50", 10)}${pad("p95", 10)}${pad("max", 10)}${pad("max−window", 12)}`);
  for (const x of r.latency) {
    const w = x.windowMs.min === x.windowMs.max ? fmtS(x.windowMs.min) : `${fmtS(x.windowMs.min)}–${fmtS(x.windowMs.max)}`;
    L.push(`${x.key.padEnd(28)}${pad(w, 14)}${pad(x.detected, 4)}${pad(fmtS(x.p50), 10)}${pad(fmtS(x.p95), 10)}${pad(fmtS(x.max), 10)}${pad(fmtS(x.maxOverWindow), 12)}`);
  }
  L.push("");
  L.push("Confusion matrix per alarm type (traces; negatives are the traces that do not expect the type)");
  L.push(`${"type".padEnd(15)}${pad("TP", 6)}${pad("FN", 6)}${pad("FP", 6)}${pad("TN", 6)}`);
  for (const x of r.rows) L.push(`${x.type.padEnd(15)}${pad(x.tp, 6)}${pad(x.late + x.missed, 6)}${pad(x.fpTraces, 6)}${pad(x.tnTraces, 6)}`);
  L.push("");
  L.push("Per category");
  L.push(`${"category".padEnd(20)}${pad("traces", 7)}${pad("pass", 6)}${pad("exp.", 6)}${pad("TP", 5)}${pad("FN", 5)}${pad("FP", 5)}${pad("sim h", 8)}${pad("wall s", 8)}`);
  for (const c of r.categories) L.push(`${c.category.padEnd(20)}${pad(c.traces, 7)}${pad(c.pass, 6)}${pad(c.expected, 6)}${pad(c.tp, 5)}${pad(c.fn, 5)}${pad(c.fp, 5)}${pad(c.simHours.toFixed(2), 8)}${pad(c.wallS.toFixed(1), 8)}`);
  L.push("");
  if (r.failed.length) {
    L.push(`Failed traces (${r.failed.length})`);
    for (const f of r.failed) for (const why of f.failures) L.push(`  ${f.name} [${f.category}]: ${why}`);
  } else L.push("Failed traces: none");
  if (r.ambiguous.length) {
    L.push("");
    L.push("Ambiguous by construction (not in the figures above)");
    for (const a of r.ambiguous) L.push(`  ${a.name}: ${a.falseAlarms.length ? `raised ${a.falseAlarms.join(", ")}` : "nothing raised"} — ${a.why}`);
  }
  if (r.warnings.length) {
    L.push("");
    L.push("Warnings");
    for (const w of r.warnings) for (const x of w.warnings) L.push(`  ${w.name}: ${x}`);
  }
  L.push("");
  L.push(r.targets.met ? "TARGETS MET" : `TARGETS MISSED: ${r.targets.missed.join("; ")}`);
  return L.join("\n");
}

// --- CLI ----------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: "string", default: "1" },
      traces: { type: "string" },
      filter: { type: "string" },
      name: { type: "string" },
      "max-hours": { type: "string" },
      json: { type: "string" },
      jobs: { type: "string", default: "2" },
      "tick-ms": { type: "string", default: "1000" },
      realtime: { type: "boolean", default: false },
      demo: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
    },
  });
  const num = (v: string | undefined, what: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${what} must be a number, got ${v}`);
    return n;
  };
  if (values.demo) {
    // one short fall in real time on real PTYs: what a demo shows
    const t = await runTrace(demoTrace(num(values.seed, "seed")), { realtime: true });
    const r = report(num(values.seed, "seed") ?? 1, [t], t.wallMs, { realtime: true });
    console.log(formatReport(r));
    return;
  }
  const r = await runCorpus({
    seed: num(values.seed, "seed"),
    traces: num(values.traces, "traces"),
    categories: values.filter?.split(",").map((s) => s.trim()).filter(Boolean),
    names: values.name?.split(",").map((s) => s.trim()).filter(Boolean),
    maxDurationMs: values["max-hours"] === undefined ? undefined : num(values["max-hours"], "max-hours")! * 3_600_000,
    jobs: num(values.jobs, "jobs"),
    tickMs: num(values["tick-ms"], "tick-ms"),
    realtime: values.realtime,
    onTrace: values.quiet
      ? undefined
      : (t, done, total) => process.stderr.write(`[${pad(done, 3)}/${total}] ${t.pass ? "ok  " : "FAIL"} ${t.name.padEnd(30)} ${pad((t.durationMs / 60000).toFixed(1), 7)} sim min ${pad((t.wallMs / 1000).toFixed(1), 6)} s${t.pass ? "" : `  ${t.failures[0]}`}\n`),
  });
  console.log(formatReport(r));
  if (values.json) {
    await writeFile(values.json, JSON.stringify(r, null, 1));
    console.log(`(details in ${values.json})`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (e: Error) => {
      console.error(e.stack ?? e.message);
      // a crash is reported too; the CLI's exit code stays 0 (it reports, it does not gate)
      console.log(`TARGETS MISSED: the run failed: ${e.message}`);
      process.exit(0);
    },
  );
}
