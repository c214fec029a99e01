import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { createMetrics, type Metrics } from "../../relay/src/metrics.js";
import { Registry } from "../../relay/src/registry/registry.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import { Supervisor, type SupervisorOptions } from "../../relay/src/supervision/supervisor.js";
import { listPlannedStops, supervisionDb, supervisionMigrations } from "../../relay/src/supervision/planned-stops.js";
import { signState, type HubState } from "../../protocol/messages.js";

const T0 = 1_800_000_000_000;
const HB_S = 60;
const MISSED = 3;
const WINDOW = HB_S * MISSED * 1000;

interface Rig {
  store: Store;
  registry: Registry;
  metrics: Metrics;
  clock: { now: number };
  logs: Array<Record<string, unknown>>;
  supervisor: (store?: Store, extra?: Partial<SupervisorOptions>) => Supervisor;
}

async function rig(t: { after(fn: () => unknown): void }, hubs = ["hub-1"]): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), "anxin-relay-supervisor-"));
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations: supervisionMigrations });
  const clock = { now: T0 };
  const registry = new Registry(store, { claimCodeTtlS: 3600, heartbeatS: HB_S, mqttUrl: "mqtt://127.0.0.1:1883", now: () => clock.now });
  for (const hub of hubs) await registry.provisionDirect(hub);
  const metrics = createMetrics();
  const logs: Rig["logs"] = [];
  const log = pino({ level: "info" }, { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) });
  const made: Supervisor[] = [];
  const extraStores: Store[] = [];
  t.after(async () => {
    for (const s of made) {
      s.stop();
      await s.drain();
    }
    for (const s of extraStores) await s.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    store,
    registry,
    metrics,
    clock,
    logs,
    supervisor: (s = store, extra = {}) => {
      const sup = new Supervisor({ store: s, metrics, log, heartbeatIntervalS: HB_S, missedHeartbeats: MISSED, checkEveryS: 10, now: () => clock.now, ...extra });
      made.push(sup);
      return sup;
    },
  };
}

const birth = (boot: number): Buffer => Buffer.from(JSON.stringify({ online: true, boot, version: "0.1.0", heartbeatS: HB_S }));
const will = (boot: number): Buffer => Buffer.from(JSON.stringify({ online: false, boot }));

async function gauge(m: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const got = await m.registry.getSingleMetric(name)?.get();
  assert.ok(got);
  return got.values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
}

test("missed heartbeats: one incident when the window passes, none twice; a sighting closes it as recovered", async (t) => {
  const r = await rig(t, ["hub-1", "hub-2"]);
  const sup = r.supervisor();
  sup.onState("hub-2", birth(1));
  await sup.check();
  // hub-1 comes up a minute after the relay, so its window ends after the start-up grace.
  const up = T0 + HB_S * 1000;
  r.clock.now = up;
  sup.onState("hub-1", birth(3));
  await sup.check();
  assert.equal(await gauge(r.metrics, "anxin_relay_hubs_online"), 2);
  assert.equal((await r.store.getHub("hub-1"))?.lastBoot, 3);

  // hub-2 keeps heart-beating, hub-1 falls silent.
  for (let s = 2 * HB_S; s <= MISSED * HB_S; s += HB_S) {
    r.clock.now = T0 + s * 1000;
    sup.onSeen("hub-2", r.clock.now);
    await sup.check();
  }
  r.clock.now = up + WINDOW - 1;
  sup.onSeen("hub-2", r.clock.now);
  await sup.check();
  assert.equal((await r.store.listIncidents()).length, 0, "not before the window is over");
  r.clock.now = up + WINDOW + 1;
  sup.onSeen("hub-2", r.clock.now);
  await sup.check();
  await sup.check();
  const incidents = await r.store.listIncidents();
  assert.equal(incidents.length, 1);
  assert.equal(incidents[0]?.hub, "hub-1");
  assert.equal(incidents[0]?.reason, "missed heartbeats");
  assert.equal((await r.store.getHub("hub-1"))?.online, false);
  assert.equal(await gauge(r.metrics, "anxin_relay_hub_incidents_total", { type: "hub_offline" }), 1);
  assert.equal(await gauge(r.metrics, "anxin_relay_hubs_online"), 1);
  assert.ok(r.logs.some((l) => l.level === 40 && l.hub === "hub-1" && l.reason === "missed heartbeats"));

  r.clock.now += 5000;
  sup.onSeen("hub-1", r.clock.now);
  await sup.check();
  const [closed] = await r.store.listIncidents({ hub: "hub-1" });
  assert.equal(closed?.closedAt, r.clock.now);
  assert.equal(closed?.closeReason, "recovered");
  assert.equal(await gauge(r.metrics, "anxin_relay_hubs_online"), 2);
  assert.ok(r.logs.some((l) => l.level === 30 && l.hub === "hub-1" && l.msg === "supervision: hub back online"));
});

