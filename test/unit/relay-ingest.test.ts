import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { ulid } from "ulid";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import { Ingest, leadingEventId, type IngestOptions } from "../../relay/src/ingest/ingest.js";
import { createMetrics, type Metrics } from "../../relay/src/metrics.js";
import { Registry } from "../../relay/src/registry/registry.js";
import { openStore, type EventRow, type Store } from "../../relay/src/store/store.js";

const T0 = 1_800_000_000_000;

// Every behaviour below is checked twice: with the checks inline on the main thread, and with them in a
// pool of verify threads. Both must give the same outcomes.
const MODES = [
  { name: "inline", verifyThreads: 0 },
  { name: "2 verify threads", verifyThreads: 2 },
] as const;
const threadsOf = new WeakMap<object, number>();

/** Registers one test per mode; rig() picks the mode up from the test context. */
function each(name: string, fn: (t: TestContext) => Promise<void>): void {
  for (const mode of MODES)
    test(`${name} [${mode.name}]`, async (t) => {
      threadsOf.set(t, mode.verifyThreads);
      await fn(t);
    });
}

interface Rig {
  store: Store;
  registry: Registry;
  metrics: Metrics;
  ingest: Ingest;
  clock: { now: number };
  logs: string[];
  acks: Array<{ hub: string; ids: string[]; now: number }>;
  committed: Array<{ hub: string; id: string }>;
  keys: Map<string, Buffer>;
}

type RigOptions = Partial<Omit<IngestOptions, "store">> & { wrap?: (s: Store) => Store; hubs?: string[] };

async function rig(t: TestContext, o: RigOptions = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), "anxin-relay-ingest-"));
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir);
  const clock = { now: T0 };
  const registry = new Registry(store, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://127.0.0.1:1883", now: () => clock.now });
  const keys = new Map<string, Buffer>();
  for (const hub of o.hubs ?? ["hub-1", "hub-2"]) keys.set(hub, Buffer.from((await registry.provisionDirect(hub)).key, "base64"));
  const metrics = createMetrics();
  const logs: string[] = [];
  const acks: Rig["acks"] = [];
  const committed: Rig["committed"] = [];
  const { wrap, hubs: _hubs, ...opts } = o;
  const ingest = new Ingest({
    store: wrap ? wrap(store) : store,
    registry,
    metrics,
    log: pino({ level: "debug" }, { write: (line: string) => void logs.push(line) }),
    batchMaxEvents: 500,
    batchMaxWaitMs: 5,
    maxPayloadBytes: 4096,
    clockSkewFlagMs: 300_000,
    onAck: (hub, ids, now) => void acks.push({ hub, ids, now }),
    onCommitted: (hub, env) => void committed.push({ hub, id: (env as Envelope).id }),
    now: () => clock.now,
    verifyThreads: threadsOf.get(t) ?? 0,
    // Every message to a thread, however few: the pool's path is what is under test.
    verifyInlineBelow: 0,
    ...opts,
  });
  // Otherwise the first messages would be checked inline while the threads load, and the pool untested.
  await ingest._verifyThreadsReady();
  t.after(async () => {
    await ingest.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, registry, metrics, ingest, clock, logs, acks, committed, keys };
}

let seq = 0;
function envelope(r: Rig, hub: string, o: Partial<Envelope> = {}, key = r.keys.get(hub) as Buffer): Envelope {
  const e: Envelope = {
    v: 1,
    hub,
    boot: 1,
    seq: ++seq,
    id: ulid(),
    ts: r.clock.now,
    // A routine reading unless a test says otherwise: alarms take the urgent lane (see its own tests).
    kind: "reading",
    type: "gas",
    severity: "info",
    device: "gas-kitchen-1",
    room: "kitchen",
    data: { lel: 3.5 },
    ...o,
  };
  return signEnvelope(e, key);
}

const wire = (e: unknown): Buffer => Buffer.from(JSON.stringify(e));

async function metric(m: Metrics, name: string, labels: Record<string, string> = {}, series?: string): Promise<number> {
  const got = await m.registry.getSingleMetric(name)?.get();
  assert.ok(got, `no metric ${name}`);
  let sum = 0;
  for (const v of got.values as Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>) {
    if (series !== undefined && v.metricName !== series) continue;
    if (Object.entries(labels).every(([k, want]) => v.labels[k] === want)) sum += v.value;
  }
  return sum;
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(2);
  }
}

/** A store whose insertEvents fails while `down` says so, and which records each call. */
function flaky(down: () => boolean, calls: EventRow[][], delayMs = 0): (s: Store) => Store {
  return (s) => {
    const w = Object.create(s) as Store;
    w.insertEvents = async (rows, opts) => {
      calls.push(rows);
      if (delayMs) await sleep(delayMs);
      if (down()) throw new Error("connection refused");
      return s.insertEvents(rows, opts);
    };
    return w;
  };
}

