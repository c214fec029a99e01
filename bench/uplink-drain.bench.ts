// Uplink benchmark: how fast a hub empties its journal into the relay after an outage. A real Journal in a
// temp dir holds 20,000 events written while the relay was away (time stamps spread over the last 40
// minutes); then the real Uplink (gateway/src/uplink) connects to a relay (embedded broker, SQLite; also
// PostgreSQL when ANXIN_TEST_PG_URL is set) and drains it. The clock runs from Uplink.start() (the
// connection attempt) until the uplink has deleted the last acknowledged row; every figure is checked
// against the relay's store (20,000 rows) and the journal (0 rows). Window sizes 32, 256 (default), 512.
// Two layouts: the relay in this same process (one event loop for hub and relay), and the relay in a
// child process (this file with --relay-child), as it is in the field, where they are different machines.
// A third layout measures the hub alone: the real embedded broker with a stand-in for the relay that acks
// each event on receipt, so the figure is what the hub's journal and uplink can drain.
// Run: node --import tsx bench/uplink-drain.bench.ts
// Knobs: BENCH_DRAIN_EVENTS (20,000), BENCH_DRAIN_WINDOWS (32,256,512), BENCH_DRAIN_LAYOUTS=child (only the
// relay-in-child layouts), BENCH_DRAIN_BATCH_WAIT (the relay's batchMaxWaitMs), BENCH_DRAIN_PROFILE=<dir>
// (a CPU profile of the relay's process), BENCH_DRAIN_VERIFY_THREADS=0,default (the relay's Ingest
// verifyThreads: a list, run one after the other for each window and store; unset: the relay's default),
// BENCH_DRAIN_RELAY_FLAGS="--max-semi-space-size=32" (node flags for the relay's process only).
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { pino } from "pino";
import type { EventDraft } from "../protocol/envelope.js";
import { signAck, type EnrolResponse } from "../protocol/messages.js";
import { Journal } from "../gateway/src/journal/journal.js";
import { Uplink } from "../gateway/src/uplink/uplink.js";
import { EmbeddedBroker } from "../relay/src/broker/embedded.js";
import { defaultVerifyThreads, Ingest } from "../relay/src/ingest/ingest.js";
import { createMetrics } from "../relay/src/metrics.js";
import { startRelayForTest, type RelayRig } from "../test/support/relay-rig.js";
import { machineInfo, r2 } from "./support.js";

const EVENTS = Number(process.env.BENCH_DRAIN_EVENTS ?? 20_000);
const WINDOWS = (process.env.BENCH_DRAIN_WINDOWS ?? "32,256,512").split(",").map(Number);
/** BENCH_DRAIN_LAYOUTS=child runs only the relay-in-child layout (profiling). */
const LAYOUTS = (["same process", "relay in child"] as const).filter((l) => !process.env.BENCH_DRAIN_LAYOUTS || (l === "relay in child") === (process.env.BENCH_DRAIN_LAYOUTS === "child"));
/** BENCH_DRAIN_PROFILE=<dir> writes a CPU profile of the relay's process there. */
const PROFILE_DIR = process.env.BENCH_DRAIN_PROFILE;
/** Node flags for the relay's child process only (the hub keeps this process's flags). */
const RELAY_FLAGS = (process.env.BENCH_DRAIN_RELAY_FLAGS ?? "").split(" ").filter(Boolean);
const PG_URL = process.env.ANXIN_TEST_PG_URL;
const OUTAGE_MS = 40 * 60_000;
const r1 = (x: number): number => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** "none": a stand-in that acks every event on receipt (no checks, no store), to measure the hub alone. */
type StoreKind = "sqlite" | "postgres" | "none" | "sqlite+mosquitto";
/** With it, a layout with the relay on an external broker (the machine's Mosquitto) and SQLite. */
const MQTT_URL = process.env.ANXIN_TEST_MQTT_URL;

interface RelayStats {
  committed: number;
  skewed: number;
  historical: number;
  commits: number;
  cpuMs: number;
  /** How busy the relay's main thread (event loop) was during the drain, in %; null in the same process. */
  loopBusyPct?: number | null;
  /** The relay process's CPU by thread name (Linux /proc), ms per 1,000 events: main thread vs GC, JIT, libuv. */
  threadsMsPer1k?: Record<string, number> | null;
}

