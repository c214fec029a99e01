// Relay ingest benchmark: durable events/s through Ingest.handle → verify → batch commit → onAck, on SQLite
// (WAL, synchronous=FULL) and, when ANXIN_TEST_PG_URL is set, on PostgreSQL. 100 hubs each keep a window of
// events in flight and send the next one when an ack comes back, as the hub's uplink does.
// Run: node --import tsx bench/relay-ingest.bench.ts   (BENCH_DIR picks the disk for SQLite)
// BENCH_VERIFY_THREADS=0,default (a list; numbers or "default") instead compares Ingest's verifyThreads on
// SQLite, alternating the settings over BENCH_VERIFY_ROUNDS rounds (3) since the machine may be shared.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { pino } from "pino";
import { monotonicFactory } from "ulid";
import type { Envelope } from "../protocol/envelope.js";
import { signEnvelope } from "../protocol/signing.js";
import { defaultVerifyThreads, Ingest } from "../relay/src/ingest/ingest.js";
import { createMetrics } from "../relay/src/metrics.js";
import { Registry } from "../relay/src/registry/registry.js";
import { openStore, type Store } from "../relay/src/store/store.js";
import { machineInfo, pct, r2, rawFdatasync } from "./support.js";

const HUBS = 100;
const WINDOW = 50; // events in flight per hub (throughput runs); 1 for the latency runs
const PG_URL = process.env.ANXIN_TEST_PG_URL;
const baseDir = process.env.BENCH_DIR ?? tmpdir();
const dir = mkdtempSync(join(baseDir, "anxin-relay-bench-"));

interface Result {
  events: number;
  batchMaxEvents: number;
  windowPerHub: number;
  seconds: number;
  perSec: number;
  ackP50ms: number;
  ackP99ms: number;
  cpuMsPer1k: number;
  /** Time the main thread's event loop was busy, per 1,000 events (the verify threads' work is not in it). */
  mainMsPer1k: number;
  commits: number;
  meanBatch: number;
}

/** Hubs provisioned straight in the store (enrolment cost is not what is measured here). */
async function hubs(store: Store): Promise<Array<{ hub: string; key: Buffer }>> {
  const out: Array<{ hub: string; key: Buffer }> = [];
  for (let i = 0; i < HUBS; i++) {
    const hub = `bench-hub-${String(i).padStart(3, "0")}`;
    const key = randomBytes(32);
    await store.insertPendingHub(hub, { claimHash: "x", claimSalt: "x", claimExpiresAt: Date.now() + 60_000 }, Date.now());
    await store.activateHub(hub, "x", { passwordHash: "x", passwordSalt: "x", keyB64: key.toString("base64") }, Date.now());
    out.push({ hub, key });
  }
  return out;
}

/** A hub's presigned messages, with each one's event id (what the acks name). */
interface Queue {
  bufs: Buffer[];
  ids: string[];
}

function presign(keys: Array<{ hub: string; key: Buffer }>, n: number): Map<string, Queue> {
  const next = monotonicFactory();
  const perHub = new Map<string, Queue>(keys.map((k) => [k.hub, { bufs: [], ids: [] }]));
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const { hub, key } = keys[i % keys.length] as { hub: string; key: Buffer };
    const e: Envelope = {
      v: 1,
      hub,
      boot: 3,
      seq: i + 1,
      id: next(),
      ts: now,
      kind: "alarm",
      type: "gas",
      severity: "critical",
      device: "gas-kitchen-1",
      data: { lel: 23.5, setpoint: 20 },
      actions: [{ action: "valve_closed", target: "valve-1", ok: true }],
    };
    const q = perHub.get(hub) as Queue;
    q.bufs.push(Buffer.from(JSON.stringify(signEnvelope(e, key))));
    q.ids.push(e.id);
  }
  return perHub;
}

const VERIFY_THREADS = process.env.BENCH_VERIFY_THREADS?.split(",").map((v) => (v === "default" ? defaultVerifyThreads() : Number(v)));
const VERIFY_ROUNDS = Number(process.env.BENCH_VERIFY_ROUNDS ?? 3);

