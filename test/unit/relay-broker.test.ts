// The embedded broker and the relay's MQTT session, with real aedes and real mqtt.js clients on an
// ephemeral port. Registry, ingest and supervisor are small fakes.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { Aedes } from "aedes";
import mqtt, { type MqttClient } from "mqtt";
import { ulid } from "ulid";
import { createLogger } from "../../lib/daemon/logger.js";
import { ackSchema, commandSchema, verifyAck, verifyCommand } from "../../protocol/messages.js";
import { topics } from "../../protocol/topics.js";
import { EmbeddedBroker } from "../../relay/src/broker/embedded.js";
import { createMetrics, type Metrics } from "../../relay/src/metrics.js";
import { ACK_CHUNK, RelaySession } from "../../relay/src/mqtt/session.js";
import { parseTopic } from "../../relay/src/mqtt/topics.js";
import { EnrolError, type Registry } from "../../relay/src/registry/registry.js";
import type { Ingest } from "../../relay/src/ingest/ingest.js";
import type { Supervisor } from "../../relay/src/supervision/supervisor.js";
import type { Store } from "../../relay/src/store/store.js";
import { mqttConnect, mqttPacket, mqttString } from "../support/mqtt-wire.js";
import { startRelayForTest } from "../support/relay-rig.js";

const log = createLogger({ name: "test", level: process.env.ANXIN_TEST_LOG ?? "silent" });
const PASSWORDS: Record<string, string> = { "hub-a": "pw-a-0123456789", "hub-b": "pw-b-0123456789" };
const verifyCredentials = async (u: string, p: string) => (PASSWORDS[u] === p ? u : null);
/** Each hub's signing key: the relay signs its acks and commands with it. hub-c has none (revoked). */
const KEYS: Record<string, Buffer> = { "hub-a": Buffer.alloc(32, 0xa), "hub-b": Buffer.alloc(32, 0xb) };
const keys = { signingKey: async (hub: string) => KEYS[hub] ?? null };