test("the will takes a hub offline at once with an incident; the next birth closes it and records the boot", async (t) => {
  const r = await rig(t);
  const sup = r.supervisor();
  sup.onState("hub-1", birth(7));
  await sup.drain();
  r.clock.now += 1000;
  sup.onSeen("hub-1", r.clock.now); // an event committed just before the connection dropped...
  r.clock.now += 1000;
  sup.onState("hub-1", will(7));
  sup.onState("hub-1", will(7)); // retained copy delivered again: no second incident
  await sup.drain(); // ...is written after the will, and must not count as a recovery

  let incidents = await r.store.listIncidents({ hub: "hub-1" });
  assert.equal(incidents.length, 1);
  assert.equal(incidents[0]?.reason, "will: connection lost");
  assert.equal(incidents[0]?.closedAt, null);
  assert.equal((await r.store.getHub("hub-1"))?.online, false);
  assert.equal((await r.store.getHub("hub-1"))?.offlineSince, r.clock.now);

  r.clock.now += 30_000;
  sup.onState("hub-1", birth(8));
  sup.onState("hub-1", will(7)); // the old boot's will, delivered late: stale
  await sup.drain();
  incidents = await r.store.listIncidents({ hub: "hub-1" });
  assert.equal(incidents[0]?.closeReason, "recovered");
  const hub = await r.store.getHub("hub-1");
  assert.equal(hub?.online, true);
  assert.equal(hub?.lastBoot, 8);
  assert.equal(hub?.lastSeenAt, r.clock.now);
});

test("after a (re)start the relay gives hubs one full window before calling them silent", async (t) => {
  const r = await rig(t);
  const first = r.supervisor();
  first.onState("hub-1", birth(1));
  await first.drain();
  // The relay was down for an hour; a new instance starts.
  r.clock.now += 3600_000;
  const sup = r.supervisor();
  await sup.check();
  assert.equal((await r.store.listIncidents()).length, 0);
  r.clock.now += WINDOW;
  await sup.check();
  assert.equal((await r.store.listIncidents()).length, 1);
});

test("two supervisors on one store checking the same silent hub record one transition and one incident", async (t) => {
  const r = await rig(t);
  const a = r.supervisor();
  a.onState("hub-1", birth(1));
  await a.drain();
  const b = r.supervisor();
  r.clock.now += 2 * WINDOW;
  await Promise.all([a.check(), b.check(), a.check()]);
  assert.equal((await r.store.listIncidents()).length, 1);
  assert.equal(await gauge(r.metrics, "anxin_relay_hub_incidents_total"), 1);
});

test("invalid state messages are ignored; pending and revoked hubs are not supervised", async (t) => {
  const r = await rig(t, ["hub-1", "hub-2"]);
  await r.registry.createClaim("hub-3");
  const sup = r.supervisor();
  sup.onState("hub-1", Buffer.from("{online"));
  sup.onState("hub-1", Buffer.from(JSON.stringify({ online: "yes" })));
  sup.onState("hub-3", birth(1));
  sup.onState("hub-2", birth(1));
  await sup.drain();
  assert.equal((await r.store.getHub("hub-1"))?.online, false);
  assert.equal((await r.store.getHub("hub-3"))?.online, false);
  assert.equal(r.logs.filter((l) => l.level === 40 && String(l.msg).includes("state message")).length, 2);

  await r.registry.revoke("hub-2");
  r.clock.now += 2 * WINDOW;
  await sup.check();
  assert.equal((await r.store.listIncidents()).length, 0);
});

test("start() is idempotent and stop() still writes the last sightings", async (t) => {
  const r = await rig(t);
  const sup = r.supervisor();
  sup.onState("hub-1", birth(1));
  sup.start();
  sup.start(); // idempotent
  r.clock.now += 1234;
  sup.onSeen("hub-1", r.clock.now);
  sup.stop();
  await sup.drain();
  assert.equal((await r.store.getHub("hub-1"))?.lastSeenAt, r.clock.now);
});

