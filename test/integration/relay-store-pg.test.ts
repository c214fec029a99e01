// The relay's store, ingest and supervision against PostgreSQL, including several relay instances sharing
// one database. Needs ANXIN_TEST_PG_URL (e.g. postgres://postgres@127.0.0.1:5432/test); each test works in
// its own schema and drops it afterwards.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { pino } from "pino";
import { ulid } from "ulid";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import { Ingest } from "../../relay/src/ingest/ingest.js";
import { createMetrics, type Metrics } from "../../relay/src/metrics.js";
import { EnrolError, Registry } from "../../relay/src/registry/registry.js";
import { HUB_OFFLINE, isUniqueViolation, openStore, type EventRow, type Store } from "../../relay/src/store/store.js";
import { Supervisor } from "../../relay/src/supervision/supervisor.js";
import { listPlannedStops, supervisionDb, supervisionMigrations } from "../../relay/src/supervision/planned-stops.js";
import { signState } from "../../protocol/messages.js";
import { dropPgSchema, PG_URL, pgSkipReason, uniquePgSchema } from "../support/pg.js";

const SKIP = pgSkipReason("PostgreSQL store tests");
const T0 = 1_800_000_000_000;
const silent = pino({ level: "silent" });

interface Ctx {
  schema: string;
  /** A new relay instance's store: its own pool on the test's schema. */
  open: () => Promise<Store>;
}

async function pgContext(t: { after(fn: () => unknown): void }): Promise<Ctx> {
  const url = PG_URL as string;
  const schema = uniquePgSchema("anxin_test");
  const stores: Store[] = [];
  t.after(async () => {
    for (const s of stores) await s.close();
    await dropPgSchema(url, schema);
  });
  return {
    schema,
    open: async () => {
      const s = await openStore({ kind: "postgres", url, schema, poolSize: 4 }, "/nonexistent", { migrations: supervisionMigrations });
      stores.push(s);
      return s;
    },
  };
}

function row(hub: string, o: Partial<EventRow> = {}): EventRow {
  const id = o.id ?? ulid();
  return { id, hub, boot: 1, seq: 1, ts: T0, receivedAt: T0, kind: "alarm", type: "gas", severity: "critical", device: null, payload: "{}", skewMs: null, historical: false, ...o };
}

let seq = 0;
function envelope(hub: string, key: Buffer, o: Partial<Envelope> = {}): Envelope {
  return signEnvelope(
    { v: 1, hub, boot: 1, seq: ++seq, id: ulid(), ts: T0, kind: "alarm", type: "smoke", severity: "critical", device: "smoke-1", data: { obscuration: 4.1 }, ...o },
    key,
  );
}
const wire = (e: unknown): Buffer => Buffer.from(JSON.stringify(e));

async function counter(m: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const got = await m.registry.getSingleMetric(name)?.get();
  assert.ok(got);
  return got.values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
}

function ingestFor(store: Store, registry: Registry, metrics: Metrics, acks: Map<string, Set<string>>, committed: string[], batchMaxEvents = 500, log = silent): Ingest {
  return new Ingest({
    store,
    registry,
    metrics,
    log,
    batchMaxEvents,
    batchMaxWaitMs: 2,
    maxPayloadBytes: 65536,
    clockSkewFlagMs: 300_000,
    onAck: (hub, ids) => {
      let s = acks.get(hub);
      if (!s) acks.set(hub, (s = new Set()));
      for (const id of ids) s.add(id);
    },
    onCommitted: (_hub, env) => void committed.push((env as Envelope).id),
    now: () => T0,
  });
}

