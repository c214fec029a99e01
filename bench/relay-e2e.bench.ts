// End-to-end relay benchmark: sensor event → relay commit latency with 1,000 simulated hubs. The relay runs
// in this process (startRelayForTest: embedded broker, SQLite; then PostgreSQL when ANXIN_TEST_PG_URL is
// set). The hubs are 1,000 mqtt.js connections (client id = hub id, their own credentials and signing key)
// split over two child processes (this file with --e2e-child), so their work does not share the relay's
// event loop. Each hub sends signed events (readings, heartbeats, device events, alarms) one every 2 s with
// ±25 % jitter (~500 events/s in all), then one every 0.5 s (~2,000 events/s).
//
// Latency of an event = the relay's onCommitted callback (this process) minus the moment the hub handed the
// signed message to mqtt.js (child process). Both read performance.timeOrigin + performance.now(); the
// offset between the two processes' clocks is measured over IPC (NTP style, smallest round trip kept)
// before and after, and applied. The hub's own view, ack arrival minus hand-off (one clock), is shown too.
// Run: node --import tsx bench/relay-e2e.bench.ts   (BENCH_E2E_HUBS 1000, BENCH_E2E_PHASE_S 30)
import { fork, type ChildProcess } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { loadavg } from "node:os";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { connect, type MqttClient } from "mqtt";
import { monotonicFactory } from "ulid";
import type { Envelope } from "../protocol/envelope.js";
import type { EnrolResponse } from "../protocol/messages.js";
import { signEnvelope } from "../protocol/signing.js";
import { topics } from "../protocol/topics.js";
import { benchHubConnectOptions, dropPgSchema, insertBenchHubs, machineInfo, pct, r2, uniquePgSchema } from "./support.js";

const r1 = (x: number): number => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Wall-clock ms with sub-ms resolution; comparable across processes once the offset is applied. */
const clock = (): number => performance.timeOrigin + performance.now();

interface HubCred {
  hub: string;
  password: string;
  key: string;
}

type ToChild =
  | { t: "init"; url: string; hubs: HubCred[] }
  | { t: "clock"; t0: number }
  | { t: "connect"; concurrency: number }
  | { t: "phase"; name: string; meanMs: number; durationMs: number }
  | { t: "end" };
interface PhaseReport {
  t: "phaseDone";
  name: string;
  ids: string[];
  /** Hand-off times (child clock), same order as ids. */
  sentAt: number[];
  critical: boolean[];
  ackMs: number[];
  sent: number;
  acked: number;
  /** Connections lost so far (their hubs stop sending). */
  disconnects: number;
  cpuMs: number;
  rssMiB: number;
}
type FromChild =
  | { t: "ready" }
  | { t: "clock"; t0: number; tc: number }
  | { t: "connected"; ok: number; failed: number; ms: number; errors: Record<string, number> }
  | PhaseReport
  | { t: "ended" };

// ------------------------------------------------------------------------------------------------ child

const ALARMS = ["smoke", "gas", "co", "sos", "fall"] as const;

/** A realistic mix: 5 % alarms, 10 % device events, 20 % heartbeats, the rest readings. */
function body(r: number, uptimeS: number): Pick<Envelope, "kind" | "type" | "severity" | "device" | "room" | "data" | "actions"> {
  if (r < 0.05) {
    const type = ALARMS[Math.floor((r / 0.05) * ALARMS.length)] ?? "sos";
    const gas = type === "gas" || type === "co";
    return {
      kind: "alarm",
      type,
      severity: "critical",
      device: `${type}-1`,
      room: type === "sos" ? "bedroom" : "kitchen",
      data: gas ? { lel: 23.5, setpoint: 20 } : { raw: 1 },
      actions: gas ? [{ action: "valve_closed", target: "valve-1", ok: true }, { action: "siren_on", ok: true }] : [{ action: "siren_on", ok: true }],
    };
  }
  if (r < 0.15) return { kind: "device", type: r < 0.1 ? "battery_low" : "offline", severity: "warning", device: "radar-bedroom", room: "bedroom", data: { battery: 12 } };
  if (r < 0.35) return { kind: "heartbeat", type: "heartbeat", severity: "info", data: { uptimeS, journalRows: 0 } };
  return { kind: "reading", type: "detector_level", severity: "info", device: "co-1", room: "kitchen", data: { co_ppm: 3, alarm: false, fault: false } };
}

