// The second path's notices by SMS on a real relay (SQLite and PostgreSQL), through the generic gateway's
// signed inbound-SMS webhook: the hub's periodic path test and its "primary path down" notice are stored by
// id with path 'sms' and open no incident; GET /v1/hubs/{hub} shows the last event per path, the last
// successful path test and whether the hub is on its second path; GET /v1/events carries each event's path
// and filters on it. A hub offline over MQTT whose texts still arrive is a broadband repair, not a silent
// home: one primary_path_down alert for the outage (from the notice as from an alarm), one timeline entry
// on its hub_offline incident, and on the homes board `primary_path_down` instead of `hub_offline`; a hub
// whose path test has not succeeded for over 8 days (or never) gets the `second_path_untested` hint.
// /metrics counts every text by result, refusal reason and kind.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ulid } from "ulid";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import { encodeCompactAlarm } from "../../protocol/sms-compact.js";
import { listOperatorAlerts } from "../../relay/src/alerts/operator-alerts.js";
import { addToken } from "../../relay/src/auth/tokens.js";
import { BOARD_TTL_MS } from "../../relay/src/console/homes/board.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { SECOND_PATH_WORKING } from "../../relay/src/escalation/hub-offline.js";
import { getTimeline, listIncidents } from "../../relay/src/incidents/repo.js";
import { signedHeaders } from "../../relay/src/telephony/signature.js";
import { api, writeGatewaySecret } from "../support/care-plan-fixture.js";
import { ConsoleClient } from "../support/console-client.js";
import { addAccount, CONSOLE_PASSWORD, provisionHub, sendEvent, type TestHub } from "../support/console-rig.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { startTelephonyStub } from "../support/telephony-stub.js";

const SECRET = "sms-notices-test-gateway-secret-0123456789";
const INBOUND = "+8613900000019";
const DAY = 86_400_000;

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface World {
  relay: RunningRelay;
  clock: { offset: number };
  now(): number;
  token: string;
  console: ConsoleClient;
}

async function world(store?: Record<string, unknown>): Promise<World> {
  const gw = await startTelephonyStub({ secret: SECRET, defaultStep: { status: "no_answer", silent: true } });
  cleanups.push(() => gw.close());
  const tmp = await mkdtemp(path.join(os.tmpdir(), "anxin-sms-notices-"));
  cleanups.push(() => rm(tmp, { recursive: true, force: true }));
  const secretFile = await writeGatewaySecret(tmp, SECRET);
  const clock = { offset: 0 };
  const now = () => Date.now() + clock.offset;
  const telephony = { kind: "http", url: gw.url, secretFile, retries: 0, backoffMs: 0, timeoutMs: 3000 };
  const rig = await startRelayForTest({ now, config: { telephony, escalation: { pollMs: 50 }, sms: { inboundNumber: INBOUND }, ...(store ? { store } : {}) } });
  cleanups.push(() => rig.stop());
  const token = (await addToken(rig.relay.db, "op-notices", "operator", Date.now())).token;
  await addAccount(rig.relay, "li", "Li Wei", "operator");
  const console = new ConsoleClient(rig.httpUrl);
  assert.equal((await console.signIn("li", CONSOLE_PASSWORD)).status, 200);
  return { relay: rig.relay, clock, now, token, console };
}

let seq = 0;
function notice(h: TestHub, type: "second_path_test" | "primary_path_down", ts = Date.now()): Envelope {
  return signEnvelope({ v: 1, hub: h.hub, boot: 4, seq: ++seq, id: ulid(), ts, kind: "device", type, severity: type === "second_path_test" ? "info" : "warning", device: "cellular-modem" }, h.key);
}
function gasAlarm(h: TestHub): Envelope {
  return signEnvelope({ v: 1, hub: h.hub, boot: 4, seq: ++seq, id: ulid(), ts: Date.now(), kind: "alarm", type: "gas", severity: "critical", device: "gas-kitchen", room: "kitchen" }, h.key);
}

