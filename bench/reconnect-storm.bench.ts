// Relay benchmark (issue 14): a reconnect storm. N hubs (10,000) come back within 10 s, each with M (50)
// events in its journal, the first of them an alarm, the rest readings and heartbeats, all signed with the
// hub's own key before the clock starts. Each hub connects at its slot (spread uniformly over the 10 s),
// sends its retained birth, subscribes to its ack and cmd topics, then publishes with a bounded in-flight
// window (32) that slides on the relay's acks; unacked events are sent again after the uplink's ack wait
// (at least 5 s, doubling per send; longer for readings while the hub measures the relay's acks slower, and
// at once when presumed lost: ack-timeout.ts); an attempt without a CONNACK within the uplink's wait (60 s)
// is dropped, and a dropped connection comes back with the uplink's backoff. The hubs check nothing in an ack: they count its ids.
// As the uplink does, each hub also journals a heartbeat every 60 s (from a random phase: real hubs' timers run
// since their own start), sent after what is older; heartbeats are counted apart from the storm's events.
// Measured: first connect → last ack; events/s; per hub, its first connect attempt → the ack of its alarm
// (p50/p99/max; target p99 ≤ 2 s); the store's rows for the fleet (= N × M, one per id and per hub/seq);
// the relay process's RSS every 500 ms (peak, at the last ack, 3 s later) and its CPU. A run that ends with hubs
// still waiting prints up to 3 of them per hub process on stderr (`straggler …`: what each holds and why it waits).
// The relay runs in child processes of its own (this file with --relay-child), the hubs in BENCH_STORM_PROCS
// others (--hubs-child). Variants: SQLite with the embedded broker; PostgreSQL (own schema, dropped after)
// with the embedded broker; two relay instances on one PostgreSQL schema behind a private Mosquitto on an
// ephemeral port (a shared subscription splits the hubs' traffic between them; Mosquitto allows anonymous
// logins, so the hubs' passwords are not checked there). Peers, not Anxin: floor-aedes, the same hubs against a
// bare aedes that takes every login and acks each event on receipt (nothing checked or stored), the least any
// relay on the embedded broker pays on this machine; floor-mosquitto, the same with Mosquitto and one acking
// mqtt.js subscriber.
// Hub identities are bench rows (insertBenchHubs: the password hash an enrolment stores).
// Run: node --import tsx bench/reconnect-storm.bench.ts
// Knobs: BENCH_STORM_HUBS (10000), BENCH_STORM_EVENTS (50), BENCH_STORM_SPREAD_S (10), BENCH_STORM_WINDOW (32),
//   BENCH_STORM_ACK_TIMEOUT_MS (5000), BENCH_STORM_CONNECT_TIMEOUT_MS (the uplink's CONNACK wait), BENCH_STORM_PROCS (4), BENCH_STORM_TIMEOUT_S (per variant, 600; 300 quick),
//   BENCH_STORM_VARIANTS (sqlite,postgres,pg-2x-mosquitto,floor-aedes; floor-mosquitto too), BENCH_STORM_QUICK=1 (2,000 hubs × 50 unless set),
//   BENCH_STORM_CARE_PLANS=1 (a care plan in every home: each call tree calls the elder first and waits for the
//   answer, as in the programme; without it no home has one and every tree fails through to its end at once),
//   BENCH_STORM_NO_ESCALATION=1 (the relay opens no incidents and runs no call trees: the logins and the events
//   alone), BENCH_STORM_ALARM_FIRST=1 (a hub sends nothing after its alarm until the alarm is acked),
//   BENCH_STORM_FIXED_ACK_WAIT=1 (hubs resend after the fixed doubling wait, without the uplink's measured one),
//   BENCH_STORM_HEARTBEAT_S (60; 0: no heartbeats after the storm's own, as runs before 2026-12-07),
//   BENCH_STORM_TRACE=1 (each relay prints what it holds, has committed and has refused every 5 s),
//   BENCH_STORM_FLOOR_CONNECTIONS (1: floor-mosquitto's subscriber connections, more share one subscription),
//   ANXIN_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test), BENCH_STORM_PROFILE=<dir> (CPU profiles of
//   the relay processes).
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes, randomFillSync } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { connect, type MqttClient } from "mqtt";
import pg from "pg";
import { monotonicFactory } from "ulid";
import { stringify } from "yaml";
import type { Envelope } from "../protocol/envelope.js";
import { signEnvelope } from "../protocol/signing.js";
import { topics } from "../protocol/topics.js";
import { reconnectDelay, resendDelay } from "../gateway/src/uplink/backoff.js";
import { CONNECT_TIMEOUT_MS } from "../gateway/src/uplink/uplink.js";
import { AckTimeout, repeatAfterWait } from "../gateway/src/uplink/ack-timeout.js";
import { benchHubConnectOptions, dropPgSchema, insertBenchCarePlans, insertBenchHubs, machineInfo, nofileLimit, pct, r2, rawFdatasync, uniquePgSchema, type BenchHub } from "./support.js";

const r1 = (x: number): number => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Wall-clock milliseconds with sub-millisecond resolution, comparable between processes on this machine. */
const wall = (): number => performance.timeOrigin + performance.now();
const HUB_PREFIX = "st-";
/** BENCH_STORM_FIXED_ACK_WAIT: the hubs resend after the fixed doubling wait (hubs before the measured one). */
const fixedAckWaitInHubs = (): boolean => !!process.env.BENCH_STORM_FIXED_ACK_WAIT && process.env.BENCH_STORM_FIXED_ACK_WAIT !== "0";

const VARIANTS = ["sqlite", "postgres", "pg-2x-mosquitto", "floor-aedes", "floor-mosquitto"] as const;
type VariantName = (typeof VARIANTS)[number];
const isFloor = (v: VariantName): boolean => v.startsWith("floor-");
const needsPg = (v: VariantName): boolean => v === "postgres" || v === "pg-2x-mosquitto";

// ----------------------------------------------------------------------------------------- relay child

type RelayRole =
  | { kind: "sqlite" }
  | { kind: "postgres"; url: string; schema: string }
  | { kind: "external"; id: string; url: string; schema: string; brokerUrl: string; masterKey: string }
  /** No relay: a bare broker (aedes in this process, or Mosquitto at brokerUrl) and a subscriber that acks on receipt. */
  | { kind: "floor"; brokerUrl?: string };
/** count: `events`, the storm's events per hub (seq 1..events); rows past them are the hubs' later heartbeats. */
type ToRelay = { t: "start"; role: RelayRole; insertHubs: string[]; carePlans: boolean } | { t: "count"; events: number } | { t: "stop" };
interface RelayCounts {
  rows: number;
  distinctIds: number;
  distinctHubSeq: number;
  /** Heartbeats journaled after the storm began: rows and distinct ids. */
  beatRows: number;
  beatIds: number;
  committedHere: number;
  received: number;
  deduped: number;
  rejected: Record<string, number>;
  authFailures: Record<string, number>;
}
type FromRelay =
  | { t: "started"; mqttUrl: string; dir: string; creds: BenchHub[]; insertMs: number }
  | ({ t: "counted" } & RelayCounts)
  | { t: "stopped" }
  | { t: "error"; message: string };

