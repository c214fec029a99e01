// Retention: what the sweep deletes and what it never touches, the counts it reports (metric, log line,
// retention_runs), its database timer (one sweep at a time across instances, next run in the store) and its
// bounded batches — on SQLite and on PostgreSQL. The clock is a variable the tests move; nothing sleeps.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { rm as rmAsync } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Kysely } from "kysely";
import pino from "pino";
import { ulid } from "ulid";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import { relayConfigSchema } from "../../relay/src/config/schema.js";
import { createMetrics } from "../../relay/src/metrics.js";
import {
  DAY_MS,
  defaultRetentionConfig,
  listRuns,
  pendingSweep,
  retentionDb,
  retentionRules,
  RetentionSweeper,
  type RetentionConfig,
  type RetentionDb,
  type RetentionRule,
} from "../../relay/src/retention/index.js";
import { FIRST_SWEEP_DELAY_MS } from "../../relay/src/retention/sweeper.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import { dropPgSchema, PG_URL, pgSkipReason, uniquePgSchema } from "../support/pg.js";

const T0 = 1_900_000_000_000;
const silent = pino({ level: "silent" });

type Ctx = { store: Store; db: Kysely<RetentionDb>; cleanup: Array<() => Promise<void>> };

/** The same check on a SQLite store and, when ANXIN_TEST_PG_URL is set, on a PostgreSQL schema of its own. */
function onBoth(name: string, check: (c: Ctx) => Promise<void>): void {
  test(`SQLite: ${name}`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "anxin-retention-"));
    const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations: relayExtraMigrations });
    const c: Ctx = { store, db: retentionDb(store.db), cleanup: [] };
    try {
      await check(c);
    } finally {
      for (const f of c.cleanup.reverse()) await f();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test(`PostgreSQL: ${name}`, { skip: PG_URL ? false : pgSkipReason(`retention (${name}) on PostgreSQL`) }, async () => {
    const schema = uniquePgSchema("anxin_retention");
    const store = await openStore({ kind: "postgres", url: PG_URL!, schema, poolSize: 4 }, "/nonexistent", { migrations: relayExtraMigrations });
    const c: Ctx = { store, db: retentionDb(store.db), cleanup: [] };
    try {
      await check(c);
    } finally {
      for (const f of c.cleanup.reverse()) await f();
      await store.close();
      await dropPgSchema(PG_URL!, schema);
    }
  });
}

function config(over: Partial<RetentionConfig> = {}): RetentionConfig {
  return { ...defaultRetentionConfig(), ...over };
}

class Clock {
  t = T0;
  now = () => this.t;
}

function sweeper(db: Kysely<any>, clock: Clock, o: { owner?: string; config?: RetentionConfig; rules?: RetentionRule[]; log?: pino.Logger; metrics?: ReturnType<typeof createMetrics>; isEarlierRun?: (c: string) => boolean } = {}): RetentionSweeper {
  return new RetentionSweeper({
    db,
    config: o.config ?? config(),
    owner: o.owner ?? "relay-1#aaaaaaaa",
    log: o.log ?? silent,
    now: clock.now,
    pauseMs: 0,
    ...(o.rules ? { rules: o.rules } : {}),
    ...(o.isEarlierRun ? { isEarlierRun: o.isEarlierRun } : {}),
    ...(o.metrics ? { deletedCounter: o.metrics.retentionDeleted, sweepsCounter: o.metrics.retentionSweeps } : {}),
  });
}

/** Prepares (first sweep scheduled) and moves the clock to when it falls due. */
async function due(s: RetentionSweeper, clock: Clock): Promise<void> {
  await s.prepare();
  clock.t += FIRST_SWEEP_DELAY_MS;
}

const daysAgo = (d: number) => T0 + FIRST_SWEEP_DELAY_MS - d * DAY_MS;