/** The gateway's webhook, stamped with the relay's clock (the signature's time window is the relay's). */
async function sms(w: World, text: string): Promise<string | undefined> {
  const body = JSON.stringify({ from: "+8613811112222", to: INBOUND, text, receivedAt: w.now(), messageId: `SM${randomBytes(8).toString("hex")}` });
  const res = await fetch(`${w.relay.httpUrl}/v1/telephony/inbound-sms`, { method: "POST", headers: { "content-type": "application/json", ...signedHeaders(SECRET, w.now(), body) }, body });
  assert.equal(res.status, 200);
  return ((await res.json()) as { result?: string }).result;
}

/** Supervision's view, set directly: online and seen now, or gone offline now (which opens its hub_offline row). */
async function online(w: World, hub: string): Promise<void> {
  await w.relay.supervisor.check(); // sightings the ingest queued are written first, never after the change below
  await w.relay.store.applyTransitions([{ op: "online", hub, at: w.now(), boot: 4 }]);
  await w.relay.store.recordSeen([[hub, w.now()]]);
}
async function offline(w: World, hub: string): Promise<void> {
  await w.relay.supervisor.check();
  await w.relay.store.applyTransitions([{ op: "offline", hub, at: w.now(), reason: "missed heartbeats" }]);
}

interface BoardProblem {
  kind: string;
  urgency: string;
  since: number | null;
}
/** The board as a fresh computation gives it (the clock moved past the shared board's few seconds). */
async function board(w: World): Promise<Map<string, BoardProblem[]>> {
  w.clock.offset += BOARD_TTL_MS + 1;
  const r = await w.console.request("GET", "/console/api/homes");
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return new Map((r.body as { homes: Array<{ hub: string; problems: BoardProblem[] }> }).homes.map((h) => [h.hub, h.problems]));
}
const kinds = (ps: BoardProblem[] | undefined) => (ps ?? []).map((p) => p.kind);

async function hubPaths(w: World, hub: string) {
  const r = await api(w.relay, w.token, "GET", `/v1/hubs/${hub}`);
  assert.equal(r.status, 200);
  return r.json.paths as { mqtt: { lastAt: number | null }; sms: { lastAt: number | null }; secondPathTest: { lastOkAt: number | null }; onSecondPath: boolean };
}