each("valid signed events are committed, then acknowledged once per hub with all their ids, then handed on", async (t) => {
  const r = await rig(t);
  const a = [envelope(r, "hub-1"), envelope(r, "hub-1", { kind: "heartbeat", type: "heartbeat", severity: "info" })];
  const b = [envelope(r, "hub-2")];
  for (const e of [...a, ...b]) r.ingest.handle(e.hub, wire(e));
  await r.ingest.flush();

  assert.equal(await r.store.countEvents(), 3);
  const stored = await r.store.getEvent((a[0] as Envelope).id);
  assert.equal(stored?.hub, "hub-1");
  assert.equal(stored?.skewMs, null);
  assert.equal(stored?.receivedAt, T0);
  assert.deepEqual(JSON.parse(stored?.payload ?? "null"), a[0], "the envelope is kept as received, signature included");

  assert.deepEqual(
    r.acks.map((x) => [x.hub, x.ids, x.now]).sort(),
    [
      ["hub-1", a.map((e) => e.id), T0],
      ["hub-2", b.map((e) => e.id), T0],
    ],
  );
  assert.deepEqual(r.committed.map((c) => c.id), [...a, ...b].map((e) => e.id));
  assert.equal(await metric(r.metrics, "anxin_relay_events_received_total"), 3);
  assert.equal(await metric(r.metrics, "anxin_relay_events_committed_total", { kind: "reading" }), 2);
  assert.equal(await metric(r.metrics, "anxin_relay_events_committed_total", { kind: "heartbeat" }), 1);
  assert.equal(await metric(r.metrics, "anxin_relay_batch_events", {}, "anxin_relay_batch_events_count"), 1);
  assert.equal(await metric(r.metrics, "anxin_relay_commit_seconds", {}, "anxin_relay_commit_seconds_count"), 1);
});

each("every reject reason is counted and logged without the event's data; valid traffic in the same batch still commits", async (t) => {
  const r = await rig(t, { maxPayloadBytes: 2048, hubs: ["hub-1", "hub-2", "hub-3"] });
  await r.registry.revoke("hub-3");
  const secret = "Wang Xiuying, 87, bed 2";
  const good1 = envelope(r, "hub-1");
  const good2 = envelope(r, "hub-2");
  const forged = { ...envelope(r, "hub-1"), data: { lel: 99, who: secret } }; // changed after signing
  const wrongKey = envelope(r, "hub-1", { data: { who: secret } }, randomBytes(32));
  const stranger = envelope(r, "hub-9", { data: { who: secret } }, randomBytes(32));
  const revoked = envelope(r, "hub-3", { data: { who: secret } });

  r.ingest.handle("hub-1", wire(good1));
  r.ingest.handle("hub-1", Buffer.alloc(3000, 0x20)); // too_large
  r.ingest.handle("hub-1", Buffer.from(`{"who":"${secret}"`)); // not_json
  r.ingest.handle("hub-1", wire({ v: 1, hub: "hub-1", id: "01HZZZZZZZZZZZZZZZZZZZZZZZ", data: { who: secret } })); // schema
  r.ingest.handle("hub-2", wire(envelope(r, "hub-1", { data: { who: secret } }))); // hub_mismatch
  r.ingest.handle("hub-9", wire(stranger)); // unknown_hub
  r.ingest.handle("hub-3", wire(revoked)); // unknown_hub (revoked)
  r.ingest.handle("hub-1", wire(forged)); // bad_signature
  r.ingest.handle("hub-1", wire(wrongKey)); // bad_signature
  r.ingest.handle("hub-2", wire(good2));
  await r.ingest.flush();

  assert.equal(await r.store.countEvents(), 2);
  assert.deepEqual(r.committed.map((c) => c.id), [good1.id, good2.id]);
  const expected = { too_large: 1, not_json: 1, schema: 1, hub_mismatch: 1, unknown_hub: 2, bad_signature: 2 };
  for (const [reason, n] of Object.entries(expected)) {
    assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason }), n, reason);
  }
  assert.equal(await metric(r.metrics, "anxin_relay_events_received_total"), 10);

  // Each logged, the first of each hub's burst as a warning, the rest at debug (see the bursts' own test).
  const logged = r.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "ingest: message rejected");
  assert.equal(logged.length, 8);
  assert.deepEqual(logged.filter((w) => w.level === 40).map((w) => `${String(w.hub)}/${String(w.reason)}`).sort(), ["hub-1/too_large", "hub-2/hub_mismatch", "hub-3/unknown_hub", "hub-9/unknown_hub"]);
  assert.ok(logged.some((w) => w.reason === "bad_signature" && w.id === forged.id && w.hub === "hub-1"));
  assert.ok(logged.some((w) => w.reason === "schema" && w.id === "01HZZZZZZZZZZZZZZZZZZZZZZZ"));
  assert.ok(!r.logs.join("\n").includes("Wang"), "personal data leaked into the log");
});

