// Alarms by SMS, the last-resort path, on a real relay: the generic gateway's inbound-SMS webhook (signed
// with the gateway secret) and Twilio's (X-Twilio-Signature) hand a compact alarm text to the relay, which
// verifies it with the hub's key, stores it with path 'sms', opens the incident and starts the call tree
// over a stand-in gateway; the same text again changes nothing; the full envelope later over MQTT completes
// the record and is acknowledged; forged, unknown and human texts are refused with nothing stored, an alarm
// from a hub whose clock is a day off is taken with its skew flagged;
// path health shows in GET /v1/hubs/{hub}, and the broadband outage raises one maintenance alert.
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
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { listIncidents } from "../../relay/src/incidents/repo.js";
import { signedHeaders } from "../../relay/src/telephony/signature.js";
import { twilioSignature } from "../../relay/src/telephony/twilio.js";
import { api, capturingLog, writeGatewaySecret } from "../support/care-plan-fixture.js";
import { provisionHub, type TestHub } from "../support/console-rig.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { startTelephonyStub, type TelephonyStub } from "../support/telephony-stub.js";

const SECRET = "sms-inbound-test-gateway-secret-0123456789";
const TWILIO_TOKEN = "sms-inbound-test-twilio-auth-token";
const INBOUND = "+8613900000009";
const SENDER = "+8613811112222";
const REPLY = "Wang Lan is fine, I am with her now";
const HOUR = 3_600_000;

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface Rig {
  relay: RunningRelay;
  gw: TelephonyStub;
  logs: string[];
  h: TestHub;
}

async function start(o: { telephony: "http" | "twilio"; store?: Record<string, unknown> }): Promise<Rig> {
  const gw = await startTelephonyStub({ secret: SECRET, defaultStep: { status: "no_answer", silent: true } });
  cleanups.push(() => gw.close());
  const tmp = await mkdtemp(path.join(os.tmpdir(), "anxin-sms-"));
  cleanups.push(() => rm(tmp, { recursive: true, force: true }));
  const secretFile = await writeGatewaySecret(tmp, o.telephony === "http" ? SECRET : TWILIO_TOKEN);
  const telephony =
    o.telephony === "http"
      ? { kind: "http", url: gw.url, secretFile, retries: 0, backoffMs: 0, timeoutMs: 3000 }
      : { kind: "twilio", accountSid: `AC${"0".repeat(32)}`, authTokenFile: secretFile, from: "+8613900000001", baseUrl: gw.url, retries: 0, backoffMs: 0 };
  const { log, lines } = capturingLog();
  const rig = await startRelayForTest({ log, config: { telephony, escalation: { pollMs: 50 }, sms: { inboundNumber: INBOUND }, ...(o.store ? { store: o.store } : {}) } });
  cleanups.push(() => rig.stop());
  const h = await provisionHub(rig.relay, `hub-sms-${o.telephony}`);
  return { relay: rig.relay, gw, logs: lines, h };
}

let seq = 0;
function gasAlarm(h: TestHub, ts = Date.now()): Envelope {
  return signEnvelope({ v: 1, hub: h.hub, boot: 3, seq: ++seq, id: ulid(), ts, kind: "alarm", type: "gas", severity: "critical", device: "gas-kitchen", room: "kitchen", data: { ppm: 900 } }, h.key);
}

/** The gateway's inbound-SMS webhook, signed with `secret` (the gateway's, unless a test forges it). */
async function gatewaySms(relay: RunningRelay, text: string, secret = SECRET): Promise<{ status: number; json: { ok?: boolean; result?: string } | null }> {
  const body = JSON.stringify({ from: SENDER, to: INBOUND, text, receivedAt: Date.now(), messageId: `SM${randomBytes(8).toString("hex")}` });
  const res = await fetch(`${relay.httpUrl}/v1/telephony/inbound-sms`, { method: "POST", headers: { "content-type": "application/json", ...signedHeaders(secret, Date.now(), body) }, body });
  return { status: res.status, json: (await res.json().catch(() => null)) as { ok?: boolean; result?: string } | null };
}

async function incidents(relay: RunningRelay, hub: string): Promise<number> {
  return (await listIncidents(relay.db, { hub })).length;
}