async function run(store: Store, n: number, batchMaxEvents: number, window: number, verifyThreads?: number): Promise<Result> {
  const keys = await hubs(store);
  const queues = presign(keys, n);
  const metrics = createMetrics();
  const registry = new Registry(store, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://127.0.0.1:1883" });
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  const cursor = new Map<string, number>(keys.map((k) => [k.hub, 0]));
  let acked = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  let commits = 0;
  let tEnd = 0;

  // The harness's own work per event is kept small (ids known beforehand, send times dropped once acked):
  // it runs on the thread it measures.
  const send = (hub: string, count: number): void => {
    const q = queues.get(hub) as Queue;
    let i = cursor.get(hub) as number;
    for (const end = Math.min(q.bufs.length, i + count); i < end; i++) {
      sentAt.set(q.ids[i] as string, performance.now());
      ingest.handle(hub, q.bufs[i] as Buffer);
    }
    cursor.set(hub, i);
  };
  const ingest = new Ingest({
    store,
    registry,
    metrics,
    log: pino({ level: "warn" }),
    batchMaxEvents,
    batchMaxWaitMs: 5,
    maxPayloadBytes: 65536,
    clockSkewFlagMs: 300_000,
    onAck: (hub, ids) => {
      const t = performance.now();
      for (const id of ids) {
        lat.push(t - (sentAt.get(id) as number));
        sentAt.delete(id);
      }
      acked += ids.length;
      send(hub, ids.length); // the window slides
      if (acked === n) {
        tEnd = t;
        done();
      }
    },
    onCommitted: () => {},
    ...(verifyThreads === undefined ? {} : { verifyThreads }),
  });
  await ingest._verifyThreadsReady();
  const batches = metrics.batchSize;
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  for (const k of keys) send(k.hub, window);
  await finished;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  await ingest.close();
  const hist = await batches.get();
  commits = hist.values.find((v) => (v as { metricName?: string }).metricName === "anxin_relay_batch_events_count")?.value ?? 0;
  const count = await store.countEvents();
  if (count !== n) throw new Error(`stored ${count} of ${n}`);
  lat.sort((a, b) => a - b);
  const secs = (tEnd - t0) / 1000;
  return {
    events: n,
    batchMaxEvents,
    windowPerHub: window,
    seconds: r2(secs),
    perSec: Math.round(n / secs),
    ackP50ms: r2(pct(lat, 50)),
    ackP99ms: r2(pct(lat, 99)),
    cpuMsPer1k: r2(((cpu.user + cpu.system) / 1000 / n) * 1000),
    mainMsPer1k: r2((elu.active / n) * 1000),
    commits,
    meanBatch: r2(n / Math.max(1, commits)),
  };
}

let dbNo = 0;
async function sqlite(n: number, batchMaxEvents: number, window = WINDOW, verifyThreads?: number): Promise<Result> {
  const store = await openStore({ kind: "sqlite", path: `relay-${batchMaxEvents}-${n}-${window}-${++dbNo}.db` }, dir);
  try {
    return await run(store, n, batchMaxEvents, window, verifyThreads);
  } finally {
    await store.close();
  }
}

async function postgres(n: number, batchMaxEvents: number, window = WINDOW): Promise<Result> {
  const url = PG_URL as string;
  const schema = `anxin_bench_${randomBytes(4).toString("hex")}`;
  const store = await openStore({ kind: "postgres", url, schema, poolSize: 4 }, dir);
  try {
    return await run(store, n, batchMaxEvents, window);
  } finally {
    await store.close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  }
}


const machine = { ...machineInfo(), dir };
console.log(`machine: ${machine.cpu} x${machine.cores}, node ${machine.node}, ${machine.os}, ${machine.memGiB} GiB RAM`);
const sample = presign([{ hub: "bench-hub-000", key: randomBytes(32) }], 1).get("bench-hub-000")?.bufs[0];
console.log(`envelope: ${sample?.length ?? 0} bytes signed; ${HUBS} hubs, ${WINDOW} in flight per hub unless said otherwise; SQLite dir ${dir}`);

const row = (r: Result): Record<string, number> => ({
  "events/s": r.perSec,
  events: r.events,
  "ack p50 ms": r.ackP50ms,
  "ack p99 ms": r.ackP99ms,
  "CPU ms / 1k": r.cpuMsPer1k,
  "main thread ms / 1k": r.mainMsPer1k,
  commits: r.commits,
  "mean batch": r.meanBatch,
});

async function standard(): Promise<void> {
  const fsync = rawFdatasync(dir, 200);
  const sq = await sqlite(50_000, 500);
  const sq1 = await sqlite(3_000, 1);
  const sqLat = await sqlite(10_000, 500, 1);
  const pgRes = PG_URL ? await postgres(50_000, 500) : null;
  const pg1 = PG_URL ? await postgres(3_000, 1) : null;
  const pgLat = PG_URL ? await postgres(10_000, 500, 1) : null;
  const skipped = "skipped: ANXIN_TEST_PG_URL not set";

  console.log("");
  console.log(`raw 4 KiB write + fdatasync: ${fsync.perSec}/s (p50 ${fsync.p50} ms)`);
  const table: Record<string, Record<string, number | string>> = {
    "SQLite WAL+FULL, batch ≤ 500": row(sq),
    "SQLite WAL+FULL, batch 1": row(sq1),
    "SQLite, 1 in flight per hub": row(sqLat),
  };
  if (pgRes && pg1 && pgLat) {
    table["PostgreSQL, batch ≤ 500"] = row(pgRes);
    table["PostgreSQL, batch 1"] = row(pg1);
    table["PostgreSQL, 1 in flight per hub"] = row(pgLat);
  } else {
    table.PostgreSQL = { "events/s": skipped };
  }
  console.table(table);
  console.log(
    JSON.stringify({
      bench: "relay-ingest",
      machine,
      envelopeBytes: sample?.length ?? 0,
      hubs: HUBS,
      windowPerHub: WINDOW,
      fdatasync4k: fsync,
      sqlite: sq,
      sqliteBatch1: sq1,
      sqliteWindow1: sqLat,
      postgres: pgRes ?? skipped,
      postgresBatch1: pg1 ?? skipped,
      postgresWindow1: pgLat ?? skipped,
      targets: { durableEventsPerSec: 5000 },
    }),
  );
}

/** A lone event at a time (one hub, the next sent when the last is acked): what a lone alarm waits. */
async function lone(n: number, verifyThreads: number): Promise<{ p50: number; p99: number }> {
  const store = await openStore({ kind: "sqlite", path: `relay-lone-${++dbNo}.db` }, dir);
  try {
    const keys = (await hubs(store)).slice(0, 1);
    const queue = (presign(keys, n).get(keys[0]?.hub as string) as Queue).bufs;
    const registry = new Registry(store, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://127.0.0.1:1883" });
    let acked: () => void = () => {};
    const ingest = new Ingest({
      store,
      registry,
      metrics: createMetrics(),
      log: pino({ level: "warn" }),
      batchMaxEvents: 500,
      batchMaxWaitMs: 5,
      maxPayloadBytes: 65536,
      clockSkewFlagMs: 300_000,
      onAck: () => acked(),
      verifyThreads,
    });
    await ingest._verifyThreadsReady();
    const lat: number[] = [];
    for (const buf of queue) {
      const done = new Promise<void>((r) => (acked = r));
      const t0 = performance.now();
      ingest.handle(keys[0]?.hub as string, buf);
      await done;
      lat.push(performance.now() - t0);
    }
    await ingest.close();
    lat.sort((a, b) => a - b);
    return { p50: r2(pct(lat, 50)), p99: r2(pct(lat, 99)) };
  } finally {
    await store.close();
  }
}

/** verifyThreads settings side by side, alternated round by round; the ratio to the first setting per round. */
async function compareVerifyThreads(settings: number[]): Promise<void> {
  console.log(`verifyThreads ${settings.join(" vs ")}, ${VERIFY_ROUNDS} rounds, load ${loadavg().map(r2).join(" ")}`);
  const table: Record<string, Record<string, number>> = {};
  const all: Array<{ round: number; verifyThreads: number; throughput: Result; window1: Result; lone: { p50: number; p99: number } }> = [];
  for (let round = 1; round <= VERIFY_ROUNDS; round++) {
    let base = 0;
    for (const vt of settings) {
      const throughput = await sqlite(30_000, 500, WINDOW, vt);
      const window1 = await sqlite(5_000, 500, 1, vt);
      const single = await lone(200, vt);
      base ||= throughput.perSec;
      all.push({ round, verifyThreads: vt, throughput, window1, lone: single });
      table[`round ${round}, verifyThreads ${vt}`] = {
        ...row(throughput),
        "× first": r2(throughput.perSec / base),
        "1 in flight: ack p50 ms": window1.ackP50ms,
        "1 in flight: ack p99 ms": window1.ackP99ms,
        "lone event: ack p50 ms": single.p50,
        "lone event: ack p99 ms": single.p99,
      };
      console.log(`  round ${round}, verifyThreads ${vt}: ${throughput.perSec} events/s, load ${loadavg().map(r2).join(" ")}`);
    }
  }
  console.table(table);
  console.log(JSON.stringify({ bench: "relay-ingest/verifyThreads", machine, hubs: HUBS, windowPerHub: WINDOW, loadEnd: loadavg().map(r2), runs: all }));
}

try {
  if (VERIFY_THREADS) await compareVerifyThreads(VERIFY_THREADS);
  else await standard();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
