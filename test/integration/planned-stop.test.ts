// Restarts do not page operators, and a lost hub still does. The real hub daemon (simulated devices),
// provisioned over HTTP, against the real relay (embedded broker, SQLite); the relay's clock is the test's
// (real time plus an offset it moves), so a grace of minutes passes in a step and nothing depends on timing.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import { provision } from "../../gateway/src/uplink/provision.js";
import { signState, type EnrolResponse, type HubState } from "../../protocol/messages.js";
import { topics } from "../../protocol/topics.js";
import { getTimeline, listIncidents } from "../../relay/src/incidents/repo.js";
import { listPlannedStops, supervisionDb } from "../../relay/src/supervision/planned-stops.js";
import { startRelayForTest, type RelayRig } from "../support/relay-rig.js";
import { waitFor } from "../support/hub-rig.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
const log = () => createLogger({ name: "test", level: process.env.ANXIN_TEST_LOG ?? "silent" });
const GRACE_S = 120;

interface World {
  rig: RelayRig;
  /** Moves the relay's clock and runs a supervision pass. */
  advance(ms: number): Promise<void>;
  /** Provisions `hub` and writes its configuration; returns the file (restarts reuse its data folder). */
  hubConfig(hub: string): Promise<string>;
  startHub(file: string): Promise<RunningHub>;
}

async function world(): Promise<World> {
  const clock = { offset: 0 };
  const rig = await startRelayForTest({ now: () => Date.now() + clock.offset, config: { supervision: { plannedStopGraceS: GRACE_S } } });
  cleanups.push(() => rig.stop());
  return {
    rig,
    advance: async (ms) => {
      clock.offset += ms;
      await rig.relay.supervisor.check();
    },
    hubConfig: async (hub) => {
      const { code } = await rig.relay.registry.createClaim(hub);
      const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-planned-stop-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const dataDir = path.join(dir, "data");
      await provision({ relay: rig.httpUrl, hub, code, dataDir, secretsFile: path.join(dataDir, "secrets.json") });
      const file = path.join(dir, "hub.yaml");
      await writeFile(
        file,
        `hub: { id: ${hub}, dataDir: ./data }
buses:
  - { name: line1, path: sim }
devices:
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen }
uplink: { reconnectMaxMs: 2000 }
`,
      );
      return file;
    },
    startHub: async (file) => {
      const running = await startHub(file, { log: log() });
      cleanups.push(() => running.stop());
      await waitFor("uplink connected", () => running.uplink?.status().state === "connected", 15_000);
      const hub = running.config.hub.id;
      await waitFor("hub online at the relay with this boot", async () => {
        const h = await rig.relay.store.getHub(hub);
        return h?.online && h.lastBoot === running.journal.boot;
      });
      return running;
    },
  };
}

const planned = (w: World) => listPlannedStops(supervisionDb(w.rig.relay.store.db));
const hubIncidents = (w: World, hub: string) => w.rig.relay.store.listIncidents({ hub });
/** The operators' side: maintenance incidents mirrored from supervision (synced now rather than in 5 s). */
async function operatorIncidents(w: World, hub: string) {
  await w.rig.relay.escalation.syncHubOffline();
  return (await listIncidents(w.rig.relay.db, { hub })).filter((i) => i.type === "hub_offline");
}

/** Drops the hub's MQTT connection as a crash or a pulled cable would: no DISCONNECT, so the broker sends its will. */
function dropConnection(running: RunningHub): void {
  const client = (running.uplink as unknown as { client: MqttClient | null }).client;
  assert.ok(client, "the hub has a session to drop");
  client.stream.destroy();
}

async function rejectedStates(w: World, reason: string): Promise<number> {
  const got = await w.rig.relay.metrics.registry.getSingleMetric("anxin_relay_events_rejected_total")?.get();
  return got?.values.filter((v) => v.labels.reason === reason).reduce((a, v) => a + v.value, 0) ?? 0;
}