async function waitFor<T>(what: string, probe: () => T | undefined | false, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Rig {
  broker: EmbeddedBroker;
  session: RelaySession;
  metrics: Metrics;
  events: Array<{ hub: string; payload: string }>;
  states: Array<{ hub: string; payload: string }>;
  clients: MqttClient[];
}

/** `in-process` is what the daemon uses with the embedded broker; `embedded` runs mqtt.js over a pipe. */
async function rig(maxPacketBytes = 8192, kind: "embedded" | "in-process" = "embedded"): Promise<Rig> {
  const metrics = createMetrics();
  const broker = await EmbeddedBroker.start({ host: "127.0.0.1", port: 0, verifyCredentials, metrics, log, maxPacketBytes });
  const events: Rig["events"] = [];
  const states: Rig["states"] = [];
  const session = new RelaySession({
    relayId: "t",
    connection: kind === "embedded" ? { kind: "embedded", stream: () => broker.connectInternal() } : { kind: "in-process", link: () => broker.inProcess() },
    onEvent: (hub, p) => events.push({ hub, payload: p.toString() }),
    onState: (hub, p) => states.push({ hub, payload: p.toString() }),
    keys,
    metrics,
    log,
  });
  session.start();
  assert.equal(await session.whenConnected(3000), true);
  return { broker, session, metrics, events, states, clients: [] };
}

async function close(r: Rig) {
  for (const c of r.clients) c.end(true);
  await r.session.stop();
  await r.broker.close();
}

function hub(r: Rig, id: string, extra: mqtt.IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(r.broker.url, { username: id, password: PASSWORDS[id], clientId: `${id}:c`, reconnectPeriod: 0, ...extra }).then((c) => {
    r.clients.push(c);
    return c;
  });
}

const closed = (c: MqttClient) => new Promise<void>((resolve) => (c.connected ? c.once("close", () => resolve()) : resolve()));
const counter = async (m: Metrics, what: string) => (await m.authFailures.get()).values.find((v) => v.labels.what === what)?.value ?? 0;

test("a wrong password or an unknown hub is refused at CONNECT", async () => {
  const r = await rig();
  try {
    await assert.rejects(hub(r, "hub-a", { password: "nope" }), /Bad username or password/i);
    await assert.rejects(hub(r, "hub-zz", { password: "whatever" }), /Bad username or password/i);
    await assert.rejects(hub(r, "hub-a", { password: undefined }), /Bad username or password/i);
    assert.equal(await counter(r.metrics, "login"), 3);
    assert.equal(r.broker.clientCount, 0);
  } finally {
    await close(r);
  }
});

for (const kind of ["embedded", "in-process"] as const)
test(`${kind} session: hub A's event reaches the relay; the relay's ack reaches A only, in chunks`, async () => {
  const r = await rig(8192, kind);
  try {
    const a = await hub(r, "hub-a");
    const b = await hub(r, "hub-b");
    await a.subscribeAsync(topics.ack("hub-a"), { qos: 1 });
    await b.subscribeAsync(topics.ack("hub-b"), { qos: 1 });
    const atA: string[] = [];
    const atB: string[] = [];
    a.on("message", (_t, p) => atA.push(p.toString()));
    b.on("message", (_t, p) => atB.push(p.toString()));
    assert.equal(r.broker.clientCount, 2);
    assert.equal((await r.metrics.brokerClients.get()).values[0]!.value, 2);

    await a.publishAsync(topics.evt("hub-a"), '{"hello":1}', { qos: 1 });
    await waitFor("event at relay", () => r.events.length === 1);
    assert.deepEqual(r.events[0], { hub: "hub-a", payload: '{"hello":1}' });

    const ids = Array.from({ length: 2500 }, () => ulid());
    r.session.ack("hub-a", ids, 1_700_000_000_000);
    await waitFor("acks at A", () => atA.length === 3);
    const got = atA.map((p) => ackSchema.parse(JSON.parse(p)));
    assert.deepEqual(got.map((x) => x.ids.length), [ACK_CHUNK, ACK_CHUNK, 500]);
    assert.deepEqual(got.flatMap((x) => x.ids), ids);
    assert.equal(got[0]!.now, 1_700_000_000_000);
    // Each chunk signed with A's own key, for A: not valid with B's key, nor as B's.
    for (const x of got) {
      assert.ok(verifyAck("hub-a", x, KEYS["hub-a"]!));
      assert.ok(!verifyAck("hub-a", x, KEYS["hub-b"]!));
      assert.ok(!verifyAck("hub-b", x, KEYS["hub-a"]!));
    }
    await sleep(50);
    assert.equal(atB.length, 0);
    assert.equal((await r.metrics.acksSent.get()).values[0]!.value, 3);
    // A hub without a key (revoked meanwhile) gets no ack: it could not verify an unsigned one.
    r.session.ack("hub-c", [ids[0]!], 1);
    await waitFor("counted", () => r.session.acksUnsigned === 1);
    assert.equal((await r.metrics.acksSent.get()).values[0]!.value, 3);

    // Commands: what the schema allows reaches the hub, stamped and signed; anything else (a valve opening) is refused here.
    await a.subscribeAsync(topics.cmd("hub-a"), { qos: 1 });
    const before = Date.now();
    await r.session.publishCommand("hub-a", { cmd: "siren_test", id: "t1", seconds: 3 });
    await waitFor("command at A", () => atA.length === 4);
    const cmd = JSON.parse(atA[3]!) as Record<string, unknown>;
    assert.deepEqual({ ...cmd, ts: undefined, sig: undefined }, { cmd: "siren_test", id: "t1", seconds: 3, ts: undefined, sig: undefined });
    assert.ok((cmd.ts as number) >= before && (cmd.ts as number) <= Date.now());
    assert.ok(commandSchema.safeParse(cmd).success);
    assert.ok(verifyCommand("hub-a", cmd, KEYS["hub-a"]!));
    assert.ok(!verifyAck("hub-a", cmd, KEYS["hub-a"]!), "a command's signature is no ack's");
    await assert.rejects(r.session.publishCommand("hub-a", { cmd: "valve_open", id: "x" } as never));
    await assert.rejects(r.session.publishCommand("hub-c", { cmd: "ping", id: "p" }), /no signing key/);
    await sleep(50);
    assert.equal(atA.length, 4);

    // A graceful stop takes no more events in, but still acks what is committed.
    await r.session.pauseIntake();
    await a.publishAsync(topics.evt("hub-a"), '{"late":1}', { qos: 1 });
    await sleep(50);
    assert.equal(r.events.length, 1);
    // And a stop right behind it still sends it, although its key was being looked up (asynchronously).
    r.session.ack("hub-a", [ids[0]!], 1);
    await r.session.stop();
    await waitFor("ack after pause", () => atA.length === 5);
    assert.ok(verifyAck("hub-a", JSON.parse(atA[4]!) as Record<string, unknown>, KEYS["hub-a"]!));
  } finally {
    await close(r);
  }
});

test("a hub's keepalive is answered within a few turns while a burst of messages is delivered to the relay", async () => {
  // A client's next read waits until every publish of its previous read has been delivered. When the broker
  // let only 100 deliveries be in flight and the relay freed them a turn later, 1,600 queued messages held
  // a hub's PINGREQ back for 16 turns or more; in a storm, where a turn is long, hubs missed their keepalive.
  const r = await rig(8192, "in-process");
  const sockets: net.Socket[] = [];
  let turns = 0;
  let ticking = true;
  const tick = () => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  try {
    const PER_HUB = 800;
    const bursts: Buffer[] = [];
    for (const id of ["hub-a", "hub-b"]) {
      const s = net.connect(r.broker.address.port, "127.0.0.1");
      sockets.push(s);
      await new Promise((res) => s.once("connect", res));
      const connack = new Promise<Buffer>((res) => s.once("data", res));
      s.write(mqttConnect(`${id}:raw`, id, PASSWORDS[id]!, 30));
      assert.deepEqual([...(await connack)], [0x20, 2, 0, 0], `${id} logged in`);
      const topic = mqttString(topics.evt(id));
      const packets: Buffer[] = [];
      for (let i = 1; i <= PER_HUB; i++) packets.push(mqttPacket(0x32, Buffer.concat([topic, Buffer.from([i >> 8, i & 0xff]), Buffer.from(`{"n":${i}}`)])));
      bursts.push(Buffer.concat(packets));
    }
    const pingresp = (s: net.Socket) =>
      new Promise<number>((res) => {
        let tail = Buffer.alloc(0);
        s.on("data", (d: Buffer) => {
          tail = Buffer.concat([tail, d]).subarray(-2);
          if (tail[0] === 0xd0 && tail[1] === 0) res(turns);
        });
      });
    // Each burst in one write (one read at the broker), then, once the relay has its first message, a PINGREQ
    // from each hub: the broker reads it only after that hub's burst is delivered.
    sockets.forEach((s, i) => s.write(bursts[i]!));
    await new Promise<void>((res) => {
      const first = () => (r.events.length > 0 ? res() : setImmediate(first));
      first();
    });
    setImmediate(tick);
    const answered = Promise.all(sockets.map(pingresp));
    for (const s of sockets) s.write(Buffer.from([0xc0, 0]));
    const turnsToAnswer = await answered;
    await waitFor("every event at the relay", () => r.events.length === 2 * PER_HUB);
    assert.deepEqual(
      r.events.filter((e) => e.hub === "hub-a").map((e) => e.payload),
      Array.from({ length: PER_HUB }, (_, i) => `{"n":${i + 1}}`),
      "in order",
    );
    assert.ok(Math.max(...turnsToAnswer) <= 6, `both PINGREQs answered within 6 turns (took ${turnsToAnswer.join(", ")})`);
  } finally {
    ticking = false;
    for (const s of sockets) s.destroy();
    await close(r);
  }
});

test("hub A cannot subscribe to B's ack or a wildcard, nor publish to B's topics", async () => {
  const r = await rig();
  try {
    const a = await hub(r, "hub-a");
    // The broker answers SUBACK 0x80 for each, which mqtt.js reports as an error.
    for (const t of [topics.ack("hub-b"), "anxin/v1/+/ack", "#", topics.state("hub-a")]) await assert.rejects(a.subscribeAsync(t, { qos: 1 }), /Subscribe error/, t);
    const granted = await a.subscribeAsync([topics.ack("hub-a"), topics.cmd("hub-a")], { qos: 1 });
    assert.deepEqual(
      granted.map((g) => g.qos),
      [1, 1],
    );
    assert.equal(await counter(r.metrics, "subscribe"), 4);
    assert.ok(a.connected, "a refused subscription keeps the connection");

    const gone = closed(a);
    a.publish(topics.evt("hub-b"), '{"forged":true}', { qos: 1 });
    await gone;
    assert.equal(await counter(r.metrics, "publish"), 1);
    await sleep(50);
    assert.equal(r.events.length, 0, "the forged event never reached the relay");

    // Nor a hub's ack topic, nor a retained event.
    const a2 = await hub(r, "hub-a");
    const gone2 = closed(a2);
    a2.publish(topics.ack("hub-a"), '{"ids":[]}', { qos: 1 });
    await gone2;
    const a3 = await hub(r, "hub-a");
    const gone3 = closed(a3);
    a3.publish(topics.evt("hub-a"), "{}", { qos: 1, retain: true });
    await gone3;
    assert.equal(await counter(r.metrics, "publish"), 3);
  } finally {
    await close(r);
  }
});

test("state may be retained and reaches the relay; the will must be on the hub's own state topic", async () => {
  const r = await rig();
  try {
    await assert.rejects(
      hub(r, "hub-a", { will: { topic: topics.state("hub-b"), payload: Buffer.from('{"online":false,"boot":1}'), qos: 1, retain: true } }),
      /Not authorized/i,
    );
    assert.equal(await counter(r.metrics, "will"), 1);

    const a = await hub(r, "hub-a", { will: { topic: topics.state("hub-a"), payload: Buffer.from('{"online":false,"boot":1}'), qos: 1, retain: true } });
    await a.publishAsync(topics.state("hub-a"), '{"online":true,"boot":1}', { qos: 1, retain: true });
    await waitFor("birth", () => r.states.length === 1);
    // The embedded broker keeps no retained births (the relay heard it live): a later subscriber gets none.
    const late = new mqtt.MqttClient(() => r.broker.connectInternal(), { clientId: "anxin-relay-late", reconnectPeriod: 0 });
    const retained: string[] = [];
    late.on("message", (topic) => retained.push(topic));
    await new Promise<void>((resolve) => late.once("connect", () => resolve()));
    await late.subscribeAsync("anxin/v1/+/state", { qos: 1 });
    await sleep(100);
    assert.deepEqual(retained, []);
    late.end(true);
    // An unclean loss publishes the will.
    a.stream.destroy();
    await waitFor("will", () => r.states.length === 2);
    assert.deepEqual(r.states[1], { hub: "hub-a", payload: '{"online":false,"boot":1}' });
  } finally {
    await close(r);
  }
});

test("disconnect(hub) drops its connections without publishing its will", async () => {
  const r = await rig();
  try {
    const a = await hub(r, "hub-a", { will: { topic: topics.state("hub-a"), payload: Buffer.from('{"online":false,"boot":1}'), qos: 1, retain: false } });
    const b = await hub(r, "hub-b");
    assert.deepEqual(r.broker.connectedHubs().sort(), ["hub-a", "hub-b"]);
    const gone = closed(a);
    assert.equal(r.broker.disconnect("hub-a"), 1);
    await gone;
    await waitFor("gauge", () => r.broker.clientCount === 1);
    assert.deepEqual(r.broker.connectedHubs(), ["hub-b"]);
    assert.ok(b.connected);
    await sleep(50);
    assert.equal(r.states.length, 0);
    assert.equal(r.broker.disconnect("hub-zz"), 0);
  } finally {
    await close(r);
  }
});

test("a hub's client id is its own id (or `{id}:…`): it cannot take another hub's or the relay's", async () => {
  const r = await rig();
  try {
    const a = await hub(r, "hub-a", { clientId: "hub-a" });
    await hub(r, "hub-a", { clientId: "hub-a:second" });
    await assert.rejects(hub(r, "hub-b", { clientId: "hub-a" }), /Identifier rejected/i);
    await assert.rejects(hub(r, "hub-b", { clientId: "hub-c" }), /Identifier rejected/i);
    await assert.rejects(hub(r, "hub-b", { clientId: "mqttjs_0123abcd" }), /Identifier rejected/i);
    await assert.rejects(hub(r, "hub-b", { clientId: r.session.clientId }), /Identifier rejected/i);
    assert.equal(await counter(r.metrics, "client_id"), 4);
    assert.ok(a.connected, "hub-a was not knocked off");
    assert.ok(r.session.connected);
  } finally {
    await close(r);
  }
});

test("an oversized packet is cut off from its header, before its body arrives", async () => {
  const r = await rig(1024);
  try {
    const a = await hub(r, "hub-a");
    const gone = closed(a);
    a.publish(topics.evt("hub-a"), Buffer.alloc(4096, 0x20), { qos: 1 });
    await gone;
    assert.equal(await counter(r.metrics, "packet_size"), 1);
    assert.equal(r.events.length, 0);

    // Even unauthenticated: a raw header announcing 200 MB is refused at once.
    const sock = net.connect(r.broker.address.port, "127.0.0.1");
    await new Promise((res) => sock.once("connect", res));
    const shut = new Promise((res) => sock.once("close", res));
    sock.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x60])); // PUBLISH, remaining length 201,326,592
    await shut;
    assert.equal(await counter(r.metrics, "packet_size"), 2);
  } finally {
    await close(r);
  }
});