async function relayChild(): Promise<void> {
  const send = (m: FromRelay) => process.send?.(m);
  let stop: (() => Promise<void>) | null = null;
  let relay: import("../relay/src/daemon/run.js").RunningRelay | null = null;
  let committedHere = 0;
  let floor: Floor | null = null;
  const dirs = new Set<string>();
  const onCommitted = () => void committedHere++;
  const stopNow = async () => {
    const s = stop;
    stop = null;
    relay = null;
    if (s) await s();
  };
  // The parent is gone: stop the relay (its temp dir goes with it) and leave.
  process.on("disconnect", () =>
    void Promise.race([stopNow(), sleep(15_000)]).finally(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      process.exit(0);
    }),
  );
  const sum = async (c: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number> }> }> }) =>
    Object.fromEntries((await c.get()).values.filter((x) => x.value).map((x) => [Object.values(x.labels).join(",") || "-", x.value]));
  const total = async (c: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await c.get()).values.reduce((a, x) => a + x.value, 0);

  process.on("message", (m: ToRelay) => {
    void (async () => {
      try {
        if (m.t === "start" && m.role.kind === "floor") {
          const f = await startFloor(m.role.brokerUrl);
          floor = f;
          stop = () => f.stop();
          send({ t: "started", mqttUrl: f.url, dir: "", creds: m.insertHubs.map(floorCred), insertMs: 0 });
        } else if (m.t === "count" && floor) {
          const n = floor.received.size;
          send({ t: "counted", rows: 0, distinctIds: n, distinctHubSeq: n, beatRows: 0, beatIds: 0, committedHere: 0, received: floor.messages, deduped: floor.messages - n, rejected: {}, authFailures: {} });
        } else if (m.t === "start") {
          let mqttUrl: string;
          let dir: string;
          if (m.role.kind === "external") {
            // As test/support/relay-external.ts does, but with the master key the parent hands to every instance:
            // instances on one schema must share it (each process of the tests' helper makes up its own, and
            // the second instance would seal the hubs' clear keys under a key the first cannot open).
            const { startRelay } = await import("../relay/src/daemon/run.js");
            const { freePort } = await import("../test/support/relay-rig.js");
            const { testLogger } = await import("../test/support/relay-external.js");
            const d = await mkdtemp(join(tmpdir(), "anxin-storm-relay-"));
            dir = d;
            dirs.add(d);
            const masterKeyFile = join(d, "pg-master.key");
            await writeFile(masterKeyFile, `${m.role.masterKey}\n`, { mode: 0o600 });
            const config = {
              relay: { id: m.role.id, dataDir: "./data" },
              log: { level: "info" },
              store: { kind: "postgres", url: m.role.url, schema: m.role.schema, poolSize: 4 },
              broker: { kind: "external", url: m.role.brokerUrl, sharedGroup: "storm" },
              http: { host: "127.0.0.1", port: await freePort() },
              secrets: { masterKeyFile },
            };
            const configFile = join(d, "relay.yaml");
            await writeFile(configFile, stringify(config));
            const r = await startRelay(configFile, { log: testLogger("anxin-relay"), onCommitted });
            relay = r;
            stop = async () => {
              await r.stop();
              await rm(d, { recursive: true, force: true });
              dirs.delete(d);
            };
            mqttUrl = m.role.brokerUrl;
            await r.session.whenConnected(10_000);
          } else {
            const { startRelayForTest } = await import("../test/support/relay-rig.js");
            // `path: undefined` drops the rig's SQLite path, which its deep merge would otherwise keep beside `url`.
            const config: Record<string, unknown> = m.role.kind === "postgres" ? { store: { kind: "postgres", url: m.role.url, schema: m.role.schema, path: undefined } } : {};
            if (process.env.BENCH_STORM_NO_ESCALATION) config.escalation = { enabled: false };
            const rig = await startRelayForTest({ config, onCommitted });
            relay = rig.relay;
            stop = () => rig.stop();
            mqttUrl = rig.mqttUrl;
            dir = rig.dir;
          }
          if (process.env.BENCH_STORM_TRACE) {
            // Every 5 s, what this relay holds and what it has refused so far (to see a stall as it happens).
            const r = relay;
            const tag = m.role.kind === "external" ? m.role.id : m.role.kind;
            setInterval(() => {
              void (async () => {
                const cpu = process.cpuUsage();
                console.log(`trace ${tag}: held ${r.ingest.pending}, received ${await total(r.metrics.eventsReceived)}, committed ${committedHere}, rejected ${JSON.stringify(await sum(r.metrics.eventsRejected))}, cpu ${Math.round((cpu.user + cpu.system) / 1000)} ms`);
              })();
            }, 5000).unref();
          }
          const t0 = performance.now();
          const creds = m.insertHubs.length ? await insertBenchHubs(relay.store, m.insertHubs) : [];
          if (m.carePlans) await insertBenchCarePlans(relay.store, m.insertHubs);
          send({ t: "started", mqttUrl, dir, creds, insertMs: performance.now() - t0 });
        } else if (m.t === "count" && relay) {
          const r = relay;
          const q = await sql<{ n: number | string; d: number | string; s: number | string }>`
            SELECT count(*) AS n, count(DISTINCT id) AS d, count(DISTINCT hub || ':' || CAST(boot AS text) || ':' || CAST(seq AS text)) AS s
            FROM events WHERE hub LIKE ${`${HUB_PREFIX}%`} AND seq <= ${m.events}`.execute(r.store.db);
          const row = q.rows[0];
          const b = await sql<{ n: number | string; d: number | string }>`
            SELECT count(*) AS n, count(DISTINCT id) AS d FROM events WHERE hub LIKE ${`${HUB_PREFIX}%`} AND seq > ${m.events}`.execute(r.store.db);
          const mt = r.metrics;
          send({
            t: "counted",
            rows: Number(row?.n ?? NaN),
            distinctIds: Number(row?.d ?? NaN),
            distinctHubSeq: Number(row?.s ?? NaN),
            beatRows: Number(b.rows[0]?.n ?? NaN),
            beatIds: Number(b.rows[0]?.d ?? NaN),
            committedHere,
            received: await total(mt.eventsReceived),
            deduped: await total(mt.eventsDuplicate),
            rejected: await sum(mt.eventsRejected),
            authFailures: await sum(mt.authFailures),
          });
        } else if (m.t === "stop") {
          await stopNow();
          send({ t: "stopped" });
          // Exit on our own (a CPU profile, BENCH_STORM_PROFILE, is written only then).
          setTimeout(() => process.exit(0), 100);
        }
      } catch (e) {
        send({ t: "error", message: (e as Error).message });
      }
    })();
  });
}

// ------------------------------------------------------------------------------------------ floor child

// The floor (a peer, not Anxin): the same storm against a bare broker whose one subscriber acks each event as it
// arrives, storing and checking nothing. What remains is the broker's own work per hub and the hub processes on
// the same cores, the least any broker-based relay pays here.
interface Floor {
  url: string;
  /** hub and event id of every event received. */
  received: Set<string>;
  messages: number;
  stop(): Promise<void>;
}

const floorCred = (hub: string): BenchHub => ({ hub, password: "floor", key: randomBytes(32).toString("base64") });

