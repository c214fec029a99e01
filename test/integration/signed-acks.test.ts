// Forged acks and commands over a real broker. Mosquitto with anonymous access and no ACL stands in for the
// worst case: anyone may publish on a hub's ack and cmd topics, as anyone on a plaintext path could. The
// hub is the real uplink with a real journal; the relay is the real session, which signs each ack and
// command with the hub's key. Forged acks (the right ids, no or a bad signature, another hub's key or name)
// delete nothing; the relay's genuine ack does. Forged commands run nothing; the relay's genuine one does.
// The same runs on an aedes broker over TCP when Mosquitto is not installed.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Aedes } from "aedes";
import mqtt from "mqtt";
import { pino, type Logger } from "pino";
import type { Envelope, EventDraft } from "../../protocol/envelope.js";
import { signAck, signCommand } from "../../protocol/messages.js";
import { topics } from "../../protocol/topics.js";
import { verifyEnvelope } from "../../protocol/signing.js";
import { Journal } from "../../gateway/src/journal/journal.js";
import { Uplink } from "../../gateway/src/uplink/uplink.js";
import { createMetrics } from "../../relay/src/metrics.js";
import { RelaySession } from "../../relay/src/mqtt/session.js";
import { mosquittoMissing, ownMosquitto } from "../support/mosquitto.js";
import { sleep, waitFor } from "../support/wait.js";

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const NO_MOSQ = mosquittoMissing();

