// Alarm → first call request, with 1,000 simulated hubs sending traffic. The relay runs in this process
// (startRelayForTest: embedded broker, SQLite; then PostgreSQL when ANXIN_TEST_PG_URL is set) with the
// escalation on and the real http telephony adapter calling a scripted gateway over loopback HTTP
// (test/support/telephony-stub.ts). The hubs are mqtt.js connections in a child process (this file with
// --child) sending signed readings, heartbeats and device events, plus alarms, each from a (hub, type) pair
// not used before so that every alarm opens its own incident and call tree.
//
// Per alarm: t0 = the hub hands the signed alarm to mqtt.js (child clock, aligned over IPC);
//   commit  = the relay's onCommitted for it;
//   issued  = the escalation calls Telephony.place() for the incident's first call;
//   accepted = the gateway accepted that request (the HTTP round trip done).
// Reported: commit − t0, issued − t0 (the target: p50 ≤ 100 ms, p99 ≤ 500 ms end to end), issued − commit
// (the escalation's own share), accepted − t0.
// Run: node --import tsx bench/escalation.bench.ts   (BENCH_ESC_HUBS 1000, BENCH_ESC_PHASE_S 30, BENCH_ESC_ALARMS_PER_S 5)
import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { connect, type MqttClient } from "mqtt";
import { monotonicFactory } from "ulid";
import type { Envelope } from "../protocol/envelope.js";
import { signEnvelope } from "../protocol/signing.js";
import { topics } from "../protocol/topics.js";
import { createTelephony, type CallRequest, type Telephony } from "../relay/src/telephony/index.js";
import { askChild, dropPgSchema, insertBenchCarePlans, insertBenchHubs, machineInfo, pct, r2, uniquePgSchema, type BenchHub } from "./support.js";

const clock = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const r1 = (x: number): number => Math.round(x * 10) / 10;
const ALARMS = ["smoke", "gas", "co", "sos", "fall"] as const;
const SECRET = "bench-escalation-gateway-secret-000";

type ToChild = { t: "init"; url: string; hubs: BenchHub[] } | { t: "clock" } | { t: "run"; meanMs: number; alarmsPerS: number; durationMs: number } | { t: "end" };
type FromChild =
  | { t: "ready"; connected: number; failed: number }
  | { t: "clock"; tc: number }
  | { t: "done"; alarms: Array<{ id: string; sentAt: number }>; sent: number }
  | { t: "ended" };

// ------------------------------------------------------------------------------------------------ child

