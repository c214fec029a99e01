// The SMS intake's verdicts without a relay (relay/src/sms/intake.ts), the generic gateway's inbound-SMS
// webhook around it (403 / 400 / 503), and when a hub's MQTT session counts as down (supervision/primary-path.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { Envelope } from "../../protocol/envelope.js";
import { encodeCompactAlarm } from "../../protocol/sms-compact.js";
import { SmsIntake, type SmsIntakeDeps } from "../../relay/src/sms/intake.js";
import { openStore, type EventRow } from "../../relay/src/store/store.js";
import { mqttDown } from "../../relay/src/supervision/primary-path.js";
import { HttpGatewayTelephony } from "../../relay/src/telephony/http-gateway.js";
import { signedHeaders } from "../../relay/src/telephony/signature.js";
import type { InboundSms, InboundSmsHandler } from "../../relay/src/telephony/types.js";

const KEY = randomBytes(32);
const NOW = 1_800_000_000_000;
const log = pino({ level: "silent" });
const alarm: Envelope = { v: 1, hub: "hub-7", boot: 2, seq: 9, id: "01JF3Z8Y7XWV6T5S4R3Q2P1N0M", ts: NOW - 1000, kind: "alarm", type: "smoke", severity: "critical", device: "smoke-1" };
const sms = (text: string, to = "+8613900000009"): InboundSms => ({ provider: "test", messageId: "m1", from: "+8613811112222", to, text, receivedAt: NOW });

function intake(o: Partial<SmsIntakeDeps> = {}): { intake: SmsIntake; stored: Envelope[] } {
  const stored: Envelope[] = [];
  const i = new SmsIntake({
    signingKey: async (hub) => (hub === "hub-7" ? KEY : null),
    ingest: async (_hub, env) => (stored.push(env), "stored"),
    inboundNumber: "+8613900000009",
    log,
    ...o,
  });
  return { intake: i, stored };
}

test("an alarm text is stored with the fields it carries; anything else is refused or set aside", async () => {
  const { intake: i, stored } = intake();
  assert.equal(await i.handle(sms(encodeCompactAlarm(alarm, KEY))), "stored");
  assert.deepEqual(stored, [{ v: 1, hub: "hub-7", boot: 2, seq: 9, id: alarm.id, ts: alarm.ts, kind: "alarm", type: "smoke", severity: "critical", device: "smoke-1" }]);
  assert.equal(await i.handle(sms(encodeCompactAlarm(alarm, KEY), "+8613900000001")), "not_ours");
  assert.equal(await i.handle(sms("AX1 hub-7 not-an-id 1.1 x Asmoke c - - AAAAAAAAAAAAAAAA")), "refused", "malformed");
  assert.equal(await i.handle(sms(encodeCompactAlarm({ ...alarm, hub: "hub-8" }, KEY))), "refused", "unknown hub");
  assert.equal(await i.handle(sms(encodeCompactAlarm(alarm, randomBytes(32)))), "refused", "bad mac");
  assert.equal(await i.handle(sms("ok, on my way")), "not_alarm");
  assert.equal(stored.length, 1);
  // Never refused for its time: a hub without broadband has no time server, and its clock may be days off.
  assert.equal(await i.handle(sms(encodeCompactAlarm({ ...alarm, id: "01JF3Z8Y7XWV6T5S4R3Q2P1N0N", ts: 1_000 }, KEY))), "stored", "a clock far behind");
});

test("an alarm that cannot be stored now is not swallowed: the webhook answers 503 and the provider retries", async () => {
  const { intake: i } = intake({ ingest: async () => Promise.reject(new Error("store down")) });
  await assert.rejects(i.handle(sms(encodeCompactAlarm(alarm, KEY))), /store down/);

  const secret = "gateway-secret";
  const gw = (handler?: InboundSmsHandler) =>
    new HttpGatewayTelephony({ url: "http://127.0.0.1:1/", secret, publicUrl: "http://relay", callbackPath: "/cb", inboundSmsPath: "/in", onInboundSms: handler, callbackWindowMs: 300_000, gatherTimeoutS: 10, timeoutMs: 100, retries: 0, backoffMs: 0, log, onOutcome: async () => {}, now: () => NOW });
  const post = (t: HttpGatewayTelephony, body: string, key = secret) => t.callbackRoute.handle({ url: "/in", headers: { "x-anxin-timestamp": String(NOW), "x-anxin-signature": signedHeaders(key, NOW, body)["X-Anxin-Signature"] }, body: Buffer.from(body), remote: undefined });
  const body = JSON.stringify({ from: "+8613811112222", to: "+8613900000009", text: encodeCompactAlarm(alarm, KEY), receivedAt: NOW, messageId: "m1" });

  assert.equal((await post(gw((s) => i.handle(s)), body)).status, 503);
  assert.equal((await post(gw(async () => "stored"), body, "forged")).status, 403);
  assert.equal((await post(gw(async () => "stored"), JSON.stringify({ text: "x" }))).status, 400);
  const ok = await post(gw(async () => "duplicate"), body);
  assert.deepEqual([ok.status, JSON.parse(ok.body)], [200, { ok: true, result: "duplicate" }]);
  assert.deepEqual(gw().callbackRoute.paths, ["/cb"], "no intake, no inbound webhook");
  assert.deepEqual(gw(async () => "stored").callbackRoute.paths, ["/cb", "/in"]);
});

test("the MQTT session counts as down when offline, never seen, or silent past the heartbeat window", () => {
  assert.equal(mqttDown({ online: true, lastSeenAt: NOW - 1000 }, NOW, 180_000), false);
  assert.equal(mqttDown({ online: false, lastSeenAt: NOW - 1000 }, NOW, 180_000), true);
  assert.equal(mqttDown({ online: true, lastSeenAt: null }, NOW, 180_000), true);
  assert.equal(mqttDown({ online: true, lastSeenAt: NOW - 180_001 }, NOW, 180_000), true);
});

test("one event by both paths is one row: MQTT completes an SMS row, an SMS after MQTT only notes its path", async () => {
  const dir = mkdtempSync(join(tmpdir(), "anxin-sms-store-"));
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir);
  try {
    const row = (id: string, path: EventRow["path"], payload: string): EventRow => ({ id, hub: "hub-7", boot: 1, seq: 1, ts: NOW, receivedAt: NOW, kind: "alarm", type: "gas", severity: "critical", device: null, payload, skewMs: null, historical: false, path });
    const a = "01JF3Z8Y7XWV6T5S4R3Q2P1NAA";
    const b = "01JF3Z8Y7XWV6T5S4R3Q2P1NBB";
    assert.deepEqual((await store.insertEvents([row(a, "sms", "sms-fields")])).inserted, [a]);
    assert.deepEqual((await store.insertEvents([row(a, undefined, "full-envelope")])).inserted, [], "a duplicate, not new");
    assert.deepEqual([(await store.getEvent(a))?.path, (await store.getEvent(a))?.payload], ["sms+mqtt", "full-envelope"]);
    await store.insertEvents([row(b, "mqtt", "full-envelope-b")]);
    await store.insertEvents([row(b, "sms", "sms-fields-b")]);
    assert.deepEqual([(await store.getEvent(b))?.path, (await store.getEvent(b))?.payload], ["sms+mqtt", "full-envelope-b"]);
    assert.deepEqual(await store.pathHealth("hub-7"), { mqtt: { lastAt: NOW }, sms: { lastAt: NOW } });
    assert.deepEqual(await store.pathHealth("hub-8"), { mqtt: { lastAt: null }, sms: { lastAt: null } });
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