test("PostgreSQL: schema created and migrated (also by two instances at once); events, hubs and incidents round-trip", async (t) => {
  if (!PG_URL) return t.skip(SKIP);
  const ctx = await pgContext(t);
  const [a, b] = await Promise.all([ctx.open(), ctx.open()]);
  assert.equal(a.dialect, "postgres");

  const r1 = row("hub-1", { ts: T0 + 1, skewMs: -7_200_000, historical: true });
  const r2 = row("hub-1");
  assert.deepEqual(new Set((await a.insertEvents([r1, r2, { ...r1 }])).inserted), new Set([r1.id, r2.id]));
  const again = await b.insertEvents([r1, row("hub-2", { id: r2.id })]);
  assert.deepEqual(again, { inserted: [], foreign: [r2.id] });
  const got = await b.getEvent(r1.id);
  assert.equal(got?.ts, T0 + 1, "bigint comes back as a number");
  assert.equal(got?.skewMs, -7_200_000);
  assert.equal(got?.historical, true);
  assert.equal(await b.countEvents("hub-1"), 2);

  await a.insertPendingHub("hub-1", { claimHash: "h", claimSalt: "s", claimExpiresAt: T0 + 1000 }, T0);
  assert.equal(await b.activateHub("hub-1", "h", { passwordHash: "p", passwordSalt: "s", keyB64: "k" }, T0), true);
  assert.equal(await a.activateHub("hub-1", "h", { passwordHash: "p", passwordSalt: "s", keyB64: "k" }, T0), false, "a claim is used once");
  await a.applyTransitions([{ op: "online", hub: "hub-1", at: T0, boot: 2 }]);
  const [off] = await b.applyTransitions([{ op: "offline", hub: "hub-1", at: T0 + 5, reason: "will: connection lost" }]);
  assert.equal(off?.incident, "opened");
  await assert.rejects(
    a.db.insertInto("hub_incidents").values({ id: ulid(), hub: "hub-1", type: HUB_OFFLINE, reason: "x", opened_at: T0, closed_at: null, close_reason: null }).execute(),
    (err: unknown) => isUniqueViolation(err),
  );
  const [on] = await a.recordSeen([["hub-1", T0 + 10]]);
  assert.equal(on?.incident, "closed");
  assert.equal((await b.getHub("hub-1"))?.online, true);
});

test("PostgreSQL: a relay starts while other schemas on the server are created and dropped (another relay's, a test's)", async (t) => {
  if (!PG_URL) return t.skip(SKIP);
  // Another session creates and drops schemas without pause. The migrator's look at which tables exist once
  // read every schema on the server and failed when one went away under it (4 starts of 15 here).
  const churn = new pg.Client({ connectionString: PG_URL });
  await churn.connect();
  const prefix = `anxin_churn_${randomBytes(4).toString("hex")}`;
  let stop = false;
  let cycles = 0;
  const churning = (async () => {
    while (!stop) {
      const s = `${prefix}_${cycles++}`;
      await churn.query(`CREATE SCHEMA ${s}; CREATE TABLE ${s}.t (id serial PRIMARY KEY, a int, b int)`);
      await churn.query(`DROP SCHEMA ${s} CASCADE`);
    }
  })();
  const failures: string[] = [];
  try {
    for (let i = 0; i < 15; i++) {
      const ctx = await pgContext(t);
      await ctx.open().catch((e: Error) => void failures.push(e.message));
    }
  } finally {
    stop = true;
    await churning;
    await churn.end();
  }
  assert.ok(cycles > 15, `the other session kept going (${cycles} schemas)`);
  assert.deepEqual(failures, []);
});