test("hub.stop() is a planned stop: nothing opens within the grace; back within it (a new boot), nothing at all", async () => {
  const w = await world();
  const hub = "hub-ps-restart";
  const file = await w.hubConfig(hub);
  const first = await w.startHub(file);
  const boot = first.journal.boot;

  await first.stop();
  const wait = await waitFor("planned stop recorded", async () => (await planned(w)).find((p) => p.hub === hub));
  assert.equal(wait.boot, boot);
  assert.equal(wait.reason, "stopping");
  assert.equal(wait.until - wait.stoppedAt, GRACE_S * 1000);
  // Well into the grace (the exact edges are relay-supervisor.test.ts's): nothing opens.
  await w.advance((GRACE_S - 30) * 1000);
  assert.deepEqual(await hubIncidents(w, hub), [], "no supervision incident within the grace");
  assert.deepEqual(await operatorIncidents(w, hub), [], "nothing for the operators either");

  const second = await w.startHub(file);
  assert.equal(second.journal.boot, boot + 1);
  // The birth ends the wait (its deadline is still half a minute of relay time away).
  await waitFor("the wait ends with the birth", async () => (await planned(w)).length === 0);
  // Past the old deadline (well within the heartbeat window: the new run has had no time to beat yet).
  await w.advance(60_000);
  assert.deepEqual(await hubIncidents(w, hub), [], "a restart within the grace leaves no trace");
  assert.deepEqual(await operatorIncidents(w, hub), []);
  assert.equal((await w.rig.relay.store.getHub(hub))?.online, true);
});

test("a planned stop without a return escalates after the grace as a lost hub does, saying it was a planned stop", async () => {
  const w = await world();
  const hub = "hub-ps-gone";
  const running = await w.startHub(await w.hubConfig(hub));
  await running.stop();
  await waitFor("planned stop recorded", async () => (await planned(w)).some((p) => p.hub === hub));
  await w.advance((GRACE_S - 1) * 1000);
  assert.deepEqual(await hubIncidents(w, hub), []);
  await w.advance(2000);
  const [inc] = await hubIncidents(w, hub);
  assert.equal(inc?.type, "hub_offline");
  assert.equal(inc?.closedAt, null);
  assert.match(inc?.reason ?? "", new RegExp(`^planned stop \\(stopping\\) at .*Z, not back within ${GRACE_S} s$`));
  assert.equal((await w.rig.relay.store.getHub(hub))?.online, false);
  // The operators get the maintenance incident a lost hub gets, its cause naming the planned stop.
  const [op] = await operatorIncidents(w, hub);
  assert.equal(op?.policyName, "maintenance");
  const timeline = await getTimeline(w.rig.relay.db, op.id);
  assert.ok(timeline.some((e) => /supervision: planned stop \(stopping\).*not back within/.test(e.cause ?? "")), JSON.stringify(timeline.map((e) => e.cause)));
});

test("a hub killed without a clean stop (its connection dropped, the will fires) opens hub_offline at once, also right after a planned restart", async () => {
  const w = await world();
  const hub = "hub-ps-killed";
  const file = await w.hubConfig(hub);
  const first = await w.startHub(file);
  await first.stop();
  await waitFor("planned stop recorded", async () => (await planned(w)).some((p) => p.hub === hub));
  const second = await w.startHub(file);
  await waitFor("back", async () => (await planned(w)).length === 0);

  dropConnection(second);
  // No clock step: the will alone opens it (the hub reconnects a moment later and closes it as recovered).
  const inc = await waitFor("hub_offline from the will", async () => (await hubIncidents(w, hub))[0], 5000);
  assert.equal(inc.reason, "will: connection lost");
  assert.deepEqual(await planned(w), [], "a lost connection is never waited out");
});

test("a forged planned stop (wrong key) or an unsigned one is ignored and counted; the hub lost after it opens hub_offline at once", async () => {
  const w = await world();
  const hub = "hub-ps-forged";
  const file = await w.hubConfig(hub);
  const running = await w.startHub(file);
  // Someone with the hub's broker login (or on the path) but not its signing key.
  const secrets = JSON.parse(await readFile(path.join(path.dirname(file), "data", "secrets.json"), "utf8")) as EnrolResponse;
  const forger = await mqtt.connectAsync(w.rig.mqttUrl, { clientId: `${hub}:forger`, username: secrets.mqtt.username, password: secrets.mqtt.password, reconnectPeriod: 0 });
  cleanups.push(() => forger.endAsync(true));
  const bye: HubState = { online: false, boot: running.journal.boot, ts: Date.now(), planned: true, reason: "stopping", expectBackWithinS: GRACE_S };
  await forger.publishAsync(topics.state(hub), JSON.stringify(signState(bye, randomBytes(32))), { qos: 1, retain: true });
  await forger.publishAsync(topics.state(hub), JSON.stringify(bye), { qos: 1, retain: true });
  await waitFor("both counted", async () => (await rejectedStates(w, "state_bad_signature")) === 1 && (await rejectedStates(w, "state_unsigned")) === 1);
  assert.deepEqual(await planned(w), [], "neither is waited out");
  assert.equal((await w.rig.relay.store.getHub(hub))?.online, true);

  dropConnection(running);
  const inc = await waitFor("hub_offline from the will", async () => (await hubIncidents(w, hub))[0], 5000);
  assert.equal(inc.reason, "will: connection lost");
});
