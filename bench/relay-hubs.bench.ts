// Relay benchmark: 10,000 simulated hubs connected to one relay (embedded broker, SQLite), each sending a
// signed heartbeat every 60 s, the fleet spread evenly over the minute (~167 events/s). The relay runs in
// this process; the hubs are plain mqtt.js clients in BENCH_HUBS_PROCS child processes (this same file with
// --hubs-child). Each hub does what the real uplink does on the wire: client id = hub id, a retained will,
// a retained birth on its state topic, a subscription to its ack and cmd topics, keepalive 30 s.
// Run: node --import tsx bench/relay-hubs.bench.ts
//   BENCH_HUBS (10000), BENCH_HUBS_PROCS (4), BENCH_HB_SECONDS (90), BENCH_HUBS_BIRTH=plain (birth not retained)
//
// Identities (bench-only shortcut): 100 hubs get theirs through Registry.provisionDirect (the real password hash,
// timed, and their cold logins timed on their own). For the others the bench writes the hubs row that
// insertPendingHub + activateHub would leave (500 per transaction, through the store's kysely handle), with a
// password hash in the relay's legacy format with a tiny scrypt work factor (N=1024, r=1). The relay reads the
// parameters from the stored hash, so these logins take the product's code path (registry, credential cache,
// hash check, broker ACL); new passwords use a salted SHA-256, cheaper still.
import { fork, type ChildProcess } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { loadavg } from "node:os";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { connect, type MqttClient } from "mqtt";
import { monotonicFactory } from "ulid";
import type { Envelope } from "../protocol/envelope.js";
import { signEnvelope } from "../protocol/signing.js";
import { topics } from "../protocol/topics.js";
import { benchHubConnectOptions, insertBenchHubs, machineInfo, nofileLimit, pct, r2 } from "./support.js";

const r1 = (x: number): number => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface HubCred {
  hub: string;
  password: string;
  key: string;
  /** Index in the whole fleet: places the hub's heartbeat in the minute. */
  g: number;
  real: boolean;
}

type ToChild =
  | { t: "init"; url: string; hubs: HubCred[]; total: number; retainBirth: boolean }
  | { t: "connect"; real: boolean; concurrency: number }
  | { t: "beat"; start: number; periodMs: number; durationMs: number }
  | { t: "end" };

interface ConnectReport {
  t: "connected";
  ok: number;
  failed: number;
  ms: number;
  perHubMs: number[];
  errors: Record<string, number>;
}
interface BeatReport {
  t: "beatDone";
  sent: number;
  acked: number;
  skipped: number;
  disconnects: number;
  lat: number[];
  cpuMs: number;
  rssMiB: number;
}
type FromChild = { t: "ready" } | { t: "progress"; connected: number } | ConnectReport | BeatReport | { t: "ended" };

// ------------------------------------------------------------------------------------------------ child