async function addEvent(db: Kysely<RetentionDb>, o: { hub?: string; kind: string; type?: string; at: number; id?: string }): Promise<string> {
  const id = o.id ?? ulid(o.at);
  await db
    .insertInto("events")
    .values({ id, hub: o.hub ?? "hub-1", boot: 1, seq: 1, ts: o.at, received_at: o.at, kind: o.kind, type: o.type ?? o.kind, severity: "info", device: null, payload: `{"id":"${id}","data":{"address":"Room 302"}}`, skew_ms: null, historical: 0 })
    .execute();
  return id;
}

async function addIncident(db: Kysely<RetentionDb>, o: { hub?: string; state: string; openedAt: number; closedAt?: number | null; eventId?: string | null; sourceRef?: string | null }): Promise<string> {
  const id = ulid(o.openedAt);
  await db
    .insertInto("incidents")
    .values({
      id,
      hub: o.hub ?? "hub-1",
      type: "gas",
      state: o.state,
      open_key: o.state === "closed" ? null : `${o.hub ?? "hub-1"}/gas/${id}`,
      severity: "critical",
      event_id: o.eventId ?? null,
      source_ref: o.sourceRef ?? null,
      device: null,
      device_model: null,
      policy: "{}",
      policy_name: "default",
      policy_version: 1,
      plan: "{}",
      escalation: o.state === "closed" ? "stopped" : "running",
      escalation_pass: 0,
      acknowledged_at: null,
      acknowledged_by: null,
      false_alarm_reason: null,
      follow_up_recorded: 0,
      alarms: 1,
      opened_at: o.openedAt,
      updated_at: o.closedAt ?? o.openedAt,
      closed_at: o.closedAt ?? null,
    })
    .execute();
  // The rows that belong to it: a timeline entry, a call attempt, a finished timer, an acknowledged alert.
  await db.insertInto("incident_timeline").values({ id: ulid(o.openedAt), incident_id: id, at: o.openedAt, actor: "system:escalation", kind: "transition", from_state: null, to_state: "received", cause: "alarm", detail: null }).execute();
  await db
    .insertInto("call_attempts")
    .values({ id: `${id}:0:0:elder`, incident_id: id, step: 0, round: 0, role: "elder", target: "elder", channel: "voice", status: "answered", digits: "1", provider_ref: null, requested_at: o.openedAt, placed_at: o.openedAt, outcome_at: o.openedAt, detail: null })
    .execute();
  await db.insertInto("escalation_timers").values({ id: `${id}:0:0`, incident_id: id, kind: "step", step: 0, round: 0, due_at: o.openedAt, claimed_by: null, claimed_until: null, done_at: o.openedAt, result: "ran" }).execute();
  await db.insertInto("operator_alerts").values({ id: ulid(o.openedAt), kind: "call_failed", detail: "x", incident_id: id, open_key: null, count: 1, first_at: o.openedAt, last_at: o.openedAt, acked_at: o.openedAt, acked_by: "operator:a" }).execute();
  return id;
}

async function addForward(db: Kysely<RetentionDb>, o: { state: "pending" | "delivered" | "dead"; at: number; deadReportedAt?: number | null }): Promise<string> {
  const id = ulid(o.at);
  await db
    .insertInto("forward_outbox")
    .values({
      id,
      destination: "duty_platform",
      idempotency_key: id,
      payload: JSON.stringify({ address: "Room 302, Building 4" }),
      attempts: 1,
      next_attempt_at: o.at,
      state: o.state,
      last_error: null,
      created_at: o.at,
      delivered_at: o.state === "delivered" ? o.at : null,
      claimed_by: null,
      claimed_until: 0,
      dead_reported_at: o.deadReportedAt ?? null,
    })
    .execute();
  return id;
}

async function ids(db: Kysely<RetentionDb>, table: "events" | "incidents" | "forward_outbox" | "hub_incidents" | "audit_log" | "operator_alerts"): Promise<Set<string>> {
  return new Set((await db.selectFrom(table).select("id").execute()).map((r) => r.id));
}

async function count(db: Kysely<RetentionDb>, table: "incident_timeline" | "call_attempts" | "escalation_timers" | "operator_alerts", incidentId: string): Promise<number> {
  return (await db.selectFrom(table).select("id").where("incident_id", "=", incidentId).execute()).length;
}