test("PostgreSQL: sightings of 600 online hubs in one flush keep each hub's latest", async (t) => {
  if (!PG_URL) return t.skip(SKIP);
  const ctx = await pgContext(t);
  const store = await ctx.open();
  const hubs = Array.from({ length: 600 }, (_, i) => `hub-${String(i).padStart(3, "0")}`);
  for (const h of hubs) {
    await store.insertPendingHub(h, { claimHash: "h", claimSalt: "s", claimExpiresAt: T0 + 1000 }, T0);
    await store.activateHub(h, "h", { passwordHash: "p", passwordSalt: "s", keyB64: "k" }, T0);
  }
  await store.applyTransitions(hubs.map((hub) => ({ op: "online" as const, hub, at: T0 })));
  await store.recordSeen(hubs.map((h, i) => [h, T0 + 1000 + i] as const));
  assert.deepEqual(await store.recordSeen(hubs.map((h, i) => [h, i % 2 ? T0 + 5000 + i : T0 + 10] as const)), []);
  for (const [i, h] of hubs.entries()) assert.equal((await store.getHub(h))?.lastSeenAt, i % 2 ? T0 + 5000 + i : T0 + 1000 + i, h);
});

test("PostgreSQL: sightings lock their hubs in hub order, also a hub they bring back online (two instances cannot deadlock)", async (t) => {
  if (!PG_URL) return t.skip(SKIP);
  const ctx = await pgContext(t);
  const store = await ctx.open();
  for (const h of ["hub-a", "hub-b"]) {
    await store.insertPendingHub(h, { claimHash: "h", claimSalt: "s", claimExpiresAt: T0 + 1000 }, T0);
    await store.activateHub(h, "h", { passwordHash: "p", passwordSalt: "s", keyB64: "k" }, T0);
  }
  // hub-a online, hub-b offline: the flush brings hub-b back, which it writes before touching hub-a.
  await store.applyTransitions([{ op: "online", hub: "hub-a", at: T0 }]);
  // Another instance holds hub-a.
  const other = new pg.Client({ connectionString: PG_URL });
  await other.connect();
  t.after(() => other.end());
  await other.query("BEGIN");
  await other.query(`SELECT id FROM "${ctx.schema}".hubs WHERE id = 'hub-a' FOR UPDATE`);
  const flush = store.recordSeen([["hub-b", T0 + 10], ["hub-a", T0 + 10]]);
  await new Promise((r) => setTimeout(r, 300));
  // Were hub-b locked already, the other instance taking it next would be a deadlock.
  const probe = new pg.Client({ connectionString: PG_URL });
  await probe.connect();
  t.after(() => probe.end());
  await probe.query("BEGIN");
  const hubBLocked = await probe.query(`SELECT id FROM "${ctx.schema}".hubs WHERE id = 'hub-b' FOR UPDATE NOWAIT`).then(
    () => false,
    () => true,
  );
  await probe.query("ROLLBACK");
  await other.query("COMMIT");
  const res = await flush;
  assert.equal(hubBLocked, false, "hub-b was locked while the flush waited for hub-a");
  assert.deepEqual(res.map((r) => r.hub), ["hub-b"], "hub-b came back online");
  assert.equal((await store.getHub("hub-a"))?.lastSeenAt, T0 + 10);
});

test("PostgreSQL: enrolment, logins and revocation", async (t) => {
  if (!PG_URL) return t.skip(SKIP);
  const ctx = await pgContext(t);
  const store = await ctx.open();
  const reg = new Registry(store, { claimCodeTtlS: 60, heartbeatS: 60, mqttUrl: "mqtt://relay:1883" });
  const { code } = await reg.createClaim("hub-1");
  const res = await reg.enrol("hub-1", code);
  await assert.rejects(reg.enrol("hub-1", code), (e: unknown) => e instanceof EnrolError && e.code === "used");
  assert.equal(await reg.verifyCredentials("hub-1", res.mqtt.password), "hub-1");
  assert.deepEqual(await reg.signingKey("hub-1"), Buffer.from(res.key, "base64"));
  await reg.revoke("hub-1");
  assert.equal(await reg.verifyCredentials("hub-1", res.mqtt.password), null);
  assert.equal(await reg.signingKey("hub-1"), null);
});

