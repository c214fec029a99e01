// Hub → relay end to end: the real hub daemon (simulated devices) provisioned over HTTP with a claim
// code, a gas leak, the relay's commit and ack; once on the embedded broker with SQLite, once on the
// machine's Mosquitto with PostgreSQL. And hostile traffic beside a live hub.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import { provision } from "../../gateway/src/uplink/provision.js";
import type { SimLelDetector } from "../../gateway/src/sim/devices.js";
import { signEnvelope } from "../../protocol/signing.js";
import { topics } from "../../protocol/topics.js";
import type { Envelope } from "../../protocol/envelope.js";
import { startRelay } from "../../relay/src/daemon/run.js";
import { listPlannedStops, supervisionDb } from "../../relay/src/supervision/planned-stops.js";
import { startRelayForTest, freePort, pgTestSecrets } from "../support/relay-rig.js";
import { waitFor } from "../support/hub-rig.js";
import { ulid } from "ulid";
import { dropPgSchema } from "../support/pg.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
const log = () => createLogger({ name: "test", level: process.env.ANXIN_TEST_LOG ?? "silent" });

async function startProvisionedHub(hub: string, relayHttp: string, code: string, uplinkExtra = ""): Promise<RunningHub> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-e2e-hub-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const dataDir = path.join(dir, "data");
  const r = await provision({ relay: relayHttp, hub, code, dataDir, secretsFile: path.join(dataDir, "secrets.json") });
  assert.equal(r.hub, hub);
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: ${hub}, dataDir: ./data }
buses:
  - { name: line1, path: sim }
devices:
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen }
uplink: { reconnectMaxMs: 2000${uplinkExtra} }
`,
  );
  const running = await startHub(file, { log: log() });
  cleanups.push(() => running.stop());
  return running;
}

/** Leak gas in the simulated kitchen and follow the alarm to the relay's database. */
async function gasLeakReachesRelay(running: RunningHub, hub: string, events: () => Promise<Envelope[]>) {
  await waitFor("uplink connected", () => running.uplink?.status().state === "connected", 15_000);
  await waitFor("devices online", () => running.hub.poller.devices().every((d) => running.hub.health(d.id)?.status === "online"), 10_000);
  const t0 = Date.now();
  (running.sim.get("line1")!.devices.get(2) as SimLelDetector).setLel(35);
  const alarm = await waitFor("gas alarm at the relay", async () => (await events()).find((e) => e.kind === "alarm" && e.type === "gas"), 10_000);
  const tookMs = Date.now() - t0;
  assert.equal(alarm.hub, hub);
  assert.equal(alarm.severity, "critical");
  assert.match(alarm.sig ?? "", /^[0-9a-f]{64}$/, "stored as signed by the hub");
  assert.ok(tookMs < 5000, `alarm reached the relay ${tookMs} ms after the leak`);
  await waitFor("valve closure reported", async () => (await events()).some((e) => e.type === "valve_closed"), 10_000);
  // Everything the hub captured leaves its journal only once the relay acknowledged it.
  await waitFor("hub journal drained by acks", async () => (await running.journal.stats()).rows === 0, 15_000);
  const ids = (await events()).map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, "no event twice at the relay");
  const status = running.uplink!.status();
  assert.ok(status.acked >= ids.length - 1 && status.lastAckAt !== null);
  assert.ok(status.clockOffsetMs !== null && Math.abs(status.clockOffsetMs) < 5000, "the relay's clock comes with every ack");
}

test("a gas leak reaches the relay (embedded broker, SQLite) and leaves the hub only after the relay's ack", async () => {
  const rig = await startRelayForTest();
  cleanups.push(() => rig.stop());
  const { code } = await rig.relay.registry.createClaim("hub-e2e-1");
  const running = await startProvisionedHub("hub-e2e-1", rig.httpUrl, code);
  await gasLeakReachesRelay(running, "hub-e2e-1", async () =>
    (await rig.relay.store.listEvents({ hub: "hub-e2e-1", limit: 1000 })).map((r) => JSON.parse(r.payload) as Envelope),
  );
  // The relay's supervision sees the hub through its birth and its heartbeats.
  const hubs = await rig.relay.registry.list();
  assert.equal(hubs.find((h) => h.id === "hub-e2e-1")?.online, true);
  // A clean stop (SIGTERM: a restart, an update) is the hub's signed last word on the state topic, a planned
  // stop: the relay waits for it to come back (planned-stop.test.ts follows it to the end of the grace) and
  // opens nothing meanwhile.
  const boot = running.journal.boot;
  await running.stop();
  const wait = await waitFor("planned stop recorded", async () => (await listPlannedStops(supervisionDb(rig.relay.store.db))).find((p) => p.hub === "hub-e2e-1"), 10_000);
  assert.equal(wait.boot, boot);
  assert.equal(wait.until - wait.stoppedAt, rig.relay.config.supervision.plannedStopGraceS * 1000);
  await rig.relay.supervisor.check();
  assert.deepEqual(await rig.relay.store.listIncidents({ hub: "hub-e2e-1" }), [], "a clean stop opens no hub_offline incident");
  // A used claim code does not work twice.
  await assert.rejects(provision({ relay: rig.httpUrl, hub: "hub-e2e-1", code, dataDir: rig.dir, secretsFile: path.join(rig.dir, "x.json") }), /used|refused|403|410/i);
});

const MQTT = process.env.ANXIN_TEST_MQTT_URL;
const PG = process.env.ANXIN_TEST_PG_URL;
test("the same on an external Mosquitto with PostgreSQL", { skip: MQTT && PG ? false : "set ANXIN_TEST_MQTT_URL and ANXIN_TEST_PG_URL (CI does) to run against Mosquitto and PostgreSQL" }, async () => {
  const schema = `e2e_${Math.random().toString(36).slice(2, 10)}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-e2e-relay-"));
  const httpPort = await freePort();
  const file = path.join(dir, "relay.yaml");
  await writeFile(
    file,
    `relay: { id: e2e-pg, dataDir: ./data }
store: { kind: postgres, url: "${PG}", schema: ${schema} }
broker: { kind: external, url: "${MQTT}", sharedGroup: "e2e${schema}" }
http: { host: 127.0.0.1, port: ${httpPort}, publicUrl: "http://127.0.0.1:${httpPort}" }
secrets: { masterKeyFile: ${JSON.stringify((await pgTestSecrets(dir)).masterKeyFile)} }
`,
  );
  const relay = await startRelay(file, { log: log() });
  cleanups.push(async () => {
    await relay.stop();
    await dropPgSchema(PG!, schema);
    await rm(dir, { recursive: true, force: true });
  });
  const hub = `hub-e2e-${schema}`;
  const { code } = await relay.registry.createClaim(hub);
  const running = await startProvisionedHub(hub, `http://127.0.0.1:${httpPort}`, code);
  await gasLeakReachesRelay(running, hub, async () => (await relay.store.listEvents({ hub, limit: 1000 })).map((r) => JSON.parse(r.payload) as Envelope));
  // A lost connection (no DISCONNECT: Mosquitto publishes the will) opens hub_offline at once; the hub's
  // reconnect closes it.
  (running.uplink as unknown as { client: MqttClient }).client.stream.destroy();
  const lost = await waitFor("hub_offline from the will", async () => (await relay.store.listIncidents({ hub }))[0], 10_000);
  assert.equal(lost.reason, "will: connection lost");
  await waitFor("closed when the hub is back", async () => (await relay.store.listIncidents({ hub }))[0]?.closeReason === "recovered", 15_000);
  // A clean stop is a planned stop, waited out in PostgreSQL like any supervision state: nothing opens.
  await running.stop();
  await waitFor("planned stop recorded", async () => (await listPlannedStops(supervisionDb(relay.store.db))).some((p) => p.hub === hub), 10_000);
  await relay.supervisor.check();
  assert.equal((await relay.store.listIncidents({ hub, openOnly: true })).length, 0);
  // Leave no retained state behind on the machine's broker.
  const c = await mqtt.connectAsync(MQTT!, { reconnectPeriod: 0 });
  await c.publishAsync(topics.state(hub), "", { retain: true, qos: 1 });
  await c.endAsync();
});