async function counterValues(m: ReturnType<typeof createMetrics>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await m.retentionDeleted.get()).values) out[String(v.labels.kind)] = v.value;
  return out;
}

onBoth("old heartbeats and readings go, alarms and everything an open incident needs stay; counts in the metric, the log line and retention_runs", async ({ db }) => {
  const clock = new Clock();
  const oldBeat = await addEvent(db, { kind: "heartbeat", at: daysAgo(8) });
  const oldBeat2 = await addEvent(db, { kind: "heartbeat", at: daysAgo(20) });
  const freshBeat = await addEvent(db, { kind: "heartbeat", at: daysAgo(6) });
  const oldReading = await addEvent(db, { kind: "reading", type: "co_ppm", at: daysAgo(31) });
  const freshReading = await addEvent(db, { kind: "reading", type: "co_ppm", at: daysAgo(29) });
  const oldAlarm = await addEvent(db, { kind: "alarm", type: "gas", at: daysAgo(400) });
  const oldDevice = await addEvent(db, { kind: "device", type: "battery_low", at: daysAgo(200) });
  // hub-2 has an open incident: its old readings and heartbeats may be what the duty team is looking at.
  const openAlarm = await addEvent(db, { hub: "hub-2", kind: "alarm", type: "gas", at: daysAgo(2000) });
  const heldBeat = await addEvent(db, { hub: "hub-2", kind: "heartbeat", at: daysAgo(50) });
  const heldReading = await addEvent(db, { hub: "hub-2", kind: "reading", at: daysAgo(50) });
  const open = await addIncident(db, { hub: "hub-2", state: "confirming", openedAt: daysAgo(2000), eventId: openAlarm });
  // hub-3: an alarm older than the alarm retention, but its incident (closed recently) is still kept.
  const keptAlarm = await addEvent(db, { hub: "hub-3", kind: "alarm", type: "gas", at: daysAgo(1200) });
  await addIncident(db, { hub: "hub-3", state: "closed", openedAt: daysAgo(1200), closedAt: daysAgo(10), eventId: keptAlarm });
  const goneAlarm = await addEvent(db, { hub: "hub-4", kind: "alarm", type: "smoke", at: daysAgo(1100) });

  const lines: string[] = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(s) });
  const metrics = createMetrics();
  const s = sweeper(db, clock, { log, metrics });
  await due(s, clock);
  const report = await s.runDue();
  assert.ok(report);
  assert.equal(report.result, "done");
  assert.deepEqual(report.deleted, { events_heartbeat: 2, events_reading: 1, events_device: 1, events_alarm: 1 });
  assert.equal(report.total, 5);

  const left = await ids(db, "events");
  for (const gone of [oldBeat, oldBeat2, oldReading, oldDevice, goneAlarm]) assert.equal(left.has(gone), false, `event ${gone} should be deleted`);
  for (const kept of [freshBeat, freshReading, oldAlarm, openAlarm, heldBeat, heldReading, keptAlarm]) assert.equal(left.has(kept), true, `event ${kept} should be kept`);
  assert.equal((await ids(db, "incidents")).has(open), true);
  assert.equal(await count(db, "incident_timeline", open), 1);

  assert.deepEqual(await counterValues(metrics), report.deleted);
  const sweeps = (await metrics.retentionSweeps.get()).values;
  assert.deepEqual(sweeps.map((v) => [v.labels.result, v.value]), [["done", 1]]);

  const runs = await listRuns(db);
  assert.equal(runs.length, 1);
  assert.equal(runs[0]!.result, "done");
  assert.deepEqual(runs[0]!.deleted, report.deleted);
  assert.equal(runs[0]!.total, 5);
  assert.equal(runs[0]!.claimedBy, "relay-1#aaaaaaaa");

  const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "retention sweep finished");
  assert.ok(line, "one log line per sweep");
  assert.deepEqual(line.deleted, report.deleted);
  assert.equal(line.total, 5);
  assert.doesNotMatch(lines.join("\n"), /Room 302|address/, "no row contents in the log");

  // The next sweep is in the store, one interval after this one ended; a second run now does nothing.
  const next = await pendingSweep(db);
  assert.equal(next?.due_at, clock.t + 3600 * 1000);
  assert.equal(await s.runDue(), undefined);
});