test("PostgreSQL: 3,000 hubs' signing keys asked for at once come from a few queries on a pool of 4, none refused", async (t) => {
  if (!PG_URL) return t.skip(SKIP);
  const ctx = await pgContext(t);
  const store = await ctx.open();
  const hubs = Array.from({ length: 3000 }, (_, i) => ({ id: `hub-${String(i).padStart(4, "0")}`, key: randomBytes(32) }));
  for (let i = 0; i < hubs.length; i += 500) {
    await store.db
      .insertInto("hubs")
      .values(hubs.slice(i, i + 500).map((h) => ({ id: h.id, status: "active" as const, key_b64: h.key.toString("base64"), created_at: T0, online: 0 })))
      .execute();
  }
  // Clear keys (no vault): accepted as an earlier version wrote them.
  const reg = new Registry(store, { claimCodeTtlS: 60, heartbeatS: 60, mqttUrl: "mqtt://relay:1883" });
  let queries = 0;
  const getHubAuths = store.getHubAuths.bind(store);
  store.getHubAuths = async (ids) => {
    queries++;
    return getHubAuths(ids);
  };
  const keys = await Promise.all(hubs.map((h) => reg.signingKey(h.id)));
  hubs.forEach((h, i) => assert.deepEqual(keys[i], h.key, h.id));
  assert.ok(queries <= 10, `${queries} queries for 3,000 hubs`);
  assert.deepEqual(await store.getHubAuths([]), []);
  assert.deepEqual((await store.getHubAuths(["hub-0001", "nobody"])).map((r) => [r.id, r.status]), [["hub-0001", "active"]]);
});

test("PostgreSQL: ingest commits, rejects, dedupes and flags skew as on SQLite", async (t) => {
  if (!PG_URL) return t.skip(SKIP);
  const ctx = await pgContext(t);
  const store = await ctx.open();
  const registry = new Registry(store, { claimCodeTtlS: 60, heartbeatS: 60, mqttUrl: "mqtt://relay:1883" });
  const key = Buffer.from((await registry.provisionDirect("hub-1")).key, "base64");
  const metrics = createMetrics();
  const acks = new Map<string, Set<string>>();
  const committed: string[] = [];
  const ingest = ingestFor(store, registry, metrics, acks, committed);
  t.after(() => ingest.close());

  const good = envelope("hub-1", key);
  const skewed = envelope("hub-1", key, { ts: T0 - 3 * 3600_000 });
  ingest.handle("hub-1", wire(good));
  ingest.handle("hub-1", wire(skewed));
  ingest.handle("hub-1", wire({ ...envelope("hub-1", key), data: { forged: true } }));
  ingest.handle("hub-1", Buffer.from("nope"));
  await ingest.flush();
  ingest.handle("hub-1", wire({ ...good, historical: true }));
  await ingest.flush();

  assert.equal(await store.countEvents(), 2);
  assert.deepEqual(committed, [good.id, skewed.id]);
  assert.deepEqual(acks.get("hub-1"), new Set([good.id, skewed.id]));
  assert.equal((await store.getEvent(skewed.id))?.skewMs, -3 * 3600_000);
  assert.equal(await counter(metrics, "anxin_relay_events_rejected_total", { reason: "bad_signature" }), 1);
  assert.equal(await counter(metrics, "anxin_relay_events_rejected_total", { reason: "not_json" }), 1);
  assert.equal(await counter(metrics, "anxin_relay_events_deduped_total"), 1);
  assert.equal(await counter(metrics, "anxin_relay_events_clock_skewed_total"), 1);
});