/** A relay for one run, in this process or in the child. */
interface RelayHandle {
  mqttUrl: string;
  enrol: EnrolResponse;
  /** Starts counting the relay process's CPU (nothing to do when the relay is this process). */
  markStart(): void;
  finish(): Promise<RelayStats>;
}

// ------------------------------------------------------------------------------------- relay (either side)

interface LocalRelay {
  rig: RelayRig;
  enrol: EnrolResponse;
  schema: string | null;
}

interface StandIn {
  broker: EmbeddedBroker;
  enrol: EnrolResponse;
  acked: Set<string>;
}

/**
 * The hub's side alone: the real embedded broker, and in place of the relay a subscriber that acks each
 * event as it arrives (in one ack per turn of the event loop), checking and storing nothing.
 */
async function startStandIn(hub: string): Promise<StandIn> {
  const password = randomBytes(16).toString("hex");
  const broker = await EmbeddedBroker.start({
    host: "127.0.0.1",
    port: 0,
    verifyCredentials: async (u, p) => (u === hub && p === password ? hub : null),
    metrics: createMetrics(),
    log: pino({ level: "silent" }),
    maxPacketBytes: 1 << 20,
  });
  const link = broker.inProcess();
  const acked = new Set<string>();
  const key = randomBytes(32);
  let ids: string[] = [];
  await link.subscribe(`anxin/v1/${hub}/evt`, (_t, payload) => {
    const id = (JSON.parse(payload.toString("utf8")) as { id: string }).id;
    acked.add(id);
    if (ids.push(id) > 1) return;
    setImmediate(() => {
      const out = ids;
      ids = [];
      // Signed as the relay signs it: the hub acts on no other ack.
      void link.publish(`anxin/v1/${hub}/ack`, Buffer.from(JSON.stringify(signAck(hub, { ids: out, now: Date.now() }, key))), 1);
    });
  });
  const enrol = { hub, key: key.toString("base64"), heartbeatS: 60, mqtt: { url: broker.url, username: hub, password } };
  return { broker, enrol, acked };
}

/** The verifyThreads settings to compare; [undefined] leaves the relay's default. */
const VERIFY_THREADS: Array<number | undefined> = process.env.BENCH_DRAIN_VERIFY_THREADS
  ? process.env.BENCH_DRAIN_VERIFY_THREADS.split(",").map((v) => (v === "default" ? defaultVerifyThreads() : Number(v)))
  : [undefined];

async function startLocalRelay(store: StoreKind, hub: string, verifyThreads?: number): Promise<LocalRelay> {
  const schema = store === "postgres" ? `bench_${randomBytes(4).toString("hex")}` : null;
  // `path: undefined` drops the rig's SQLite path, which its deep merge would otherwise keep beside `url`.
  const ingest = process.env.BENCH_DRAIN_BATCH_WAIT ? { ingest: { batchMaxWaitMs: Number(process.env.BENCH_DRAIN_BATCH_WAIT) } } : {};
  const parts = verifyThreads === undefined ? {} : { parts: { ingest: (o: ConstructorParameters<typeof Ingest>[0]) => new Ingest({ ...o, verifyThreads }) } };
  const broker = store === "sqlite+mosquitto" ? { broker: { kind: "external", url: MQTT_URL, sharedGroup: `drain${randomBytes(3).toString("hex")}`, host: undefined, port: undefined, publicUrl: undefined } } : {};
  const rig = await startRelayForTest({ config: { ...ingest, ...broker, ...(schema ? { store: { kind: "postgres", url: PG_URL, schema, path: undefined } } : {}) }, ...parts });
  // With an external broker the hub connects where enrolment tells it to, not to the rig's embedded port.
  if (store === "sqlite+mosquitto") await rig.relay.session.whenConnected(5000);
  // The threads load in the background (messages are checked inline meanwhile); measure them loaded.
  await rig.relay.ingest._verifyThreadsReady();
  const enrol = await rig.relay.registry.provisionDirect(hub);
  return { rig, enrol, schema };
}