async function primaryPathAlerts(relay: RunningRelay) {
  return (await listOperatorAlerts(relay.db, {})).filter((a) => a.kind === "primary_path_down");
}

async function generic(relay: RunningRelay, gw: TelephonyStub, logs: string[], h: TestHub): Promise<void> {
  const env = gasAlarm(h);
  const text = encodeCompactAlarm(env, h.key);

  // The hub's MQTT session is down (it never connected): the first SMS alarm is stored, opens the incident and starts the call tree.
  const first = await gatewaySms(relay, text);
  assert.equal(first.status, 200);
  assert.deepEqual(first.json, { ok: true, result: "stored" });
  const row = await relay.store.getEvent(env.id);
  assert.ok(row, "stored");
  assert.equal(row.path, "sms");
  assert.equal(row.kind, "alarm");
  assert.equal(row.type, "gas");
  const fromSms = JSON.parse(row.payload) as Envelope;
  assert.equal(fromSms.sig, undefined, "an SMS record carries no envelope signature");
  assert.deepEqual({ ...fromSms }, { v: 1, hub: h.hub, boot: 3, seq: env.seq, id: env.id, ts: env.ts, kind: "alarm", type: "gas", severity: "critical", device: "gas-kitchen", room: "kitchen" });
  assert.equal(await incidents(relay, h.hub), 1, "an incident opened");
  await gw.waitForCalls(1);

  // Path health: an SMS, nothing over MQTT yet.
  const tok = await addToken(relay.db, `op-${h.hub}`, "operator", Date.now());
  const before = await api(relay, tok.token, "GET", `/v1/hubs/${h.hub}`);
  assert.equal(before.status, 200);
  assert.equal(before.json.paths.mqtt.lastAt, null);
  assert.equal(typeof before.json.paths.sms.lastAt, "number");

  // One maintenance alert for the broadband outage.
  let alerts = await primaryPathAlerts(relay);
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0]?.count, 1);
  assert.match(alerts[0]?.detail ?? "", new RegExp(`hub ${h.hub}: an alarm arrived by SMS`));

  // The same text again (the provider's retry, or a replay): acknowledged, nothing new.
  const again = await gatewaySms(relay, text);
  assert.deepEqual(again.json, { ok: true, result: "duplicate" });
  assert.equal(await relay.store.countEvents(h.hub), 1);
  assert.equal(await incidents(relay, h.hub), 1);

  // Another alarm of the same outage: stored, but no second alert.
  const second = gasAlarm(h);
  assert.deepEqual((await gatewaySms(relay, encodeCompactAlarm(second, h.key))).json, { ok: true, result: "stored" });
  alerts = await primaryPathAlerts(relay);
  assert.equal(alerts.length, 1, "one alert per outage");
  assert.equal(alerts[0]?.count, 1, "raised once");

  // Refused, nothing stored: a forged mac, an unknown hub, a bad webhook signature; a person's reply is no alarm.
  const count = await relay.store.countEvents();
  const forged = encodeCompactAlarm(gasAlarm(h), randomBytes(32));
  assert.deepEqual((await gatewaySms(relay, forged)).json, { ok: true, result: "refused" });
  const stranger = encodeCompactAlarm({ ...gasAlarm(h), hub: "hub-nobody" }, randomBytes(32));
  assert.deepEqual((await gatewaySms(relay, stranger)).json, { ok: true, result: "refused" });
  const unsigned = await gatewaySms(relay, encodeCompactAlarm(gasAlarm(h), h.key), "not-the-gateway-secret");
  assert.equal(unsigned.status, 403);
  assert.deepEqual(unsigned.json, { error: "forbidden" });
  assert.deepEqual((await gatewaySms(relay, REPLY)).json, { ok: true, result: "not_alarm" });
  assert.equal(await relay.store.countEvents(), count, "nothing stored");
  assert.equal(await incidents(relay, h.hub), 1);

  // The full envelope later over MQTT: deduplicated by id, completes the record, acknowledged as usual.
  const acked: string[] = [];
  const session = relay.session as unknown as { ack: (hub: string, ids: string[], at: number) => void };
  const ack = session.ack.bind(session);
  session.ack = (hub, ids, at) => {
    if (hub === h.hub) acked.push(...ids);
    ack(hub, ids, at);
  };
  relay.ingest.handle(h.hub, Buffer.from(JSON.stringify(env)));
  await relay.ingest.flush();
  const full = await relay.store.getEvent(env.id);
  assert.equal(full?.path, "sms+mqtt");
  assert.equal(full?.payload, JSON.stringify(env), "the full signed envelope replaces the SMS fields");
  assert.deepEqual(acked, [env.id]);
  assert.equal(await relay.store.countEvents(h.hub), 2);
  assert.equal(await incidents(relay, h.hub), 1, "no second incident");

  const health = await api(relay, tok.token, "GET", `/v1/hubs/${h.hub}`);
  assert.equal(typeof health.json.paths.mqtt.lastAt, "number");
  assert.equal(typeof health.json.paths.sms.lastAt, "number");

  // A hub cut off from broadband cannot reach a time server either: an alarm text whose clock is a day behind
  // is still taken, never refused for its time, and its skew is flagged (design invariant 8).
  const late = gasAlarm(h, Date.now() - 25 * HOUR);
  assert.deepEqual((await gatewaySms(relay, encodeCompactAlarm(late, h.key))).json, { ok: true, result: "stored" });
  assert.notEqual((await relay.store.getEvent(late.id))?.skewMs ?? null, null, "the clock's skew is flagged");

  // Neither the texts nor the numbers reach the log.
  const joined = logs.join("");
  for (const secret of [text, REPLY, SENDER, INBOUND, forged]) assert.ok(!joined.includes(secret), "no SMS text or phone number in the log");
  assert.ok(joined.includes("not an alarm"), "the reply is logged as such");
}