test("PostgreSQL: two relay instances committing overlapping duplicates concurrently store every id once and act on it once", async (t) => {
  if (!PG_URL) return t.skip(SKIP);
  const ctx = await pgContext(t);
  const [s1, s2] = await Promise.all([ctx.open(), ctx.open()]);
  const reg1 = new Registry(s1, { claimCodeTtlS: 60, heartbeatS: 60, mqttUrl: "mqtt://relay:1883" });
  const reg2 = new Registry(s2, { claimCodeTtlS: 60, heartbeatS: 60, mqttUrl: "mqtt://relay:1883" });
  const hubs: Array<{ hub: string; key: Buffer }> = [];
  for (let i = 0; i < 20; i++) hubs.push({ hub: `hub-${i}`, key: Buffer.from((await reg1.provisionDirect(`hub-${i}`)).key, "base64") });

  const events = Array.from({ length: 3000 }, (_, i) => {
    const h = hubs[i % hubs.length] as { hub: string; key: Buffer };
    return envelope(h.hub, h.key);
  });
  const m1 = createMetrics();
  const m2 = createMetrics();
  const acks1 = new Map<string, Set<string>>();
  const acks2 = new Map<string, Set<string>>();
  const c1: string[] = [];
  const c2: string[] = [];
  // Small batches, opposite orders: many concurrent transactions inserting the same ids.
  const errors: string[] = [];
  const log = pino({ level: "error" }, { write: (l: string) => void errors.push(l) });
  const i1 = ingestFor(s1, reg1, m1, acks1, c1, 50, log);
  const i2 = ingestFor(s2, reg2, m2, acks2, c2, 50, log);
  for (let k = 0; k < events.length; k += 100) {
    const chunk = events.slice(k, k + 100);
    for (const e of chunk) i1.handle(e.hub, wire(e));
    for (const e of chunk.reverse()) i2.handle(e.hub, wire(e));
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all([i1.flush(), i2.flush()]);
  await Promise.all([i1.close(), i2.close()]);

  assert.equal(await s1.countEvents(), events.length);
  const acted = [...c1, ...c2];
  assert.equal(acted.length, events.length, "each event handed on exactly once across both instances");
  assert.equal(new Set(acted).size, events.length);
  for (const acks of [acks1, acks2]) {
    const all = new Set([...acks.values()].flatMap((s) => [...s]));
    assert.equal(all.size, events.length, "each instance acknowledges everything it received");
  }
  const committed = (await counter(m1, "anxin_relay_events_committed_total")) + (await counter(m2, "anxin_relay_events_committed_total"));
  const deduped = (await counter(m1, "anxin_relay_events_deduped_total")) + (await counter(m2, "anxin_relay_events_deduped_total"));
  assert.equal(committed, events.length);
  assert.equal(deduped, events.length);
  // Rows go in sorted by id, so the overlapping transactions queue behind each other instead of deadlocking.
  assert.deepEqual(errors, []);
});

test("PostgreSQL: two supervisors checking the same stale hubs concurrently open exactly one incident each", async (t) => {
  if (!PG_URL) return t.skip(SKIP);
  const ctx = await pgContext(t);
  const [s1, s2] = await Promise.all([ctx.open(), ctx.open()]);
  const reg = new Registry(s1, { claimCodeTtlS: 60, heartbeatS: 60, mqttUrl: "mqtt://relay:1883" });
  const hubs = Array.from({ length: 30 }, (_, i) => `hub-${String(i).padStart(2, "0")}`);
  for (const h of hubs) await reg.provisionDirect(h);
  const clock = { now: T0 };
  const metrics = createMetrics();
  const mk = (store: Store): Supervisor =>
    new Supervisor({ store, metrics, log: silent, heartbeatIntervalS: 60, missedHeartbeats: 3, checkEveryS: 10, now: () => clock.now });
  const a = mk(s1);
  const b = mk(s2);
  for (const h of hubs) a.onState(h, Buffer.from(JSON.stringify({ online: true, boot: 1 })));
  await a.drain();

  for (let round = 0; round < 3; round++) {
    clock.now += 10 * 60_000;
    await Promise.all([a.check(), b.check(), a.check(), b.check()]);
    const open = await s1.listIncidents({ openOnly: true, limit: 10_000 });
    assert.equal(open.length, hubs.length, `round ${round}: one open incident per hub`);
    // All come back (seen through either instance), ready for the next round.
    clock.now += 1000;
    hubs.forEach((h, i) => (i % 2 ? a : b).onSeen(h, clock.now));
    await Promise.all([a.drain(), b.drain()]);
    assert.equal((await s2.listIncidents({ openOnly: true })).length, 0);
  }
  assert.equal((await s1.listIncidents({ limit: 10_000 })).length, 3 * hubs.length);
  assert.equal(await counter(metrics, "anxin_relay_hub_incidents_total", { type: HUB_OFFLINE }), 3 * hubs.length);

  // The same will seen by both instances (a retained message after a restart): one incident.
  a.onState("hub-00", Buffer.from(JSON.stringify({ online: false, boot: 1 })));
  b.onState("hub-00", Buffer.from(JSON.stringify({ online: false, boot: 1 })));
  await Promise.all([a.drain(), b.drain()]);
  assert.equal((await s1.listIncidents({ hub: "hub-00", openOnly: true })).length, 1);
  a.stop();
  b.stop();
  await Promise.all([a.drain(), b.drain()]);
});

test("PostgreSQL: planned stops are shared by two supervisors: a repeat keeps the deadline, a later boot replaces it, one incident at the end", async (t) => {
  if (!PG_URL) return t.skip(SKIP);
  const ctx = await pgContext(t);
  const [s1, s2] = await Promise.all([ctx.open(), ctx.open()]);
  const reg = new Registry(s1, { claimCodeTtlS: 60, heartbeatS: 60, mqttUrl: "mqtt://relay:1883" });
  const key = Buffer.from((await reg.provisionDirect("hub-1")).key, "base64");
  await reg.provisionDirect("hub-2");
  const clock = { now: T0 };
  const metrics = createMetrics();
  const mk = (store: Store): Supervisor =>
    new Supervisor({ store, metrics, log: silent, heartbeatIntervalS: 60, missedHeartbeats: 3, checkEveryS: 10, plannedStopGraceS: 300, now: () => clock.now });
  const a = mk(s1);
  const b = mk(s2);
  const bye = (boot: number) => wire(signState({ online: false, boot, ts: T0, planned: true, reason: "stopping" }, key));
  a.onState("hub-1", wire({ online: true, boot: 1 }));
  a.onState("hub-2", wire({ online: true, boot: 1 }));
  await a.drain();
  a.onState("hub-1", bye(1));
  await a.drain();
  clock.now += 60_000;
  b.onState("hub-1", bye(1)); // delivered again, to the other instance: same deadline
  await b.drain();
  const pending = () => listPlannedStops(supervisionDb(s1.db));
  assert.deepEqual((await pending()).map((p) => [p.hub, p.boot, p.until]), [["hub-1", 1, T0 + 300_000]]);
  // (A later boot's planned stop without its birth seen: it replaces the older wait.)
  b.onState("hub-1", bye(2));
  await b.drain();
  assert.deepEqual((await pending()).map((p) => [p.boot, p.until]), [[2, T0 + 60_000 + 300_000]]);
  // Past the heartbeat window: hub-2 is silent, hub-1 is waited out.
  clock.now = T0 + 240_000;
  await Promise.all([a.check(), b.check()]);
  assert.deepEqual((await s1.listIncidents({ openOnly: true })).map((i) => i.hub), ["hub-2"]);
  clock.now = T0 + 60_000 + 300_000;
  await Promise.all([a.check(), b.check(), a.check(), b.check()]);
  const open = await s2.listIncidents({ hub: "hub-1", openOnly: true });
  assert.equal(open.length, 1);
  assert.match(open[0]!.reason, /^planned stop \(stopping\) at .*, not back within 300 s$/);
  assert.deepEqual(await pending(), []);
  assert.equal(await counter(metrics, "anxin_relay_hub_incidents_total", { type: HUB_OFFLINE }), 2);
  a.stop();
  b.stop();
  await Promise.all([a.drain(), b.drain()]);
});