/** CPU ticks (user + system) of this process's threads, summed by thread name; null off Linux. */
function threadTicks(): Map<string, number> | null {
  try {
    const out = new Map<string, number>();
    for (const tid of readdirSync("/proc/self/task")) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      // Node's own threads are all called "node": the main thread is the one whose id is the process's.
      const name = Number(tid) === process.pid ? "main" : stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).replace(/[0-9]+$/, "").trim();
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(name, (out.get(name) ?? 0) + Number(f[11]) + Number(f[12]));
    }
    return out;
  } catch {
    return null;
  }
}

function threadsPer1k(from: Map<string, number> | null, to: Map<string, number> | null, events: number): Record<string, number> | null {
  if (!from || !to) return null;
  const out: Record<string, number> = {};
  // Ticks are 10 ms (USER_HZ 100): coarse, but the split is what is wanted.
  for (const [name, t] of to) if (t - (from.get(name) ?? 0) > 0) out[name] = r1(((t - (from.get(name) ?? 0)) * 10 * 1000) / events);
  return out;
}

async function finishLocalRelay(l: LocalRelay, cpuFrom: NodeJS.CpuUsage | null, eluFrom: EventLoopUtilization | null = null, ticksFrom: Map<string, number> | null = null): Promise<RelayStats> {
  const cpu = cpuFrom ? process.cpuUsage(cpuFrom) : null;
  const ticksTo = cpuFrom ? threadTicks() : null;
  const loopBusyPct = eluFrom ? r1(performance.eventLoopUtilization(eluFrom).utilization * 100) : null;
  const m = l.rig.relay.metrics;
  const value = async (c: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await c.get()).values.reduce((a, v) => a + v.value, 0);
  const batches = (await m.batchSize.get()).values.find((v) => (v as { metricName?: string }).metricName === "anxin_relay_batch_events_count")?.value ?? 0;
  const committed = await l.rig.relay.store.countEvents();
  const rows = await l.rig.relay.store.listEvents({ limit: 100_000 });
  const stats: RelayStats = {
    committed,
    skewed: await value(m.eventsSkewed),
    historical: rows.filter((r) => r.historical).length,
    commits: batches,
    cpuMs: cpu ? (cpu.user + cpu.system) / 1000 : NaN,
    loopBusyPct,
    threadsMsPer1k: threadsPer1k(ticksFrom, ticksTo, committed),
  };
  await l.rig.stop();
  if (l.schema) {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${l.schema}" CASCADE`);
    await c.end();
  }
  return stats;
}

type ToChild = { t: "start"; store: StoreKind; hub: string; verifyThreads?: number } | { t: "mark" } | { t: "finish" } | { t: "exit" };
type FromChild = { t: "started"; mqttUrl: string; enrol: EnrolResponse } | { t: "finished"; stats: RelayStats } | { t: "error"; message: string };

async function relayChild(): Promise<void> {
  process.on("disconnect", () => process.exit(0));
  let current: LocalRelay | null = null;
  let standIn: StandIn | null = null;
  let cpu0: NodeJS.CpuUsage | null = null;
  let elu0: EventLoopUtilization | null = null;
  let ticks0: Map<string, number> | null = null;
  const send = (m: FromChild) => process.send?.(m);
  process.on("message", (m: ToChild) => {
    void (async () => {
      try {
        if (m.t === "start" && m.store === "none") {
          standIn = await startStandIn(m.hub);
          send({ t: "started", mqttUrl: standIn.broker.url, enrol: standIn.enrol });
        } else if (m.t === "finish" && standIn) {
          const cpu = cpu0 ? process.cpuUsage(cpu0) : null;
          const stats: RelayStats = { committed: standIn.acked.size, skewed: 0, historical: 0, commits: 0, cpuMs: cpu ? (cpu.user + cpu.system) / 1000 : NaN };
          await standIn.broker.close();
          standIn = null;
          send({ t: "finished", stats });
        } else if (m.t === "start") {
          current = await startLocalRelay(m.store, m.hub, m.verifyThreads);
          send({ t: "started", mqttUrl: current.enrol.mqtt.url, enrol: current.enrol });
        } else if (m.t === "mark") {
          cpu0 = process.cpuUsage();
          elu0 = performance.eventLoopUtilization();
          ticks0 = threadTicks();
        } else if (m.t === "finish" && current) {
          const stats = await finishLocalRelay(current, cpu0, elu0, ticks0);
          current = null;
          send({ t: "finished", stats });
        } else if (m.t === "exit") {
          process.exit(0);
        }
      } catch (e) {
        send({ t: "error", message: (e as Error).message });
      }
    })();
  });
}