async function aedesBroker(): Promise<string> {
  const broker = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    broker.handle(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    await new Promise<void>((r) => broker.close(() => r()));
  });
  return `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function captureLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

const reading = (i: number): EventDraft => ({ kind: "reading", type: "detector_level", severity: "info", device: "co-1", data: { i } });
const alarm: EventDraft = { kind: "alarm", type: "gas", severity: "critical", device: "gas-1", room: "kitchen", data: { value: 25 } };

async function scenario(url: string, label: string): Promise<void> {
  const hub = `sig-${label}-${process.pid}`;
  const key = randomBytes(32);
  const otherKey = randomBytes(32); // another enrolled hub's key: an insider, not the relay
  const dir = mkdtempSync(join(tmpdir(), "anxin-signed-acks-"));
  const journal = await Journal.open({ path: join(dir, "journal.db"), hub });
  cleanups.push(async () => {
    await journal.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  // The hub, connected, with nobody to ack its events yet.
  const { log, lines } = captureLog();
  const append = async (d: EventDraft) => {
    const e = await journal.append(d);
    uplink.nudge();
    return e;
  };
  const sirenRuns: number[] = [];
  const uplink: Uplink = new Uplink({
    hub,
    boot: journal.boot,
    version: "it",
    settings: { url, key, heartbeatS: 600, window: 32, ackTimeoutMs: 500, historicalAfterMs: 60_000, reconnectMinMs: 100, reconnectMaxMs: 1000 },
    journal,
    append,
    sirenTest: (s) => (sirenRuns.push(s), { ok: true }),
    log,
  });
  cleanups.push(() => uplink.stop());
  uplink.start();
  await waitFor("hub connected", () => uplink.status().state === "connected");

  // The attacker sees every event go by (their ids are in clear on a plaintext path) and answers each.
  const attacker = await mqtt.connectAsync(url, { clientId: `attacker-${randomBytes(3).toString("hex")}`, reconnectPeriod: 0 });
  cleanups.push(() => void attacker.end(true));
  const seen = new Set<string>();
  attacker.on("message", (_t, p) => seen.add((JSON.parse(p.toString()) as Envelope).id));
  await attacker.subscribeAsync(topics.evt(hub), { qos: 1 });
  const forge = (body: unknown) => attacker.publishAsync(topics.ack(hub), JSON.stringify(body), { qos: 1 });

  const events = [await append(alarm), await append(reading(1)), await append(reading(2))];
  const ids = events.map((e) => e.id);
  await waitFor("attacker saw the events", () => ids.every((id) => seen.has(id)));
  const now = Date.now();
  await forge({ ids, now });
  await forge({ ids, now, sig: "f".repeat(64) });
  await forge(signAck(hub, { ids, now }, otherKey));
  await forge(signAck(`${hub}-b`, { ids, now }, key)); // even with the right key: signed for another hub
  await forge({ ids, now, sig: signCommand(hub, { cmd: "ping", id: "p", ts: now }, key).sig });
  // And commands: unsigned, and signed with another key.
  await attacker.publishAsync(topics.cmd(hub), JSON.stringify({ cmd: "siren_test", id: "evil-1", seconds: 30, ts: Date.now() }), { qos: 1 });
  await attacker.publishAsync(topics.cmd(hub), JSON.stringify(signCommand(hub, { cmd: "siren_test", id: "evil-2", seconds: 30, ts: Date.now() }, otherKey)), { qos: 1 });

  await waitFor("every forgery refused", () => uplink.status().acksRefused === 5 && uplink.status().commandsRefused === 2);
  await sleep(700); // past the ack timeout: the events go again, and are still there
  assert.equal((await journal.stats()).rows, 3, `${label}: forged acks deleted nothing`);
  assert.equal(uplink.status().acked, 0);
  assert.equal(uplink.status().clockOffsetMs, null, "no clock taken from a forged ack");
  assert.deepEqual(sirenRuns, [], "no forged command ran");
  assert.equal(lines.filter((l) => l.level === 40 && /ack refused/.test(String(l.msg))).length, 1, "one warning for the burst");

  // The relay comes: its real session verifies nothing here (a stand-in for ingest) but signs every ack with
  // the hub's key from its registry, as the daemon does.
  const committed = new Set<string>();
  const relayLog = captureLog();
  const session = new RelaySession({
    relayId: `it-${label}`,
    connection: { kind: "external", url, sharedGroup: null },
    keys: { signingKey: async (h) => (h === hub ? key : null) },
    onEvent: (h, payload) => {
      const env = JSON.parse(payload.toString()) as Envelope;
      if (h !== hub || !verifyEnvelope(env, key)) return;
      committed.add(env.id);
      session.ack(h, [env.id], Date.now());
    },
    onState: () => {},
    metrics: createMetrics(),
    log: relayLog.log,
  });
  cleanups.push(() => session.stop());
  session.start();
  assert.equal(await session.whenConnected(5000), true);
  await waitFor("the relay's genuine acks delete the events", async () => (await journal.stats()).rows === 0, 15_000);
  for (const id of ids) assert.ok(committed.has(id), id);
  assert.ok(uplink.status().acked >= 3);
  assert.equal(uplink.status().acksRefused, 5, "the relay's acks verify");
  assert.ok(Math.abs(uplink.status().clockOffsetMs as number) < 5_000);

  // A genuine command runs; its replay does not.
  const replies = new Set<string>();
  const listen = await mqtt.connectAsync(url, { clientId: `listener-${randomBytes(3).toString("hex")}`, reconnectPeriod: 0 });
  cleanups.push(() => void listen.end(true));
  const recorded: string[] = [];
  listen.on("message", (t, p) => {
    if (t.endsWith("/cmd")) recorded.push(p.toString());
    else if ((JSON.parse(p.toString()) as Envelope).type === "siren_test") replies.add("siren_test");
  });
  await listen.subscribeAsync({ [topics.evt(hub)]: { qos: 1 }, [topics.cmd(hub)]: { qos: 1 } });
  await session.publishCommand(hub, { cmd: "siren_test", id: "ok-1", seconds: 2 });
  await waitFor("siren test audit", () => replies.has("siren_test"));
  assert.deepEqual(sirenRuns, [2]);
  await waitFor("command recorded", () => recorded.length === 1);
  await attacker.publishAsync(topics.cmd(hub), recorded[0]!, { qos: 1 });
  await sleep(300);
  assert.deepEqual(sirenRuns, [2], "a replayed command runs once");
  await session.stop();
  await uplink.stop();
}

test("forged acks and commands over Mosquitto delete and run nothing; the relay's signed ones do", { skip: NO_MOSQ, timeout: 60_000 }, async () => {
  const m = await ownMosquitto();
  cleanups.push(() => m.close());
  await scenario(m.url, "mosq");
});

test("the same over an aedes broker (TCP)", { timeout: 60_000 }, async () => {
  await scenario(await aedesBroker(), "aedes");
});