each("a hub that keeps sending what is rejected cannot flood the log: one warning per burst of each hub, every message counted", async (t) => {
  const r = await rig(t);
  const lines = (msg: string, level?: number) => r.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg && (level === undefined || l.level === level));
  const rejectedWarnings = () => lines("ingest: message rejected", 40);
  for (let i = 0; i < 500; i++) r.ingest.handle("hub-1", Buffer.from("{not json"));
  for (let i = 0; i < 200; i++) r.ingest.handle("hub-1", wire({ ...envelope(r, "hub-1"), data: { lel: 99 } })); // forged
  r.ingest.handle("hub-2", wire({ v: 1, hub: "hub-2", id: ulid() })); // schema
  await r.ingest.flush();
  assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "not_json" }), 500);
  assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "bad_signature" }), 200);
  assert.equal(lines("ingest: message rejected").length, 701, "each one still at debug");
  assert.deepEqual(rejectedWarnings().map((w) => `${String(w.hub)}/${String(w.reason)}`), ["hub-1/not_json", "hub-2/schema"]);

  // Within a minute of the last one the burst goes on; a minute's quiet ends it, and the next warning says
  // how many went unlogged.
  const later = async (ms: number) => {
    r.clock.now += ms;
    r.ingest.handle("hub-1", Buffer.from("{not json"));
    await r.ingest.flush(); // with verify threads the verdict comes back later
  };
  await later(59_000);
  assert.equal(rejectedWarnings().length, 2);
  await later(60_000);
  assert.equal(rejectedWarnings().length, 3);
  assert.equal(rejectedWarnings()[2]?.notLoggedSinceLastWarning, 700);
  // A burst that never pauses is reminded of every ten minutes.
  for (let s = 30; s <= 20 * 60; s += 30) await later(30_000);
  assert.deepEqual(rejectedWarnings().slice(3).map((w) => w.notLoggedSinceLastWarning), [19, 19]);

  // A hub whose clock is wrong: every event kept and counted, one line.
  for (let i = 0; i < 20; i++) r.ingest.handle("hub-2", wire(envelope(r, "hub-2", { ts: r.clock.now - 3 * 3600_000 })));
  await r.ingest.flush();
  assert.equal(await metric(r.metrics, "anxin_relay_events_clock_skewed_total"), 20);
  assert.equal(lines("ingest: hub clock far from the relay's; event kept and flagged", 30).length, 1);

  // An id another hub's event holds: never acknowledged, so resent again and again; one error.
  const theirs = envelope(r, "hub-1");
  r.ingest.handle("hub-1", wire(theirs));
  await r.ingest.flush();
  for (let i = 0; i < 30; i++) {
    r.ingest.handle("hub-2", wire(envelope(r, "hub-2", { id: theirs.id })));
    await r.ingest.flush();
  }
  assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "id_collision" }), 30);
  const collisions = r.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => /already stored for another hub/.test(String(l.msg)));
  assert.equal(collisions.length, 30);
  assert.deepEqual(collisions.filter((l) => l.level === 50).map((l) => [l.hub, l.id]), [["hub-2", theirs.id]]);
});

each("a store that cannot give signing keys: every event left unacked and counted, one error for the burst", async (t) => {
  const base = await rig(t);
  const registry = new Proxy(base.registry, {
    get(target, p) {
      if (p === "cachedSigningKey") return () => undefined;
      if (p === "signingKey") return () => Promise.reject(new Error("store unreachable"));
      const v: unknown = Reflect.get(target, p);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const r = await rig(t, { registry, hubs: [] });
  for (let i = 0; i < 50; i++) r.ingest.handle("hub-1", wire(envelope(base, "hub-1")));
  await r.ingest.flush();
  assert.equal(r.acks.length, 0);
  assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "key_unavailable" }), 50);
  const errors = r.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 50);
  assert.deepEqual(errors.map((l) => l.msg), ["ingest: signing key lookup failed; event left unacked"]);
});

each("duplicates: a resend is acknowledged again but never handed on; one id twice in a batch is one row", async (t) => {
  const r = await rig(t);
  const e1 = envelope(r, "hub-1");
  const e2 = envelope(r, "hub-1");
  r.ingest.handle("hub-1", wire(e1));
  r.ingest.handle("hub-1", wire(e2));
  await r.ingest.flush();

  const e3 = envelope(r, "hub-1");
  r.ingest.handle("hub-1", wire({ ...e1, historical: true })); // resent from the journal: still validly signed
  r.ingest.handle("hub-1", wire(e3));
  r.ingest.handle("hub-1", wire(e3));
  await r.ingest.flush();

  assert.equal(await r.store.countEvents(), 3);
  assert.deepEqual(r.acks.map((a) => a.ids), [
    [e1.id, e2.id],
    [e1.id, e3.id],
  ]);
  assert.deepEqual(r.committed.map((c) => c.id), [e1.id, e2.id, e3.id]);
  assert.equal(await metric(r.metrics, "anxin_relay_events_deduped_total"), 2);
  assert.equal(await metric(r.metrics, "anxin_relay_events_committed_total"), 3);
});

