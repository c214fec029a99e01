// Broker peer: what the relay's durable ingest costs next to a broker that only forwards. The same hub-like
// publishers (mqtt.js connections in two child processes, client id = hub id, the uplink's will and birth,
// ack and cmd subscriptions; each hub keeps a window of events in flight) send the same signed events
// (the relay ingest bench's alarm envelope, QoS 1):
//   - mosquitto: Debian's Mosquitto alone, our own instance on a free loopback port (test/support/mosquitto.ts:
//     anonymous, no persistence), forwarding to one mqtt.js subscriber in this process that stores nothing.
//     A hub's window slides on the broker's PUBACK; the run ends when the subscriber has every event.
//   - relay, SQLite and PostgreSQL: the relay in this process (startRelayForTest: embedded broker, the store),
//     hubs logging in with their own credentials. A hub's window slides on the relay's ack, which is sent
//     only after the commit; the run ends when every hub has every ack back.
// Rounds alternate the variants (the machine may be shared); medians reported.
// Run: node --import tsx bench/broker-peer.bench.ts   (PostgreSQL when ANXIN_BENCH_PG_URL or ANXIN_TEST_PG_URL
// is set; BENCH_BROKER_EVENTS 100,000, _HUBS 100, _WINDOW 50, _ROUNDS 3, _KIND reading|alarm, BENCH_BROKER_PG=0 skips PostgreSQL)
import { fork, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { connect, type MqttClient } from "mqtt";
import pg from "pg";
import { monotonicFactory } from "ulid";
import { topics } from "../protocol/topics.js";
import { MOSQUITTO_BIN, mosquittoMissing, ownMosquitto } from "../test/support/mosquitto.js";
import { childPidByComm, describeMachine, loadNow, onCleanup, packageVersion, signedBenchAlarm } from "./peer-support.js";
import { benchHubConnectOptions, dropPgSchema, insertBenchHubs, pct, r2, uniquePgSchema, type BenchHub } from "./support.js";

const EVENTS = Number(process.env.BENCH_BROKER_EVENTS ?? 100_000);
const HUBS = Number(process.env.BENCH_BROKER_HUBS ?? 100);
const WINDOW = Number(process.env.BENCH_BROKER_WINDOW ?? 50);
const ROUNDS = Number(process.env.BENCH_BROKER_ROUNDS ?? 3);
/** reading (default: the bulk of a drain after an outage) or alarm (each one also joins the hub's incident at the relay). */
const KIND = process.env.BENCH_BROKER_KIND === "alarm" ? "alarm" : "reading";
const PROCS = 2;
const BOOT = 3;
const PG_URL = process.env.BENCH_BROKER_PG === "0" ? undefined : (process.env.ANXIN_BENCH_PG_URL ?? process.env.ANXIN_TEST_PG_URL);
const RUN_TIMEOUT_MS = Number(process.env.BENCH_BROKER_RUN_TIMEOUT_S ?? 120) * 1000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Until = "puback" | "ack";
type ToChild =
  | { t: "init"; url: string; hubs: BenchHub[]; perHub: number; window: number; until: Until; kind: "alarm" | "reading" }
  | { t: "go" }
  | { t: "end" };
type FromChild =
  | { t: "ready"; connected: number; failed: number; errors: string[] }
  | { t: "done"; settled: number; cpuMs: number }
  | { t: "failed"; error: string }
  | { t: "ended" };

// ------------------------------------------------------------------------------------------------ child

/** A process of hubs: connects them as the uplink does, then sends each hub's events with `window` in flight. */
async function child(): Promise<void> {
  const send = (m: FromChild) => process.send?.(m);
  process.on("disconnect", () => process.exit(0));
  const clients: MqttClient[] = [];
  let go: () => void = () => {};
  const started = new Promise<void>((r) => (go = r));

  const run = async (m: Extract<ToChild, { t: "init" }>): Promise<void> => {
    const ulid = monotonicFactory();
    const now = Date.now();
    const queues = m.hubs.map((h) => {
      const key = Buffer.from(h.key, "base64");
      return Array.from({ length: m.perHub }, (_, i) => signedBenchAlarm(h.hub, key, i + 1, ulid(), now, m.kind));
    });
    const idOf = (buf: Buffer): string => {
      const at = buf.indexOf('"id":"') + 6;
      return buf.subarray(at, at + 26).toString();
    };
    const total = m.perHub * m.hubs.length;
    let settled = 0;
    let finish: () => void = () => {};
    const finished = new Promise<void>((r) => (finish = r));
    const errors: string[] = [];
    let failed = 0;
    const hubs = m.hubs.map((h, k) => ({ h, q: queues[k] as Buffer[], next: 0, inFlight: new Set<string>(), client: null as MqttClient | null }));
    type Hub = (typeof hubs)[number];
    const settle = (hub: Hub, ids: string[]): void => {
      let freed = 0;
      for (const id of ids) if (hub.inFlight.delete(id)) freed++;
      settled += freed;
      pump(hub);
      if (settled === total) finish();
    };
    const pump = (hub: Hub): void => {
      const c = hub.client as MqttClient;
      while (hub.inFlight.size < m.window && hub.next < hub.q.length) {
        const buf = hub.q[hub.next++] as Buffer;
        const id = idOf(buf);
        hub.inFlight.add(id);
        if (m.until === "puback") c.publish(topics.evt(hub.h.hub), buf, { qos: 1 }, (err) => (err ? errors.push(err.message) : settle(hub, [id])));
        else c.publish(topics.evt(hub.h.hub), buf, { qos: 1 });
      }
    };
    const open = (hub: Hub): Promise<void> =>
      new Promise((resolve) => {
        const c = connect(m.url, benchHubConnectOptions(hub.h, BOOT));
        // As the uplink does: small QoS 1 packets both ways, so no Nagle delay.
        (c.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
        let done = false;
        const end = (err: string | null) => {
          if (done) return;
          done = true;
          if (err) {
            failed++;
            errors.push(err);
          }
          resolve();
        };
        c.on("error", (err) => end(err.message));
        c.on("close", () => end("closed"));
        c.on("message", (topic, payload) => {
          if (topic !== topics.ack(hub.h.hub) || m.until !== "ack") return;
          const ack = JSON.parse(payload.toString()) as { ids?: string[] };
          if (Array.isArray(ack.ids)) settle(hub, ack.ids);
        });
        c.on("connect", () => {
          hub.client = c;
          clients.push(c);
          c.publish(topics.state(hub.h.hub), JSON.stringify({ online: true, boot: BOOT, version: "bench", heartbeatS: 60, ts: Date.now() }), { qos: 1, retain: true });
          c.subscribe({ [topics.ack(hub.h.hub)]: { qos: 1 }, [topics.cmd(hub.h.hub)]: { qos: 1 } }, (err) => end(err ? err.message : null));
        });
      });
    let nextHub = 0;
    await Promise.all(
      Array.from({ length: Math.min(20, hubs.length) }, async () => {
        while (nextHub < hubs.length) await open(hubs[nextHub++] as Hub);
      }),
    );
    send({ t: "ready", connected: hubs.length - failed, failed, errors: errors.slice(0, 5) });
    await started;
    const cpu0 = process.cpuUsage();
    for (const hub of hubs) pump(hub);
    if (total === 0) finish();
    await finished;
    const cpu = process.cpuUsage(cpu0);
    send({ t: "done", settled, cpuMs: (cpu.user + cpu.system) / 1000 });
  };

  process.on("message", (m: ToChild) => {
    if (m.t === "init") void run(m).catch((err: unknown) => send({ t: "failed", error: String(err) }));
    else if (m.t === "go") go();
    else if (m.t === "end") {
      void Promise.all(clients.map((c) => new Promise<void>((r) => c.end(true, {}, () => r())))).then(() => {
        send({ t: "ended" });
        setTimeout(() => process.exit(0), 100);
      });
    }
  });
}

// ----------------------------------------------------------------------------------------------- parent

class Kid {
  readonly proc: ChildProcess;
  private waiters: Array<{ t: FromChild["t"]; resolve: (m: FromChild) => void; reject: (e: Error) => void }> = [];
  constructor() {
    this.proc = fork(fileURLToPath(import.meta.url), ["--peer-child"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.proc.on("message", (m: FromChild) => {
      if (m.t === "failed") for (const w of this.waiters.splice(0)) w.reject(new Error(`hub process: ${m.error}`));
      const i = this.waiters.findIndex((w) => w.t === m.t);
      if (i >= 0) this.waiters.splice(i, 1)[0]?.resolve(m);
    });
    this.proc.on("exit", (code) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`hub process exited (${code})`));
    });
  }
  ask<T extends FromChild>(m: ToChild, t: T["t"], timeoutMs: number): Promise<T> {
    const p = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hub process: no '${t}' after ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        t,
        resolve: (x) => {
          clearTimeout(timer);
          resolve(x as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
    this.proc.send(m);
    return p;
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    await this.ask({ t: "end" }, "ended", 10_000).catch(() => {});
    this.proc.kill("SIGKILL");
  }
}

/** CPU seconds (user + system) of our child process `comm` so far, from /proc; NaN when not found. */
function childCpuS(comm: string): number {
  const pid = childPidByComm(comm);
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN; // gone meanwhile
  }
}

type Variant = "mosquitto" | "relay-sqlite" | "relay-postgres";
interface RunResult {
  variant: Variant;
  events: number;
  seconds: number;
  eventsPerSec: number;
  /** This process (the subscriber, or the relay), % of one CPU over the run. */
  mainCpuPct: number;
  hubProcsCpuPct: number[];
  mosquittoCpuPct?: number;
  /** Events the far end saw more than once (QoS 1 redelivery); counted once. */
  duplicates: number;
  committed?: number;
}

const hubNames = Array.from({ length: HUBS }, (_, i) => `peer-${String(i).padStart(3, "0")}`);

/** Starts the hub processes for `creds` and connects them; the caller starts the clock and sends "go". */
async function hubProcesses(url: string, creds: BenchHub[], until: Until): Promise<Kid[]> {
  const kids = Array.from({ length: PROCS }, () => new Kid());
  const perHub = Math.floor(EVENTS / HUBS);
  const ready = await Promise.all(
    kids.map((k, i) => k.ask<Extract<FromChild, { t: "ready" }>>({ t: "init", url, hubs: creds.filter((_, j) => j % PROCS === i), perHub, window: WINDOW, until, kind: KIND }, "ready", 120_000)),
  );
  const failed = ready.reduce((a, r) => a + r.failed, 0);
  if (failed > 0) throw new Error(`${failed} hubs could not connect: ${ready.flatMap((r) => r.errors).join("; ")}`);
  return kids;
}

async function timed(kids: Kid[], farEnd: Promise<number> | null, mosquittoCpu: () => number): Promise<Omit<RunResult, "variant" | "duplicates" | "committed">> {
  const events = Math.floor(EVENTS / HUBS) * HUBS;
  const cpu0 = process.cpuUsage();
  const mq0 = mosquittoCpu();
  const t0 = performance.now();
  const done = kids.map((k) =>
    k.ask<Extract<FromChild, { t: "done" }>>({ t: "go" }, "done", RUN_TIMEOUT_MS).then((d) => ({ ...d, at: performance.now() })),
  );
  const reports = await Promise.all(done);
  const end = farEnd ? Math.max(await farEnd, ...reports.map((r) => r.at)) : Math.max(...reports.map((r) => r.at));
  const wall = end - t0;
  const cpu = process.cpuUsage(cpu0);
  const mq = mosquittoCpu() - mq0;
  const settled = reports.reduce((a, r) => a + r.settled, 0);
  if (settled !== events) throw new Error(`${settled} of ${events} events settled`);
  return {
    events,
    seconds: r2(wall / 1000),
    eventsPerSec: Math.round(events / (wall / 1000)),
    mainCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100),
    hubProcsCpuPct: reports.map((r) => Math.round((r.cpuMs / wall) * 100)),
    ...(Number.isFinite(mq) ? { mosquittoCpuPct: Math.round(((mq * 1000) / wall) * 100) } : {}),
  };
}

async function mosquittoRun(): Promise<RunResult> {
  const broker = await ownMosquitto();
  const stopBroker = onCleanup(() => broker.close());
  const kids: Kid[] = [];
  let sub: MqttClient | null = null;
  try {
    const events = Math.floor(EVENTS / HUBS) * HUBS;
    const seen = new Set<string>();
    let duplicates = 0;
    let recording = false;
    let reached: (at: number) => void = () => {};
    const farEnd = new Promise<number>((r) => (reached = r));
    sub = connect(broker.url, { clientId: "peer-subscriber", clean: true, protocolVersion: 4, reconnectPeriod: 0, keepalive: 30 });
    (sub.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    const subscriber = sub;
    await new Promise<void>((resolve, reject) => {
      subscriber.once("error", reject);
      subscriber.once("connect", () => subscriber.subscribe(topics.evt("+"), { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    });
    subscriber.on("message", (_topic, payload) => {
      if (!recording) return;
      const at = payload.indexOf('"id":"') + 6;
      const id = payload.subarray(at, at + 26).toString();
      if (seen.has(id)) return void duplicates++;
      seen.add(id);
      if (seen.size === events) reached(performance.now());
    });
    const creds = hubNames.map((hub) => ({ hub, password: randomBytes(24).toString("base64url"), key: randomBytes(32).toString("base64") }));
    kids.push(...(await hubProcesses(broker.url, creds, "puback")));
    recording = true;
    let timer: NodeJS.Timeout | undefined;
    const farEndOrTimeout = Promise.race([
      farEnd,
      new Promise<number>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`subscriber: ${seen.size} of ${events} events after ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
      }),
    ]);
    farEndOrTimeout.catch(() => {}); // awaited in timed(); this only keeps an early timeout from being unhandled
    const r = await timed(kids, farEndOrTimeout, () => childCpuS("mosquitto")).finally(() => clearTimeout(timer));
    return { variant: "mosquitto", ...r, duplicates };
  } finally {
    await Promise.all(kids.map((k) => k.stop()));
    if (sub) await sub.endAsync(true);
    await stopBroker();
  }
}

async function relayRun(store: "sqlite" | "postgres"): Promise<RunResult> {
  const { startRelayForTest } = await import("../test/support/relay-rig.js");
  const schema = store === "postgres" ? uniquePgSchema("bench_peer") : null;
  const dropSchema = schema ? onCleanup(() => dropPgSchema(PG_URL as string, schema)) : null;
  let committed = 0;
  const ids = new Set<string>();
  let recording = false;
  const kids: Kid[] = [];
  let stopRig: (() => Promise<void>) | null = null;
  try {
    const rig = await startRelayForTest({
      onCommitted: (_hub, env) => {
        if (!recording) return;
        committed++;
        ids.add((env as { id: string }).id);
      },
      // `path: undefined` drops the rig's SQLite path, which its deep merge would otherwise keep beside `url`.
      ...(schema ? { config: { store: { kind: "postgres", url: PG_URL, schema, path: undefined } } } : {}),
    });
    stopRig = onCleanup(() => rig.stop());
    const creds = await insertBenchHubs(rig.relay.store, hubNames);
    kids.push(...(await hubProcesses(rig.mqttUrl, creds, "ack")));
    await sleep(500); // births written
    recording = true;
    const r = await timed(kids, null, () => NaN);
    recording = false;
    const stored = await rig.relay.store.countEvents();
    if (stored !== r.events) throw new Error(`relay stored ${stored} of ${r.events} events`);
    return { variant: store === "sqlite" ? "relay-sqlite" : "relay-postgres", ...r, duplicates: committed - ids.size, committed: ids.size };
  } finally {
    await Promise.all(kids.map((k) => k.stop()));
    await stopRig?.();
    await dropSchema?.();
  }
}

async function versions(): Promise<Record<string, string>> {
  const mq = spawnSync(MOSQUITTO_BIN, ["-h"], { encoding: "utf8" });
  const out: Record<string, string> = {
    mosquitto: `${mq.stdout ?? ""}${mq.stderr ?? ""}`.split("\n")[0]?.trim() || "?",
    mqttJs: packageVersion("mqtt"),
    aedes: packageVersion("aedes"),
    betterSqlite3: packageVersion("better-sqlite3"),
    pg: packageVersion("pg"),
    node: process.version,
  };
  if (PG_URL) {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      out.postgresql = String(((await c.query("SHOW server_version")).rows[0] as { server_version?: string } | undefined)?.server_version ?? "?");
    } finally {
      await c.end();
    }
  }
  return out;
}

async function parent(): Promise<void> {
  const missing = mosquittoMissing();
  if (missing) throw new Error(missing);
  const machine = describeMachine();
  const v = await versions();
  const sample = signedBenchAlarm(hubNames[0] as string, randomBytes(32), 1, monotonicFactory()(), Date.now(), KIND);
  console.log(
    `${Math.floor(EVENTS / HUBS) * HUBS} events of ${sample.length} bytes (signed ${KIND}, QoS 1) from ${HUBS} hubs in ${PROCS} processes, ${WINDOW} in flight per hub; ${ROUNDS} rounds`,
  );
  console.log(`versions: ${Object.entries(v).map(([k, x]) => `${k} ${x}`).join("; ")}`);
  const variants: Variant[] = ["mosquitto", "relay-sqlite", ...(PG_URL ? (["relay-postgres"] as const) : [])];
  const runs: RunResult[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate the order so that no variant always runs first (or last) in a round.
    const order = round % 2 ? variants : [...variants].reverse();
    for (const variant of order) {
      const r = variant === "mosquitto" ? await mosquittoRun() : await relayRun(variant === "relay-sqlite" ? "sqlite" : "postgres");
      runs.push(r);
      console.log(
        `round ${round}, ${variant}: ${r.eventsPerSec} events/s in ${r.seconds} s; this process ${r.mainCpuPct} % CPU, hubs ${r.hubProcsCpuPct.join(" / ")} %` +
          `${r.mosquittoCpuPct !== undefined ? `, mosquitto ${r.mosquittoCpuPct} %` : ""}; load ${loadNow().join(" ")}`,
      );
    }
  }
  machine.loadEnd = loadNow();
  const median = (xs: number[]): number => pct([...xs].sort((a, b) => a - b), 50);
  const of = (variant: Variant) => runs.filter((r) => r.variant === variant);
  const summary = variants.map((variant) => {
    const rs = of(variant);
    return {
      variant,
      eventsPerSec: median(rs.map((r) => r.eventsPerSec)),
      min: Math.min(...rs.map((r) => r.eventsPerSec)),
      max: Math.max(...rs.map((r) => r.eventsPerSec)),
      mainCpuPct: median(rs.map((r) => r.mainCpuPct)),
      hubProcsCpuPct: median(rs.flatMap((r) => r.hubProcsCpuPct)),
      mosquittoCpuPct: variant === "mosquitto" ? median(rs.map((r) => r.mosquittoCpuPct ?? NaN)) : undefined,
    };
  });
  const mosq = summary[0]?.eventsPerSec ?? NaN;
  const ratios: Record<string, number> = {};
  for (const s of summary.slice(1)) ratios[`${s.variant} / mosquitto`] = r2(s.eventsPerSec / mosq);

  console.log("");
  console.table(
    Object.fromEntries(
      summary.map((s) => [
        s.variant,
        {
          "events/s (median)": s.eventsPerSec,
          "min–max": `${s.min}–${s.max}`,
          "÷ mosquitto": r2(s.eventsPerSec / mosq),
          "this process CPU %": s.mainCpuPct,
          "mosquitto CPU %": s.mosquittoCpuPct ?? "",
          "hub process CPU %": s.hubProcsCpuPct,
        },
      ]),
    ),
  );
  if (!PG_URL) console.log("PostgreSQL: skipped (set ANXIN_BENCH_PG_URL or ANXIN_TEST_PG_URL)");
  console.log(`load average at end: ${machine.loadEnd.join(" ")}`);
  console.log(
    JSON.stringify({
      bench: "broker-peer",
      machine,
      versions: v,
      events: Math.floor(EVENTS / HUBS) * HUBS,
      kind: KIND,
      envelopeBytes: sample.length,
      hubs: HUBS,
      hubProcesses: PROCS,
      windowPerHub: WINDOW,
      rounds: ROUNDS,
      summary,
      ratios,
      runs,
      postgres: PG_URL ? "measured" : "skipped: ANXIN_BENCH_PG_URL / ANXIN_TEST_PG_URL not set",
      measure:
        "mosquitto: publish → subscriber has every event (window slides on PUBACK); relay: publish → commit → ack back at the hub (window slides on the ack)",
    }),
  );
}

if (process.argv.includes("--peer-child")) await child();
else await parent();