async function child(): Promise<void> {
  const send = (m: FromChild) => process.send?.(m);
  process.on("disconnect", () => process.exit(0));
  let url = "";
  let hubs: HubCred[] = [];
  const clients = new Map<string, MqttClient>();
  const keys = new Map<string, Buffer>();
  const seq = new Map<string, number>();
  const bootAt = Date.now();
  let ending = false;
  let disconnects = 0;
  // Per phase.
  let ids: string[] = [];
  let sentAt: number[] = [];
  let critical: boolean[] = [];
  let ackMs: number[] = [];
  let acked = 0;
  const pendingAck = new Map<string, number>();
  const pool = Buffer.alloc(4096);
  let pos = pool.length;
  const ulid = monotonicFactory(() => {
    if (pos >= pool.length) {
      randomFillSync(pool);
      pos = 0;
    }
    return (pool[pos++] as number) / 256;
  });

  const open = (h: HubCred): Promise<string | null> =>
    new Promise((resolve) => {
      const c = connect(url, benchHubConnectOptions(h, 1));
      let settled = false;
      const done = (err: string | null) => {
        if (settled) return;
        settled = true;
        resolve(err);
      };
      // As the uplink does: small QoS 1 packets both ways, so no Nagle delay.
      (c.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
      c.on("connect", () => {
        c.publish(topics.state(h.hub), JSON.stringify({ online: true, boot: 1, version: "bench", heartbeatS: 60, ts: Date.now() }), { qos: 1, retain: true });
        c.subscribe({ [topics.ack(h.hub)]: { qos: 1 }, [topics.cmd(h.hub)]: { qos: 1 } }, (err, granted) => {
          if (err || granted?.some((g) => g.qos === 128)) {
            c.end(true);
            return done(err ? `subscribe: ${err.message}` : "subscribe refused");
          }
          clients.set(h.hub, c);
          done(null);
        });
      });
      c.on("message", (topic, payload) => {
        if (!topic.endsWith("/ack")) return;
        const now = clock();
        for (const id of (JSON.parse(payload.toString("utf8")) as { ids: string[] }).ids) {
          const t = pendingAck.get(id);
          if (t === undefined) continue;
          pendingAck.delete(id);
          ackMs.push(now - t);
          acked++;
        }
      });
      c.on("error", (e) => done(e.message.slice(0, 60)));
      c.on("close", () => {
        done("closed before ready");
        if (!ending && clients.get(h.hub) === c) {
          clients.delete(h.hub);
          disconnects++;
        }
      });
    });

  const emit = (h: HubCred): void => {
    const c = clients.get(h.hub);
    if (!c) return;
    const n = (seq.get(h.hub) ?? 0) + 1;
    seq.set(h.hub, n);
    const env: Envelope = { v: 1, hub: h.hub, boot: 1, seq: n, id: ulid(), ts: Date.now(), ...body(Math.random(), Math.round((Date.now() - bootAt) / 1000)) };
    const payload = JSON.stringify(signEnvelope(env, keys.get(h.hub) as Buffer));
    const t = clock();
    c.publish(topics.evt(h.hub), payload, { qos: 1 });
    ids.push(env.id);
    sentAt.push(t);
    critical.push(env.severity === "critical");
    pendingAck.set(env.id, t);
  };

  const phase = async (name: string, meanMs: number, durationMs: number): Promise<PhaseReport> => {
    ids = [];
    sentAt = [];
    critical = [];
    ackMs = [];
    acked = 0;
    pendingAck.clear();
    const cpu0 = process.cpuUsage();
    const end = Date.now() + durationMs;
    const timers = new Set<NodeJS.Timeout>();
    // ±25 % jitter around the mean interval; the first event at a random point of the first interval.
    const next = (h: HubCred, delay: number) => {
      if (Date.now() + delay >= end) return;
      const t = setTimeout(() => {
        timers.delete(t);
        emit(h);
        next(h, meanMs * (0.75 + Math.random() * 0.5));
      }, delay);
      timers.add(t);
    };
    for (const h of hubs) next(h, Math.random() * meanMs);
    await sleep(durationMs);
    for (const t of timers) clearTimeout(t);
    for (let i = 0; i < 150 && pendingAck.size > 0; i++) await sleep(100);
    const cpu = process.cpuUsage(cpu0);
    return { t: "phaseDone", name, ids, sentAt, critical, ackMs, sent: ids.length, acked, disconnects, cpuMs: (cpu.user + cpu.system) / 1000, rssMiB: process.memoryUsage.rss() / 2 ** 20 };
  };

  process.on("message", (m: ToChild) => {
    if (m.t === "clock") return send({ t: "clock", t0: m.t0, tc: clock() });
    void (async () => {
      if (m.t === "init") {
        ({ url, hubs } = m);
        for (const h of hubs) keys.set(h.hub, Buffer.from(h.key, "base64"));
        send({ t: "ready" });
      } else if (m.t === "connect") {
        const t0 = performance.now();
        const errors: Record<string, number> = {};
        let nextHub = 0;
        let failed = 0;
        await Promise.all(
          Array.from({ length: Math.min(m.concurrency, hubs.length) }, async () => {
            while (nextHub < hubs.length) {
              const h = hubs[nextHub++] as HubCred;
              let err: string | null = "not tried";
              for (let attempt = 0; attempt < 3 && err; attempt++) {
                if (attempt) await sleep(1000);
                err = await open(h);
                if (err) errors[err] = (errors[err] ?? 0) + 1;
              }
              if (err) failed++;
            }
          }),
        );
        send({ t: "connected", ok: hubs.length - failed, failed, ms: performance.now() - t0, errors });
      } else if (m.t === "phase") {
        send(await phase(m.name, m.meanMs, m.durationMs));
      } else if (m.t === "end") {
        ending = true;
        await Promise.all([...clients.values()].map((c) => new Promise<void>((r) => c.end(false, {}, () => r()))));
        send({ t: "ended" });
        setTimeout(() => process.exit(0), 200);
      }
    })();
  });
}

// ----------------------------------------------------------------------------------------------- parent

class Kid {
  private waiters: Array<{ t: FromChild["t"]; resolve: (m: FromChild) => void }> = [];
  constructor(readonly proc: ChildProcess) {
    proc.on("message", (m: FromChild) => {
      const i = this.waiters.findIndex((w) => w.t === m.t);
      if (i >= 0) this.waiters.splice(i, 1)[0]?.resolve(m);
    });
  }
  send(m: ToChild): void {
    this.proc.send(m);
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
      });
    });
    this.send(m);
    return p;
  }
  /** Child clock minus ours, from the exchange with the smallest round trip. */
  async offset(rounds = 40): Promise<{ offsetMs: number; rttMs: number }> {
    let best = { offsetMs: NaN, rttMs: Infinity };
    for (let i = 0; i < rounds; i++) {
      const t0 = clock();
      const m = await this.ask<Extract<FromChild, { t: "clock" }>>({ t: "clock", t0 }, "clock", 5000);
      const t1 = clock();
      if (t1 - t0 < best.rttMs) best = { offsetMs: m.tc - (t0 + t1) / 2, rttMs: t1 - t0 };
      await sleep(5);
    }
    return best;
  }
}