each("resends of events waiting for a slow commit take no room: one row, one ack, from the first copy's commit", async (t) => {
  const calls: EventRow[][] = [];
  let open: () => void = () => {};
  const gate = new Promise<void>((resolve) => (open = resolve));
  const r = await rig(t, {
    batchMaxEvents: 2,
    maxBacklog: 9, // with verify threads a message holds its place from arrival through its checks
    wrap: (s) => {
      const w = Object.create(s) as Store;
      w.insertEvents = async (rows, opts) => {
        calls.push(rows);
        await gate;
        return s.insertEvents(rows, opts);
      };
      return w;
    },
  });
  t.after(() => open()); // a failed assertion must not leave the rig's close waiting on the gate
  const [a, b, c, d] = Array.from({ length: 4 }, () => envelope(r, "hub-1"));
  for (const e of [a, b]) r.ingest.handle("hub-1", wire(e)); // a full batch: its commit starts and hangs
  await waitFor(() => calls.length === 1);
  for (const e of [c, d]) r.ingest.handle("hub-1", wire(e)); // a second full batch, waiting behind it
  // The hub's resends after its ack timeout, three rounds of all four: without the dedupe the backlog of
  // 9 would fill with copies and new events be dropped; with it, each copy is counted and let go.
  for (let round = 0; round < 3; round++) {
    for (const e of [a, b, c, d]) r.ingest.handle("hub-1", wire({ ...e, historical: true }));
    await r.ingest._testChecked();
  }
  // A copy goes before its checks (they cost more than the copy is worth): one altered after signing is
  // dropped as a copy, not counted as a bad signature; the held original is what gets stored and acked.
  r.ingest.handle("hub-1", wire({ ...c!, data: { lel: 99 } }));
  const fresh = envelope(r, "hub-1");
  r.ingest.handle("hub-1", wire(fresh));
  await r.ingest._testChecked();
  assert.equal(r.ingest.pending, 5, "the four held events and the new one, no copies");
  assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "backlog_full" }), 0);
  assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "bad_signature" }), 0);
  assert.equal(await metric(r.metrics, "anxin_relay_events_deduped_total"), 13);
  assert.equal(r.acks.length, 0, "nothing is acked before its commit");
  open();
  await r.ingest.flush();
  assert.deepEqual(calls.map((rows) => rows.map((x) => x.id)), [[a!.id, b!.id], [c!.id, d!.id], [fresh.id]]);
  assert.deepEqual(r.acks.map((x) => x.ids), [[a!.id, b!.id], [c!.id, d!.id], [fresh.id]]);
  assert.deepEqual(r.committed.map((x) => x.id), [a, b, c, d, fresh].map((e) => e!.id));

  // Once committed, a copy is no longer held: it reaches the store as a duplicate and is acked again.
  r.ingest.handle("hub-1", wire({ ...a!, historical: true }));
  await r.ingest.flush();
  assert.deepEqual(calls.at(-1)?.map((x) => x.id), [a!.id]);
  assert.deepEqual(r.acks.at(-1)?.ids, [a!.id]);
  assert.equal(r.committed.length, 5, "never handed on twice");
  assert.equal(r.ingest.pending, 0);
});

test("leadingEventId: the id a hub writes before its data; nothing for a message without one", () => {
  const e = signEnvelope({ v: 1, hub: "hub-1", boot: 1, seq: 1, id: ulid(), ts: T0, kind: "alarm", type: "gas", severity: "critical", data: { id: "x" } }, randomBytes(32));
  assert.equal(leadingEventId(JSON.stringify(e)), e.id);
  assert.equal(leadingEventId(JSON.stringify({ ...e, historical: true })), e.id);
  assert.equal(leadingEventId('{"v":1,"hub":"hub-1"}'), undefined);
  assert.equal(leadingEventId(`{"id":"${e.id.slice(0, 20)}"}`), undefined, "too short for a ULID");
  assert.equal(leadingEventId(`{"id":"${e.id}X"}`), undefined, "too long for a ULID");
});