test("topic parsing accepts only the contract's topics and valid hub ids", () => {
  assert.deepEqual(parseTopic("anxin/v1/hub-a/evt"), { hub: "hub-a", kind: "evt" });
  assert.deepEqual(parseTopic("anxin/v1/h.1_x/state"), { hub: "h.1_x", kind: "state" });
  for (const t of ["anxin/v1/hub-a/evt/x", "anxin/v2/hub-a/evt", "anxin/v1/-bad/evt", "anxin/v1/hub-a/other", "anxin/v1//evt", "anxin/v1/anxin-relay/evt"])
    assert.equal(parseTopic(t), null, t);
});

test("external mode: shared subscriptions, and the session reconnects after the broker drops it", async () => {
  // A permissive aedes stands in for Mosquitto (it cannot share, so the group is off here).
  const aedes = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    aedes.handle(s);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
  const port = (server.address() as net.AddressInfo).port;
  const metrics = createMetrics();
  const events: string[] = [];
  const mk = (sharedGroup: string | null) =>
    new RelaySession({
      relayId: "x",
      connection: { kind: "external", url: `mqtt://127.0.0.1:${port}`, sharedGroup },
      onEvent: (h) => events.push(h),
      onState: () => {},
      keys,
      metrics,
      log,
      reconnectMinMs: 20,
      reconnectMaxMs: 100,
    });
  assert.deepEqual(mk("relay").subscriptions, ["$share/relay/anxin/v1/+/evt", "$share/relay/anxin/v1/+/state"]);
  const s = mk(null);
  try {
    s.start();
    assert.equal(await s.whenConnected(3000), true);
    assert.equal((await metrics.mqttConnected.get()).values[0]!.value, 1);
    for (const sock of sockets) sock.destroy();
    await waitFor("session down", () => !s.connected);
    assert.equal((await metrics.mqttConnected.get()).values[0]!.value, 0);
    assert.equal(await s.whenConnected(3000), true);
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
    await pub.publishAsync("anxin/v1/hub-q/evt", "{}", { qos: 1 });
    await waitFor("event after reconnect", () => events.length === 1);
    // A broker that does not check topics can deliver a bad hub id: dropped and counted.
    await pub.publishAsync("anxin/v1/-bad/evt", "{}", { qos: 1 });
    const rejected = async () => (await metrics.eventsRejected.get()).values.find((v) => v.labels.reason === "bad_topic")?.value;
    for (let i = 0; i < 100 && !(await rejected()); i++) await sleep(10);
    assert.equal(await rejected(), 1);
    assert.deepEqual(events, ["hub-q"]);
    await pub.endAsync();
  } finally {
    await s.stop();
    await new Promise<void>((res) => aedes.close(() => res()));
    await new Promise<void>((res) => server.close(() => res()));
  }
});