onBoth("forwards: delivered payloads pruned soon, pending never, dead only after their alert and the dead retention", async ({ db }) => {
  const clock = new Clock();
  const deliveredOld = await addForward(db, { state: "delivered", at: daysAgo(2) });
  const deliveredFresh = await addForward(db, { state: "delivered", at: T0 });
  const pendingOld = await addForward(db, { state: "pending", at: daysAgo(400) });
  const deadReportedOld = await addForward(db, { state: "dead", at: daysAgo(100), deadReportedAt: daysAgo(91) });
  const deadReportedRecent = await addForward(db, { state: "dead", at: daysAgo(100), deadReportedAt: daysAgo(30) });
  const deadUnreported = await addForward(db, { state: "dead", at: daysAgo(400), deadReportedAt: null });

  const s = sweeper(db, clock);
  await due(s, clock);
  const report = await s.runDue();
  assert.deepEqual(report?.deleted, { forwards_delivered: 1, forwards_dead: 1 });
  assert.deepEqual(await ids(db, "forward_outbox"), new Set([deliveredFresh, pendingOld, deadReportedRecent, deadUnreported]));
  for (const gone of [deliveredOld, deadReportedOld]) assert.equal((await ids(db, "forward_outbox")).has(gone), false);
});

onBoth("incidents: a long-closed one goes with its timeline, calls, timers and alerts; open, recently closed and still-timed ones stay; hub incidents, alerts and audit by age", async ({ db }) => {
  const clock = new Clock();
  const old = await addIncident(db, { state: "closed", openedAt: daysAgo(1200), closedAt: daysAgo(1100) });
  const open = await addIncident(db, { hub: "hub-2", state: "follow_up_due", openedAt: daysAgo(3000) });
  const recent = await addIncident(db, { hub: "hub-3", state: "closed", openedAt: daysAgo(1200), closedAt: daysAgo(1000) });
  const timed = await addIncident(db, { hub: "hub-4", state: "closed", openedAt: daysAgo(1200), closedAt: daysAgo(1100) });
  await db.insertInto("escalation_timers").values({ id: `${timed}:follow_up`, incident_id: timed, kind: "follow_up", step: 0, round: 0, due_at: T0, claimed_by: null, claimed_until: null, done_at: null, result: null }).execute();

  // Hub incidents: closed long ago (goes), closed long ago but behind a kept relay incident (stays), open (stays).
  const hubGone = ulid(daysAgo(500));
  const hubBehind = ulid(daysAgo(501));
  const hubOpen = ulid(daysAgo(502));
  await db.insertInto("hub_incidents").values([
    { id: hubGone, hub: "hub-5", type: "hub_offline", reason: "missed", opened_at: daysAgo(500), closed_at: daysAgo(400), close_reason: "recovered" },
    { id: hubBehind, hub: "hub-6", type: "hub_offline", reason: "missed", opened_at: daysAgo(501), closed_at: daysAgo(400), close_reason: "recovered" },
    { id: hubOpen, hub: "hub-7", type: "hub_offline", reason: "missed", opened_at: daysAgo(502), closed_at: null, close_reason: null },
  ]).execute();
  await addIncident(db, { hub: "hub-6", state: "closed", openedAt: daysAgo(501), closedAt: daysAgo(400), sourceRef: hubBehind });

  const auditOld = ulid(daysAgo(1096));
  const auditKept = ulid(daysAgo(1094));
  await db.insertInto("audit_log").values([
    { id: auditOld, at: daysAgo(1096), actor: "operator:a", action: "careplan.read", subject: "hub-1", purpose: "api" },
    { id: auditKept, at: daysAgo(1094), actor: "operator:a", action: "events.read", subject: "hub-1", purpose: "api" },
  ]).execute();
  const alertOld = ulid(daysAgo(400));
  const alertUnacked = ulid(daysAgo(401));
  await db.insertInto("operator_alerts").values([
    { id: alertOld, kind: "forward_dead", detail: "x", incident_id: null, open_key: null, count: 1, first_at: daysAgo(400), last_at: daysAgo(400), acked_at: daysAgo(366), acked_by: "operator:a" },
    { id: alertUnacked, kind: "forward_dead", detail: "y", incident_id: null, open_key: "forward_dead:x", count: 1, first_at: daysAgo(401), last_at: daysAgo(401), acked_at: null, acked_by: null },
  ]).execute();

  const s = sweeper(db, clock);
  await due(s, clock);
  const report = await s.runDue();
  assert.deepEqual(report?.deleted, { incidents: 1, incident_timeline: 1, call_attempts: 1, escalation_timers: 1, operator_alerts: 1, hub_incidents: 1, operator_alerts_acked: 1, audit_log: 1 });

  const incidents = await ids(db, "incidents");
  assert.equal(incidents.has(old), false);
  for (const kept of [open, recent, timed]) assert.equal(incidents.has(kept), true);
  for (const t of ["incident_timeline", "call_attempts", "escalation_timers", "operator_alerts"] as const) {
    assert.equal(await count(db, t, old), 0, `${t} of the deleted incident`);
    assert.equal(await count(db, t, open), 1, `${t} of the open incident`);
  }
  assert.deepEqual(await ids(db, "hub_incidents"), new Set([hubBehind, hubOpen]));
  assert.deepEqual(await ids(db, "audit_log"), new Set([auditKept]));
  const alerts = await ids(db, "operator_alerts");
  assert.equal(alerts.has(alertOld), false);
  assert.equal(alerts.has(alertUnacked), true);
});

