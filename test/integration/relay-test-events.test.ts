// A commissioning test event (`test: true`) over the relay's real ingest: signed, stored, acknowledged, and
// never an incident or a call; the same alarm without the mark opens one.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { ulid } from "ulid";
import { signEnvelope } from "../../protocol/signing.js";
import { topics } from "../../protocol/topics.js";
import type { Envelope } from "../../protocol/envelope.js";
import { listIncidents } from "../../relay/src/incidents/repo.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { waitFor } from "../support/hub-rig.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

test("a test alarm is stored and acked but opens no incident; the same alarm unmarked opens one", async () => {
  const rig = await startRelayForTest();
  cleanups.push(() => rig.stop());
  const hub = "hub-testmark";
  const enrolled = await rig.enrolHub(hub);
  const key = Buffer.from(enrolled.key, "base64");
  const c = await mqtt.connectAsync(rig.mqttUrl, { clientId: hub, username: hub, password: enrolled.mqtt.password, reconnectPeriod: 0 });
  cleanups.push(() => c.endAsync(true));
  const acks: string[] = [];
  await c.subscribeAsync(topics.ack(hub), { qos: 1 });
  c.on("message", (_t, p) => acks.push(...(JSON.parse(p.toString()) as { ids: string[] }).ids));
  const env = (seq: number, over: Partial<Envelope> = {}): Envelope => ({ v: 1, hub, boot: 1, seq, id: ulid(), ts: Date.now(), kind: "alarm", type: "sos", severity: "critical", device: "bed-sos", ...over });

  const marked = signEnvelope(env(1, { test: true }), key);
  await c.publishAsync(topics.evt(hub), JSON.stringify(marked), { qos: 1 });
  await waitFor("the test alarm acked", () => acks.includes(marked.id), 5000);
  const stored = await rig.relay.store.listEvents({ hub, limit: 10 });
  assert.equal(stored.length, 1);
  assert.equal((JSON.parse(stored[0]!.payload) as Envelope).test, true, "stored with its mark: the relay's record that the path works");
  assert.deepEqual(await listIncidents(rig.relay.db, { hub }), [], "no incident for a test");
  // A forged mark is a bad signature: `test` is signed like every other field.
  const forged = { ...signEnvelope(env(2), key), test: true };
  await c.publishAsync(topics.evt(hub), JSON.stringify(forged), { qos: 1 });

  const real = signEnvelope(env(3), key);
  await c.publishAsync(topics.evt(hub), JSON.stringify(real), { qos: 1 });
  await waitFor("the real alarm acked", () => acks.includes(real.id), 5000);
  const inc = await waitFor("the real alarm opens an incident", async () => (await listIncidents(rig.relay.db, { hub }))[0], 5000);
  assert.equal(inc.type, "sos");
  assert.ok(!acks.includes(forged.id), "a forged test mark is refused");
  assert.deepEqual((await rig.relay.store.listEvents({ hub, limit: 10 })).map((r) => r.id).sort(), [marked.id, real.id].sort());
});