test("hostile traffic is refused and counted while a live hub's alarms still get through", async () => {
  const rig = await startRelayForTest();
  cleanups.push(() => rig.stop());
  const { code } = await rig.relay.registry.createClaim("hub-good");
  const running = await startProvisionedHub("hub-good", rig.httpUrl, code);
  await waitFor("uplink connected", () => running.uplink?.status().state === "connected", 15_000);
  const evil = await rig.enrolHub("hub-evil");
  const key = Buffer.from(evil.key, "base64");
  const c = await mqtt.connectAsync(rig.mqttUrl, { clientId: "hub-evil", username: "hub-evil", password: evil.mqtt.password, reconnectPeriod: 0 });
  const acks: string[][] = [];
  await c.subscribeAsync(topics.ack("hub-evil"), { qos: 1 });
  c.on("message", (_t, p) => acks.push((JSON.parse(p.toString()) as { ids: string[] }).ids));
  const env = (over: Partial<Envelope> = {}): Envelope => ({ v: 1, hub: "hub-evil", boot: 1, seq: 1, id: ulid(), ts: Date.now(), kind: "alarm", type: "sos", severity: "critical", ...over });

  // Replay: the same signed event twice is acknowledged twice, stored and acted on once.
  const once = signEnvelope(env(), key);
  await c.publishAsync(topics.evt("hub-evil"), JSON.stringify(once), { qos: 1 });
  await waitFor("first ack", () => acks.flat().includes(once.id), 5000);
  await c.publishAsync(topics.evt("hub-evil"), JSON.stringify(once), { qos: 1 });
  await waitFor("two acks", () => acks.flat().filter((id) => id === once.id).length === 2, 5000);
  // Bad signature, malformed JSON, a schema violation, another hub's name inside the envelope.
  await c.publishAsync(topics.evt("hub-evil"), JSON.stringify({ ...signEnvelope(env(), key), severity: "info" }), { qos: 1 });
  await c.publishAsync(topics.evt("hub-evil"), "{not json", { qos: 1 });
  await c.publishAsync(topics.evt("hub-evil"), JSON.stringify({ ...env(), kind: "nonsense" }), { qos: 1 });
  await c.publishAsync(topics.evt("hub-evil"), JSON.stringify(signEnvelope(env({ hub: "hub-good" }), key)), { qos: 1 });
  // Oversized: cut off by the broker before its body arrives.
  const big = await mqtt.connectAsync(rig.mqttUrl, { clientId: "hub-evil:big", username: "hub-evil", password: evil.mqtt.password, reconnectPeriod: 0 });
  big.on("error", () => {});
  big.publish(topics.evt("hub-evil"), Buffer.alloc(200_000, 0x20), { qos: 1 });
  await waitFor("oversized sender cut off", () => !big.connected, 5000);
  // Publishing as another hub: the broker drops the connection.
  c.publish(topics.evt("hub-good"), JSON.stringify(signEnvelope(env({ hub: "hub-good" }), key)), { qos: 1 });
  await waitFor("impostor cut off", () => !c.connected, 5000);

  // Meanwhile the live hub's alarm goes through.
  (running.sim.get("line1")!.devices.get(2) as SimLelDetector).setLel(40);
  await waitFor("good hub's alarm committed", async () => (await rig.relay.store.listEvents({ hub: "hub-good", limit: 1000 })).some((r) => r.kind === "alarm"), 10_000);

  const evilRows = await rig.relay.store.listEvents({ hub: "hub-evil", limit: 100 });
  assert.deepEqual(evilRows.map((r) => r.id), [once.id], "only the one valid event of the hostile hub is stored");
  assert.equal((await rig.relay.store.listEvents({ hub: "hub-good", limit: 1000 })).filter((r) => r.payload.includes("hub-evil")).length, 0);
  const metric = async (name: string) => (await rig.relay.metrics.registry.getSingleMetric(name)?.get()) as { values: Array<{ value: number; labels: Record<string, string> }> };
  const rejected = Object.fromEntries((await metric("anxin_relay_events_rejected_total")).values.map((v) => [v.labels.reason, v.value]));
  assert.equal(rejected.bad_signature, 1);
  assert.equal(rejected.not_json, 1);
  assert.equal(rejected.schema, 1);
  assert.equal(rejected.hub_mismatch, 1);
  assert.equal((await metric("anxin_relay_events_deduped_total")).values[0]?.value, 1);
  const auth = Object.fromEntries((await metric("anxin_relay_broker_auth_failures_total")).values.map((v) => [v.labels.what, v.value]));
  assert.ok((auth.publish ?? 0) >= 1, `publishing as another hub counted: ${JSON.stringify(auth)}`);
  await c.endAsync(true).catch(() => {});
  await big.endAsync(true).catch(() => {});
});