test("a pass under way when the relay stops does no store work after stop's drain (the store closes next)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "anxin-relay-supervisor-stop-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations: supervisionMigrations });
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: "info" }, { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) });
  const sup = new Supervisor({ store, metrics: createMetrics(), log, heartbeatIntervalS: HB_S, missedHeartbeats: MISSED, checkEveryS: 10, now: () => T0 + WINDOW });
  // The check timer fired just before the stop; a state message comes in after it.
  const pass = sup.check();
  sup.stop();
  await sup.drain();
  await store.close();
  await pass;
  sup.onState("hub-1", birth(1));
  await sup.drain();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(logs.filter((l) => l.level === 50).map((l) => `${String(l.msg)}: ${JSON.stringify(l.err)}`), []);
});

test("a store outage delays state changes but does not lose them", async (t) => {
  const r = await rig(t);
  let down = true;
  const w = Object.create(r.store) as Store;
  w.applyTransitions = async (list) => {
    if (down) throw new Error("connection refused");
    return r.store.applyTransitions(list);
  };
  const sup = r.supervisor(w);
  sup.onState("hub-1", birth(2));
  await sup.drain();
  assert.equal((await r.store.getHub("hub-1"))?.online, false);
  assert.ok(r.logs.some((l) => l.level === 50));
  down = false;
  await sup.drain();
  assert.equal((await r.store.getHub("hub-1"))?.online, true);
});

// ---- planned stops: a clean stop says so, signed; the relay waits out a grace instead of paging

const GRACE_S = 300;

async function keyOf(r: Rig, hub: string): Promise<Buffer> {
  const auth = await r.store.getHubAuth(hub);
  assert.ok(auth?.keyB64);
  return Buffer.from(auth.keyB64, "base64");
}

/** What the hub's uplink says on a clean stop, signed with `key`. */
function plannedStop(key: Buffer, boot: number, over: Partial<HubState> = {}): HubState {
  return signState({ online: false, boot, ts: T0, planned: true, reason: "stopping", expectBackWithinS: GRACE_S, ...over }, key);
}
const wire = (s: HubState): Buffer => Buffer.from(JSON.stringify(s));
const pending = (r: Rig) => listPlannedStops(supervisionDb(r.store.db));

async function rejected(m: Metrics, reason: string): Promise<number> {
  const got = await m.registry.getSingleMetric("anxin_relay_events_rejected_total")?.get();
  return got?.values.filter((v) => v.labels.reason === reason).reduce((a, v) => a + v.value, 0) ?? 0;
}

test("planned stop: nothing opens within the grace (the will of that boot included); back with a new boot → nothing at all", async (t) => {
  const r = await rig(t);
  const sup = r.supervisor(undefined, { plannedStopGraceS: GRACE_S });
  const key = await keyOf(r, "hub-1");
  sup.onState("hub-1", birth(7));
  sup.onSeen("hub-1", r.clock.now);
  await sup.drain();
  r.clock.now += 1000;
  const stoppedAt = r.clock.now;
  sup.onState("hub-1", wire(plannedStop(key, 7)));
  // Its clean disconnect did not complete (a broker timeout): the will of the same boot follows.
  sup.onState("hub-1", will(7));
  await sup.drain();
  const [wait] = await pending(r);
  assert.equal(wait?.hub, "hub-1");
  assert.equal(wait?.boot, 7);
  assert.equal(wait?.until, stoppedAt + GRACE_S * 1000);

  // Past the heartbeat window (silent on purpose), still within the grace: no incident, no transition.
  for (const s of [WINDOW / 1000 + 1, GRACE_S - 1]) {
    r.clock.now = stoppedAt + s * 1000;
    await sup.check();
    assert.equal((await r.store.listIncidents()).length, 0, `nothing ${s} s after the planned stop`);
    assert.equal((await r.store.getHub("hub-1"))?.online, true);
  }
  sup.onState("hub-1", birth(8));
  await sup.drain();
  assert.deepEqual(await pending(r), [], "the wait ends with the birth");
  assert.equal((await r.store.getHub("hub-1"))?.lastBoot, 8);
  // Long after the grace: still nothing (the birth counted as a sighting, so the heartbeat window starts there).
  r.clock.now = stoppedAt + (GRACE_S + 60) * 1000;
  await sup.check();
  assert.equal((await r.store.listIncidents()).length, 0);
  assert.equal(await gauge(r.metrics, "anxin_relay_hub_incidents_total", { type: "hub_offline" }), 0);
  assert.ok(r.logs.some((l) => l.msg === "supervision: hub back from a planned stop" && l.hub === "hub-1"));
});

