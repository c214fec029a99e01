// Delivery under failure, end to end (invariants 4 and 5): a hub killed mid-burst, a long relay outage,
// a broker killed with kill -9, and two relay instances sharing one PostgreSQL and one broker. In every
// case each event the hub committed reaches the relay's store and takes effect (onCommitted) exactly once.
// Mosquitto cases start their own broker from /usr/sbin/mosquitto; PostgreSQL cases need
// ANXIN_TEST_PG_URL; ANXIN_TEST_MQTT_URL adds a run of the two-relay case on that broker.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "mqtt";
import type { Envelope, EventDraft } from "../../protocol/envelope.js";
import { writeSecrets } from "../../gateway/src/uplink/secrets.js";
import type { Metrics } from "../../relay/src/metrics.js";
import { startRelay } from "../../relay/src/daemon/run.js";
import type { EventRow, Store } from "../../relay/src/store/store.js";
import { startHubRig, waitFor } from "../support/hub-rig.js";
import { mosquittoMissing, ownMosquitto } from "../support/mosquitto.js";
import { startExternalRelay, testLogger } from "../support/relay-external.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";
import { startUplinkHub, writeUplinkHubConfig, type UplinkHub } from "../support/uplink-hub.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BURST = fileURLToPath(new URL("../support/hub-burst.ts", import.meta.url));
const MQTT_URL = process.env.ANXIN_TEST_MQTT_URL;
const NO_MOSQ = mosquittoMissing();
const NO_PG = PG_URL ? false : pgSkipReason("two relays on PostgreSQL");
for (const [what, why] of [
  ["broker kill -9 and two relays on own mosquitto", NO_MOSQ],
  ["two relays (PostgreSQL)", NO_PG],
  ["two relays on ANXIN_TEST_MQTT_URL", MQTT_URL ? false : "ANXIN_TEST_MQTT_URL is not set (e.g. mqtt://127.0.0.1:1883)"],
] as const)
  if (why) process.stdout.write(`resilience: ${what}: skipped: ${why}\n`);

const rnd = () => randomBytes(4).toString("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const reading = (i: number): EventDraft => ({ kind: "reading", type: "detector_level", severity: "info", device: "gas-1", data: { lel: 1, i } });
const alarm = (i: number): EventDraft => ({ kind: "alarm", type: "gas", severity: "critical", device: "gas-1", room: "kitchen", data: { lel: 30, i } });

/** Cleanups run last-registered first, each even if another failed. */
function cleanups(t: TestContext): (f: () => unknown) => void {
  const fns: Array<() => unknown> = [];
  t.after(async () => {
    for (const f of fns.reverse()) {
      try {
        await f();
      } catch (e) {
        process.stderr.write(`# cleanup failed: ${(e as Error).message}\n`);
      }
    }
  });
  return (f) => void fns.push(f);
}

/** onCommitted calls per event id (the relay's one trigger for escalation). */
class Commits {
  readonly counts = new Map<string, number>();
  constructor(private readonly hub?: string) {}
  readonly on = (hub: string, env: unknown) => {
    if (this.hub !== undefined && hub !== this.hub) return;
    const id = (env as Envelope).id;
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
  };
  twice(): string[] {
    return [...this.counts].filter(([, n]) => n > 1).map(([id]) => id);
  }
  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }
}

async function eventsOf(store: Store, hub: string): Promise<EventRow[]> {
  return store.listEvents({ hub, limit: 1_000_000 });
}

async function deduped(m: Metrics): Promise<number> {
  return (await m.eventsDuplicate.get()).values[0]?.value ?? 0;
}

function missingFrom(rows: EventRow[], ids: Iterable<string>): string[] {
  const have = new Set(rows.map((r) => r.id));
  return [...ids].filter((id) => !have.has(id));
}

async function waitConnected(h: { uplink: { status(): { state: string } } | null }, ms = 15_000): Promise<void> {
  await waitFor("uplink connected", () => h.uplink?.status().state === "connected", ms);
}