// ---- the daemon's wiring, with fakes for the parts another piece implements ----

function fakeParts() {
  const creds = new Map<string, string>();
  const seen: string[] = [];
  const states: string[] = [];
  let onAck: ((hub: string, ids: string[], now: number) => void) | undefined;
  let onCommitted: ((hub: string, env: unknown) => void) | undefined;
  const committed = new Set<string>();
  const registry = {
    async createClaim(hub: string) {
      creds.set(hub, "");
      return { code: `code-${hub}-0001`, expiresAt: Date.now() + 3600_000 };
    },
    async enrol(hub: string, code: string) {
      if (code !== `code-${hub}-0001`) throw new EnrolError("bad_code", "wrong claim code");
      return this.provisionDirect(hub);
    },
    async provisionDirect(hub: string) {
      const password = `pw-${hub}-secret`;
      creds.set(hub, password);
      return { hub, mqtt: { url: "x", username: hub, password }, key: Buffer.alloc(32, 1).toString("base64"), heartbeatS: 60 };
    },
    async verifyCredentials(u: string, p: string) {
      return creds.get(u) === p && p ? u : null;
    },
    async revoke(hub: string) {
      return creds.delete(hub);
    },
    async list() {
      return [];
    },
    async signingKey() {
      return Buffer.alloc(32, 1);
    },
    cachedSigningKey() {
      return undefined;
    },
  };
  return {
    seen,
    states,
    parts: {
      openStore: async () => ({ dialect: "sqlite", close: async () => {} }) as Store,
      registry: () => registry as unknown as Registry,
      supervisor: () =>
        ({
          onState: (h: string) => states.push(h),
          onSeen: (h: string) => seen.push(h),
          start() {},
          stop() {},
          check: async () => {},
        }) as unknown as Supervisor,
      ingest: (o: { onAck: typeof onAck; onCommitted?: typeof onCommitted }) => {
        onAck = o.onAck;
        onCommitted = o.onCommitted;
        return {
          handle(hub: string, payload: Buffer) {
            const { id } = JSON.parse(payload.toString()) as { id: string };
            if (!committed.has(id)) onCommitted?.(hub, { id });
            committed.add(id);
            onAck?.(hub, [id], 42);
          },
          flush: async () => {},
          close: async () => {},
        } as unknown as Ingest;
      },
    },
  };
}

