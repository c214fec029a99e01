import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { createMetrics, type Metrics } from "../../relay/src/metrics.js";
import { Registry } from "../../relay/src/registry/registry.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import { Supervisor } from "../../relay/src/supervision/supervisor.js";

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
  supervisor: (store?: Store) => Supervisor;
}

async function rig(t: { after(fn: () => unknown): void }, hubs = ["hub-1"]): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), "anxin-relay-supervisor-"));
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir);
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
    supervisor: (s = store) => {
      const sup = new Supervisor({ store: s, metrics, log, heartbeatIntervalS: HB_S, missedHeartbeats: MISSED, checkEveryS: 10, now: () => clock.now });
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