interface PhaseResult {
  phase: string;
  targetPerS: number;
  seconds: number;
  sent: number;
  committed: number;
  sentPerS: number;
  committedPerS: number;
  commitMs: { p50: number; p90: number; p99: number; max: number };
  commitMsCritical: { n: number; p50: number; p99: number };
  ackMs: { p50: number; p90: number; p99: number; max: number };
  notCommitted: number;
  disconnects: number;
  relayCpuPct: number;
  relayRssMaxMiB: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  hubProcessCpuPct: number[];
}

interface VariantResult {
  store: "sqlite" | "postgres";
  hubs: number;
  identities: { how: string; seconds: number; msPerHub: number };
  connect: { seconds: number; connected: number; failed: number; errors: Record<string, number> };
  clock: { offsetMs: number[]; rttMs: number[]; driftMs: number[] };
  phases: PhaseResult[];
  relayRssAfterConnectMiB: number;
  rejected: number;
}

async function variant(store: "sqlite" | "postgres", hubsN: number, phaseS: number): Promise<VariantResult> {
  const { startRelayForTest } = await import("../test/support/relay-rig.js");
  const pgUrl = process.env.ANXIN_TEST_PG_URL as string;
  const schema = store === "postgres" ? uniquePgSchema("bench") : null;
  const commits = new Map<string, number>();
  let recording = false;
  const rig = await startRelayForTest({
    onCommitted: (_hub, env) => {
      if (recording) commits.set((env as Envelope).id, clock());
    },
    // `path: undefined` drops the rig's SQLite path, which its deep merge would otherwise keep beside `url`.
    ...(schema ? { config: { store: { kind: "postgres", url: pgUrl, schema, path: undefined } } } : {}),
  });
  const relay = rig.relay;
  const kids: Kid[] = [];
  const loop = monitorEventLoopDelay({ resolution: 2 });
  loop.enable();
  try {
    // --- identities
    const names = Array.from({ length: hubsN }, (_, i) => `e2e-${String(i).padStart(4, "0")}`);
    const tId = performance.now();
    let creds: HubCred[];
    let how: string;
    if (store === "sqlite") {
      how = "Registry.provisionDirect, all at once (scrypt N=16384, r=8)";
      const enrolled: EnrolResponse[] = await Promise.all(names.map((n) => relay.registry.provisionDirect(n)));
      creds = enrolled.map((e) => ({ hub: e.hub, password: e.mqtt.password, key: e.key }));
    } else {
      // The scrypt cost does not depend on the store and was measured on SQLite; keep the run short.
      how = "bench-only rows, scrypt N=1024, r=1 (the cost does not depend on the store)";
      creds = await insertBenchHubs(relay.store, names);
    }
    const idMs = performance.now() - tId;
    console.log(`[${store}] ${hubsN} identities in ${r1(idMs / 1000)} s (${how})`);

    // --- hub processes, connections
    const self = fileURLToPath(import.meta.url);
    const PROCS = 2;
    for (let k = 0; k < PROCS; k++) {
      const kid = new Kid(fork(self, ["--e2e-child"], { stdio: ["ignore", "inherit", "inherit", "ipc"] }));
      kids.push(kid);
    }
    await Promise.all(kids.map((k, i) => k.ask({ t: "init", url: rig.mqttUrl, hubs: creds.filter((_, j) => j % PROCS === i) }, "ready", 30_000)));
    const tConn = performance.now();
    const conn = await Promise.all(kids.map((k) => k.ask<Extract<FromChild, { t: "connected" }>>({ t: "connect", concurrency: 50 }, "connected", 300_000)));
    const connS = (performance.now() - tConn) / 1000;
    const errors: Record<string, number> = {};
    for (const c of conn) for (const [e, n] of Object.entries(c.errors)) errors[e] = (errors[e] ?? 0) + n;
    const connected = conn.reduce((a, c) => a + c.ok, 0);
    console.log(`[${store}] ${connected}/${hubsN} hubs connected in ${r1(connS)} s (cold logins: one scrypt each)`);
    await sleep(2000); // births written, logins settled
    const rssAfterConnect = process.memoryUsage.rss() / 2 ** 20;
    const clocks = await Promise.all(kids.map((k) => k.offset()));

    // --- phases
    const phases: PhaseResult[] = [];
    for (const [name, meanMs, target] of [
      ["~500 events/s", 2000, hubsN / 2],
      ["~2,000 events/s", 500, hubsN * 2],
    ] as const) {
      commits.clear();
      recording = true;
      loop.reset();
      let rssMax = process.memoryUsage.rss();
      const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage.rss())), 250);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const reports = await Promise.all(kids.map((k) => k.ask<PhaseReport>({ t: "phase", name, meanMs, durationMs: phaseS * 1000 }, "phaseDone", phaseS * 1000 + 60_000)));
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      clearInterval(rssTimer);
      recording = false;
      const lat: number[] = [];
      const latCrit: number[] = [];
      let missing = 0;
      reports.forEach((rep, k) => {
        const off = clocks[k]?.offsetMs ?? 0;
        rep.ids.forEach((id, i) => {
          const c = commits.get(id);
          if (c === undefined) return void missing++;
          const l = c - ((rep.sentAt[i] as number) - off);
          lat.push(l);
          if (rep.critical[i]) latCrit.push(l);
        });
      });
      lat.sort((a, b) => a - b);
      latCrit.sort((a, b) => a - b);
      const ack = reports.flatMap((r) => r.ackMs).sort((a, b) => a - b);
      const sent = reports.reduce((a, r) => a + r.sent, 0);
      const res: PhaseResult = {
        phase: name,
        targetPerS: target,
        seconds: phaseS,
        sent,
        committed: lat.length,
        sentPerS: Math.round(sent / phaseS),
        committedPerS: Math.round(lat.length / phaseS),
        commitMs: { p50: r2(pct(lat, 50)), p90: r2(pct(lat, 90)), p99: r2(pct(lat, 99)), max: r2(lat.at(-1) ?? NaN) },
        commitMsCritical: { n: latCrit.length, p50: r2(pct(latCrit, 50)), p99: r2(pct(latCrit, 99)) },
        ackMs: { p50: r2(pct(ack, 50)), p90: r2(pct(ack, 90)), p99: r2(pct(ack, 99)), max: r2(ack.at(-1) ?? NaN) },
        notCommitted: missing,
        disconnects: reports.reduce((a, r) => a + r.disconnects, 0),
        relayCpuPct: r1(((cpu.user + cpu.system) / 1000 / wall) * 100),
        relayRssMaxMiB: r1(rssMax / 2 ** 20),
        loopDelayP99Ms: r1(Math.max(0, loop.percentile(99) / 1e6 - 2)),
        loopDelayMaxMs: r1(Math.max(0, loop.max / 1e6 - 2)),
        hubProcessCpuPct: reports.map((r) => r1((r.cpuMs / wall) * 100)),
      };
      console.log(`[${store}] ${name}: ${res.committedPerS} committed/s, commit p50 ${res.commitMs.p50} ms, p99 ${res.commitMs.p99} ms`);
      phases.push(res);
    }
    const clocksAfter = await Promise.all(kids.map((k) => k.offset()));
    const rejected = (await relay.metrics.eventsRejected.get()).values.reduce((a, v) => a + v.value, 0);
    return {
      store,
      hubs: hubsN,
      identities: { how, seconds: r1(idMs / 1000), msPerHub: r1(idMs / hubsN) },
      connect: { seconds: r1(connS), connected, failed: hubsN - connected, errors },
      clock: {
        offsetMs: clocks.map((c) => r2(c.offsetMs)),
        rttMs: clocks.map((c) => r2(c.rttMs)),
        driftMs: clocksAfter.map((c, i) => r2(c.offsetMs - (clocks[i]?.offsetMs ?? 0))),
      },
      phases,
      relayRssAfterConnectMiB: r1(rssAfterConnect),
      rejected,
    };
  } finally {
    loop.disable();
    await Promise.all(kids.map((k) => k.ask({ t: "end" }, "ended", 30_000).catch(() => {})));
    for (const k of kids) k.proc.kill();
    await rig.stop();
    if (schema) await dropPgSchema(pgUrl, schema);
  }
}

