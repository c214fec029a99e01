// The embedded broker with a backlog: a hub connection that reads nothing holds every delivery slot (100
// here; the relay allows DELIVERY_CONCURRENCY, far more, so a queue is rarer but drains the same way), tens
// of thousands of messages for the relay's in-process subscription queue behind them, and then the hub
// reads again. The relay must get every one of them, in order, and survive: with the in-process delivery
// completing on the caller's stack, the queue drained recursively and the relay died of "Maximum call stack
// size exceeded" (the console load bench at 1,000 events/s from 1,000 hubs).
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { topics } from "../../protocol/topics.js";
import { createLogger } from "../../lib/daemon/logger.js";
import { EmbeddedBroker, type InProcessLink } from "../../relay/src/broker/embedded.js";
import { createMetrics } from "../../relay/src/metrics.js";
import { mqttConnect, mqttPacket, mqttString } from "../support/mqtt-wire.js";
import { waitFor } from "../support/wait.js";

const log = createLogger({ name: "test", level: process.env.ANXIN_TEST_LOG ?? "silent" });
const SLOW_HUB = "hub-slow";
const PASSWORD = "pw-slow-0123456789";
/** Messages queued for the relay: far more than the nesting a stack survives. */
const QUEUED = 20_000;
/**
 * Large acks for the hub that does not read: 200 × 256 KiB is far more than loopback's socket buffers
 * hold, so at least 100 of them stay unwritten and keep their slots until the hub reads.
 */
const LARGE = 200;
const LARGE_BYTES = 256 * 1024;

/** The broker's message queue (aedes' mqemitter), read-only, to check the backlog is really there. */
interface Emitter {
  concurrency: number;
  current: number;
  readonly length: number;
}
interface AedesInside {
  mq: Emitter;
  clients: Record<string, { _pendingDrains: unknown[] }>;
}

/**
 * A hub on a raw socket (MQTT 3.1.1 written by hand, so nothing reads on its behalf): connects, subscribes
 * to its ack topic at QoS 0, then stops reading until `resume`.
 */
async function stalledHub(port: number): Promise<{ socket: net.Socket; resume(): void }> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const connect = mqttConnect(`${SLOW_HUB}:bench`, SLOW_HUB, PASSWORD, 0);
  const subscribe = mqttPacket(0x82, Buffer.concat([Buffer.from([0, 1]), mqttString(topics.ack(SLOW_HUB)), Buffer.from([0])]));
  socket.write(Buffer.concat([connect, subscribe]));
  // CONNACK (4 bytes) and SUBACK (5 bytes), then nothing more is read.
  const got: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      got.push(chunk);
      const all = Buffer.concat(got);
      if (all.length < 9) return;
      socket.off("data", onData);
      socket.pause();
      if (all[3] !== 0 || all[4] !== 0x90 || all[8] !== 0) reject(new Error(`hub refused: ${all.toString("hex")}`));
      else resolve();
    };
    socket.on("data", onData);
  });
  return { socket, resume: () => socket.on("data", () => {}).resume() };
}

/**
 * A broker whose every delivery slot is held by a hub that stopped reading, with the messages `queue` publishes
 * waiting behind them; then the hub reads again. Resolves with what the relay's subscription received once
 * every publish has completed.
 */
async function backlog(queue: (link: InProcessLink) => Array<Promise<void>>): Promise<number[]> {
  const broker = await EmbeddedBroker.start({
    host: "127.0.0.1",
    port: 0,
    verifyCredentials: async (u, p) => (u === SLOW_HUB && p === PASSWORD ? u : null),
    metrics: createMetrics(),
    log,
    maxPacketBytes: 8192,
    deliveryConcurrency: 100,
  });
  const hub = await stalledHub(broker.address.port);
  try {
    const aedes = (broker as unknown as { aedes: AedesInside }).aedes;
    const link = broker.inProcess();
    const received: number[] = [];
    await link.subscribe(topics.evt("+"), (_topic, payload) => received.push(payload.readUInt32BE(0)));
    const slow = await waitFor("the hub's session", () => aedes.clients[`${SLOW_HUB}:bench`]);

    // One buffer for all the large acks: aedes writes it as it is, so they cost the test no memory.
    const large = Buffer.alloc(LARGE_BYTES, 0x61);
    const sent: Array<Promise<void>> = [];
    for (let i = 0; i < LARGE; i++) sent.push(link.publish(topics.ack(SLOW_HUB), large, 0));
    const queued = queue(link);
    // Every slot is taken by the stalled hub's acks, and everything else waits in the broker's queue.
    assert.equal(aedes.mq.current, aedes.mq.concurrency);
    assert.ok(aedes.mq.length >= queued.length, `queued ${aedes.mq.length}`);
    await waitFor("the stalled hub to hold every slot", () => slow._pendingDrains.length === aedes.mq.concurrency, 20_000);
    assert.equal(received.length, 0, "the queued messages must still wait behind the stalled hub");

    // A stack overflow in the broker is thrown from a timer callback, out of reach of this test's awaits:
    // end the test with it rather than wait for messages that will never come.
    let crashed!: (err: unknown) => void;
    const crash = new Promise<never>((_, reject) => (crashed = reject));
    process.on("uncaughtExceptionMonitor", crashed);
    try {
      hub.resume();
      await Promise.race([Promise.all([...sent, ...queued]), crash]);
    } finally {
      process.off("uncaughtExceptionMonitor", crashed);
    }
    return received;
  } finally {
    hub.socket.destroy();
    await broker.close();
  }
}

const numbered = (i: number) => {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(i, 0);
  return p;
};

test("a backlog for the relay behind a hub that stopped reading arrives whole and in order", { timeout: 30_000 }, async () => {
  const received = await backlog((link) => Array.from({ length: QUEUED }, (_, i) => link.publish(topics.evt(`hub-${i % 1000}`), numbered(i), 0)));
  assert.equal(received.length, QUEUED);
  for (let i = 0; i < QUEUED; i++) if (received[i] !== i) assert.fail(`message ${i} arrived as ${received[i]}`);
});

test("a backlog of acks for hubs that are gone drains without harm, and what follows still arrives", { timeout: 30_000 }, async () => {
  const received = await backlog((link) => [
    ...Array.from({ length: QUEUED }, (_, i) => link.publish(topics.ack(`gone-${i % 1000}`), numbered(i), 0)),
    ...Array.from({ length: 10 }, (_, i) => link.publish(topics.evt("hub-1"), numbered(i), 0)),
  ]);
  assert.deepEqual(received, Array.from({ length: 10 }, (_, i) => i));
});