// ---------------------------------------------------------------------------------------------- the hub

function outageDrafts(n: number, now: number): EventDraft[] {
  // What a hub journals while cut off: mostly readings, heartbeats, device events, a few alarms.
  const out: EventDraft[] = [];
  for (let i = 0; i < n; i++) {
    const ts = Math.round(now - OUTAGE_MS + (i * OUTAGE_MS) / n);
    const r = (i * 7919) % 100;
    if (r < 3)
      out.push({ ts, kind: "alarm", type: "gas", severity: "critical", device: "gas-kitchen-1", room: "kitchen", data: { lel: 23.5, setpoint: 20 }, actions: [{ action: "valve_closed", target: "valve-1", ok: true, at: ts }] });
    else if (r < 13) out.push({ ts, kind: "device", type: "offline", severity: "warning", device: "radar-bedroom", room: "bedroom", data: { component: "device", reason: "timeout" } });
    else if (r < 25) out.push({ ts, kind: "heartbeat", type: "heartbeat", severity: "info", data: { uptimeS: Math.round(i / 2), journalRows: i } });
    else out.push({ ts, kind: "reading", type: "detector_level", severity: "info", device: "co-1", room: "kitchen", data: { co_ppm: 3 + (i % 5), alarm: false, fault: false } });
  }
  return out;
}

interface RunResult {
  layout: "same process" | "relay in child";
  store: StoreKind;
  /** The relay's Ingest verifyThreads, when the run set it. */
  verifyThreads?: number;
  window: number;
  events: number;
  fillSeconds: number;
  connectMs: number;
  firstAckMs: number;
  drainSeconds: number;
  perSec: number;
  perSecAfterConnect: number;
  sent: number;
  resent: number;
  /** Rows the journal deleted on acks (counted by the bench) and what the uplink's status says. */
  deleted: number;
  uplinkAckedFigure: number;
  journalRowsAfter: number;
  relayCommitted: number;
  relayCommits: number;
  meanBatch: number;
  relayFlaggedSkewed: number;
  storedHistorical: number;
  hubCpuPct: number;
  relayCpuPct: number | null;
  /** The relay process's CPU (all threads) per 1,000 events. */
  relayCpuMsPer1k: number | null;
  relayLoopBusyPct: number | null;
  relayThreadsMsPer1k: Record<string, number> | null;
}

let runNo = 0;