onBoth("a backlog goes in bounded batches, each renewing the claim; null keeps a kind forever", async ({ db }) => {
  const clock = new Clock();
  for (let i = 0; i < 35; i++) await addEvent(db, { kind: "heartbeat", at: daysAgo(10) - i });
  for (let i = 0; i < 5; i++) await addEvent(db, { kind: "reading", at: daysAgo(100) - i });
  const c = config({ batchSize: 10, events: { ...defaultRetentionConfig().events, reading: null } });
  const sizes: number[] = [];
  const rules = retentionRules(c).map((r) => ({
    ...r,
    batch: async (d: Kysely<RetentionDb>, cut: number, limit: number) => {
      const b = await r.batch(d, cut, limit);
      if (r.name === "events.heartbeat") sizes.push(b.deleted.events_heartbeat ?? 0);
      return b;
    },
  }));
  const s = sweeper(db, clock, { config: c, rules });
  await due(s, clock);
  const report = await s.runDue();
  assert.deepEqual(sizes, [10, 10, 10, 5]);
  assert.deepEqual(report?.deleted, { events_heartbeat: 35 });
  assert.equal((await db.selectFrom("events").select("id").where("kind", "=", "reading").execute()).length, 5);
});

onBoth("the database timer: not before it is due, one holder at a time, a lapsed lease or an earlier run's claim taken over, a stopped sweep due again at once", async ({ db }) => {
  const clock = new Clock();
  await addEvent(db, { kind: "heartbeat", at: daysAgo(30) });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const slow: RetentionRule = {
    name: "slow",
    days: 1,
    batch: async () => {
      entered();
      await gate;
      return { deleted: { slow: 1 }, more: false };
    },
  };
  const a = sweeper(db, clock, { owner: "relay-1#aaaaaaaa", rules: [slow] });
  const b = sweeper(db, clock, { owner: "relay-2#bbbbbbbb" });
  await a.prepare();
  await b.prepare(); // a second instance schedules nothing more
  assert.equal((await db.selectFrom("retention_runs").select("id").execute()).length, 1);
  assert.equal(await a.runDue(), undefined, "not due yet");
  clock.t += FIRST_SWEEP_DELAY_MS;

  const running = a.runDue();
  await inside;
  assert.equal(await b.runDue(), undefined, "a sweep is running on another instance");
  release();
  assert.equal((await running)?.result, "done");

  // A holder that died: its lease lapses and another instance takes the sweep.
  clock.t += 3600 * 1000;
  const dead = sweeper(db, clock, { owner: "relay-3#cccccccc", rules: [{ name: "dies", days: 1, batch: () => new Promise(() => {}) }] });
  void dead.runDue();
  await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 50 && (await pendingSweep(db))?.claimed_by !== "relay-3#cccccccc"; i++) await new Promise((r) => setImmediate(r));
  assert.equal((await pendingSweep(db))?.claimed_by, "relay-3#cccccccc");
  assert.equal(await b.runDue(), undefined, "the lease still holds");
  clock.t += 300 * 1000 + 1;
  const takenOver = await b.runDue();
  assert.equal(takenOver?.result, "done");
  assert.deepEqual(takenOver?.deleted, { events_heartbeat: 1 });

  // An earlier run of relay-1 (another boot) died holding it: relay-1's next start takes it back at once.
  clock.t += 3600 * 1000;
  const crashed = sweeper(db, clock, { owner: "relay-1#dddddddd", rules: [{ name: "dies", days: 1, batch: () => new Promise(() => {}) }] });
  void crashed.runDue();
  for (let i = 0; i < 50 && (await pendingSweep(db))?.claimed_by !== "relay-1#dddddddd"; i++) await new Promise((r) => setImmediate(r));
  const restarted = sweeper(db, clock, { owner: "relay-1#eeeeeeee", isEarlierRun: (o) => o.startsWith("relay-1#") && o !== "relay-1#eeeeeeee" });
  assert.equal(await restarted.runDue(), undefined, "still held before the takeover");
  await restarted.prepare();
  assert.equal((await restarted.runDue())?.result, "done");

  // A sweep stopped part-way is recorded as interrupted and due again at once, for any instance.
  clock.t += 3600 * 1000;
  let stopAt!: () => void;
  const reached = new Promise<void>((r) => (stopAt = r));
  let go!: () => void;
  const hold = new Promise<void>((r) => (go = r));
  const stopping = sweeper(db, clock, {
    owner: "relay-2#ffffffff",
    rules: [
      { name: "first", days: 1, batch: async () => (stopAt(), await hold, { deleted: { first: 2 }, more: true }) },
      { name: "second", days: 1, batch: async () => ({ deleted: { second: 9 }, more: false }) },
    ],
  });
  const interrupted = stopping.runDue();
  await reached;
  const stopped = stopping.stop();
  go();
  await stopped;
  const r = await interrupted;
  assert.equal(r?.result, "interrupted");
  assert.deepEqual(r?.deleted, { first: 2 });
  assert.equal((await listRuns(db, 1))[0]?.result, "interrupted");
  assert.equal((await pendingSweep(db))?.due_at, clock.t);
});