async function parent(): Promise<void> {
  const hubsN = Number(process.env.BENCH_E2E_HUBS ?? 1000);
  const phaseS = Number(process.env.BENCH_E2E_PHASE_S ?? 30);
  const machine = {
    ...machineInfo(),
    loadEnd: [] as number[],
  };
  console.log(`machine: ${machine.cpu} x${machine.cores}, node ${machine.node}, ${machine.os}, ${machine.memGiB} GiB RAM, load ${machine.loadStart.join(" ")}`);
  console.log(`${hubsN} hubs in 2 processes; phases of ${phaseS} s; latency = relay onCommitted − hub hand-off to mqtt.js (clocks aligned over IPC)`);
  const results: VariantResult[] = [await variant("sqlite", hubsN, phaseS)];
  if (process.env.ANXIN_TEST_PG_URL) results.push(await variant("postgres", hubsN, phaseS));

  console.log("");
  console.table(
    Object.fromEntries(
      results.map((v) => [
        v.store,
        {
          identities: `${v.identities.seconds} s`,
          "per hub ms": v.identities.msPerHub,
          "connect all": `${v.connect.seconds} s`,
          connected: v.connect.connected,
          "clock offset ms": v.clock.offsetMs.join(" / "),
          "IPC rtt ms": v.clock.rttMs.join(" / "),
          "drift ms": v.clock.driftMs.join(" / "),
        },
      ]),
    ),
  );
  console.table(
    Object.fromEntries(
      results.flatMap((v) =>
        v.phases.map((p) => [
          `${v.store}, ${p.phase}`,
          {
            "sent/s": p.sentPerS,
            "committed/s": p.committedPerS,
            "p50 ms": p.commitMs.p50,
            "p90 ms": p.commitMs.p90,
            "p99 ms": p.commitMs.p99,
            "max ms": p.commitMs.max,
            "alarms p99": p.commitMsCritical.p99,
            "ack p50/p99 ms": `${p.ackMs.p50} / ${p.ackMs.p99}`,
            "relay CPU %": p.relayCpuPct,
            "relay RSS MiB": p.relayRssMaxMiB,
            "loop p99/max ms": `${p.loopDelayP99Ms} / ${p.loopDelayMaxMs}`,
            "hub procs CPU %": p.hubProcessCpuPct.join(" / "),
            lost: p.notCommitted,
          },
        ]),
      ),
    ),
  );
  if (!process.env.ANXIN_TEST_PG_URL) console.log("PostgreSQL: skipped (ANXIN_TEST_PG_URL not set)");
  machine.loadEnd = loadavg().map(r2);
  console.log(`load average at end: ${machine.loadEnd.join(" ")}`);
  console.log(
    JSON.stringify({
      bench: "relay-e2e",
      machine,
      latency: "relay onCommitted (relay process) minus hub hand-off to mqtt.js (hub process), clocks aligned over IPC",
      results,
      postgres: process.env.ANXIN_TEST_PG_URL ? "measured" : "skipped: ANXIN_TEST_PG_URL not set",
      targets: { fullPathToFirstCallP50ms: 100, fullPathToFirstCallP99ms: 500 },
    }),
  );
}

if (process.argv.includes("--e2e-child")) await child();
else await parent();