async function child(): Promise<void> {
  const send = (m: FromChild) => process.send?.(m);
  process.on("disconnect", () => process.exit(0)); // the parent is gone
  let url = "";
  let total = 0;
  let retainBirth = true;
  let hubs: HubCred[] = [];
  const clients = new Map<string, MqttClient>();
  const up = new Set<string>();
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  const errors: Record<string, number> = {};
  let acked = 0;
  let disconnects = 0;
  let ending = false;
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
  const seq = new Map<string, number>();
  const bootAt = Date.now();

  const open = (h: HubCred): Promise<string | null> =>
    new Promise((resolve) => {
      const c = connect(url, { ...benchHubConnectOptions(h, 1), resubscribe: false });
      let settled = false;
      const done = (err: string | null) => {
        if (settled) return;
        settled = true;
        resolve(err);
      };
      (c.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
      c.on("connect", () => {
        const birth = { online: true, boot: 1, version: "bench", heartbeatS: 60, ts: Date.now() };
        c.publish(topics.state(h.hub), JSON.stringify(birth), { qos: 1, retain: retainBirth });
        c.subscribe({ [topics.ack(h.hub)]: { qos: 1 }, [topics.cmd(h.hub)]: { qos: 1 } }, (err, granted) => {
          if (err || granted?.some((g) => g.qos === 128)) {
            c.end(true);
            return done(err ? `subscribe: ${err.message}` : "subscribe refused");
          }
          clients.set(h.hub, c);
          up.add(h.hub);
          done(null);
        });
      });
      c.on("message", (topic, payload) => {
        if (!topic.endsWith("/ack")) return;
        const now = performance.now();
        const ids = (JSON.parse(payload.toString("utf8")) as { ids: string[] }).ids;
        for (const id of ids) {
          const t = sentAt.get(id);
          if (t === undefined) continue;
          sentAt.delete(id);
          lat.push(now - t);
          acked++;
        }
      });
      c.on("error", (e) => done(e.message.slice(0, 60)));
      c.on("close", () => {
        done("closed before ready");
        if (up.delete(h.hub) && !ending) {
          disconnects++;
          // Back on line after a short pause, as the uplink would.
          setTimeout(() => void open(h), 1000 + Math.random() * 2000).unref();
        }
      });
    });

  const connectAll = async (list: HubCred[], concurrency: number): Promise<ConnectReport> => {
    const t0 = performance.now();
    const perHubMs: number[] = [];
    let next = 0;
    let failed = 0;
    const progress = setInterval(() => send({ t: "progress", connected: up.size }), 500);
    await Promise.all(
      Array.from({ length: Math.min(concurrency, list.length) }, async () => {
        while (next < list.length) {
          const h = list[next++] as HubCred;
          const s = performance.now();
          let err: string | null = "not tried";
          for (let attempt = 0; attempt < 3 && err; attempt++) {
            if (attempt > 0) await sleep(1000);
            err = await open(h);
            if (err) errors[err] = (errors[err] ?? 0) + 1;
          }
          if (err) failed++;
          else perHubMs.push(performance.now() - s);
        }
      }),
    );
    clearInterval(progress);
    send({ t: "progress", connected: up.size });
    return { t: "connected", ok: list.length - failed, failed, ms: performance.now() - t0, perHubMs, errors };
  };

  const beat = (h: HubCred): boolean => {
    const c = clients.get(h.hub);
    if (!c || !up.has(h.hub)) return false;
    const n = (seq.get(h.hub) ?? 0) + 1;
    seq.set(h.hub, n);
    const env: Envelope = {
      v: 1,
      hub: h.hub,
      boot: 1,
      seq: n,
      id: ulid(),
      ts: Date.now(),
      kind: "heartbeat",
      type: "heartbeat",
      severity: "info",
      data: { uptimeS: Math.round((Date.now() - bootAt) / 1000), journalRows: 0 },
    };
    const payload = JSON.stringify(signEnvelope(env, Buffer.from(h.key, "base64")));
    sentAt.set(env.id, performance.now());
    c.publish(topics.evt(h.hub), payload, { qos: 1 });
    return true;
  };

  const heartbeats = async (start: number, periodMs: number, durationMs: number): Promise<BeatReport> => {
    const cpu0 = process.cpuUsage();
    let sent = 0;
    let skipped = 0;
    const end = start + durationMs;
    const timers: NodeJS.Timeout[] = [];
    for (const h of hubs) {
      // Evenly spread: hub g of the fleet beats at g/total of the period, then every period.
      const first = start + (h.g / total) * periodMs;
      const tick = (at: number) => {
        if (at >= end) return;
        timers.push(
          setTimeout(() => {
            if (beat(h)) sent++;
            else skipped++;
            tick(at + periodMs);
          }, Math.max(0, at - Date.now())),
        );
      };
      tick(first);
    }
    await sleep(Math.max(0, end - Date.now()));
    for (const t of timers) clearTimeout(t);
    // Acks still on their way.
    for (let i = 0; i < 100 && sentAt.size > 0; i++) await sleep(100);
    const cpu = process.cpuUsage(cpu0);
    return {
      t: "beatDone",
      sent,
      acked,
      skipped,
      disconnects,
      lat,
      cpuMs: (cpu.user + cpu.system) / 1000,
      rssMiB: process.memoryUsage.rss() / 2 ** 20,
    };
  };

  process.on("message", (m: ToChild) => {
    void (async () => {
      if (m.t === "init") {
        ({ url, total, retainBirth, hubs } = m);
        send({ t: "ready" });
      } else if (m.t === "connect") {
        send(await connectAll(hubs.filter((h) => h.real === m.real), m.concurrency));
      } else if (m.t === "beat") {
        send(await heartbeats(m.start, m.periodMs, m.durationMs));
      } else if (m.t === "end") {
        ending = true;
        // DISCONNECT first, so the broker does not publish 10,000 wills while the relay stops.
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
  connected = 0;
  constructor(readonly proc: ChildProcess) {
    proc.on("message", (m: FromChild) => {
      if (m.t === "progress") this.connected = m.connected;
      const i = this.waiters.findIndex((w) => w.t === m.t);
      if (i >= 0) this.waiters.splice(i, 1)[0]?.resolve(m);
    });
  }
  send(m: ToChild): void {
    this.proc.send(m);
  }
  next<T extends FromChild>(t: T["t"], timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hub process: no '${t}' after ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        t,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as T);
        },
      });
    });
  }
}