// ---- 1 ---------------------------------------------------------------------------------------------

interface BurstRun {
  ids: string[];
  info: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs hub-burst; SIGKILLs it once `killAfter` ids were printed. Resolves when its stdout is drained. */
function runBurst(configFile: string, count: number, o: { killAfter?: number; timeoutMs: number }): Promise<BurstRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", BURST, configFile, String(count)], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    const run: BurstRun = { ids: [], info: [], code: null, signal: null, stderr: "" };
    let buf = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, o.timeoutMs);
    child.stderr.on("data", (d: Buffer) => (run.stderr = (run.stderr + d.toString()).slice(-8000)));
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (/^[0-9A-HJKMNP-TV-Z]{26}$/.test(line)) run.ids.push(line);
        else run.info.push(line);
      }
      if (o.killAfter !== undefined && run.ids.length >= o.killAfter && child.exitCode === null && !child.killed) child.kill("SIGKILL");
    });
    child.on("error", reject);
    // 'close' comes after stdout is drained: ids printed just before the kill are counted.
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      run.code = code;
      run.signal = signal;
      if (timedOut) reject(new Error(`hub-burst ${count} did not finish in ${o.timeoutMs} ms (printed ${run.ids.length}; ${run.info.join(" | ")}); stderr: ${run.stderr}`));
      else resolve(run);
    });
  });
}

test("kill -9 of the hub during a 10,000-event burst → every committed event reaches the relay exactly once in effect", { timeout: 120_000 }, async (t) => {
  const cleanup = cleanups(t);
  const hub = `burst-${rnd()}`;
  const commits = new Commits(hub);
  const rig = await startRelayForTest({ onCommitted: commits.on });
  cleanup(() => rig.stop());
  const enrol = await rig.enrolHub(hub);
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-burst-"));
  cleanup(() => rm(dir, { recursive: true, force: true }));
  const configFile = await writeUplinkHubConfig(dir, hub, enrol, { ackTimeoutMs: 2000, reconnectMinMs: 100, reconnectMaxMs: 1000 });

  const t0 = performance.now();
  const killed = await runBurst(configFile, 10_000, { killAfter: 3000, timeoutMs: 60_000 });
  const t1 = performance.now();
  assert.equal(killed.signal, "SIGKILL", `the burst was to be killed; it ended with code ${killed.code}: ${killed.info.join(" | ")} ${killed.stderr}`);
  assert.ok(killed.ids.length >= 3000 && killed.ids.length < 10_000, `printed ${killed.ids.length} ids before the kill`);
  const atKill = await rig.relay.store.countEvents(hub);

  const drain = await runBurst(configFile, 0, { timeoutMs: 60_000 });
  const t2 = performance.now();
  assert.equal(drain.code, 0, `drain run: code ${drain.code} signal ${drain.signal}; ${drain.info.join(" | ")}; ${drain.stderr}`);
  assert.ok(drain.info.includes("drained"), drain.info.join(" | "));

  const printed = new Set(killed.ids);
  assert.equal(printed.size, killed.ids.length, "ids are unique");
  const rows = await eventsOf(rig.relay.store, hub);
  assert.deepEqual(missingFrom(rows, printed), [], "every committed (printed) id is in the relay's events table");
  assert.deepEqual(commits.twice(), [], "no event took effect twice");
  for (const id of printed) assert.equal(commits.counts.get(id), 1, `onCommitted once for ${id}`);
  assert.equal(commits.counts.size, rows.length, "one onCommitted per stored row");

  // Rows the hub committed but had not printed when killed, and its own audit events, may arrive too.
  const extra = rows.filter((r) => !printed.has(r.id));
  const extraKinds = new Map<string, number>();
  for (const r of extra) extraKinds.set(r.kind, (extraKinds.get(r.kind) ?? 0) + 1);
  const dups = await deduped(rig.relay.metrics);
  const stats = drain.info.find((l) => l.startsWith("# stats "))?.slice(8) ?? "null";
  const resent = (JSON.parse(stats) as { resent?: number } | null)?.resent ?? 0;
  t.diagnostic(
    `burst ${((t1 - t0) / 1000).toFixed(1)} s, printed ${printed.size}, relay had ${atKill} at the kill; drain run ${((t2 - t1) / 1000).toFixed(1)} s; ` +
      `relay rows ${rows.length} (extra ${JSON.stringify(Object.fromEntries(extraKinds))}); relay deduped ${dups}; drain run resent ${resent}`,
  );
  if (dups === 0 && resent === 0) t.diagnostic("note: no event was sent twice in this run, so dedupe was not exercised");
});