async function startFloor(brokerUrl: string | undefined): Promise<Floor> {
  const { leadingEventId } = await import("../relay/src/ingest/ingest.js");
  const received = new Set<string>();
  const f: Floor = { url: brokerUrl ?? "", received, messages: 0, stop: async () => {} };
  const evt = /^anxin\/v1\/([^/]+)\/evt$/;
  const onEvent = (topic: string, payload: Buffer, ack: (hub: string, body: string) => void) => {
    const hub = evt.exec(topic)?.[1];
    const id = leadingEventId(payload.toString("utf8"));
    if (!hub || !id) return;
    f.messages++;
    received.add(`${hub}:${id}`);
    ack(hub, JSON.stringify({ ids: [id], now: Date.now() }));
  };
  if (brokerUrl) {
    // Mosquitto: mqtt.js subscribers at QoS 1, as a relay instance is. (At QoS 0 it was flooded faster than it
    // could ack, and the hubs' resends made it worse.) No keepalive: a subscriber busy with a storm's backlog
    // answers no PINGREQ in time and would be dropped.
    // BENCH_STORM_FLOOR_CONNECTIONS (1): more than one splits the events over a shared subscription.
    const n = Math.max(1, Number(process.env.BENCH_STORM_FLOOR_CONNECTIONS ?? 1));
    const clients: MqttClient[] = [];
    for (let k = 0; k < n; k++) {
      const c = connect(brokerUrl, { clientId: `floor-${randomBytes(4).toString("hex")}`, clean: true, protocolVersion: 4, keepalive: 0, reconnectPeriod: 500 });
      await new Promise<void>((resolve, reject) => {
        c.once("connect", () => resolve());
        c.once("error", reject);
      });
      c.on("message", (topic, payload) => onEvent(topic, payload, (hub, body) => c.publish(topics.ack(hub), body, { qos: 1 })));
      c.on("close", () => console.log("floor subscriber: connection closed (reconnecting)"));
      c.on("error", (e) => console.log(`floor subscriber: ${e.message}`));
      await c.subscribeAsync(n > 1 ? "$share/floor/anxin/v1/+/evt" : "anxin/v1/+/evt", { qos: 1 });
      clients.push(c);
    }
    f.stop = async () => void (await Promise.all(clients.map((c) => c.endAsync())));
    return f;
  }
  // aedes with the relay's listener settings (embedded.ts), every login accepted.
  const net = await import("node:net");
  const { Aedes } = await import("aedes");
  const aedes = await Aedes.createBroker({ id: "floor", concurrency: 100_000 });
  aedes.authenticate = (_c, _u, _p, done) => done(null, true);
  // As the relay's broker does: a hub's retained birth is heard, not kept (kept, every subscribe scans them all).
  aedes.authorizePublish = (_c, packet, done) => {
    packet.retain = false;
    done(null);
  };
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    aedes.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => resolve()));
  const port = (server.address() as import("node:net").AddressInfo).port;
  f.url = `mqtt://127.0.0.1:${port}`;
  await new Promise<void>((resolve) =>
    aedes.subscribe(
      "anxin/v1/+/evt",
      (packet, cb) => {
        onEvent(packet.topic, packet.payload as Buffer, (hub, body) => aedes.publish({ cmd: "publish", topic: topics.ack(hub), payload: Buffer.from(body), qos: 1, retain: false, dup: false }, () => {}));
        cb();
      },
      resolve,
    ),
  );
  f.stop = async () => {
    await new Promise<void>((r) => aedes.close(() => r()));
    await new Promise<void>((r) => server.close(() => r()));
  };
  return f;
}

// ------------------------------------------------------------------------------------------ hubs child

/** A hub's event in flight: its latest send, as the uplink's window holds it. */
interface InFlight {
  sentAt: number;
  sends: number;
  /** The ack timer's doubling it was sent under. */
  level: number;
  /** When it counts as unanswered. */
  due: number;
  critical: boolean;
}

interface StormHub extends BenchHub {
  /** Index in the whole fleet: places the hub's connect in the spread. */
  g: number;
}
type ToHubs =
  | { t: "init"; url: string; hubs: StormHub[]; total: number; events: number; window: number; ackTimeoutMs: number; connectTimeoutMs: number; spreadMs: number; heartbeatMs: number }
  | { t: "go"; startAt: number }
  | { t: "report" }
  | { t: "end" };
interface HubsReport {
  t: "report";
  /** Per hub (this process's order): first connect attempt, first CONNACK, ack of the alarm, ack of the last event; wall ms, NaN if never. */
  connectAt: number[];
  connackAt: number[];
  alarmAckAt: number[];
  doneAt: number[];
  published: number;
  resent: number;
  acked: number;
  /** Heartbeats journaled after the start, and how many of them were acked. */
  beats: number;
  beatsAcked: number;
  duplicateAcks: number;
  unknownAcks: number;
  disconnects: number;
  connectFailures: number;
  errors: Record<string, number>;
  cpuMs: number;
  rssMiB: number;
}
type FromHubs = { t: "ready"; signMs: number; payloadMiB: number } | { t: "progress"; acked: number; connected: number; resent: number } | { t: "finished" } | HubsReport | { t: "ended" };