each("a burst larger than batchMaxEvents is split into batches, committed in order, one at a time", async (t) => {
  const calls: EventRow[][] = [];
  let active = 0;
  let maxActive = 0;
  let gate: Promise<void> | null = null;
  const r = await rig(t, {
    batchMaxEvents: 10,
    wrap: (s) => {
      const w = Object.create(s) as Store;
      w.insertEvents = async (rows, opts) => {
        calls.push(rows);
        maxActive = Math.max(maxActive, ++active);
        try {
          await sleep(10);
          if (gate) await gate;
          return await s.insertEvents(rows, opts);
        } finally {
          active--;
        }
      };
      return w;
    },
  });
  const sent = Array.from({ length: 25 }, () => envelope(r, "hub-1"));
  for (const e of sent) r.ingest.handle("hub-1", wire(e));
  await r.ingest.flush();

  assert.deepEqual(calls.map((c) => c.length), [10, 10, 5]);
  assert.deepEqual(calls.flat().map((row) => row.id), sent.map((e) => e.id));
  assert.equal(maxActive, 1);
  assert.deepEqual(r.acks.map((a) => a.ids.length), [10, 10, 5]);
  assert.equal(await metric(r.metrics, "anxin_relay_batch_events", {}, "anxin_relay_batch_events_count"), 3);
  assert.equal(await metric(r.metrics, "anxin_relay_batch_events", {}, "anxin_relay_batch_events_sum"), 25);

  // While a slow commit runs, the next events gather into one batch instead of many small ones, even
  // though their wait time runs out meanwhile.
  calls.length = 0;
  let open: () => void = () => {};
  gate = new Promise<void>((resolve) => (open = resolve));
  const more = Array.from({ length: 8 }, () => envelope(r, "hub-2"));
  r.ingest.handle("hub-2", wire(more[0]));
  await waitFor(() => calls.length === 1);
  for (const e of more.slice(1)) {
    r.ingest.handle("hub-2", wire(e));
    await sleep(2);
  }
  await r.ingest._testChecked(); // with verify threads, the last ones may still be on their way back
  open();
  await r.ingest.flush();
  assert.deepEqual(calls.map((c) => c.length), [1, 7]);
});

each("a lone reading is committed and acknowledged within batchMaxWaitMs (plus the commit)", async (t) => {
  const r = await rig(t, { batchMaxWaitMs: 20 });
  await r.registry.signingKey("hub-1"); // warm, as in steady operation
  const e = envelope(r, "hub-1");
  const t0 = performance.now();
  r.ingest.handle("hub-1", wire(e));
  await waitFor(() => r.acks.length === 1);
  const ms = performance.now() - t0;
  assert.ok(ms >= 15, `committed after ${ms} ms: it should have waited for company`);
  assert.ok(ms < 20 + 150, `lone reading waited ${ms} ms`);
});

each("an alarm does not wait for company: it is committed as soon as the commit loop is free", async (t) => {
  const r = await rig(t, { batchMaxWaitMs: 60_000 });
  const reading = envelope(r, "hub-1");
  const alarm = envelope(r, "hub-1", { kind: "alarm", severity: "critical" });
  r.ingest.handle("hub-1", wire(reading));
  r.ingest.handle("hub-1", wire(alarm));
  await waitFor(() => r.acks.length === 1);
  assert.deepEqual(r.acks[0]?.ids, [alarm.id]);
  await sleep(50);
  assert.equal(r.acks.length, 1, "the reading still waits for company");
  await r.ingest.flush();
  assert.deepEqual(r.acks[1]?.ids, [reading.id]);
});