test("planned stop without a return: the incident opens when the grace is over and says it was a planned stop", async (t) => {
  const r = await rig(t);
  const sup = r.supervisor(undefined, { plannedStopGraceS: GRACE_S });
  const key = await keyOf(r, "hub-1");
  sup.onState("hub-1", birth(3));
  await sup.drain();
  const stoppedAt = r.clock.now;
  // The hub expects to be back sooner than the relay's grace: the lesser one counts.
  sup.onState("hub-1", wire(plannedStop(key, 3, { expectBackWithinS: 60 })));
  await sup.drain();
  r.clock.now = stoppedAt + 59_999;
  await sup.check();
  assert.equal((await r.store.listIncidents()).length, 0);
  r.clock.now = stoppedAt + 60_000;
  await sup.check();
  const [inc] = await r.store.listIncidents({ hub: "hub-1" });
  assert.equal(inc?.type, "hub_offline");
  assert.match(inc?.reason ?? "", /^planned stop \(stopping\) at \d{4}-\d\d-\d\dT[\d:.]+Z, not back within 60 s$/);
  assert.equal(inc?.openedAt, r.clock.now);
  assert.equal((await r.store.getHub("hub-1"))?.online, false);
  assert.deepEqual(await pending(r), []);
  assert.equal(await gauge(r.metrics, "anxin_relay_hub_incidents_total", { type: "hub_offline" }), 1);
  await sup.check();
  assert.equal((await r.store.listIncidents()).length, 1, "opened once");
  // Coming back later closes it as any hub_offline closes.
  r.clock.now += 5000;
  sup.onState("hub-1", birth(4));
  await sup.drain();
  assert.equal((await r.store.listIncidents({ hub: "hub-1" }))[0]?.closeReason, "recovered");
});

test("unsigned and badly signed planned stops are ignored and counted: the will and the heartbeats decide as for a lost hub", async (t) => {
  const r = await rig(t, ["hub-1", "hub-2"]);
  const sup = r.supervisor(undefined, { plannedStopGraceS: GRACE_S });
  const key1 = await keyOf(r, "hub-1");
  const key2 = await keyOf(r, "hub-2");
  sup.onState("hub-1", birth(1));
  sup.onState("hub-2", birth(1));
  await sup.drain();
  const { sig: _sig, ...unsigned } = plannedStop(key1, 1);
  sup.onState("hub-1", wire(unsigned));
  sup.onState("hub-1", wire(plannedStop(key2, 1))); // another hub's key
  sup.onState("hub-1", wire({ ...plannedStop(key1, 1), expectBackWithinS: 86400 })); // altered after signing
  sup.onState("hub-1", wire({ ...plannedStop(key1, 1), sig: "zz" }));
  await sup.drain();
  assert.deepEqual(await pending(r), [], "none of them is waited out");
  assert.equal(await rejected(r.metrics, "state_unsigned"), 1);
  assert.equal(await rejected(r.metrics, "state_bad_signature"), 3);
  // One warning for the hub's burst (lib/log/burst-log.ts); the rest at debug, below this log's level.
  const refusals = r.logs.filter((l) => l.msg === "supervision: planned stop refused; ignored (the will and heartbeats decide)");
  assert.deepEqual(refusals.map((l) => [l.level, l.hub, l.reason]), [[40, "hub-1", "state_unsigned"]]);

  // hub-1's connection is lost: the will opens the incident at once, as before.
  sup.onState("hub-1", will(1));
  await sup.drain();
  assert.equal((await r.store.listIncidents({ hub: "hub-1", openOnly: true }))[0]?.reason, "will: connection lost");

  // hub-2 after a forged planned stop, then silence (its goodbye dropped on the path): missed heartbeats,
  // at the end of the heartbeat window, not the grace.
  sup.onState("hub-2", wire(plannedStop(key1, 1)));
  await sup.drain();
  r.clock.now = T0 + WINDOW + 1;
  await sup.check();
  assert.equal((await r.store.listIncidents({ hub: "hub-2", openOnly: true }))[0]?.reason, "missed heartbeats");
  assert.equal(await rejected(r.metrics, "state_bad_signature"), 4);
});