async function hubsChild(): Promise<void> {
  const send = (m: FromHubs) => process.send?.(m);
  process.on("disconnect", () => process.exit(0));
  // ulid's default source asks the CSPRNG per character; a pooled one is much cheaper.
  const pool = Buffer.alloc(4096);
  let pos = pool.length;
  const ulid = monotonicFactory(() => {
    if (pos >= pool.length) {
      randomFillSync(pool);
      pos = 0;
    }
    return (pool[pos++] as number) / 256;
  });

  interface H {
    cred: StormHub;
    key: Buffer;
    /** The journal: the storm's events, then heartbeats as they are journaled. */
    payloads: string[];
    index: Map<string, number>;
    acked: Uint8Array;
    /** Of the storm's events (the first `events` of payloads). */
    nAcked: number;
    nextBeatAt: number;
    next: number;
    /** Event index → its latest send (as the uplink's window holds it). */
    inflight: Map<number, InFlight>;
    ackTimeout: AckTimeout;
    /** When the relay last acked anything on this connection, and the latest send time among what it acked. */
    lastAnswerAt: number | null;
    answeredSentAt: number;
    /** The reading that went again as the probe (repeatAfterWait), or null. */
    probe: number | null;
    client: MqttClient | null;
    up: boolean;
    failures: number;
    connectAt: number;
    connackAt: number;
    alarmAckAt: number;
    doneAt: number;
  }
  const alarmFirst = !!process.env.BENCH_STORM_ALARM_FIRST;
  let hubs: H[] = [];
  let url = "";
  let events = 0;
  let window = 32;
  let ackTimeoutMs = 5000;
  const fixedAckWait = fixedAckWaitInHubs();
  let connectTimeoutMs = CONNECT_TIMEOUT_MS;
  let spreadMs = 10_000;
  let heartbeatMs = 0;
  let total = 0;
  let beats = 0;
  let beatsAcked = 0;
  let ending = false;
  let published = 0;
  let resent = 0;
  let ackedAll = 0;
  let duplicateAcks = 0;
  let unknownAcks = 0;
  let disconnects = 0;
  let connectFailures = 0;
  let hubsDone = 0;
  const errors: Record<string, number> = {};
  let cpu0 = process.cpuUsage();
  const timers: NodeJS.Timeout[] = [];

  const presign = (cred: StormHub): H => {
    const key = Buffer.from(cred.key, "base64");
    const now = Date.now();
    const payloads: string[] = [];
    const index = new Map<string, number>();
    for (let i = 0; i < events; i++) {
      // Journaled over the last two minutes of the outage; the alarm is the first (oldest) row.
      const ts = Math.round(now - 120_000 + (i * 120_000) / events);
      const body: Pick<Envelope, "kind" | "type" | "severity" | "device" | "room" | "data" | "actions"> =
        i === 0
          ? { kind: "alarm", type: "smoke", severity: "critical", device: "smoke-1", room: "kitchen", data: { raw: 1 }, actions: [{ action: "siren_on", ok: true }] }
          : i % 10 === 0
            ? { kind: "heartbeat", type: "heartbeat", severity: "info", data: { uptimeS: i * 2, journalRows: events - i } }
            : { kind: "reading", type: "detector_level", severity: "info", device: "co-1", room: "kitchen", data: { co_ppm: 3 + (i % 5), alarm: false, fault: false } };
      const env: Envelope = { v: 1, hub: cred.hub, boot: 2, seq: i + 1, id: ulid(), ts, ...body };
      index.set(env.id, i);
      payloads.push(JSON.stringify(signEnvelope(env, key)));
    }
    return { cred, key, payloads, index, acked: new Uint8Array(events + 16), nAcked: 0, nextBeatAt: Infinity, next: 0, inflight: new Map(), ackTimeout: new AckTimeout(ackTimeoutMs), lastAnswerAt: null, answeredSentAt: -Infinity, probe: null, client: null, up: false, failures: 0, connectAt: NaN, connackAt: NaN, alarmAckAt: NaN, doneAt: NaN };
  };

  const publish = (h: H, i: number, now: number) => {
    let f = h.inflight.get(i);
    if (f) {
      f.sends++;
      resent++;
    } else {
      f = { sentAt: now, sends: 1, level: 0, due: 0, critical: i === 0 };
      h.inflight.set(i, f);
      if (i < events) published++;
    }
    f.sentAt = now;
    f.level = h.ackTimeout.level;
    f.due = now + (fixedAckWait ? resendDelay(f.sends - 1, ackTimeoutMs) : h.ackTimeout.waitMs(f.sends - 1, f.critical));
    h.client?.publish(topics.evt(h.cred.hub), h.payloads[i] as string, { qos: 1 });
  };
  // The uplink's heartbeat: journaled whether or not the hub is connected, sent after what is older.
  const beat = (h: H, now: number) => {
    const i = h.payloads.length;
    const env: Envelope = { v: 1, hub: h.cred.hub, boot: 2, seq: i + 1, id: ulid(), ts: Math.round(now), kind: "heartbeat", type: "heartbeat", severity: "info", data: { uptimeS: Math.round(now / 1000), journalRows: null } };
    h.index.set(env.id, i);
    h.payloads.push(JSON.stringify(signEnvelope(env, h.key)));
    if (i >= h.acked.length) {
      const grown = new Uint8Array(h.acked.length * 2);
      grown.set(h.acked);
      h.acked = grown;
    }
    beats++;
    fill(h);
  };
  const fill = (h: H) => {
    if (!h.up) return;
    const now = wall();
    // BENCH_STORM_ALARM_FIRST: nothing after the alarm until the alarm is acked.
    const upTo = alarmFirst && !h.acked[0] ? 1 : h.payloads.length;
    while (h.inflight.size < window && h.next < upTo) publish(h, h.next++, now);
  };

  const open = (h: H) => {
    if (ending) return;
    if (Number.isNaN(h.connectAt)) h.connectAt = wall();
    const c = connect(url, { ...benchHubConnectOptions(h.cred, 2), connectTimeout: connectTimeoutMs, resubscribe: false });
    h.client = c;
    let connacked = false;
    (c.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    c.on("connect", () => {
      connacked = true;
      if (Number.isNaN(h.connackAt)) h.connackAt = wall();
      const birth = { online: true, boot: 2, version: "bench", heartbeatS: 60, ts: Date.now() };
      c.publish(topics.state(h.cred.hub), JSON.stringify(birth), { qos: 1, retain: true });
      c.subscribe({ [topics.ack(h.cred.hub)]: { qos: 1 }, [topics.cmd(h.cred.hub)]: { qos: 1 } }, (err, granted) => {
        if (err || granted?.some((g) => g.qos === 128)) {
          const k = err ? `subscribe: ${err.message.slice(0, 60)}` : "subscribe refused";
          errors[k] = (errors[k] ?? 0) + 1;
          c.end(true);
          return;
        }
        h.up = true;
        h.failures = 0;
        h.lastAnswerAt = null;
        h.answeredSentAt = -Infinity;
        h.probe = null;
        // After a reconnect, what was in flight goes again first (the uplink does the same).
        const now = wall();
        for (const i of [...h.inflight.keys()]) publish(h, i, now);
        fill(h);
      });
    });
    c.on("message", (topic, payload) => {
      if (!topic.endsWith("/ack")) return;
      const now = wall();
      let ids: string[];
      try {
        ids = (JSON.parse(payload.toString("utf8")) as { ids: string[] }).ids;
      } catch {
        return;
      }
      h.lastAnswerAt = now;
      for (const id of ids) {
        const i = h.index.get(id);
        if (i === undefined) {
          unknownAcks++;
          continue;
        }
        if (h.acked[i]) {
          duplicateAcks++;
          continue;
        }
        h.acked[i] = 1;
        if (i < events) {
          h.nAcked++;
          ackedAll++;
        } else beatsAcked++;
        const f = h.inflight.get(i);
        if (f?.sends === 1) {
          h.answeredSentAt = Math.max(h.answeredSentAt, f.sentAt);
          h.ackTimeout.observe(now - f.sentAt);
        }
        h.inflight.delete(i);
        if (i === 0) h.alarmAckAt = now;
      }
      if (h.nAcked === events && Number.isNaN(h.doneAt)) {
        h.doneAt = now;
        if (++hubsDone === hubs.length) send({ t: "finished" });
      }
      fill(h);
    });
    c.on("error", (e) => {
      const k = e.message.slice(0, 60);
      errors[k] = (errors[k] ?? 0) + 1;
    });
    c.on("close", () => {
      if (h.client !== c) return;
      h.client = null;
      const wasUp = h.up;
      h.up = false;
      if (ending) return;
      if (wasUp) disconnects++;
      else if (!connacked) connectFailures++;
      h.failures++;
      // Back with the uplink's backoff (1 s doubling, jittered); nothing the hub holds is lost meanwhile.
      timers.push(setTimeout(() => open(h), reconnectDelay(h.failures - 1, 1000, 60_000)));
    });
  };

  // The uplink's resend: an event not acked within its wait goes again. The wait and the choice are the uplink's
  // own (ack-timeout.ts: ackTimeoutMs doubling per send, longer for readings while acks are measured slower;
  // while nothing shows them lost only the oldest reading goes again, one probe at a time), or with
  // BENCH_STORM_FIXED_ACK_WAIT=1 the fixed doubling for every event, as hubs did before the measured wait.
  const resendSweep = () => {
    const now = wall();
    for (const h of hubs) {
      if (now >= h.nextBeatAt) {
        h.nextBeatAt += heartbeatMs;
        beat(h, now);
      }
      if (!h.up || h.inflight.size === 0) continue;
      const expired: Array<{ i: number; f: InFlight; sentAt: number; critical: boolean }> = [];
      for (const [i, f] of h.inflight) {
        // As the uplink does: a send unanswered while a later one was answered goes again now once it has waited
        // twice the round trip (a reading: and at least ackTimeoutMs; an alarm: at most ackTimeoutMs).
        if (!fixedAckWait && h.ackTimeout.presumedLost(f.sentAt, h.answeredSentAt, now, f.critical)) {
          publish(h, i, now);
          continue;
        }
        if (f.due <= now) expired.push({ i, f, sentAt: f.sentAt, critical: f.critical });
      }
      if (expired.length === 0) continue;
      if (fixedAckWait) {
        for (const e of expired) publish(h, e.i, now);
        continue;
      }
      for (const e of expired) if (!e.critical) h.ackTimeout.timedOut(e.f.level);
      const probeFlight = h.probe === null ? undefined : h.inflight.get(h.probe);
      const probeOut = probeFlight !== undefined && probeFlight.due > now;
      const { again, held, probe } = repeatAfterWait(expired, { firstSentAt: h.answeredSentAt, at: h.lastAnswerAt }, now, h.ackTimeout.currentMs, probeOut);
      if (probe) h.probe = probe.i;
      for (const e of again) publish(h, e.i, now);
      for (const e of held) {
        e.f.due = now + h.ackTimeout.currentMs;
        e.f.level = h.ackTimeout.level;
      }
    }
  };

  process.on("message", (m: ToHubs) => {
    void (async () => {
      if (m.t === "init") {
        ({ url, events, window, ackTimeoutMs, connectTimeoutMs, spreadMs, total, heartbeatMs } = m);
        const t0 = performance.now();
        hubs = m.hubs.map(presign);
        const bytes = hubs.reduce((a, h) => a + h.payloads.reduce((b, p) => b + p.length, 0), 0);
        send({ t: "ready", signMs: performance.now() - t0, payloadMiB: r1(bytes / 2 ** 20) });
      } else if (m.t === "go") {
        cpu0 = process.cpuUsage();
        if (heartbeatMs > 0) for (const h of hubs) h.nextBeatAt = m.startAt + Math.random() * heartbeatMs;
        for (const h of hubs) timers.push(setTimeout(() => open(h), Math.max(0, m.startAt + (h.cred.g / total) * spreadMs - wall())));
        timers.push(setInterval(resendSweep, 250));
        timers.push(setInterval(() => send({ t: "progress", acked: ackedAll, connected: hubs.reduce((a, h) => a + (h.up ? 1 : 0), 0), resent }), 1000));
      } else if (m.t === "report") {
        // The run is over: no more heartbeats, so the relay's count matches what is reported here.
        for (const h of hubs) h.nextBeatAt = Infinity;
        // Stragglers, for whoever reads the run: what a few hubs still waiting hold and why they wait.
        const now = wall();
        for (const h of hubs.filter((x) => x.nAcked < events).slice(0, 3)) {
          const flights = [...h.inflight.entries()].slice(0, 4).map(([i, f]) => ({ i, sends: f.sends, sentAgoS: r1((now - f.sentAt) / 1000), dueInS: r1((f.due - now) / 1000), critical: f.critical }));
          console.error(
            `straggler ${h.cred.hub}: up ${h.up}, acked ${h.nAcked}/${events}, next ${h.next}, in flight ${h.inflight.size}, last answer ${h.lastAnswerAt === null ? "never" : `${r1((now - h.lastAnswerAt) / 1000)} s ago`}, ` +
              `answered first send ${r1((now - h.answeredSentAt) / 1000)} s ago, ack wait ${h.ackTimeout.currentMs} ms, flights ${JSON.stringify(flights)}`,
          );
        }
        const cpu = process.cpuUsage(cpu0);
        send({
          t: "report",
          connectAt: hubs.map((h) => h.connectAt),
          connackAt: hubs.map((h) => h.connackAt),
          alarmAckAt: hubs.map((h) => h.alarmAckAt),
          doneAt: hubs.map((h) => h.doneAt),
          published,
          resent,
          acked: ackedAll,
          beats,
          beatsAcked,
          duplicateAcks,
          unknownAcks,
          disconnects,
          connectFailures,
          errors,
          cpuMs: (cpu.user + cpu.system) / 1000,
          rssMiB: r1(process.memoryUsage.rss() / 2 ** 20),
        });
      } else if (m.t === "end") {
        ending = true;
        for (const t of timers) clearTimeout(t);
        // DISCONNECT first, so the broker publishes no wills while the relay stops.
        await Promise.race([Promise.all(hubs.map((h) => new Promise<void>((r) => (h.client ? h.client.end(false, {}, () => r()) : r())))), sleep(20_000)]);
        send({ t: "ended" });
        setTimeout(() => process.exit(0), 200);
      }
    })();
  });
}

// --------------------------------------------------------------------------------------------- parent

/** A child process that talks in `{ t }` messages; `next(t)` waits for the next one of that type. */
class Kid<From extends { t: string }> {
  private waiters: Array<{ t: string; resolve: (m: From) => void; reject: (e: Error) => void }> = [];
  readonly exited: Promise<void>;
  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    onMessage: (m: From) => void = () => {},
  ) {
    proc.on("message", (m: From) => {
      onMessage(m);
      if (m.t === "error") {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${name}: ${(m as unknown as { message: string }).message}`));
        return;
      }
      const i = this.waiters.findIndex((w) => w.t === m.t);
      if (i >= 0) this.waiters.splice(i, 1)[0]?.resolve(m);
    });
    this.exited = new Promise((r) => proc.once("exit", () => r()));
    proc.once("exit", (code, signal) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${name} exited (${code ?? signal})`));
    });
  }
  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
  ask<T extends From>(m: unknown, t: T["t"], timeoutMs: number): Promise<T> {
    const p = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no '${t}' after ${timeoutMs} ms`)), timeoutMs);
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
    if (m !== null && this.alive) this.proc.send(m as object);
    return p;
  }
  /** Waits up to `graceMs` for the process to exit on its own, then SIGKILL; resolves once it is gone. */
  async kill(graceMs = 0): Promise<void> {
    if (this.alive && graceMs > 0) await Promise.race([this.exited, sleep(graceMs)]);
    if (this.alive) this.proc.kill("SIGKILL");
    await this.exited;
  }
}

/** The relay process's resident memory and CPU time, from /proc (Linux). */
function procStat(pid: number | undefined): { rssMiB: number; cpuMs: number } {
  if (!pid) return { rssMiB: NaN, cpuMs: NaN };
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
    // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux); the name may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { rssMiB: r1(rssKb / 1024), cpuMs: (Number(f[11]) + Number(f[12])) * 10 };
  } catch {
    return { rssMiB: NaN, cpuMs: NaN };
  }
}


async function pgReachable(url: string): Promise<string | null> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query("SELECT 1");
    return null;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await c.end().catch(() => {});
  }
}

interface Params {
  hubs: number;
  events: number;
  spreadMs: number;
  window: number;
  ackTimeoutMs: number;
  connectTimeoutMs: number;
  /** Each hub journals a heartbeat this often during the run (0: none). */
  heartbeatMs: number;
  procs: number;
  timeoutMs: number;
  pgUrl: string;
  /** Every home has a care plan (its tree calls the elder first and waits), not none (every tree fails through at once). */
  carePlans: boolean;
}

interface VariantResult {
  variant: VariantName;
  status: "ok" | "timeout" | "failed" | "skipped";
  note?: string;
  hubs: number;
  eventsPerHub: number;
  expected?: number;
  identitiesSeconds?: number;
  presignSeconds?: number;
  connectSpanSeconds?: number;
  firstConnectToLastAckSeconds?: number;
  eventsPerSecond?: number;
  ackedAtHubs?: number;
  hubsComplete?: number;
  alarmAckMs?: { n: number; p50: number; p90: number; p99: number; max: number; within2s: number };
  connackMs?: { p50: number; p99: number; max: number };
  hubDoneMs?: { p50: number; p99: number; max: number };
  store?: { rows: number; distinctIds: number; distinctHubSeq: number; beatRows: number; exactlyOnce: boolean };
  relays?: Array<{ name: string; rssIdleMiB: number; rssPeakMiB: number; rssAtLastAckMiB: number; rssSettledMiB: number; cpuPct: number; committedHere: number; received: number; deduped: number; rejected: Record<string, number>; authFailures: Record<string, number> }>;
  rssTimeline?: Array<{ s: number; mib: number[] }>;
  hubsSide?: { published: number; resent: number; heartbeats: number; heartbeatsAcked: number; duplicateAcks: number; unknownAcks: number; disconnects: number; connectFailures: number; errors: Record<string, number>; cpuPct: number[]; rssMiB: number[] };
}

/** Everything a variant started, so it can be stopped even when the run fails half way. */
interface Running {
  relays: Array<Kid<FromRelay>>;
  relayDirs: string[];
  hubs: Array<Kid<FromHubs>>;
  schema: string | null;
  mosquitto: { close(): Promise<void> } | null;
}
const live = new Set<Running>();

async function teardown(run: Running, pgUrl: string): Promise<string[]> {
  const problems: string[] = [];
  await Promise.all(
    run.hubs.map(async (k) => {
      await k.ask({ t: "end" }, "ended", 25_000).catch(() => {});
      await k.kill();
    }),
  );
  await Promise.all(
    run.relays.map(async (k) => {
      await k.ask({ t: "stop" }, "stopped", 30_000).catch((e: Error) => problems.push(`relay stop: ${e.message}`));
      await k.kill(10_000);
    }),
  );
  for (const d of run.relayDirs) rmSync(d, { recursive: true, force: true });
  if (run.mosquitto) await run.mosquitto.close().catch((e: Error) => problems.push(`mosquitto: ${e.message}`));
  if (run.schema) await dropPgSchema(pgUrl, run.schema).catch((e: Error) => problems.push(`drop schema ${run.schema}: ${e.message}`));
  live.delete(run);
  return problems;
}

async function runVariant(variant: VariantName, p: Params): Promise<VariantResult> {
  const self = fileURLToPath(import.meta.url);
  const run: Running = { relays: [], relayDirs: [], hubs: [], schema: null, mosquitto: null };
  live.add(run);
  const base: VariantResult = { variant, status: "failed", hubs: p.hubs, eventsPerHub: p.events, expected: p.hubs * p.events };
  const names = Array.from({ length: p.hubs }, (_, i) => `${HUB_PREFIX}${String(i).padStart(5, "0")}`);
  try {
    // --- relays
    const forkRelay = (name: string) => {
      const prof = process.env.BENCH_STORM_PROFILE;
      const execArgv = [...process.execArgv, ...(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [])];
      const k = new Kid<FromRelay>(name, fork(self, ["--relay-child"], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv }));
      run.relays.push(k);
      return k;
    };
    const tId = performance.now();
    let creds: BenchHub[];
    let hubUrl: string;
    if (isFloor(variant)) {
      let brokerUrl: string | undefined;
      if (variant === "floor-mosquitto") {
        const { ownMosquitto } = await import("../test/support/mosquitto.js");
        const mq = await ownMosquitto();
        run.mosquitto = mq;
        brokerUrl = mq.url;
      }
      const a = forkRelay("floor");
      const sa = await a.ask<Extract<FromRelay, { t: "started" }>>({ t: "start", role: { kind: "floor", brokerUrl }, insertHubs: names, carePlans: false } satisfies ToRelay, "started", 60_000);
      creds = sa.creds;
      hubUrl = sa.mqttUrl;
    } else if (variant === "pg-2x-mosquitto") {
      const { ownMosquitto } = await import("../test/support/mosquitto.js");
      const mq = await ownMosquitto();
      run.mosquitto = mq;
      run.schema = uniquePgSchema("bench_storm");
      const masterKey = randomBytes(32).toString("base64");
      const a = forkRelay("relay A");
      const sa = await a.ask<Extract<FromRelay, { t: "started" }>>({ t: "start", role: { kind: "external", id: "storm-a", url: p.pgUrl, schema: run.schema, brokerUrl: mq.url, masterKey }, insertHubs: names, carePlans: p.carePlans } satisfies ToRelay, "started", 180_000);
      run.relayDirs.push(sa.dir);
      const b = forkRelay("relay B");
      const sb = await b.ask<Extract<FromRelay, { t: "started" }>>({ t: "start", role: { kind: "external", id: "storm-b", url: p.pgUrl, schema: run.schema, brokerUrl: mq.url, masterKey }, insertHubs: [], carePlans: false } satisfies ToRelay, "started", 60_000);
      run.relayDirs.push(sb.dir);
      creds = sa.creds;
      hubUrl = mq.url;
    } else {
      if (variant === "postgres") run.schema = uniquePgSchema("bench_storm");
      const role: RelayRole = variant === "postgres" && run.schema ? { kind: "postgres", url: p.pgUrl, schema: run.schema } : { kind: "sqlite" };
      const a = forkRelay("relay");
      const sa = await a.ask<Extract<FromRelay, { t: "started" }>>({ t: "start", role, insertHubs: names, carePlans: p.carePlans } satisfies ToRelay, "started", 180_000);
      run.relayDirs.push(sa.dir);
      creds = sa.creds;
      hubUrl = sa.mqttUrl;
    }
    base.identitiesSeconds = r1((performance.now() - tId) / 1000);

    // --- hub processes: pre-sign every event before the clock starts
    let acked = 0;
    const progress = new Map<number, { acked: number; connected: number; resent: number }>();
    const tSign = performance.now();
    for (let k = 0; k < p.procs; k++) {
      const kid = new Kid<FromHubs>(`hub process ${k}`, fork(self, ["--hubs-child"], { stdio: ["ignore", "inherit", "inherit", "ipc"] }), (m) => {
        if (m.t === "progress") {
          progress.set(k, m);
          acked = [...progress.values()].reduce((a, x) => a + x.acked, 0);
        }
      });
      run.hubs.push(kid);
    }
    const mine = (k: number): StormHub[] => creds.flatMap((c, g) => (g % p.procs === k ? [{ ...c, g }] : []));
    const ready = await Promise.all(
      run.hubs.map((kid, k) =>
        kid.ask<Extract<FromHubs, { t: "ready" }>>({ t: "init", url: hubUrl, hubs: mine(k), total: p.hubs, events: p.events, window: p.window, ackTimeoutMs: p.ackTimeoutMs, connectTimeoutMs: p.connectTimeoutMs, spreadMs: p.spreadMs, heartbeatMs: p.heartbeatMs } satisfies ToHubs, "ready", 300_000),
      ),
    );
    base.presignSeconds = r1((performance.now() - tSign) / 1000);
    console.log(`  ${variant}: ${p.hubs} hubs ready (identities ${base.identitiesSeconds} s, ${p.hubs * p.events} events signed in ${base.presignSeconds} s, ${r1(ready.reduce((a, x) => a + x.payloadMiB, 0))} MiB)`);

    // --- the storm
    const pids = run.relays.map((k) => k.proc.pid);
    const idle = pids.map(procStat);
    const peak = idle.map((s) => s.rssMiB);
    const timeline: Array<{ s: number; mib: number[] }> = [];
    const startAt = wall() + 1000;
    const sampler = setInterval(() => {
      const st = pids.map(procStat);
      st.forEach((s, i) => (peak[i] = Math.max(peak[i] ?? 0, s.rssMiB)));
      timeline.push({ s: r1((wall() - startAt) / 1000), mib: st.map((s) => s.rssMiB) });
    }, 500);
    const finished = Promise.all(run.hubs.map((k) => k.ask(null, "finished", p.timeoutMs + 60_000)));
    finished.catch(() => {});
    for (const k of run.hubs) k.proc.send({ t: "go", startAt } satisfies ToHubs);
    let lastPrint = 0;
    const printer = setInterval(() => {
      const s = (wall() - startAt) / 1000;
      if (s - lastPrint < 5) return;
      lastPrint = s;
      const conn = [...progress.values()].reduce((a, x) => a + x.connected, 0);
      const res = [...progress.values()].reduce((a, x) => a + x.resent, 0);
      console.log(`    ${r1(s)} s: ${conn} hubs connected, ${acked}/${p.hubs * p.events} acked, ${res} resent, relay RSS ${timeline.at(-1)?.mib.join(" + ") ?? "?"} MiB`);
    }, 1000);
    let deadline: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([finished.then(() => false), new Promise<boolean>((r) => (deadline = setTimeout(() => r(true), p.timeoutMs)))]).finally(() => clearTimeout(deadline));
    const tEnd = wall();
    const atLastAck = pids.map(procStat);
    clearInterval(printer);
    if (timedOut) console.log(`  ${variant}: TIMEOUT — not every event acked after ${p.timeoutMs / 1000} s (${acked}/${p.hubs * p.events}); figures below are partial`);
    await sleep(3000);
    clearInterval(sampler);
    const settled = pids.map(procStat);
    // IPC carries JSON, where a hub's NaN ("never") arrives as null; null would count as time 0 below.
    const never = (a: Array<number | null>): number[] => a.map((x) => x ?? NaN);
    const reports = (await Promise.all(run.hubs.map((k) => k.ask<HubsReport>({ t: "report" }, "report", 30_000)))).map((r) => ({
      ...r,
      connectAt: never(r.connectAt),
      connackAt: never(r.connackAt),
      alarmAckAt: never(r.alarmAckAt),
      doneAt: never(r.doneAt),
    }));
    const counts = await Promise.all(run.relays.map((k) => k.ask<Extract<FromRelay, { t: "counted" }>>({ t: "count", events: p.events } satisfies ToRelay, "counted", 120_000)));

    // --- figures
    const connectAt = reports.flatMap((r) => r.connectAt);
    const t0 = Math.min(...connectAt.filter((x) => !Number.isNaN(x)));
    const doneAt = reports.flatMap((r) => r.doneAt);
    const lastAck = Math.max(...doneAt.filter((x) => !Number.isNaN(x)));
    const per = (a: number[], b: number[]) =>
      a
        .map((x, i) => x - (b[i] as number))
        .filter((x) => !Number.isNaN(x))
        .sort((x, y) => x - y);
    const connectAts = reports.flatMap((r) => r.connectAt);
    const alarm = per(
      reports.flatMap((r) => r.alarmAckAt),
      connectAts,
    );
    const connack = per(
      reports.flatMap((r) => r.connackAt),
      connectAts,
    );
    const hubDone = per(doneAt, connectAts);
    const ackedAtHubs = reports.reduce((a, r) => a + r.acked, 0);
    const span = (tEnd - t0) / 1000;
    const spanToLastAck = timedOut ? span : (lastAck - t0) / 1000;
    const first = counts[0];
    // A floor stores nothing: only its acks count.
    const store =
      first && !isFloor(variant)
        ? {
            rows: first.rows,
            distinctIds: first.distinctIds,
            distinctHubSeq: first.distinctHubSeq,
            beatRows: first.beatRows,
            exactlyOnce: first.rows === p.hubs * p.events && first.distinctIds === first.rows && first.distinctHubSeq === first.rows && first.beatIds === first.beatRows,
          }
        : undefined;
    const wallS = (tEnd - startAt) / 1000;
    const result: VariantResult = {
      ...base,
      status: timedOut ? "timeout" : (isFloor(variant) || store?.exactlyOnce) && ackedAtHubs === p.hubs * p.events ? "ok" : "failed",
      ...(timedOut ? { note: `not finished after ${p.timeoutMs / 1000} s` } : {}),
      connectSpanSeconds: r2((Math.max(...connectAt.filter((x) => !Number.isNaN(x))) - t0) / 1000),
      firstConnectToLastAckSeconds: r2(spanToLastAck),
      eventsPerSecond: Math.round(ackedAtHubs / spanToLastAck),
      ackedAtHubs,
      hubsComplete: doneAt.filter((x) => !Number.isNaN(x)).length,
      alarmAckMs: { n: alarm.length, p50: r1(pct(alarm, 50)), p90: r1(pct(alarm, 90)), p99: r1(pct(alarm, 99)), max: r1(alarm.at(-1) ?? NaN), within2s: alarm.filter((x) => x <= 2000).length },
      connackMs: { p50: r1(pct(connack, 50)), p99: r1(pct(connack, 99)), max: r1(connack.at(-1) ?? NaN) },
      hubDoneMs: { p50: r1(pct(hubDone, 50)), p99: r1(pct(hubDone, 99)), max: r1(hubDone.at(-1) ?? NaN) },
      store,
      relays: run.relays.map((k, i) => {
        const c = counts[i];
        return {
          name: k.name,
          rssIdleMiB: idle[i]?.rssMiB ?? NaN,
          rssPeakMiB: peak[i] ?? NaN,
          rssAtLastAckMiB: atLastAck[i]?.rssMiB ?? NaN,
          rssSettledMiB: settled[i]?.rssMiB ?? NaN,
          cpuPct: r1((((atLastAck[i]?.cpuMs ?? NaN) - (idle[i]?.cpuMs ?? NaN)) / (wallS * 1000)) * 100),
          committedHere: c?.committedHere ?? NaN,
          received: c?.received ?? NaN,
          deduped: c?.deduped ?? NaN,
          rejected: c?.rejected ?? {},
          authFailures: c?.authFailures ?? {},
        };
      }),
      rssTimeline: timeline.filter((_, i) => i % 4 === 0),
      hubsSide: {
        published: reports.reduce((a, r) => a + r.published, 0),
        resent: reports.reduce((a, r) => a + r.resent, 0),
        heartbeats: reports.reduce((a, r) => a + r.beats, 0),
        heartbeatsAcked: reports.reduce((a, r) => a + r.beatsAcked, 0),
        duplicateAcks: reports.reduce((a, r) => a + r.duplicateAcks, 0),
        unknownAcks: reports.reduce((a, r) => a + r.unknownAcks, 0),
        disconnects: reports.reduce((a, r) => a + r.disconnects, 0),
        connectFailures: reports.reduce((a, r) => a + r.connectFailures, 0),
        errors: reports.reduce<Record<string, number>>((a, r) => {
          for (const [k, v] of Object.entries(r.errors)) a[k] = (a[k] ?? 0) + v;
          return a;
        }, {}),
        cpuPct: reports.map((r) => r1((r.cpuMs / (wallS * 1000)) * 100)),
        rssMiB: reports.map((r) => r.rssMiB),
      },
    };
    return result;
  } catch (e) {
    console.log(`  ${variant}: FAILED — ${(e as Error).message}`);
    return { ...base, status: "failed", note: (e as Error).message };
  } finally {
    const problems = await teardown(run, p.pgUrl);
    if (problems.length) console.log(`  ${variant}: cleanup: ${problems.join("; ")}`);
  }
}

async function main(): Promise<void> {
  const quick = !!process.env.BENCH_STORM_QUICK && process.env.BENCH_STORM_QUICK !== "0";
  const wanted = Number(process.env.BENCH_STORM_HUBS ?? (quick ? 2000 : 10_000));
  const p: Params = {
    hubs: wanted,
    events: Number(process.env.BENCH_STORM_EVENTS ?? 50),
    spreadMs: Number(process.env.BENCH_STORM_SPREAD_S ?? 10) * 1000,
    window: Number(process.env.BENCH_STORM_WINDOW ?? 32),
    ackTimeoutMs: Number(process.env.BENCH_STORM_ACK_TIMEOUT_MS ?? 5000),
    connectTimeoutMs: Number(process.env.BENCH_STORM_CONNECT_TIMEOUT_MS ?? CONNECT_TIMEOUT_MS),
    heartbeatMs: Number(process.env.BENCH_STORM_HEARTBEAT_S ?? 60) * 1000,
    procs: Math.max(1, Number(process.env.BENCH_STORM_PROCS ?? 4)),
    timeoutMs: Number(process.env.BENCH_STORM_TIMEOUT_S ?? (quick ? 300 : 600)) * 1000,
    pgUrl: process.env.ANXIN_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    carePlans: !!process.env.BENCH_STORM_CARE_PLANS && process.env.BENCH_STORM_CARE_PLANS !== "0",
  };
  const variants = (process.env.BENCH_STORM_VARIANTS ?? "sqlite,postgres,pg-2x-mosquitto,floor-aedes").split(",").map((v) => v.trim()) as VariantName[];
  const machine = { ...machineInfo(), loadEnd: [] as number[] };
  console.log(`machine: ${machine.cpu} x${machine.cores}, node ${machine.node}, ${machine.os}, ${machine.memGiB} GiB RAM, load ${machine.loadStart.join(" ")}`);

  // The disk's own commit latency, for context: SQLite's commits (synchronous=FULL) wait for it on the relay's thread.
  const fsyncDir = await mkdtemp(join(tmpdir(), "anxin-storm-fsync-"));
  let fsync: ReturnType<typeof rawFdatasync>;
  try {
    fsync = rawFdatasync(fsyncDir, 200);
  } finally {
    rmSync(fsyncDir, { recursive: true, force: true });
  }
  console.log(`disk: 4 KiB write + fdatasync in ${tmpdir()}: p50 ${fsync.p50} ms, p99 ${fsync.p99} ms (${fsync.perSec}/s)`);

  // Every hub is a socket in a hub process and one in the broker (the relay's process, or Mosquitto).
  const limit = nofileLimit();
  if (Number.isFinite(limit) && limit - 300 < p.hubs) {
    p.hubs = Math.max(100, Math.floor((limit - 300) / 100) * 100);
    console.log(`open-file limit ${limit} is too low for ${wanted} hubs: running ${p.hubs}`);
  }
  console.log(
    `${quick ? "QUICK mode: " : ""}${p.hubs} hubs × ${p.events} events (first an alarm), connecting over ${p.spreadMs / 1000} s, window ${p.window}, ${p.carePlans ? "a care plan in every home" : "no care plans"}, ` +
      `ack wait ${p.ackTimeoutMs} ms (doubling${fixedAckWaitInHubs() ? ", fixed" : ", measured"}), CONNACK timeout ${p.connectTimeoutMs} ms, ${p.heartbeatMs > 0 ? `a heartbeat every ${p.heartbeatMs / 1000} s` : "no heartbeats"}, ${p.procs} hub processes; variants ${variants.join(", ")}; timeout ${p.timeoutMs / 1000} s each`,
  );

  const pgProblem = variants.some(needsPg) ? await pgReachable(p.pgUrl) : null;
  let mqProblem: string | false = false;
  if (variants.some((v) => v.endsWith("mosquitto"))) mqProblem = (await import("../test/support/mosquitto.js")).mosquittoMissing();

  const results: VariantResult[] = [];
  for (const v of variants) {
    if (!VARIANTS.includes(v)) {
      results.push({ variant: v, status: "skipped", note: "unknown variant", hubs: p.hubs, eventsPerHub: p.events });
      continue;
    }
    const why = needsPg(v) && pgProblem ? `PostgreSQL at ${p.pgUrl}: ${pgProblem}` : v.endsWith("mosquitto") && mqProblem ? mqProblem : null;
    if (why) {
      console.log(`  ${v}: skipped (${why})`);
      results.push({ variant: v, status: "skipped", note: why, hubs: p.hubs, eventsPerHub: p.events });
      continue;
    }
    console.log(`${v}: starting (load ${loadavg().map(r2).join(" ")})`);
    const r = await runVariant(v, p);
    results.push(r);
    console.log(`${v}: ${r.status}${r.firstConnectToLastAckSeconds !== undefined ? `, ${r.firstConnectToLastAckSeconds} s first connect → last ack, ${r.eventsPerSecond} events/s, alarm ack p99 ${r.alarmAckMs?.p99} ms` : ""}`);
  }

  console.log("");
  const label: Record<VariantName, string> = { sqlite: "SQLite, embedded broker", postgres: "PostgreSQL, embedded broker", "pg-2x-mosquitto": "PostgreSQL, 2 relays, Mosquitto", "floor-aedes": "floor: aedes alone, acks on receipt", "floor-mosquitto": "floor: Mosquitto + one acking subscriber" };
  console.table(
    Object.fromEntries(
      results.map((r) => [
        label[r.variant] ?? r.variant,
        {
          status: r.status,
          "hubs × events": `${r.hubs} × ${r.eventsPerHub}`,
          "first connect → last ack s": r.firstConnectToLastAckSeconds ?? "-",
          "events/s": r.eventsPerSecond ?? "-",
          "alarm ack p50 ms": r.alarmAckMs?.p50 ?? "-",
          "p99 ms": r.alarmAckMs?.p99 ?? "-",
          "max ms": r.alarmAckMs?.max ?? "-",
          "≤ 2 s": r.alarmAckMs ? `${r.alarmAckMs.within2s}/${r.hubs}` : "-",
          "store rows (distinct)": r.store ? `${r.store.rows} (${r.store.distinctIds})` : "-",
          "exactly once": r.store?.exactlyOnce ?? "-",
        },
      ]),
    ),
  );
  console.table(
    Object.fromEntries(
      results.flatMap((r) =>
        (r.relays ?? []).map((x) => [
          `${label[r.variant] ?? r.variant}: ${x.name}`,
          {
            "RSS idle MiB": x.rssIdleMiB,
            "peak MiB": x.rssPeakMiB,
            "at last ack": x.rssAtLastAckMiB,
            "3 s later": x.rssSettledMiB,
            "CPU %": x.cpuPct,
            "new commits": x.committedHere,
            received: x.received,
            deduped: x.deduped,
            rejected: JSON.stringify(x.rejected),
          },
        ]),
      ),
    ),
  );
  console.table(
    Object.fromEntries(
      results
        .filter((r) => r.hubsSide)
        .map((r) => [
          label[r.variant] ?? r.variant,
          {
            "connect span s": r.connectSpanSeconds,
            "CONNACK p50/p99 ms": `${r.connackMs?.p50} / ${r.connackMs?.p99}`,
            "hub drained p50/p99/max s": `${r1((r.hubDoneMs?.p50 ?? NaN) / 1000)} / ${r1((r.hubDoneMs?.p99 ?? NaN) / 1000)} / ${r1((r.hubDoneMs?.max ?? NaN) / 1000)}`,
            published: r.hubsSide?.published,
            resent: r.hubsSide?.resent,
            "heartbeats (acked)": r.hubsSide ? `${r.hubsSide.heartbeats} (${r.hubsSide.heartbeatsAcked})` : "-",
            "dup acks": r.hubsSide?.duplicateAcks,
            disconnects: r.hubsSide?.disconnects,
            "connect failures": r.hubsSide?.connectFailures,
            "hub procs CPU %": r.hubsSide?.cpuPct.join(" "),
          },
        ]),
    ),
  );
  machine.loadEnd = loadavg().map(r2);
  console.log(`load average at end: ${machine.loadEnd.join(" ")}`);
  const failed = results.some((r) => r.status === "failed" || r.status === "timeout");
  if (failed) process.exitCode = 1;
  console.log(
    JSON.stringify({
      bench: "reconnect-storm",
      machine,
      fdatasyncMs: fsync,
      quick,
      params: { hubs: p.hubs, eventsPerHub: p.events, spreadS: p.spreadMs / 1000, window: p.window, ackTimeoutMs: p.ackTimeoutMs, ackWait: fixedAckWaitInHubs() ? "fixed" : "measured", connectTimeoutMs: p.connectTimeoutMs, heartbeatS: p.heartbeatMs / 1000, hubProcesses: p.procs, carePlans: p.carePlans },
      results,
      targets: { hubs: 10_000, eventsPerHub: 50, spreadS: 10, alarmAckP99Ms: 2000 },
    }),
  );
}

// Whatever happens, no child, temp dir or schema outlives the run.
function onSignal(sig: NodeJS.Signals): void {
  console.log(`reconnect-storm: ${sig}, cleaning up`);
  const pgUrl = process.env.ANXIN_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  void Promise.race([Promise.all([...live].map((r) => teardown(r, pgUrl))), sleep(40_000)]).finally(() => process.exit(130));
}

if (process.argv.includes("--relay-child")) await relayChild();
else if (process.argv.includes("--hubs-child")) await hubsChild();
else {
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.on("exit", () => {
    for (const r of live) {
      for (const k of [...r.hubs, ...r.relays]) if (k.alive) k.proc.kill("SIGKILL");
      for (const d of r.relayDirs) rmSync(d, { recursive: true, force: true });
    }
  });
  await main();
}