async function child(): Promise<void> {
  const send = (m: FromChild) => process.send?.(m);
  process.on("disconnect", () => process.exit(0));
  const clients = new Map<string, MqttClient>();
  const keys = new Map<string, Buffer>();
  const seq = new Map<string, number>();
  const ulid = monotonicFactory();
  let hubs: BenchHub[] = [];
  const emit = (hub: string, body: Pick<Envelope, "kind" | "type" | "severity" | "device" | "data">): { id: string; sentAt: number } | undefined => {
    const c = clients.get(hub);
    if (!c) return undefined;
    const n = (seq.get(hub) ?? 0) + 1;
    seq.set(hub, n);
    const env = signEnvelope({ v: 1, hub, boot: 1, seq: n, id: ulid(), ts: Date.now(), ...body }, keys.get(hub) as Buffer);
    const payload = JSON.stringify(env);
    const sentAt = clock();
    c.publish(topics.evt(hub), payload, { qos: 1 });
    return { id: env.id, sentAt };
  };
  process.on("message", (m: ToChild) => {
    if (m.t === "clock") return send({ t: "clock", tc: clock() });
    void (async () => {
      if (m.t === "init") {
        hubs = m.hubs;
        for (const h of hubs) keys.set(h.hub, Buffer.from(h.key, "base64"));
        let failed = 0;
        let next = 0;
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            while (next < hubs.length) {
              const h = hubs[next++] as BenchHub;
              const ok = await new Promise<boolean>((resolve) => {
                const c = connect(m.url, { clientId: h.hub, username: h.hub, password: h.password, clean: true, keepalive: 60, reconnectPeriod: 0, connectTimeout: 60_000 });
                (c.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
                c.once("connect", () => {
                  c.subscribe(topics.ack(h.hub), { qos: 1 }, () => {
                    clients.set(h.hub, c);
                    resolve(true);
                  });
                });
                c.once("error", () => resolve(false));
              });
              if (!ok) failed++;
            }
          }),
        );
        send({ t: "ready", connected: clients.size, failed });
      } else if (m.t === "run") {
        const end = Date.now() + m.durationMs;
        const used = new Set<string>();
        const alarms: Array<{ id: string; sentAt: number }> = [];
        let sent = 0;
        const timers = new Set<NodeJS.Timeout>();
        const traffic = (h: BenchHub, delay: number) => {
          if (Date.now() + delay >= end) return;
          const t = setTimeout(() => {
            timers.delete(t);
            const r = Math.random();
            const body =
              r < 0.2
                ? { kind: "heartbeat" as const, type: "heartbeat", severity: "info" as const, data: { uptimeS: 1 } }
                : r < 0.3
                  ? { kind: "device" as const, type: "battery_low", severity: "warning" as const, device: "radar-1", data: { battery: 12 } }
                  : { kind: "reading" as const, type: "detector_level", severity: "info" as const, device: "co-1", data: { co_ppm: 3 } };
            if (emit(h.hub, body)) sent++;
            traffic(h, m.meanMs * (0.75 + Math.random() * 0.5));
          }, delay);
          timers.add(t);
        };
        for (const h of hubs) traffic(h, Math.random() * m.meanMs);
        // Alarms at a steady rate, each from a fresh (hub, type) pair: a new incident and call tree each.
        const alarmTimer = setInterval(() => {
          for (let tries = 0; tries < 20; tries++) {
            const h = hubs[Math.floor(Math.random() * hubs.length)] as BenchHub;
            const type = ALARMS[Math.floor(Math.random() * ALARMS.length)] as (typeof ALARMS)[number];
            if (used.has(`${h.hub}/${type}`)) continue;
            used.add(`${h.hub}/${type}`);
            const a = emit(h.hub, { kind: "alarm", type, severity: "critical", device: `${type}-1`, data: { raw: 1 } });
            if (a) alarms.push(a);
            return;
          }
        }, 1000 / m.alarmsPerS);
        await sleep(m.durationMs);
        clearInterval(alarmTimer);
        for (const t of timers) clearTimeout(t);
        await sleep(3000);
        send({ t: "done", alarms, sent: sent + alarms.length });
      } else if (m.t === "end") {
        await Promise.all([...clients.values()].map((c) => new Promise<void>((r) => c.end(false, {}, () => r()))));
        send({ t: "ended" });
        setTimeout(() => process.exit(0), 100);
      }
    })();
  });
}

// ----------------------------------------------------------------------------------------------- parent

const ask = <T extends FromChild>(proc: ChildProcess, m: ToChild, t: T["t"], timeoutMs: number) => askChild<T>(proc, m, t, timeoutMs);

async function offset(proc: ChildProcess): Promise<number> {
  let best = { off: 0, rtt: Infinity };
  for (let i = 0; i < 30; i++) {
    const t0 = clock();
    const m = await ask<Extract<FromChild, { t: "clock" }>>(proc, { t: "clock" }, "clock", 5000);
    const t1 = clock();
    if (t1 - t0 < best.rtt) best = { off: m.tc - (t0 + t1) / 2, rtt: t1 - t0 };
  }
  return best.off;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: r2(pct(s, 50)), p90: r2(pct(s, 90)), p99: r2(pct(s, 99)), max: r2(s.at(-1) ?? NaN) };
};