// ---- 2 ---------------------------------------------------------------------------------------------

test("the relay down for a long outage → everything arrives, critical first", { timeout: 120_000 }, async (t) => {
  const cleanup = cleanups(t);
  const commits = new Commits("test-hub");
  const rig = await startRelayForTest({ onCommitted: commits.on });
  cleanup(() => rig.stop());
  const enrol = await rig.enrolHub("test-hub");
  const secretsDir = await mkdtemp(path.join(os.tmpdir(), "anxin-secrets-"));
  cleanup(() => rm(secretsDir, { recursive: true, force: true }));
  const secretsFile = path.join(secretsDir, "hub", "secrets.json");
  await writeSecrets(secretsFile, enrol);
  const hubRig = await startHubRig("sim", `uplink:\n  secretsFile: ${JSON.stringify(secretsFile)}\n  reconnectMinMs: 200\n  reconnectMaxMs: 2000\n`);
  cleanup(() => hubRig.stop());
  const { journal, uplink } = hubRig.running;
  const rows = async () => (await journal.stats()).rows;
  await waitConnected(hubRig.running);
  await waitFor("hub_started delivered", async () => (await rows()) === 0);

  await rig.relay.stop();
  await waitFor("uplink sees the relay gone", () => uplink?.status().state !== "connected");
  const append = async (d: EventDraft) => {
    const e = await journal.append(d);
    uplink?.nudge();
    return e;
  };
  const readings: string[] = [];
  for (let i = 0; i < 3000; i += 500) readings.push(...(await Promise.all(Array.from({ length: 500 }, (_, k) => append(reading(i + k))))).map((e) => e.id));
  const alarms = (await Promise.all(Array.from({ length: 10 }, (_, k) => append(alarm(k))))).map((e) => e.id);
  // The outage itself: long enough for the reconnect backoff to reach its 2 s cap.
  await sleep(4000);
  assert.ok((await rows()) >= 3010, "nothing left the hub while the relay was down");
  assert.notEqual(uplink?.status().state, "connected");

  const t0 = performance.now();
  const relay2 = await startRelay(rig.configFile, { log: testLogger("anxin-relay"), onCommitted: commits.on });
  cleanup(() => relay2.stop());
  await waitFor("hub journal empty", async () => (await rows()) === 0, 60_000);
  const drainS = (performance.now() - t0) / 1000;

  const stored = await eventsOf(relay2.store, "test-hub");
  const ids = [...readings, ...alarms];
  assert.deepEqual(missingFrom(stored, ids), [], "all 3,010 events are stored");
  assert.deepEqual(commits.twice(), [], "none took effect twice");
  for (const id of ids) assert.equal(commits.counts.get(id), 1);

  const byId = new Map(stored.map((r) => [r.id, r]));
  const readAt = readings.map((id) => byId.get(id)!.receivedAt).sort((a, b) => a - b);
  const median = readAt[Math.floor(readAt.length / 2)]!;
  const worst = Math.max(...alarms.map((id) => readAt.filter((at) => at < byId.get(id)!.receivedAt).length));
  for (const id of alarms) assert.ok(byId.get(id)!.receivedAt <= median, `critical ${id} received at ${byId.get(id)!.receivedAt}, after the readings' median ${median}`);
  assert.ok(worst <= readings.length / 10, `a critical arrived after ${worst} readings`);
  const s = uplink?.status();
  t.diagnostic(`drained 3,010 in ${drainS.toFixed(2)} s after the relay came back; readings received before the last critical: ${worst}; relay deduped ${await deduped(relay2.metrics)}; hub reconnects ${s?.reconnects}, resent ${s?.resent}`);
});