each("alarms overtake routine events waiting for a slow store, and have a reserve in the full backlog", async (t) => {
  // A reconnect storm in small: a commit in flight, readings queued behind it up to the backlog's bound,
  // then an alarm, its clearing, an inactivity alarm (a warning) and a valve report. They are committed
  // right after the commit in flight, together, ahead of every queued reading; nothing is stored or handed
  // on twice, every id is acked.
  const calls: EventRow[][] = [];
  let open: () => void = () => {};
  let gate: Promise<void> | null = new Promise<void>((resolve) => (open = resolve));
  t.after(() => open()); // before the rig's own cleanup, which waits for the commits
  const r = await rig(t, {
    batchMaxEvents: 10,
    maxBacklog: 40,
    wrap: (s) => {
      const w = Object.create(s) as Store;
      w.insertEvents = async (rows, opts) => {
        calls.push(rows);
        if (gate) await gate;
        return s.insertEvents(rows, opts);
      };
      return w;
    },
  });
  const readings = Array.from({ length: 41 }, () => envelope(r, "hub-1"));
  for (const e of readings.slice(0, 10)) r.ingest.handle("hub-1", wire(e)); // a full batch: its commit hangs
  await waitFor(() => calls.length === 1);
  for (const e of readings.slice(10)) r.ingest.handle("hub-1", wire(e));
  await r.ingest._testChecked();
  assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "backlog_full" }), 1, "the 41st reading finds the backlog full");
  const alarm = envelope(r, "hub-2", { kind: "alarm", type: "smoke", severity: "critical" });
  const cleared = envelope(r, "hub-2", { kind: "alarm_cleared", type: "smoke", severity: "info" });
  const inactivity = envelope(r, "hub-1", { kind: "alarm", type: "inactivity", severity: "warning" });
  const valve = envelope(r, "hub-1", { kind: "device", type: "valve_closed", severity: "high" });
  const urgent = [alarm, cleared, inactivity, valve];
  for (const e of urgent) r.ingest.handle(e.hub, wire(e));
  await r.ingest._testChecked();
  assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "backlog_full" }), 1, "urgent events are admitted to the reserve");
  assert.equal(r.ingest.pending, 44);
  gate = null;
  open();
  await waitFor(() => r.acks.some((a) => a.ids.includes(alarm.id)));
  // The commit right after the one in flight holds them, and carries the next routine batch that is due
  // (no commit of their own). The commit after it may have started by now: only their place is checked.
  const kept = readings.slice(0, 40);
  assert.deepEqual(new Set(calls[1]?.map((x) => x.id)), new Set([...urgent, ...kept.slice(10, 20)].map((e) => e.id)));
  await r.ingest.flush();
  assert.deepEqual(calls.slice(2).flatMap((rows) => rows.map((x) => x.id)), kept.slice(20).map((e) => e.id), "the queued readings follow in their order");
  assert.deepEqual(r.acks.flatMap((a) => a.ids).sort(), [...kept, ...urgent].map((e) => e.id).sort());
  assert.equal(r.committed.length, 44);
  assert.equal(await r.store.countEvents(), 44);
  assert.equal(r.ingest.pending, 0);

  // The reserve is bounded too, to a tenth of the backlog (4 here): beyond it an alarm is dropped unacked
  // like anything else, and its hub resends it.
  gate = new Promise<void>((resolve) => (open = resolve));
  for (const e of Array.from({ length: 40 }, () => envelope(r, "hub-1"))) r.ingest.handle("hub-1", wire(e));
  await r.ingest._testChecked();
  for (const e of Array.from({ length: 5 }, () => envelope(r, "hub-2", { kind: "alarm", type: "gas", severity: "critical" }))) r.ingest.handle("hub-2", wire(e));
  await r.ingest._testChecked();
  assert.equal(r.ingest.pending, 44);
  assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "backlog_full" }), 2);
  gate = null;
  open();
  await r.ingest.flush();
  assert.equal(await r.store.countEvents(), 88);
});

each("an event with a far-off clock is kept, flagged and acknowledged (invariant 8)", async (t) => {
  const r = await rig(t);
  const behind = envelope(r, "hub-1", { ts: T0 - 3 * 3600_000 }); // power cut, no RTC
  const ahead = envelope(r, "hub-1", { ts: T0 + 400_000 });
  const fine = envelope(r, "hub-1", { ts: T0 - 299_000 });
  // Sent late from the journal after an outage: old by nature, not a sign of a wrong clock.
  const late = envelope(r, "hub-1", { ts: T0 - 40 * 60_000, historical: true });
  for (const e of [behind, ahead, fine, late]) r.ingest.handle("hub-1", wire(e));
  await r.ingest.flush();
  assert.equal((await r.store.getEvent(behind.id))?.skewMs, -3 * 3600_000);
  assert.equal((await r.store.getEvent(ahead.id))?.skewMs, 400_000);
  assert.equal((await r.store.getEvent(fine.id))?.skewMs, null);
  assert.equal((await r.store.getEvent(late.id))?.skewMs, null);
  assert.equal(await metric(r.metrics, "anxin_relay_events_clock_skewed_total"), 2);
  assert.deepEqual(r.acks[0]?.ids, [behind.id, ahead.id, fine.id, late.id]);
  assert.equal(r.committed.length, 4);
});

each("a failing store: nothing is acknowledged until a commit succeeds, then every event is, once", async (t) => {
  const calls: EventRow[][] = [];
  let failures = 3;
  const r = await rig(t, { wrap: flaky(() => failures-- > 0, calls) });
  const sent = [envelope(r, "hub-1"), envelope(r, "hub-2")];
  for (const e of sent) r.ingest.handle(e.hub, wire(e));
  await waitFor(() => calls.length >= 2);
  assert.equal(r.acks.length, 0);
  assert.equal(r.committed.length, 0);
  assert.equal(r.ingest.pending, 2);

  // More arrives while the store is down; it waits behind the failed batch.
  const later = envelope(r, "hub-1");
  r.ingest.handle("hub-1", wire(later));
  await r.ingest.flush();
  assert.ok(calls.length >= 4, `expected retries, got ${calls.length} calls`);
  assert.deepEqual(r.committed.map((c) => c.id), [...sent, later].map((e) => e.id));
  assert.deepEqual(r.acks.flatMap((a) => a.ids), [...sent, later].map((e) => e.id));
  assert.equal(await r.store.countEvents(), 3);
  assert.equal(r.ingest.pending, 0);
  const errors = r.logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 50);
  assert.equal(errors.length, 3);
  assert.match(errors[0]?.msg ?? "", /commit failed/);
});