const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;
test("over TLS: the hub trusts only the CA it was given", { skip: hasOpenssl ? false : "openssl not found: cannot make test certificates" }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-tls-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const run = (args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  };
  run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=anxin-test-ca"]);
  run(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
  await writeFile(path.join(dir, "san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  run(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.ext"]);
  run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.pem", "-days", "1", "-subj", "/CN=someone-else"]);

  const rig = await startRelayForTest({ config: { broker: { tls: { certFile: path.join(dir, "server.pem"), keyFile: path.join(dir, "server.key") } } } });
  cleanups.push(() => rig.stop());
  const tlsUrl = rig.mqttUrl.replace("mqtt://", "mqtts://");

  // A hub given the wrong CA refuses the broker: nothing is sent, everything stays in its journal.
  const wrong = await rig.relay.registry.createClaim("hub-tls-wrong");
  const bad = await startProvisionedHub("hub-tls-wrong", rig.httpUrl, wrong.code, `, url: "${tlsUrl}", caFile: "${path.join(dir, "other.pem")}"`);
  await new Promise((r) => setTimeout(r, 1500));
  assert.notEqual(bad.uplink!.status().state, "connected");
  assert.ok((await bad.journal.stats()).rows > 0);
  assert.equal((await rig.relay.store.listEvents({ hub: "hub-tls-wrong", limit: 10 })).length, 0);

  const { code } = await rig.relay.registry.createClaim("hub-tls");
  const running = await startProvisionedHub("hub-tls", rig.httpUrl, code, `, url: "${tlsUrl}", caFile: "${path.join(dir, "ca.pem")}"`);
  await gasLeakReachesRelay(running, "hub-tls", async () => (await rig.relay.store.listEvents({ hub: "hub-tls", limit: 1000 })).map((r) => JSON.parse(r.payload) as Envelope));
});