// ---- 3 ---------------------------------------------------------------------------------------------

test("the broker killed (kill -9) and restarted → nothing lost", { skip: NO_MOSQ, timeout: 120_000 }, async (t) => {
  const cleanup = cleanups(t);
  const mosq = await ownMosquitto();
  cleanup(() => mosq.close());
  const hubId = `bk-${rnd()}`;
  const commits = new Commits(hubId);
  const r = await startExternalRelay({ brokerUrl: mosq.url, sharedGroup: null, onCommitted: commits.on });
  cleanup(() => r.stop());
  const enrol = await r.relay.registry.provisionDirect(hubId);
  const hub = await startUplinkHub(hubId, enrol, { url: mosq.url, ackTimeoutMs: 2000, reconnectMinMs: 100, reconnectMaxMs: 1000 });
  cleanup(() => hub.stop());
  await waitConnected(hub.running);

  const ids: string[] = [];
  let restart: Promise<void> | undefined;
  let killedAt = 0;
  const back = { hub: 0, relay: 0 };
  let restartedAt = 0;
  const t0 = performance.now();
  for (let i = 0; i < 2000; i++) {
    if (i === 1000) {
      await mosq.kill9();
      killedAt = performance.now();
      restart = sleep(1000)
        .then(() => mosq.start())
        .then(() => void (restartedAt = performance.now()));
      // When each side is back after the restart (diagnostics only).
      const mon = setInterval(() => {
        const now = performance.now();
        if (mosq.running && back.hub === 0 && hub.running.uplink!.status().state === "connected" && hub.running.uplink!.status().reconnects > 0) back.hub = now;
        if (mosq.running && back.relay === 0 && r.relay.session.connected) back.relay = now;
        if (back.hub && back.relay) clearInterval(mon);
      }, 5);
      cleanup(() => clearInterval(mon));
    }
    ids.push((await hub.append(i % 200 === 199 ? alarm(i) : reading(i))).id);
    await sleep(1); // paced, so appends go on through the outage
  }
  await restart;
  const appendedS = (performance.now() - t0) / 1000;
  const before = await r.relay.store.countEvents(hubId);
  await waitFor("hub journal empty", async () => (await hub.rows()) === 0, 60_000);
  const drainS = (performance.now() - killedAt) / 1000;

  const stored = await eventsOf(r.relay.store, hubId);
  assert.deepEqual(missingFrom(stored, ids), [], "every committed event is stored");
  assert.deepEqual(commits.twice(), [], "none took effect twice");
  for (const id of ids) assert.equal(commits.counts.get(id), 1);
  assert.equal(commits.counts.size, stored.length);
  const s = hub.running.uplink!.status();
  assert.ok(s.reconnects >= 1, "the hub's session was re-established");
  assert.ok(r.relay.session.connected, "the relay's session came back");
  t.diagnostic(
    `appended 2,000 in ${appendedS.toFixed(1)} s; ${before} stored when the appends ended; all acked ${drainS.toFixed(1)} s after the kill; ` +
      `relay deduped ${await deduped(r.relay.metrics)}, acks dropped while down ${r.relay.session.acksDropped}; hub reconnects ${s.reconnects}, resent ${s.resent}; ` +
      `after the broker restart the hub was back in ${back.hub ? Math.round(back.hub - restartedAt) : "?"} ms, the relay in ${back.relay ? Math.round(back.relay - restartedAt) : "?"} ms`,
  );
});

// ---- 4 ---------------------------------------------------------------------------------------------

async function clearRetained(url: string, hub: string): Promise<void> {
  const c = connect(url, { clientId: `anxin-test-clean-${rnd()}`, reconnectPeriod: 0, connectTimeout: 3000 });
  try {
    await new Promise<void>((resolve, reject) => {
      c.once("connect", () => resolve());
      c.once("error", reject);
    });
    await c.publishAsync(`anxin/v1/${hub}/state`, "", { qos: 1, retain: true });
  } finally {
    c.end(true);
  }
}