test("startRelay wires broker, session, ingest and HTTP; stop() releases the ports", async () => {
  const f = fakeParts();
  const committed: string[] = [];
  const rigged = await startRelayForTest({ parts: f.parts, onCommitted: (h) => committed.push(h) });
  let stopped = false;
  after(async () => {
    if (!stopped) await rigged.stop();
  });
  const creds = await rigged.enrolHub("hub-e");
  const h = await mqtt.connectAsync(rigged.mqttUrl, { username: "hub-e", password: creds.mqtt.password, clientId: "hub-e", reconnectPeriod: 0 });
  await h.subscribeAsync(topics.ack("hub-e"), { qos: 1 });
  const acks: unknown[] = [];
  h.on("message", (_t, p) => acks.push(JSON.parse(p.toString())));
  const id = ulid();
  await h.publishAsync(topics.evt("hub-e"), JSON.stringify({ id }), { qos: 1 });
  await h.publishAsync(topics.evt("hub-e"), JSON.stringify({ id }), { qos: 1 });
  await waitFor("acks", () => acks.length === 2);
  assert.deepEqual({ ...(acks[0] as object), sig: undefined }, { ids: [id], now: 42, sig: undefined });
  assert.ok(verifyAck("hub-e", acks[0] as Record<string, unknown>, Buffer.alloc(32, 1)), "signed with the hub's key from the registry");
  assert.deepEqual(committed, ["hub-e"], "a replay is acked again but not acted on twice");
  assert.deepEqual(f.seen, ["hub-e", "hub-e"], "every acknowledged message, a resend too, is a sign of life");

  const health = (await (await fetch(`${rigged.httpUrl}/healthz`)).json()) as Record<string, unknown>;
  assert.equal(health.ok, true);
  assert.equal(health.mqtt, "connected");
  assert.deepEqual(health.broker, { kind: "embedded", clients: 1 });

  // Revocation from inside the daemon drops the connection at once.
  const gone = closed(h);
  assert.equal(await rigged.relay.revoke("hub-e"), true);
  await gone;
  await assert.rejects(mqtt.connectAsync(rigged.mqttUrl, { username: "hub-e", password: creds.mqtt.password, clientId: "hub-e", reconnectPeriod: 0 }), /Bad username/);

  await rigged.stop();
  stopped = true;
  await assert.rejects(fetch(`${rigged.httpUrl}/healthz`));
  await assert.rejects(mqtt.connectAsync(rigged.mqttUrl, { reconnectPeriod: 0, connectTimeout: 1000 }));
});