each("the in-memory backlog is capped: beyond it messages are dropped unacked, to be resent", async (t) => {
  let down = true;
  const r = await rig(t, { maxBacklog: 3, wrap: flaky(() => down, []) });
  const sent = Array.from({ length: 5 }, () => envelope(r, "hub-1"));
  for (const e of sent) r.ingest.handle("hub-1", wire(e));
  assert.equal(await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "backlog_full" }), 2);
  down = false;
  await r.ingest.flush();
  assert.deepEqual(r.acks.flatMap((a) => a.ids), sent.slice(0, 3).map((e) => e.id));
  // The hub resends what was never acked; now there is room.
  for (const e of sent.slice(3)) r.ingest.handle("hub-1", wire({ ...e, historical: true }));
  await r.ingest.flush();
  assert.equal(await r.store.countEvents(), 5);
});

each("close() gives up on a store that stays down instead of hanging; nothing is acknowledged", async (t) => {
  const r = await rig(t, { wrap: flaky(() => true, []) });
  r.ingest.handle("hub-1", wire(envelope(r, "hub-1")));
  await sleep(30);
  await r.ingest.close();
  assert.equal(r.acks.length, 0);
  r.ingest.handle("hub-1", wire(envelope(r, "hub-1"))); // after close: ignored, never throws
  assert.equal(r.ingest.pending, 0);
});

each("withinCommit sees only the new events, inside the transaction; callbacks that throw do not stop the pipeline", async (t) => {
  const within: string[][] = [];
  const r = await rig(t, {
    withinCommit: async (trx, inserted) => {
      within.push(inserted.map((e) => e.id));
      const n = await trx.selectFrom("events").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
      assert.ok(Number(n.n) >= inserted.length, "rows visible inside the transaction");
    },
    onAck: () => {
      throw new Error("mqtt gone");
    },
    onCommitted: () => {
      throw new Error("escalation bug");
    },
  });
  const e1 = envelope(r, "hub-1");
  r.ingest.handle("hub-1", wire(e1));
  await r.ingest.flush();
  const e2 = envelope(r, "hub-1");
  r.ingest.handle("hub-1", wire(e1));
  r.ingest.handle("hub-1", wire(e2));
  await r.ingest.flush();
  assert.deepEqual(within, [[e1.id], [e2.id]]);
  assert.equal(await r.store.countEvents(), 2);
});

// ---- the verify pool

/** A mixed stream: valid events of three hubs, forgeries, wrong keys, strangers, junk, mismatched hubs. */
function mixedStream(r: Rig, n: number): Array<{ hub: string; payload: Buffer }> {
  const out: Array<{ hub: string; payload: Buffer }> = [];
  const hubs = ["hub-1", "hub-2", "hub-3"];
  for (let i = 0; i < n; i++) {
    const hub = hubs[i % 3] as string;
    switch (i % 10) {
      case 3:
        out.push({ hub, payload: wire({ ...envelope(r, hub), data: { lel: i } }) }); // forged after signing
        break;
      case 5:
        out.push({ hub, payload: wire(envelope(r, hub, {}, randomBytes(32))) }); // wrong key
        break;
      case 6:
        out.push({ hub: "hub-9", payload: wire(envelope(r, "hub-9", {}, randomBytes(32))) }); // unknown hub
        break;
      case 7:
        out.push({ hub, payload: Buffer.from(i % 20 === 7 ? "{not json" : JSON.stringify({ v: 1, hub, id: ulid() })) });
        break;
      case 8:
        out.push({ hub, payload: wire(envelope(r, hubs[(i + 1) % 3] as string)) }); // another hub's topic
        break;
      default:
        out.push({ hub, payload: wire(envelope(r, hub, i % 4 === 0 ? { kind: "reading", type: "gas_level", severity: "info" } : {})) });
    }
  }
  return out;
}

async function outcome(r: Rig): Promise<Record<string, unknown>> {
  const reasons: Record<string, number> = {};
  for (const reason of ["not_json", "schema", "hub_mismatch", "unknown_hub", "bad_signature", "worker_failed", "backlog_full"])
    reasons[reason] = await metric(r.metrics, "anxin_relay_events_rejected_total", { reason });
  return {
    reasons,
    committed: r.committed.map((c) => `${c.hub}/${c.id}`),
    ackedPerHub: Object.fromEntries(["hub-1", "hub-2", "hub-3"].map((h) => [h, r.acks.filter((a) => a.hub === h).flatMap((a) => a.ids)])),
    rows: (await r.store.listEvents({ limit: 10_000 })).map((e) => [e.id, e.hub, e.boot, e.seq, e.ts, e.kind, e.type, e.severity, e.device, e.historical, e.payload]).sort(),
  };
}