async function twoRelays(t: TestContext, cleanup: (f: () => unknown) => void, brokerUrl: string, shared: boolean): Promise<void> {
  // Registered first, so it runs last: after both relays let go of the schema.
  const { url, schema } = tempPgSchema("anxin_res", cleanup);
  const hubId = `pair-${rnd()}`;
  const group = `g${rnd()}`;
  const a = new Commits(hubId);
  const b = new Commits(hubId);
  const store = { kind: "postgres" as const, url, schema };
  const ra = await startExternalRelay({ id: "relay-a", brokerUrl, sharedGroup: group, store, onCommitted: a.on });
  cleanup(() => ra.stop());
  const rb = await startExternalRelay({ id: "relay-b", brokerUrl, sharedGroup: group, store, onCommitted: b.on });
  cleanup(() => rb.stop());
  await waitFor("both relay sessions up", () => ra.relay.session.connected && rb.relay.session.connected, 15_000);
  const enrol = await ra.relay.registry.provisionDirect(hubId);
  if (shared) cleanup(() => clearRetained(brokerUrl, hubId));
  const hub: UplinkHub = await startUplinkHub(hubId, enrol, { url: brokerUrl, ackTimeoutMs: 3000, reconnectMinMs: 100, reconnectMaxMs: 1000 });
  cleanup(() => hub.stop());
  await waitConnected(hub.running);

  const t0 = performance.now();
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < 3000) {
        const i = next++;
        ids.push((await hub.append(i % 500 === 499 ? alarm(i) : reading(i))).id);
      }
    }),
  );
  await waitFor("hub journal empty (every event acked)", async () => (await hub.rows()) === 0, 90_000);
  const s = (performance.now() - t0) / 1000;

  const stored = await eventsOf(ra.relay.store, hubId);
  const mine = new Set(ids);
  assert.equal(mine.size, 3000);
  assert.equal(stored.filter((r) => mine.has(r.id)).length, 3000, "the events table holds the 3,000 events");
  assert.deepEqual(a.twice(), [], "instance A: no id twice");
  assert.deepEqual(b.twice(), [], "instance B: no id twice");
  const both = [...a.counts.keys()].filter((id) => b.counts.has(id));
  assert.deepEqual(both, [], "no id committed by both instances");
  const sum = (c: Commits) => ids.filter((id) => c.counts.has(id)).length;
  assert.equal(sum(a) + sum(b), 3000, "onCommitted exactly 3,000 times in all for the hub's events");
  assert.equal(a.total + b.total, stored.length, "one onCommitted per stored row (audit events included)");
  const dA = await deduped(ra.relay.metrics);
  const dB = await deduped(rb.relay.metrics);
  t.diagnostic(`${brokerUrl}: 3,000 events in ${s.toFixed(2)} s; instance A committed ${a.total}, B ${b.total}; deduped A ${dA} B ${dB}; hub resent ${hub.running.uplink!.status().resent}`);
  if (a.total === 0 || b.total === 0) t.diagnostic(`note: the shared subscription did not split the load (A ${a.total}, B ${b.total})`);
}

test("two relay instances on one PostgreSQL and one Mosquitto → every event committed and acknowledged once", { skip: NO_PG || NO_MOSQ, timeout: 120_000 }, async (t) => {
  const cleanup = cleanups(t);
  const mosq = await ownMosquitto();
  cleanup(() => mosq.close());
  await twoRelays(t, cleanup, mosq.url, false);
});

test("two relay instances on one PostgreSQL and the machine's Mosquitto (ANXIN_TEST_MQTT_URL) → every event committed and acknowledged once", { skip: NO_PG || (MQTT_URL ? false : "ANXIN_TEST_MQTT_URL is not set"), timeout: 120_000 }, async (t) => {
  await twoRelays(t, cleanups(t), MQTT_URL!, true);
});