async function metric(relay: RunningRelay, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${relay.httpUrl}/metrics`)).text();
  const want = `anxin_relay_sms_inbound_total{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(",")}}`;
  const line = text.split("\n").find((l) => l.startsWith(`${want} `));
  return line ? Number(line.slice(want.length + 1)) : 0;
}

async function scenario(w: World): Promise<void> {
  const { relay } = w;
  const home = await provisionHub(relay, "hub-path-home");
  const mqttTester = await provisionHub(relay, "hub-path-mqtt-test");
  const oldTester = await provisionHub(relay, "hub-path-old-test");

  // A hub whose last successful path test is 9 days old: the board's hint, until a fresh test arrives.
  w.clock.offset = -9 * DAY;
  const old = notice(oldTester, "second_path_test", w.now());
  assert.equal(await sms(w, encodeCompactAlarm(old, oldTester.key)), "stored");
  w.clock.offset = 0;
  await online(w, oldTester.hub);
  // A hub whose test text never arrived, only its MQTT copy: it does test, and has never succeeded.
  await online(w, mqttTester.hub);
  await sendEvent(relay, mqttTester, { kind: "device", type: "second_path_test", severity: "info", device: "cellular-modem" });

  // The home: online over MQTT, one event that way, then its weekly path test by SMS.
  await online(w, home.hub);
  await sendEvent(relay, home, { kind: "device", type: "online", severity: "info", device: "smoke-1" });
  const tested = notice(home, "second_path_test");
  assert.equal(await sms(w, encodeCompactAlarm(tested, home.key)), "stored");
  const testRow = await relay.store.getEvent(tested.id);
  assert.equal(testRow?.path, "sms");
  assert.equal(testRow?.kind, "device");
  assert.equal(testRow?.type, "second_path_test");
  assert.equal(await sms(w, encodeCompactAlarm(tested, home.key)), "duplicate", "stored by id: the same text again is one event");
  assert.equal((await listIncidents(relay.db, { hub: home.hub })).length, 0, "a device notice opens no incident");
  let paths = await hubPaths(w, home.hub);
  assert.equal(typeof paths.mqtt.lastAt, "number");
  assert.equal(paths.sms.lastAt, testRow?.receivedAt);
  assert.equal(paths.secondPathTest.lastOkAt, testRow?.receivedAt, "the test that arrived by SMS is the last successful one");
  assert.equal(paths.onSecondPath, false, "online over MQTT");
  assert.equal((await hubPaths(w, mqttTester.hub)).secondPathTest.lastOkAt, null, "a test that came only over MQTT is no success of the SMS path");
  const primaryAlerts = async () => (await listOperatorAlerts(relay.db, {})).filter((a) => a.kind === "primary_path_down");
  assert.equal((await primaryAlerts()).length, 0, "a path test while MQTT is up is no sign of an outage");

  // Events carry their path, and filter on it.
  const events = async (q: string) => {
    const r = await api(relay, w.token, "GET", `/v1/events?hub=${home.hub}${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json.events as Array<{ id: string; type: string; path: string }>;
  };
  assert.deepEqual((await events("")).map((e) => e.path).sort(), ["mqtt", "sms"]);
  assert.deepEqual((await events("&path=sms")).map((e) => [e.id, e.path]), [[tested.id, "sms"]]);
  assert.deepEqual((await events("&path=mqtt")).map((e) => [e.type, e.path]), [["online", "mqtt"]]);
  assert.equal((await api(relay, w.token, "GET", `/v1/events?path=radio`)).status, 400);

  // The board: the stale tester and the one that never succeeded get the hint (lowest rank, a notice); the home has nothing.
  let b = await board(w);
  assert.deepEqual(kinds(b.get(oldTester.hub)), ["second_path_untested"]);
  assert.equal(b.get(oldTester.hub)?.[0]?.since, (await relay.store.getEvent(old.id))?.receivedAt);
  assert.equal(b.get(oldTester.hub)?.[0]?.urgency, "notice");
  assert.deepEqual(kinds(b.get(mqttTester.hub)), ["second_path_untested"]);
  assert.equal(b.get(mqttTester.hub)?.[0]?.since, null, "never tested successfully");
  assert.equal(b.has(home.hub), false);

  // The home's broadband goes: supervision marks it offline and the operators get a hub_offline incident.
  w.clock.offset += 1000;
  await online(w, home.hub); // its last sight over MQTT comes after the path test
  w.clock.offset += 1000;
  await offline(w, home.hub);
  await relay.escalation.syncHubOffline();
  const [maintenance] = (await listIncidents(relay.db, { hub: home.hub })).filter((i) => i.type === "hub_offline");
  assert.ok(maintenance, "a hub_offline incident");
  const noted = async () => (await getTimeline(relay.db, maintenance.id)).filter((e) => e.kind === SECOND_PATH_WORKING);
  assert.equal((await noted()).length, 0, "nothing arrived by SMS since its last sight: a silent home so far");
  assert.equal((await hubPaths(w, home.hub)).onSecondPath, false);
  assert.deepEqual(kinds((await board(w)).get(home.hub)), ["hub_offline"]);

  // Then its notice by SMS: the primary path is down, the second path works.
  w.clock.offset += 1000;
  const down = notice(home, "primary_path_down");
  assert.equal(await sms(w, encodeCompactAlarm(down, home.key)), "stored");
  assert.equal((await relay.store.getEvent(down.id))?.path, "sms");
  assert.deepEqual(
    (await listIncidents(relay.db, { hub: home.hub })).map((i) => i.type),
    ["hub_offline"],
    "no incident of its own",
  );
  let alerts = await primaryAlerts();
  assert.equal(alerts.length, 1, "one maintenance alert for the outage");
  assert.match(alerts[0]?.detail ?? "", new RegExp(`hub ${home.hub}: the hub says by SMS that its primary path is down`));
  paths = await hubPaths(w, home.hub);
  assert.equal(paths.onSecondPath, true);
  assert.equal(paths.secondPathTest.lastOkAt, testRow?.receivedAt, "a notice is no path test");

  await relay.escalation.syncHubOffline();
  await relay.escalation.syncHubOffline();
  const entries = await noted();
  assert.equal(entries.length, 1, "noted once on the hub_offline incident");
  assert.equal(entries[0]?.actor, "system:supervision");
  assert.equal(entries[0]?.detail?.eventId, down.id);
  assert.equal(entries[0]?.detail?.smsAt, (await relay.store.getEvent(down.id))?.receivedAt);

  b = await board(w);
  assert.deepEqual(kinds(b.get(home.hub)), ["primary_path_down"], "not a silent home");
  assert.equal(b.get(home.hub)?.[0]?.urgency, "attention");

  // An alarm by SMS in the same outage opens its incident; still one alert.
  const gas = gasAlarm(home);
  assert.equal(await sms(w, encodeCompactAlarm(gas, home.key)), "stored");
  assert.equal((await listIncidents(relay.db, { hub: home.hub })).filter((i) => i.type === "gas").length, 1);
  alerts = await primaryAlerts();
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0]?.count, 1, "raised once per outage");

  // A fresh test for the stale tester takes the hint away.
  assert.equal(await sms(w, encodeCompactAlarm(notice(oldTester, "second_path_test"), oldTester.key)), "stored");
  assert.equal((await board(w)).has(oldTester.hub), false);

  // Refused and other texts, then the counter of every text.
  assert.equal(await sms(w, encodeCompactAlarm(notice(home, "primary_path_down"), randomBytes(32))), "refused");
  assert.equal(await sms(w, encodeCompactAlarm({ ...notice(home, "second_path_test"), hub: "hub-nobody" }, randomBytes(32))), "refused");
  assert.equal(await sms(w, "AX1 hub-path-home not-an-id 1.1 x Dsecond_path_test i - - AAAAAAAAAAAAAAAA"), "refused");
  assert.equal(await sms(w, "I am at the door now"), "not_alarm");
  const expect: Array<[Record<string, string>, number]> = [
    [{ result: "stored", reason: "", kind: "device" }, 4],
    [{ result: "stored", reason: "", kind: "alarm" }, 1],
    [{ result: "duplicate", reason: "", kind: "device" }, 1],
    [{ result: "refused", reason: "bad_mac", kind: "device" }, 1],
    [{ result: "refused", reason: "unknown_hub", kind: "device" }, 1],
    [{ result: "refused", reason: "malformed", kind: "none" }, 1],
    [{ result: "not_alarm", reason: "", kind: "none" }, 1],
  ];
  for (const [labels, n] of expect) assert.equal(await metric(relay, labels), n, JSON.stringify(labels));
}

test("the second path's notices by SMS, path health, the events' path, the board and the counter (SQLite)", { timeout: 90_000 }, async () => {
  await scenario(await world());
});

test("the second path's notices by SMS, path health, the events' path, the board and the counter (PostgreSQL)", { timeout: 90_000 }, async (t) => {
  if (!PG_URL) return t.skip(pgSkipReason("the second path's notices on PostgreSQL"));
  const { url, schema } = tempPgSchema("anxin_sms_notices", (f) => cleanups.push(f));
  await scenario(await world({ kind: "postgres", url, schema, poolSize: 4 }));
});