test("verify pool: a mixed stream of valid, forged and invalid messages gives exactly the outcomes of inline checks, in the same order", async (t) => {
  const inline = await rig(t, { verifyThreads: 0, hubs: ["hub-1", "hub-2", "hub-3"] });
  // The same registry (so the same keys) with a store of its own: the very same bytes can go to both.
  const pooled = await rig(t, { verifyThreads: 2, hubs: [], registry: inline.registry });
  const stream = mixedStream(inline, 3000);
  for (const m of stream) {
    inline.ingest.handle(m.hub, m.payload);
    pooled.ingest.handle(m.hub, m.payload);
  }
  await inline.ingest.flush();
  await pooled.ingest.flush();
  const a = await outcome(inline);
  const b = await outcome(pooled);
  assert.equal((a.committed as string[]).length, 1500, "the mix commits its valid events");
  assert.deepEqual(b, a);
  // The same rejections logged, with the same hub, reason and id (their order differs: inline, a message
  // that fails to parse is logged before earlier ones still waiting for their key).
  const rejections = (logs: string[]) =>
    logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "ingest: message rejected").map((l) => `${String(l.hub)}/${String(l.reason)}/${String(l.id)}/${JSON.stringify(l.issues ?? l.envelopeHub ?? null)}`).sort();
  assert.deepEqual(rejections(pooled.logs), rejections(inline.logs));
});

test("verify pool: a worker killed mid-stream is restarted; nothing is acknowledged that was not committed, and resends complete the stream", async (t) => {
  const r = await rig(t, { verifyThreads: 2 });
  const sent = Array.from({ length: 4000 }, (_, i) => envelope(r, i % 2 ? "hub-1" : "hub-2"));
  for (const e of sent) r.ingest.handle(e.hub, wire(e));
  await new Promise((resolve) => setImmediate(resolve)); // the turn's messages are with the workers now
  const startsBefore = r.ingest._verifyWorkerStarts;
  await r.ingest._testKillVerifyWorker(0);
  await r.ingest.flush();

  const acked = new Set(r.acks.flatMap((a) => a.ids));
  const failed = await metric(r.metrics, "anxin_relay_events_rejected_total", { reason: "worker_failed" });
  assert.ok(failed > 0, "the killed worker held events");
  assert.equal(acked.size + failed, sent.length, "every event is either acknowledged or dropped unacked");
  for (const id of acked) assert.ok(await r.store.getEvent(id), `acked but not stored: ${id}`);
  assert.equal(await r.store.countEvents(), acked.size);
  assert.equal(r.ingest.pending, 0);
  assert.ok(r.logs.some((l) => l.includes("verify worker stopped")));

  await waitFor(() => r.ingest._verifyWorkerStarts > startsBefore);
  await r.ingest._verifyThreadsReady();
  // The hubs resend what was never acked.
  const missing = sent.filter((e) => !acked.has(e.id));
  for (const e of missing) r.ingest.handle(e.hub, wire({ ...e, historical: true }));
  await r.ingest.flush();
  assert.equal(await r.store.countEvents(), sent.length);
  assert.equal(new Set(r.acks.flatMap((a) => a.ids)).size, sent.length);
  assert.equal(r.committed.length, sent.length, "each event handed on once");
});

test("verify pool: close() waits for every message handed in, then stops the workers", async (t) => {
  const r = await rig(t, { verifyThreads: 2 });
  const sent = Array.from({ length: 1500 }, (_, i) => envelope(r, i % 2 ? "hub-1" : "hub-2"));
  for (const e of sent) r.ingest.handle(e.hub, wire(e));
  assert.equal(r.ingest.pending, sent.length);
  await r.ingest.close();
  assert.equal(await r.store.countEvents(), sent.length);
  for (const hub of ["hub-1", "hub-2"])
    assert.deepEqual(r.committed.filter((c) => c.hub === hub).map((c) => c.id), sent.filter((e) => e.hub === hub).map((e) => e.id), "each hub's events in the order handed in");
  assert.equal(r.ingest.pending, 0);
  r.ingest.handle("hub-1", wire(envelope(r, "hub-1"))); // after close: ignored, never throws
  assert.equal(r.ingest.pending, 0);
});

test("verify pool: an event whose key must first be looked up keeps its place behind and ahead of its hub's other events", async (t) => {
  const r = await rig(t, { verifyThreads: 2 });
  const sent = Array.from({ length: 600 }, (_, i) => envelope(r, i % 3 ? "hub-1" : "hub-2"));
  for (const [i, e] of sent.entries()) {
    if (i % 100 === 0) r.registry.invalidate(e.hub); // the cache forgets: the next event waits for the store
    r.ingest.handle(e.hub, wire(e));
  }
  await r.ingest.flush();
  for (const hub of ["hub-1", "hub-2"])
    assert.deepEqual(r.committed.filter((c) => c.hub === hub).map((c) => c.id), sent.filter((e) => e.hub === hub).map((e) => e.id));
});