async function parent(): Promise<void> {
  const { startRelayForTest } = await import("../test/support/relay-rig.js");
  const wanted = Number(process.env.BENCH_HUBS ?? 10_000);
  const procs = Math.max(1, Number(process.env.BENCH_HUBS_PROCS ?? 4));
  const hbSeconds = Number(process.env.BENCH_HB_SECONDS ?? 90);
  const retainBirth = process.env.BENCH_HUBS_BIRTH !== "plain";
  const REAL = Math.min(100, wanted);
  const PERIOD_MS = 60_000;
  const CONCURRENCY = 50; // connection attempts in flight per hub process

  const machine = {
    ...machineInfo(),
    loadEnd: [] as number[],
  };
  console.log(`machine: ${machine.cpu} x${machine.cores}, node ${machine.node}, ${machine.os}, ${machine.memGiB} GiB RAM, load ${machine.loadStart.join(" ")}`);

  // Every hub connection is a socket in this process (the broker's end) and in a hub process.
  const limit = nofileLimit();
  let hubsN = wanted;
  let limitNote = `open-file limit ${limit}: enough`;
  if (Number.isFinite(limit) && limit - 300 < wanted) {
    hubsN = Math.max(100, Math.floor((limit - 300) / 100) * 100);
    limitNote = `open-file limit ${limit} is too low for ${wanted} hubs (one socket each, plus ~300 for the relay): running ${hubsN}`;
  }
  console.log(`${limitNote}; ${hubsN} hubs in ${procs} processes; births ${retainBirth ? "retained (as the uplink sends them)" : "not retained"}`);

  let hbCommits = 0;
  let measuring = false;
  const perSecond = new Map<number, number>();
  let tBeat = 0;
  const rig = await startRelayForTest({
    onCommitted: (_hub, env) => {
      if ((env as Envelope).kind !== "heartbeat" || !measuring) return;
      hbCommits++;
      const s = Math.floor((performance.now() - tBeat) / 1000);
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    },
  });
  const relay = rig.relay;
  const kids: Kid[] = [];
  // The histogram holds whole sampling intervals; what is beyond LOOP_RES_MS is the event loop's delay.
  const LOOP_RES_MS = 2;
  const loop = monitorEventLoopDelay({ resolution: LOOP_RES_MS });
  loop.enable();
  let rssMax = 0;
  const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage.rss())), 500);
  const mib = (b: number) => r1(b / 2 ** 20);
  const window = () => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    loop.reset();
    rssMax = process.memoryUsage.rss();
    return () => {
      const c = process.cpuUsage(c0);
      const wall = performance.now() - t0;
      return {
        seconds: r1(wall / 1000),
        cpuPct: r1(((c.user + c.system) / 1000 / wall) * 100),
        rssMaxMiB: mib(Math.max(rssMax, process.memoryUsage.rss())),
        rssEndMiB: mib(process.memoryUsage.rss()),
        loopP99ms: r1(Math.max(0, loop.percentile(99) / 1e6 - LOOP_RES_MS)),
        loopMaxMs: r1(Math.max(0, loop.max / 1e6 - LOOP_RES_MS)),
      };
    };
  };
  const sum = async (c: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number> }> }> }) => {
    const v = (await c.get()).values;
    return { total: v.reduce((a, x) => a + x.value, 0), by: Object.fromEntries(v.filter((x) => x.value).map((x) => [Object.values(x.labels).join(",") || "-", x.value])) };
  };

  try {
    const rssIdle = mib(process.memoryUsage.rss());

    // --- identities
    const creds: HubCred[] = [];
    const tReal = performance.now();
    const real = await Promise.all(Array.from({ length: REAL }, (_, i) => relay.registry.provisionDirect(`hb-${String(i).padStart(5, "0")}`)));
    const realMs = performance.now() - tReal;
    real.forEach((e, i) => creds.push({ hub: e.hub, password: e.mqtt.password, key: e.key, g: i, real: true }));
    const tCheap = performance.now();
    const names = Array.from({ length: hubsN - REAL }, (_, k) => `hb-${String(REAL + k).padStart(5, "0")}`);
    (await insertBenchHubs(relay.store, names)).forEach((c, k) => creds.push({ ...c, g: REAL + k, real: false }));
    const cheapMs = performance.now() - tCheap;
    console.log(
      `identities: ${REAL} by provisionDirect in ${r1(realMs / 1000)} s (${r1(realMs / REAL)} ms each, concurrently); ` +
        `${hubsN - REAL} by the cheap path in ${r1(cheapMs / 1000)} s`,
    );

    // --- hub processes
    const self = fileURLToPath(import.meta.url);
    for (let k = 0; k < procs; k++) {
      const kid = new Kid(fork(self, ["--hubs-child"], { stdio: ["ignore", "inherit", "inherit", "ipc"] }));
      kids.push(kid);
      kid.send({ t: "init", url: rig.mqttUrl, hubs: creds.filter((c) => c.g % procs === k), total: hubsN, retainBirth });
    }
    await Promise.all(kids.map((k) => k.next("ready", 30_000)));

    // --- cold logins at full cost: the provisioned hubs alone, all at once
    const endReal = window();
    const realConn = await Promise.all(kids.map((k) => (k.send({ t: "connect", real: true, concurrency: REAL }), k.next<ConnectReport>("connected", 120_000))));
    const realWin = endReal();
    const realLoginMs = Math.max(...realConn.map((c) => c.ms));
    console.log(`cold logins, real password check: ${REAL} hubs at once in ${r1(realLoginMs / 1000)} s (${r1(realLoginMs / REAL)} ms per hub)`);

    // --- the rest, CONCURRENCY attempts in flight per process
    const endConn = window();
    const tConn = performance.now();
    const marks: Array<{ connected: number; s: number }> = [];
    let nextMark = 1000;
    const mark = () => {
      const n = kids.reduce((a, k) => a + k.connected, 0);
      while (n >= nextMark) {
        marks.push({ connected: nextMark, s: r1((performance.now() - tConn) / 1000) });
        console.log(`  ${nextMark} connected at ${marks.at(-1)?.s} s, relay RSS ${mib(process.memoryUsage.rss())} MiB`);
        nextMark += 1000;
      }
    };
    const watch = setInterval(mark, 250);
    const conn = await Promise.all(kids.map((k) => (k.send({ t: "connect", real: false, concurrency: CONCURRENCY }), k.next<ConnectReport>("connected", 600_000))));
    clearInterval(watch);
    mark();
    const connWin = endConn();
    const connected = realConn.reduce((a, c) => a + c.ok, 0) + conn.reduce((a, c) => a + c.ok, 0);
    const failed = realConn.reduce((a, c) => a + c.failed, 0) + conn.reduce((a, c) => a + c.failed, 0);
    const perHub = conn.flatMap((c) => c.perHubMs).sort((a, b) => a - b);
    const connectErrors: Record<string, number> = {};
    for (const c of [...realConn, ...conn]) for (const [k, v] of Object.entries(c.errors)) connectErrors[k] = (connectErrors[k] ?? 0) + v;
    // Spacing of the 1,000 marks: how the cost of one more hub grows with the hubs already there.
    const spans = marks.map((m, i) => ({ upTo: m.connected, s: r1(m.s - (i ? (marks[i - 1]?.s ?? 0) : 0)) }));
    console.log(`connected ${connected}/${hubsN} in ${connWin.seconds} s (+${r1(realLoginMs / 1000)} s for the first ${REAL}); failed ${failed}`);
    await sleep(2000); // births still being written

    // --- heartbeats
    const endBeat = window();
    tBeat = performance.now();
    measuring = true;
    const start = Date.now() + 500;
    const beats = await Promise.all(
      kids.map((k) => (k.send({ t: "beat", start, periodMs: PERIOD_MS, durationMs: hbSeconds * 1000 }), k.next<BeatReport>("beatDone", hbSeconds * 1000 + 60_000))),
    );
    measuring = false;
    const beatWin = endBeat();
    const lat = beats.flatMap((b) => b.lat).sort((a, b) => a - b);
    const sent = beats.reduce((a, b) => a + b.sent, 0);
    const acked = beats.reduce((a, b) => a + b.acked, 0);
    const skipped = beats.reduce((a, b) => a + b.skipped, 0);
    const disconnects = beats.reduce((a, b) => a + b.disconnects, 0);
    const full = [...perSecond.entries()].filter(([s]) => s >= 1 && s < hbSeconds).map(([, n]) => n);
    const ratePerS = r1(hbCommits / (hbSeconds + 0.5));
    const m = relay.metrics;
    const rejected = await sum(m.eventsRejected);
    const auth = await sum(m.authFailures);

    const result = {
      hubs: hubsN,
      hubProcesses: procs,
      limitNote,
      retainedBirth: retainBirth,
      identities: {
        provisionDirect: { hubs: REAL, seconds: r1(realMs / 1000), msPerHub: r1(realMs / REAL) },
        cheap: { hubs: hubsN - REAL, seconds: r1(cheapMs / 1000), scrypt: "N=1024,r=1,p=1" },
        extrapolatedProvisionDirectSeconds: Math.round((realMs / REAL) * hubsN / 1000),
      },
      coldLoginsFullCost: { hubs: REAL, seconds: r1(realLoginMs / 1000), msPerHub: r1(realLoginMs / REAL), extrapolatedSecondsForAll: Math.round((realLoginMs / REAL) * hubsN / 1000), relay: realWin },
      connect: {
        connected,
        failed,
        seconds: connWin.seconds,
        perHubMs: { p50: r1(pct(perHub, 50)), p99: r1(pct(perHub, 99)), max: r1(perHub.at(-1) ?? NaN) },
        secondsPer1000: spans,
        errors: connectErrors,
        relay: connWin,
      },
      heartbeats: {
        seconds: hbSeconds,
        sent,
        committed: hbCommits,
        acked,
        skippedNotConnected: skipped,
        commitPerS: ratePerS,
        commitPerSMinMax: full.length ? [Math.min(...full), Math.max(...full)] : [],
        ackMs: { p50: r1(pct(lat, 50)), p90: r1(pct(lat, 90)), p99: r1(pct(lat, 99)), max: r1(lat.at(-1) ?? NaN) },
        disconnects,
        relay: beatWin,
        hubProcesses: beats.map((b) => ({ cpuPct: r1((b.cpuMs / (hbSeconds * 1000)) * 100), rssMiB: r1(b.rssMiB) })),
      },
      relayRssIdleMiB: rssIdle,
      brokerClients: relay.broker?.clientCount ?? null,
      rejected,
      authFailures: auth,
      ingestPending: relay.ingest.pending,
    };

    console.log("");
    console.table({
      "provisionDirect (real hash)": { hubs: REAL, seconds: result.identities.provisionDirect.seconds, "per hub ms": result.identities.provisionDirect.msPerHub, note: `≈ ${result.identities.extrapolatedProvisionDirectSeconds} s for ${hubsN}` },
      "cold login (real check)": { hubs: REAL, seconds: result.coldLoginsFullCost.seconds, "per hub ms": result.coldLoginsFullCost.msPerHub, note: `≈ ${result.coldLoginsFullCost.extrapolatedSecondsForAll} s for ${hubsN}` },
      "connect + birth + subscribe (cheap hash)": { hubs: connected - REAL, seconds: connWin.seconds, "per hub ms": r2((connWin.seconds * 1000) / Math.max(1, connected - REAL)), note: `${failed} failed` },
    });
    console.table(Object.fromEntries(spans.map((s) => [`hubs ${s.upTo - 999}–${s.upTo}`, { seconds: s.s }])));
    console.table({
      connecting: { "relay CPU %": connWin.cpuPct, "RSS max MiB": connWin.rssMaxMiB, "RSS end MiB": connWin.rssEndMiB, "loop p99 ms": connWin.loopP99ms, "loop max ms": connWin.loopMaxMs },
      "heart-beating": { "relay CPU %": beatWin.cpuPct, "RSS max MiB": beatWin.rssMaxMiB, "RSS end MiB": beatWin.rssEndMiB, "loop p99 ms": beatWin.loopP99ms, "loop max ms": beatWin.loopMaxMs },
    });
    console.table({
      heartbeats: {
        sent,
        committed: hbCommits,
        acked,
        "commits/s": ratePerS,
        "ack p50 ms": result.heartbeats.ackMs.p50,
        "ack p90 ms": result.heartbeats.ackMs.p90,
        "ack p99 ms": result.heartbeats.ackMs.p99,
        "ack max ms": result.heartbeats.ackMs.max,
        disconnects,
        "not connected": skipped,
      },
    });
    console.log(`relay RSS idle ${rssIdle} MiB; rejected ${JSON.stringify(rejected)}; auth failures ${JSON.stringify(auth)}; connect errors ${JSON.stringify(connectErrors)}`);
    machine.loadEnd = loadavg().map(r2);
    console.log(`load average at end: ${machine.loadEnd.join(" ")}`);
    console.log(JSON.stringify({ bench: "relay-hubs", machine, ...result, targets: { connectedHubs: 10_000 } }));
  } finally {
    clearInterval(rssTimer);
    await Promise.all(
      kids.map(async (k) => {
        k.send({ t: "end" });
        await k.next("ended", 30_000).catch(() => {});
        k.proc.kill();
      }),
    );
    await rig.stop();
  }
}

if (process.argv.includes("--hubs-child")) await child();
else await parent();