test("PostgreSQL: two relays sharing one database never sweep at the same time", { skip: PG_URL ? false : pgSkipReason("concurrent retention sweepers on PostgreSQL") }, async (t) => {
  const schema = uniquePgSchema("anxin_retention");
  t.after(() => dropPgSchema(PG_URL!, schema));
  const open = () => openStore({ kind: "postgres", url: PG_URL!, schema, poolSize: 4 }, "/nonexistent", { migrations: relayExtraMigrations });
  const s1 = await open();
  t.after(() => s1.close());
  const s2 = await open();
  t.after(() => s2.close());
  const clock = new Clock();
  let inSweep = 0;
  let overlap = 0;
  const rule = (): RetentionRule => ({
    name: "probe",
    days: 1,
    batch: async () => {
      inSweep++;
      if (inSweep > 1) overlap++;
      // Long enough for the other instance's claim to reach the database meanwhile.
      await new Promise((r) => setTimeout(r, 5));
      inSweep--;
      return { deleted: { probe: 1 }, more: false };
    },
  });
  const a = sweeper(s1.db, clock, { owner: "relay-1#11111111", rules: [rule()] });
  const b = sweeper(s2.db, clock, { owner: "relay-2#22222222", rules: [rule()] });
  await Promise.all([a.prepare(), b.prepare()]);
  assert.equal((await retentionDb(s1.db).selectFrom("retention_runs").select("id").execute()).length, 1, "one schedule whoever starts first");
  for (let round = 0; round < 25; round++) {
    clock.t += 3600 * 1000 + FIRST_SWEEP_DELAY_MS;
    const got = await Promise.all([a.runDue(), b.runDue(), a.runDue(), b.runDue()]);
    assert.equal(got.filter((g) => g !== undefined).length, 1, `round ${round}: exactly one sweep`);
  }
  assert.equal(overlap, 0);
  const runs = await listRuns(retentionDb(s1.db), 100);
  assert.equal(runs.length, 25);
  assert.equal((await retentionDb(s1.db).selectFrom("retention_runs").select("id").where("pending_key", "is not", null).execute()).length, 1);
});