test("planned stops: an earlier boot's (a replay) is ignored; a copy delivered again keeps the deadline; an older hub's plain goodbye is a will", async (t) => {
  const r = await rig(t, ["hub-1", "hub-2"]);
  const sup = r.supervisor(undefined, { plannedStopGraceS: GRACE_S });
  const key = await keyOf(r, "hub-1");
  sup.onState("hub-1", birth(5));
  await sup.drain();
  sup.onState("hub-1", wire(plannedStop(key, 4)));
  await sup.drain();
  assert.deepEqual(await pending(r), []);
  assert.ok(r.logs.some((l) => l.msg === "supervision: planned stop refused; ignored (the will and heartbeats decide)" && l.reason === "earlier_boot"));

  const stoppedAt = r.clock.now;
  sup.onState("hub-1", wire(plannedStop(key, 5)));
  await sup.drain();
  r.clock.now += 100_000;
  sup.onState("hub-1", wire(plannedStop(key, 5))); // the retained copy, to a restarted relay
  await sup.drain();
  assert.deepEqual((await pending(r)).map((p) => p.until), [stoppedAt + GRACE_S * 1000]);

  // A hub from before planned stops says `{online: false, boot, ts}` on a clean stop: as today, at once.
  sup.onState("hub-2", birth(1));
  await sup.drain();
  sup.onState("hub-2", Buffer.from(JSON.stringify({ online: false, boot: 1, ts: T0 })));
  await sup.drain();
  assert.equal((await r.store.listIncidents({ hub: "hub-2", openOnly: true }))[0]?.reason, "will: connection lost");
});

test("planned stops are in the store: a second instance does not call the hub silent, one incident after the grace, a restarted relay honours it", async (t) => {
  const r = await rig(t, ["hub-1", "hub-2"]);
  const a = r.supervisor(undefined, { plannedStopGraceS: GRACE_S });
  const b = r.supervisor(undefined, { plannedStopGraceS: GRACE_S });
  const k1 = await keyOf(r, "hub-1");
  const k2 = await keyOf(r, "hub-2");
  a.onState("hub-1", birth(1));
  a.onState("hub-2", birth(1));
  await a.drain();
  const stoppedAt = r.clock.now;
  a.onState("hub-1", wire(plannedStop(k1, 1)));
  await a.drain();
  // Instance b never saw the planned stop; past the heartbeat window it still leaves hub-1 alone.
  r.clock.now = stoppedAt + WINDOW + 1;
  await Promise.all([a.check(), b.check()]);
  assert.deepEqual((await r.store.listIncidents()).map((i) => i.hub), ["hub-2"], "only the hub that really went silent");
  r.clock.now = stoppedAt + GRACE_S * 1000;
  await Promise.all([a.check(), b.check(), a.check()]);
  assert.equal((await r.store.listIncidents({ hub: "hub-1" })).length, 1);
  assert.equal(await gauge(r.metrics, "anxin_relay_hub_incidents_total", { type: "hub_offline" }), 2);

  // hub-2 comes back and stops cleanly; the relay restarts near the end of its grace. The new instance does
  // not expire a wait recorded before it started until it has been up one window: the hub may have come
  // back while no relay was listening.
  r.clock.now += 1000;
  a.onState("hub-2", birth(2));
  await a.drain();
  const again = r.clock.now;
  a.onState("hub-2", wire(plannedStop(k2, 2)));
  await a.drain();
  r.clock.now = again + (GRACE_S - 10) * 1000;
  const c = r.supervisor(undefined, { plannedStopGraceS: GRACE_S });
  r.clock.now = again + (GRACE_S + 10) * 1000;
  await c.check();
  assert.equal((await r.store.listIncidents({ hub: "hub-2", openOnly: true })).length, 0, "not yet: the new instance is still in its start-up window");
  r.clock.now = again + (GRACE_S - 10) * 1000 + WINDOW;
  await c.check();
  const [late] = await r.store.listIncidents({ hub: "hub-2", openOnly: true });
  assert.match(late?.reason ?? "", /^planned stop \(stopping\) at .*, not back within 300 s$/);
});