async function drainOnce(layout: RunResult["layout"], store: StoreKind, window: number, relay: (hub: string) => Promise<RelayHandle>): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), "anxin-drain-bench-"));
  const hub = `drain-hub-${++runNo}`;
  const journal = await Journal.open({ path: join(dir, "journal.db"), hub });
  let uplink: Uplink | null = null;
  try {
    const tFill = performance.now();
    const drafts = outageDrafts(EVENTS, Date.now());
    for (let i = 0; i < drafts.length; i += 500) await journal.appendMany(drafts.slice(i, i + 500));
    const fillSeconds = (performance.now() - tFill) / 1000;
    const rel = await relay(hub);
    // Rows the journal really deleted on acks, counted here: the uplink's own `acked` figure undercounts
    // when acks overlap (see docs/benchmarks.md), so it cannot say when the journal is empty.
    let deleted = 0;
    const counted = {
      pending: (limit: number, now: number) => journal.pending(limit, now),
      markSent: (ids: string[], at: number) => journal.markSent(ids, at),
      ack: async (ids: string[]) => {
        const n = await journal.ack(ids);
        deleted += n;
        return n;
      },
      stats: () => journal.stats(),
    };
    const up = new Uplink({
      hub,
      boot: journal.boot,
      version: "bench",
      settings: {
        url: rel.mqttUrl,
        username: rel.enrol.mqtt.username,
        password: rel.enrol.mqtt.password,
        key: Buffer.from(rel.enrol.key, "base64"),
        heartbeatS: rel.enrol.heartbeatS,
        window,
        ackTimeoutMs: 10_000,
        historicalAfterMs: 60_000,
        reconnectMinMs: 1000,
        reconnectMaxMs: 60_000,
      },
      journal: counted,
      append: async (d) => {
        const e = await journal.append(d);
        up.nudge();
        return e;
      },
      log: pino({ level: "silent" }),
    });
    uplink = up;
    rel.markStart();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let tConnected = NaN;
    let tFirstAck = NaN;
    up.start();
    // Both are in memory: polling them costs the hub nothing measurable. Bounded at 120 s.
    const deadline = t0 + 120_000;
    for (;;) {
      const s = up.status();
      if (Number.isNaN(tConnected) && s.state === "connected") tConnected = performance.now();
      if (Number.isNaN(tFirstAck) && deleted > 0) tFirstAck = performance.now();
      if (deleted >= EVENTS) break;
      if (performance.now() > deadline) throw new Error(`drain not finished after 120 s: ${deleted} deleted, ${JSON.stringify(s)}`);
      await sleep(1);
    }
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const st = up.status();
    await up.stop();
    uplink = null;
    const rows = (await journal.stats()).rows;
    const rs = await rel.finish();
    if (rs.committed !== EVENTS || rows !== 0) throw new Error(`relay stored ${rs.committed} of ${EVENTS}; journal still holds ${rows}`);
    const secs = (t1 - t0) / 1000;
    return {
      layout,
      store,
      window,
      events: EVENTS,
      fillSeconds: r2(fillSeconds),
      connectMs: r1(tConnected - t0),
      firstAckMs: r1(tFirstAck - t0),
      drainSeconds: r2(secs),
      perSec: Math.round(EVENTS / secs),
      perSecAfterConnect: Math.round(EVENTS / ((t1 - tConnected) / 1000)),
      sent: st.sent,
      resent: st.resent,
      deleted,
      uplinkAckedFigure: st.acked,
      journalRowsAfter: rows,
      relayCommitted: rs.committed,
      relayCommits: rs.commits,
      meanBatch: r1(rs.committed / Math.max(1, rs.commits)),
      relayFlaggedSkewed: rs.skewed,
      storedHistorical: rs.historical,
      hubCpuPct: r1(((cpu.user + cpu.system) / 1000 / (t1 - t0)) * 100),
      relayCpuPct: Number.isNaN(rs.cpuMs) ? null : r1((rs.cpuMs / (t1 - t0)) * 100),
      relayCpuMsPer1k: Number.isNaN(rs.cpuMs) ? null : r1((rs.cpuMs / EVENTS) * 1000),
      relayLoopBusyPct: rs.loopBusyPct ?? null,
      relayThreadsMsPer1k: rs.threadsMsPer1k ?? null,
    };
  } finally {
    await uplink?.stop().catch(() => {});
    await journal.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

function sameProcess(store: StoreKind, verifyThreads?: number): (hub: string) => Promise<RelayHandle> {
  return async (hub) => {
    const l = await startLocalRelay(store, hub, verifyThreads);
    return { mqttUrl: l.enrol.mqtt.url, enrol: l.enrol, markStart: () => {}, finish: () => finishLocalRelay(l, null) };
  };
}

function inChild(proc: ChildProcess, store: StoreKind, verifyThreads?: number): (hub: string) => Promise<RelayHandle> {
  const next = <T extends FromChild>(t: T["t"]): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`relay process: no '${t}' in 60 s`)), 60_000);
      const on = (m: FromChild) => {
        if (m.t !== t && m.t !== "error") return;
        proc.off("message", on);
        clearTimeout(timer);
        if (m.t === "error") reject(new Error(`relay process: ${m.message}`));
        else resolve(m as T);
      };
      proc.on("message", on);
    });
  return async (hub) => {
    const started = next<Extract<FromChild, { t: "started" }>>("started");
    proc.send({ t: "start", store, hub, ...(verifyThreads === undefined ? {} : { verifyThreads }) } satisfies ToChild);
    const s = await started;
    return {
      mqttUrl: s.mqttUrl,
      enrol: s.enrol,
      markStart: () => proc.send({ t: "mark" } satisfies ToChild),
      finish: async () => {
        const f = next<Extract<FromChild, { t: "finished" }>>("finished");
        proc.send({ t: "finish" } satisfies ToChild);
        return (await f).stats;
      },
    };
  };
}