test("external broker: a session that keeps receiving stays up although the broker is too busy to answer PINGREQ", async () => {
  // A hand-written broker: CONNACK, SUBACK, then an event every 100 ms; PINGREQ is never answered, as when a
  // broker's PINGRESP queues behind a storm of hubs' messages.
  const sockets = new Set<net.Socket>();
  let connects = 0;
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    let buf = Buffer.alloc(0);
    let feed: NodeJS.Timeout | undefined;
    sock.on("close", () => clearInterval(feed));
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        let len = 0;
        let mul = 1;
        let i = 1;
        for (; i < buf.length && i < 5; i++) {
          len += (buf[i]! & 0x7f) * mul;
          mul *= 128;
          if (!(buf[i]! & 0x80)) break;
        }
        if (i >= buf.length || buf.length < i + 1 + len) return;
        const type = buf[0]! >> 4;
        const body = buf.subarray(i + 1, i + 1 + len);
        buf = buf.subarray(i + 1 + len);
        if (type === 1) {
          connects++;
          sock.write(Buffer.from([0x20, 0x02, 0x00, 0x00]));
        } else if (type === 8) {
          sock.write(mqttPacket(0x90, Buffer.from([body[0]!, body[1]!, 0x01, 0x01])));
          let n = 0;
          feed = setInterval(() => sock.write(mqttPacket(0x30, Buffer.concat([mqttString("anxin/v1/hub-k/evt"), Buffer.from(`{"n":${n++}}`)]))), 100);
        }
      }
    });
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
  const port = (server.address() as net.AddressInfo).port;
  const events: string[] = [];
  const session = new RelaySession({
    relayId: "k",
    connection: { kind: "external", url: `mqtt://127.0.0.1:${port}`, sharedGroup: null },
    onEvent: (h) => events.push(h),
    onState: () => {},
    keys,
    metrics: createMetrics(),
    log,
    keepaliveS: 1,
  });
  try {
    session.start();
    assert.equal(await session.whenConnected(3000), true);
    // Unanswered pings would end the session after 1.5 s.
    await sleep(3500);
    assert.equal(connects, 1, "never dropped and reconnected");
    assert.equal(session.connected, true);
    assert.ok(events.length >= 25, `events kept arriving: ${events.length}`);
  } finally {
    await session.stop();
    for (const sk of sockets) sk.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
