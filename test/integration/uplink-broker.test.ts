// The uplink against a real external broker (Mosquitto here), as a relay at scale would front it.
// Set ANXIN_TEST_MQTT_URL (e.g. mqtt://127.0.0.1:1883, anonymous access) to run it. Each run uses its
// own hub id and clears its retained state afterwards, so runs do not see each other.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type MqttClient } from "mqtt";
import { pino } from "pino";
import type { Envelope, EventDraft } from "../../protocol/envelope.js";
import { signAck, signCommand, type HubState } from "../../protocol/messages.js";
import { verifyEnvelope } from "../../protocol/signing.js";
import { Journal } from "../../gateway/src/journal/journal.js";
import { Uplink } from "../../gateway/src/uplink/uplink.js";
import type { UplinkSettings } from "../../gateway/src/uplink/settings.js";
import { sleep, waitFor } from "../support/wait.js";

const URL_ = process.env.ANXIN_TEST_MQTT_URL;
const SKIP = URL_ ? false : "ANXIN_TEST_MQTT_URL is not set (e.g. mqtt://127.0.0.1:1883 for a local Mosquitto)";
if (SKIP) process.stdout.write(`# uplink-broker: skipped: ${SKIP}\n`);

const RUN = `it-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
const KEY = randomBytes(32);
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The relay's side for one hub: verifies, records, acks unless holding. */
class Relay {
  readonly received: Envelope[] = [];
  readonly states: HubState[] = [];
  bad = 0;
  hold = false;
  maxOutstanding = 0;
  private readonly outstanding = new Set<string>();
  private readonly held: string[] = [];
  private batch: string[] = [];
  client!: MqttClient;
  constructor(readonly hub: string) {}

  async connect(): Promise<void> {
    this.client = connect(URL_!, { clientId: `relay-${this.hub}`, reconnectPeriod: 200 });
    cleanups.push(async () => {
      // Leave no retained state behind on a shared broker; a client that never connected has none, and
      // publishing from it would wait forever.
      if (this.client.connected) await this.client.publishAsync(`anxin/v1/${this.hub}/state`, "", { qos: 1, retain: true }).catch(() => {});
      this.client.end(true);
    });
    this.client.on("connect", () => (this.client.stream as Socket).setNoDelay?.(true));
    this.client.on("message", (topic, payload) => {
      if (payload.length === 0) return;
      const body = JSON.parse(payload.toString()) as unknown;
      if (topic.endsWith("/state")) return void this.states.push(body as HubState);
      const env = body as Envelope;
      if (!verifyEnvelope(env, KEY)) return void this.bad++;
      this.received.push(env);
      this.outstanding.add(env.id);
      this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding.size);
      if (this.hold) return void this.held.push(env.id);
      this.batch.push(env.id);
      if (this.batch.length === 1) setImmediate(() => this.ack(this.batch.splice(0)));
    });
    // A broker that is not there fails the test in seconds and says which one, instead of hanging the suite.
    await waitFor(`the broker at ${URL_} to accept a connection (is Mosquitto running?)`, () => this.client.connected);
    await this.client.subscribeAsync({ [`anxin/v1/${this.hub}/evt`]: { qos: 1 }, [`anxin/v1/${this.hub}/state`]: { qos: 1 } });
  }

  release(): void {
    this.hold = false;
    this.ack(this.held.splice(0));
  }

  ack(ids: string[]): void {
    for (const id of ids) this.outstanding.delete(id);
    for (let i = 0; i < ids.length; i += 1000) {
      // Signed with the hub's key, as the relay signs it: the hub acts on no other ack.
      this.client.publish(`anxin/v1/${this.hub}/ack`, JSON.stringify(signAck(this.hub, { ids: ids.slice(i, i + 1000), now: Date.now() }, KEY)), { qos: 1 });
    }
  }
}

let n = 0;
async function rig(o: Partial<UplinkSettings> & { backlog?: EventDraft[] } = {}) {
  const hub = `${RUN}-${++n}`;
  const dir = mkdtempSync(join(tmpdir(), "anxin-uplink-it-"));
  const journal = await Journal.open({ path: join(dir, "journal.db"), hub });
  cleanups.push(async () => {
    await journal.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < (o.backlog?.length ?? 0); i += 500) await journal.appendMany(o.backlog!.slice(i, i + 500));
  const relay = new Relay(hub);
  await relay.connect();
  const { backlog: _b, ...settings } = o;
  const append = async (d: EventDraft) => {
    const e = await journal.append(d);
    uplink.nudge();
    return e;
  };
  const uplink: Uplink = new Uplink({
    hub,
    boot: journal.boot,
    version: "it",
    settings: { url: URL_!, key: KEY, heartbeatS: 60, window: 32, ackTimeoutMs: 10_000, historicalAfterMs: 60_000, reconnectMinMs: 100, reconnectMaxMs: 1000, ...settings },
    journal,
    append,
    log: pino({ level: "silent" }),
  });
  cleanups.push(() => uplink.stop());
  uplink.start();
  await waitFor("connected", () => uplink.status().state === "connected");
  return { hub, journal, uplink, relay, append, rows: async () => (await journal.stats()).rows };
}

const reading = (i: number): EventDraft => ({ kind: "reading", type: "detector_level", severity: "info", device: "co-1", data: { i } });
const alarm: EventDraft = { kind: "alarm", type: "gas", severity: "critical", device: "gas-1", data: { value: 25 } };

test("mosquitto: events flow signed and are deleted only after the relay's ack; unanswered ones go again as historical", { skip: SKIP }, async () => {
  const r = await rig({ ackTimeoutMs: 300 });
  const a = await r.append(alarm);
  await waitFor("acked", async () => r.relay.received.length === 1 && (await r.rows()) === 0);
  assert.equal(r.relay.received[0]?.id, a.id);
  assert.equal(r.relay.bad, 0);
  assert.ok(r.relay.states.some((s) => s.online && s.boot === r.journal.boot), "birth seen");

  r.relay.hold = true;
  const b = await r.append(reading(1));
  await waitFor("sent", () => r.relay.received.some((e) => e.id === b.id));
  await sleep(100);
  assert.equal(await r.rows(), 1, "PUBACK deletes nothing");
  const again = await waitFor("resent", () => r.relay.received.filter((e) => e.id === b.id)[1], 3000);
  assert.equal(again.historical, true);
  r.relay.release();
  await waitFor("deleted after the ack", async () => (await r.rows()) === 0);
});

test("mosquitto: from a backlog the alarm goes first and the window holds", { skip: SKIP }, async () => {
  const r = await rig({ window: 8, backlog: [...Array.from({ length: 200 }, (_, i) => reading(i)), alarm] });
  await waitFor("drained", async () => (await r.rows()) === 0, 20_000);
  assert.equal(r.relay.received[0]?.kind, "alarm", "the alarm was the first event sent");
  assert.ok(r.relay.maxOutstanding <= 8, `max in flight ${r.relay.maxOutstanding}`);
  assert.equal(new Set(r.relay.received.map((e) => e.id)).size, 201);
});

test("mosquitto: the will goes out when the hub's connection dies; the hub comes back with a birth", { skip: SKIP }, async () => {
  const r = await rig();
  const seen = r.relay.states.length;
  // The hub's own socket, cut as a failing network would (no DISCONNECT packet).
  const client = (r.uplink as unknown as { client: MqttClient }).client;
  (client.stream as Socket).destroy();
  const will = await waitFor("will", () => r.relay.states.slice(seen).find((s) => !s.online));
  assert.equal(will.boot, r.journal.boot);
  await waitFor("birth again", () => r.relay.states.slice(seen).some((s) => s.online));
  await waitFor("connected", () => r.uplink.status().state === "connected");
  const e = await r.append(alarm);
  await waitFor("delivered on the new session", async () => r.relay.received.some((x) => x.id === e.id) && (await r.rows()) === 0);
});

test("mosquitto: ping gets an audit reply; a valve-open command changes nothing", { skip: SKIP }, async () => {
  const r = await rig();
  const cmd = (body: unknown) => r.relay.client.publishAsync(`anxin/v1/${r.hub}/cmd`, JSON.stringify(body), { qos: 1 });
  await cmd({ cmd: "valve_open", id: "v-1", valve: "gas-valve" });
  await cmd({ cmd: "ping", id: "p-0", ts: Date.now() }); // unsigned: refused
  await cmd(signCommand(r.hub, { cmd: "ping", id: "p-1", ts: Date.now() }, KEY));
  const pong = await waitFor("ping reply", () => r.relay.received.find((e) => e.type === "ping_reply"));
  assert.deepEqual(pong.data, { id: "p-1" });
  await sleep(200);
  assert.deepEqual(r.relay.received.map((e) => e.type), ["ping_reply"], "the valve command and the unsigned ping produced nothing");
  assert.equal(r.uplink.status().commandsRefused, 2, "the valve command and the unsigned ping");
});

test("mosquitto: drain rate of a 10,000-event backlog through a window of 32", { skip: SKIP }, async (t) => {
  const N = 10_000;
  const t0 = performance.now();
  const r = await rig({ backlog: Array.from({ length: N }, (_, i) => reading(i)) });
  const t1 = performance.now();
  await waitFor("drained", async () => (await r.rows()) === 0, 120_000);
  const s = (performance.now() - t1) / 1000;
  assert.equal(new Set(r.relay.received.map((e) => e.id)).size, N);
  t.diagnostic(`mosquitto: ${N} events in ${s.toFixed(2)} s = ${Math.round(N / s)} events/s (setup ${((t1 - t0) / 1000).toFixed(1)} s)`);
});