test("retention configuration: defaults, keep-forever, and clear errors with the key and the reason", () => {
  const base = { relay: { dataDir: "/tmp/x" } };
  const d = relayConfigSchema.parse(base).retention;
  assert.equal(d.enabled, true);
  assert.deepEqual(d.events, { heartbeat: 7, reading: 30, device: 180, alarm: 1095, alarm_cleared: 1095, audit: 1095 });
  assert.deepEqual(d.forwards, { delivered: 1, dead: 90 });
  assert.equal(d.auditLog, 1095);
  const forever = relayConfigSchema.parse({ ...base, retention: { events: { heartbeat: null }, incidents: 0 } }).retention;
  assert.equal(forever.events.heartbeat, null);
  assert.equal(forever.incidents, 0);
  assert.equal(forever.events.reading, 30, "other kinds keep their defaults");

  const err = (retention: unknown) => {
    const r = relayConfigSchema.safeParse({ ...base, retention });
    assert.equal(r.success, false);
    return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
  };
  assert.match(err({ auditLog: 365 }), /^retention\.auditLog: .*1095.*PIPL/);
  assert.match(err({ events: { alarm: 7 } }), /^retention\.events\.alarm: .*30 to 36500 days/);
  assert.match(err({ events: { heartbeat: 1.5 } }), /^retention\.events\.heartbeat: expected whole days/);
  assert.match(err({ events: { smoke: 3 } }), /retention\.events.*smoke/);
  assert.match(err({ forwards: { delivered: -1 } }), /^retention\.forwards\.delivered: /);
  assert.match(err({ batchSize: 1 }), /^retention\.batchSize: /);
});

test("the daemon schedules the sweep in its store at start (not with retention disabled); the CLI runs one and shows the record", async (t) => {
  const { startRelayForTest } = await import("../support/relay-rig.js");
  const { execFile } = await import("node:child_process");
  const clock = new Clock();
  const rig = await startRelayForTest({ now: clock.now, keep: true });
  t.after(() => rmAsync(rig.dir, { recursive: true, force: true }));
  const db = retentionDb(rig.relay.db);
  const pending = await pendingSweep(db);
  assert.equal(pending?.due_at, T0 + FIRST_SWEEP_DELAY_MS);
  await addEvent(db, { kind: "heartbeat", at: Date.now() - 8 * DAY_MS });
  await rig.stop();

  const cli = (...args: string[]) =>
    new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, ["--import", "tsx", join(process.cwd(), "relay/src/cli/main.ts"), ...args, "--config", rig.configFile], (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
  const run = await cli("retention", "run");
  assert.equal(run.code, 0, run.out);
  assert.match(run.out, /done, 1 deleted \(events_heartbeat=1\)/);
  const status = await cli("retention", "status", "--json");
  assert.equal(status.code, 0, status.out);
  const s = JSON.parse(status.out) as { runs: Array<{ result: string; deleted: Record<string, number>; claimedBy: string }>; days: Record<string, number | null> };
  assert.deepEqual(s.runs[0]?.deleted, { events_heartbeat: 1 });
  assert.match(s.runs[0]?.claimedBy ?? "", /^test-relay-cli#[0-9a-f]{8}$/);
  assert.equal(s.days["events.heartbeat"], 7);

  const off = await startRelayForTest({ now: clock.now, config: { retention: { enabled: false } } });
  t.after(() => off.stop());
  assert.equal(await pendingSweep(retentionDb(off.relay.db)), undefined);
});