async function variant(store: "sqlite" | "postgres", hubsN: number, phaseS: number, alarmsPerS: number) {
  const { startRelayForTest } = await import("../test/support/relay-rig.js");
  const { startTelephonyStub } = await import("../test/support/telephony-stub.js");
  const { createLogger } = await import("../lib/daemon/logger.js");
  const pgUrl = process.env.ANXIN_TEST_PG_URL as string;
  const schema = store === "postgres" ? uniquePgSchema("bench_esc") : null;
  const dir = await mkdtemp(join(tmpdir(), "anxin-bench-esc-"));
  const gw = await startTelephonyStub({ secret: SECRET, defaultStep: { status: "no_answer", silent: true } });
  const secretFile = join(dir, "gw.secret");
  await writeFile(secretFile, SECRET, { mode: 0o600 });
  const committed = new Map<string, number>();
  const issued = new Map<string, number>(); // incident id → first place() call
  const accepted = new Map<string, number>();
  // Filled once the relay exists; the telephony adapter built before it calls back through it.
  const relayRef: { current?: { escalation: { onOutcome(o: never): Promise<void> } } } = {};
  // The real http adapter, wrapped to timestamp each request as it is issued and accepted.
  const inner = createTelephony(
    { kind: "http", url: gw.url, secretFile, timeoutMs: 5000, retries: 1, backoffMs: 100, callbackPath: "/v1/telephony/callback", callbackWindowS: 300, gatherTimeoutS: 10 },
    { log: createLogger({ name: "bench", level: "silent" }), onOutcome: async (o) => relayRef.current?.escalation.onOutcome(o as never), publicUrl: "http://127.0.0.1:9" },
  );
  const telephony: Telephony = {
    name: inner.telephony.name,
    place: async (req: CallRequest) => {
      const inc = req.attemptId.split(":")[0] as string;
      if (!issued.has(inc)) issued.set(inc, clock());
      const r = await inner.telephony.place(req);
      if (!accepted.has(inc)) accepted.set(inc, clock());
      return r;
    },
  };
  const rig = await startRelayForTest({
    telephony,
    onCommitted: (_h, env) => {
      if ((env as Envelope).kind === "alarm") committed.set((env as Envelope).id, clock());
    },
    config: {
      escalation: { pollMs: 1000 },
      ...(schema ? { store: { kind: "postgres", url: pgUrl, schema, path: undefined } } : {}),
    },
  });
  relayRef.current = rig.relay;
  const relay = rig.relay;
  const loop = monitorEventLoopDelay({ resolution: 2 });
  let proc: ChildProcess | undefined;
  try {
    const names = Array.from({ length: hubsN }, (_, i) => `esc-${String(i).padStart(4, "0")}`);
    const creds = await insertBenchHubs(relay.store, names);
    await insertBenchCarePlans(relay.store, names);
    proc = fork(fileURLToPath(import.meta.url), ["--child"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const ready = await ask<Extract<FromChild, { t: "ready" }>>(proc, { t: "init", url: rig.mqttUrl, hubs: creds }, "ready", 300_000);
    console.log(`[${store}] ${ready.connected}/${hubsN} hubs connected`);
    await sleep(1000);
    const off = await offset(proc);
    loop.enable();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const done = await ask<Extract<FromChild, { t: "done" }>>(proc, { t: "run", meanMs: 2000, alarmsPerS, durationMs: phaseS * 1000 }, "done", phaseS * 1000 + 60_000);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    loop.disable();
    await sleep(1000);
    // Incident → its alarm, from the store.
    const rows = await relay.db.selectFrom("incidents").select(["id", "event_id"]).execute();
    const incOf = new Map(rows.map((r) => [r.event_id as string, r.id]));
    const toCommit: number[] = [];
    const toIssue: number[] = [];
    const commitToIssue: number[] = [];
    const toAccept: number[] = [];
    let missing = 0;
    for (const a of done.alarms) {
      const sent = a.sentAt - off;
      const c = committed.get(a.id);
      const inc = incOf.get(a.id);
      const i = inc ? issued.get(inc) : undefined;
      const acc = inc ? accepted.get(inc) : undefined;
      if (c === undefined || i === undefined) {
        missing++;
        continue;
      }
      toCommit.push(c - sent);
      toIssue.push(i - sent);
      commitToIssue.push(i - c);
      if (acc !== undefined) toAccept.push(acc - sent);
    }
    const res = {
      store,
      hubs: hubsN,
      seconds: phaseS,
      eventsPerS: Math.round(done.sent / phaseS),
      alarms: done.alarms.length,
      incidents: rows.length,
      missing,
      alarmToCommitMs: stats(toCommit),
      alarmToFirstCallIssuedMs: stats(toIssue),
      commitToFirstCallIssuedMs: stats(commitToIssue),
      alarmToGatewayAcceptedMs: stats(toAccept),
      gatewayRequests: gw.calls.length,
      relayCpuPct: r1(((cpu.user + cpu.system) / 1000 / wall) * 100),
      loopDelayP99Ms: r1(Math.max(0, loop.percentile(99) / 1e6 - 2)),
    };
    console.log(
      `[${store}] ${res.eventsPerS} events/s, ${res.alarms} alarms: alarm→first call issued p50 ${res.alarmToFirstCallIssuedMs.p50} ms, p99 ${res.alarmToFirstCallIssuedMs.p99} ms (commit→issued p50 ${res.commitToFirstCallIssuedMs.p50}, p99 ${res.commitToFirstCallIssuedMs.p99})`,
    );
    return res;
  } finally {
    if (proc) {
      await ask(proc, { t: "end" }, "ended", 30_000).catch(() => {});
      proc.kill();
    }
    await rig.stop();
    await inner.close();
    await gw.close();
    await rm(dir, { recursive: true, force: true });
    if (schema) await dropPgSchema(pgUrl, schema);
  }
}

async function parent(): Promise<void> {
  const hubsN = Number(process.env.BENCH_ESC_HUBS ?? 1000);
  const phaseS = Number(process.env.BENCH_ESC_PHASE_S ?? 30);
  const alarmsPerS = Number(process.env.BENCH_ESC_ALARMS_PER_S ?? 5);
  const machine = { ...machineInfo(), loadEnd: [] as number[] };
  console.log(`machine: ${machine.cpu} x${machine.cores}, node ${machine.node}, load ${machine.loadStart.join(" ")}`);
  console.log(`${hubsN} hubs (one event every ~2 s each), ${alarmsPerS} alarms/s for ${phaseS} s; the escalation calls a loopback HTTP gateway`);
  const results = [await variant("sqlite", hubsN, phaseS, alarmsPerS)];
  if (process.env.ANXIN_TEST_PG_URL) results.push(await variant("postgres", hubsN, phaseS, alarmsPerS));
  else console.log("PostgreSQL: skipped (ANXIN_TEST_PG_URL not set)");
  console.table(
    Object.fromEntries(
      results.map((r) => [
        r.store,
        {
          "events/s": r.eventsPerS,
          alarms: r.alarms,
          "→commit p50/p99": `${r.alarmToCommitMs.p50} / ${r.alarmToCommitMs.p99}`,
          "→call issued p50/p99": `${r.alarmToFirstCallIssuedMs.p50} / ${r.alarmToFirstCallIssuedMs.p99}`,
          "commit→issued p50/p99": `${r.commitToFirstCallIssuedMs.p50} / ${r.commitToFirstCallIssuedMs.p99}`,
          "→gateway accepted p50/p99": `${r.alarmToGatewayAcceptedMs.p50} / ${r.alarmToGatewayAcceptedMs.p99}`,
          "relay CPU %": r.relayCpuPct,
          missing: r.missing,
        },
      ]),
    ),
  );
  machine.loadEnd = loadavg().map(r2);
  console.log(
    JSON.stringify({
      bench: "escalation",
      machine,
      latency: "from the hub handing the signed alarm to mqtt.js (child process, clock aligned over IPC) to the relay calling Telephony.place() for the incident's first call",
      results,
      targets: { alarmToFirstCallP50ms: 100, alarmToFirstCallP99ms: 500 },
    }),
  );
}

if (process.argv.includes("--child")) await child();
else await parent();