const label = (vt: number | undefined): string => (vt === undefined ? "" : `, verifyThreads ${vt}`);

async function main(): Promise<void> {
  const machine = {
    ...machineInfo(),
    loadEnd: [] as number[],
  };
  console.log(`machine: ${machine.cpu} x${machine.cores}, node ${machine.node}, ${machine.os}, ${machine.memGiB} GiB RAM, load ${machine.loadStart.join(" ")}`);
  if (RELAY_FLAGS.length) console.log(`relay process flags: ${RELAY_FLAGS.join(" ")}`);
  console.log(`${EVENTS} events journaled over a ${OUTAGE_MS / 60_000}-minute outage, then drained; windows ${WINDOWS.join(", ")}; PostgreSQL ${PG_URL ? "on" : "skipped (ANXIN_TEST_PG_URL not set)"}`);

  const stores: StoreKind[] = [...(PG_URL ? (["sqlite", "postgres"] as const) : (["sqlite"] as const)), ...(MQTT_URL ? (["sqlite+mosquitto"] as const) : []), "none"];
  const results: RunResult[] = [];
  const child = fork(fileURLToPath(import.meta.url), ["--relay-child"], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: [...process.execArgv, ...RELAY_FLAGS, ...(PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : [])],
  });
  try {
    for (const store of stores)
      for (const layout of store === "none" || store === "sqlite+mosquitto" ? (["relay in child"] as const) : LAYOUTS)
        for (const w of WINDOWS)
          for (const vt of store === "none" ? [undefined] : VERIFY_THREADS) {
            const r = await drainOnce(layout, store, w, layout === "same process" ? sameProcess(store, vt) : inChild(child, store, vt));
            if (vt !== undefined) r.verifyThreads = vt;
            console.log(`  ${store}, ${layout}, window ${w}${label(vt)}: ${r.perSec} events/s (${r.drainSeconds} s), load ${loadavg().map(r2).join(" ")}`);
            results.push(r);
          }
  } finally {
    child.send({ t: "exit" } satisfies ToChild);
    setTimeout(() => child.kill(), 2000).unref();
  }

  console.log("");
  console.table(
    Object.fromEntries(
      results.map((r, i) => [
        `${r.store}, ${r.layout}, window ${r.window}${label(r.verifyThreads)}${VERIFY_THREADS.length > 1 ? ` #${i + 1}` : ""}`,
        {
          "events/s": r.perSec,
          "s": r.drainSeconds,
          "connect ms": r.connectMs,
          "first ack ms": r.firstAckMs,
          "events/s after connect": r.perSecAfterConnect,
          "relay commits": r.relayCommits,
          "mean batch": r.meanBatch,
          resent: r.resent,
          "status().acked": r.uplinkAckedFigure,
          "hub CPU %": r.hubCpuPct,
          "relay CPU %": r.relayCpuPct ?? "(same)",
          "relay CPU ms/1k": r.relayCpuMsPer1k ?? "(same)",
          "relay loop busy %": r.relayLoopBusyPct ?? "(same)",
        },
      ]),
    ),
  );
  for (const r of results)
    if (r.relayThreadsMsPer1k)
      console.log(`relay CPU ms/1k by thread, ${r.store}, window ${r.window}: ${Object.entries(r.relayThreadsMsPer1k).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  const skew = results[0];
  if (skew)
    console.log(
      `relay: ${skew.relayFlaggedSkewed} of ${skew.events} events counted as "clock skewed" (ts more than 5 min from the relay's clock); ${skew.storedHistorical} stored as historical`,
    );
  machine.loadEnd = loadavg().map(r2);
  console.log(`load average at end: ${machine.loadEnd.join(" ")}`);
  console.log(JSON.stringify({ bench: "uplink-drain", machine, events: EVENTS, outageMinutes: OUTAGE_MS / 60_000, results, targets: { drainPerSec: 10_000 } }));
}

if (process.argv.includes("--relay-child")) await relayChild();
else await main();