test("alarms by SMS through the generic gateway's webhook (SQLite)", { timeout: 60_000 }, async () => {
  const { relay, gw, logs, h } = await start({ telephony: "http" });
  await generic(relay, gw, logs, h);
});

test("alarms by SMS through the generic gateway's webhook (PostgreSQL)", { timeout: 60_000 }, async (t) => {
  if (!PG_URL) return t.skip(pgSkipReason("alarms by SMS on PostgreSQL"));
  const { url, schema } = tempPgSchema("anxin_sms", (f) => cleanups.push(f));
  const { relay, gw, logs, h } = await start({ telephony: "http", store: { kind: "postgres", url, schema, poolSize: 4 } });
  await generic(relay, gw, logs, h);
});

test("alarms by SMS through Twilio's webhook, verified with X-Twilio-Signature", { timeout: 60_000 }, async () => {
  const { relay, h } = await start({ telephony: "twilio" });
  const env = gasAlarm(h);
  const webhook = "/v1/telephony/twilio/sms-inbound";
  const post = async (params: URLSearchParams, signature: string) => {
    const res = await fetch(`${relay.httpUrl}${webhook}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature }, body: params.toString() });
    return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
  };
  const params = new URLSearchParams({ From: SENDER, To: INBOUND, Body: encodeCompactAlarm(env, h.key), MessageSid: `SM${"1".repeat(32)}`, AccountSid: `AC${"0".repeat(32)}` });

  const wrong = await post(params, twilioSignature("another-token", `${relay.httpUrl}${webhook}`, params));
  assert.equal(wrong.status, 403);
  assert.equal(await relay.store.getEvent(env.id), undefined, "nothing stored");

  const right = await post(params, twilioSignature(TWILIO_TOKEN, `${relay.httpUrl}${webhook}`, params));
  assert.equal(right.status, 200);
  assert.match(right.type, /^text\/xml/);
  assert.match(right.body, /<Response\/>$/);
  assert.equal((await relay.store.getEvent(env.id))?.path, "sms");
  assert.equal(await incidents(relay, h.hub), 1);

  const reply = new URLSearchParams({ From: SENDER, To: INBOUND, Body: REPLY, MessageSid: `SM${"2".repeat(32)}` });
  const human = await post(reply, twilioSignature(TWILIO_TOKEN, `${relay.httpUrl}${webhook}`, reply));
  assert.equal(human.status, 200);
  assert.equal(await relay.store.countEvents(h.hub), 1);
});
