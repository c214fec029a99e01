// The compact SMS form of an alarm (protocol/sms-compact.ts): it reads back to the same fields, its mac holds
// only with the hub's key and breaks with any change, it fits one SMS for every alarm type with the id lengths
// commissioning allows, and anything else — a heartbeat, a person's reply, a malformed text — is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ALARM_TYPES, type Envelope } from "../../protocol/envelope.js";
import { decodeCompactAlarm, encodeCompactAlarm, longestCompactLength, SMS_DEVICE_TYPES, SMS_MAX_CHARS, SmsCompactError, verifyCompactAlarm } from "../../protocol/sms-compact.js";

const KEY = randomBytes(32);
const base: Envelope = { v: 1, hub: "hub-0042-shanghai", boot: 12, seq: 3456, id: "01JF3Z8Y7XWV6T5S4R3Q2P1N0M", ts: 1_796_000_000_123, kind: "alarm", type: "gas", severity: "critical", device: "gas-kitchen", room: "kitchen" };

test("an alarm's SMS reads back to its fields and verifies only with its hub's key", () => {
  const text = encodeCompactAlarm(base, KEY);
  assert.match(text, /^AX1 hub-0042-shanghai 01JF3Z8Y7XWV6T5S4R3Q2P1N0M 12\.3456 [0-9a-z]+ Agas c gas-kitchen kitchen [A-Za-z0-9_-]{16}$/);
  assert.ok(/^[A-Za-z0-9 ._-]+$/.test(text), "only one-septet GSM characters");
  assert.deepEqual(decodeCompactAlarm(text), { hub: base.hub, id: base.id, boot: 12, seq: 3456, ts: base.ts, kind: "alarm", type: "gas", severity: "critical", device: "gas-kitchen", room: "kitchen" });
  assert.equal(verifyCompactAlarm(text, KEY), true);
  assert.equal(verifyCompactAlarm(text, randomBytes(32)), false, "another hub's key");
  // Any one character changed before the mac breaks it.
  for (const i of [4, 30, 60, text.lastIndexOf(" ") - 1]) {
    const c = text[i] === "a" ? "b" : "a";
    assert.equal(verifyCompactAlarm(text.slice(0, i) + c + text.slice(i + 1), KEY), false, `changed at ${i}`);
  }
  assert.equal(verifyCompactAlarm(`${text}x`, KEY), false);
});

test("no device, a room that is not a plain identifier, and the clearing of an alarm", () => {
  const text = encodeCompactAlarm({ ...base, kind: "alarm_cleared", severity: "info", device: undefined, room: "厨房" }, KEY);
  const d = decodeCompactAlarm(text);
  assert.equal(d.kind, "alarm_cleared");
  assert.equal(d.severity, "info");
  assert.equal(d.device, undefined);
  assert.equal(d.room, undefined, "the full event names the room");
});

test("every alarm type fits one SMS with 24-character hub and device ids", () => {
  const hub = `hub-${"x".repeat(20)}`;
  const device = `dev-${"y".repeat(20)}`;
  for (const type of ALARM_TYPES) {
    const text = encodeCompactAlarm({ ...base, hub, device, type, seq: 4_000_000_000, boot: 4_000_000_000 }, KEY);
    assert.ok(text.length <= SMS_MAX_CHARS, `${type}: ${text.length}`);
    assert.ok(text.length <= longestCompactLength(hub, [device], ["kitchen"]), "the bound commissioning checks holds");
  }
  assert.throws(() => encodeCompactAlarm({ ...base, hub: "h".repeat(64), device: "d".repeat(64) }, KEY), (e: unknown) => e instanceof SmsCompactError && e.code === "too_long");
});

test("a room that would not fit is left out; the ids alone must fit", () => {
  const e: Envelope = { ...base, hub: `hub-${"x".repeat(20)}`, device: `dev-${"y".repeat(20)}`, boot: 4_294_967_295, seq: 4_294_967_295, kind: "device", type: "primary_path_down", severity: "warning", room: "living_room" };
  const text = encodeCompactAlarm(e, KEY);
  assert.ok(text.length <= SMS_MAX_CHARS);
  assert.equal(decodeCompactAlarm(text).room, undefined, "the room gave way");
  assert.equal(decodeCompactAlarm(text).device, e.device, "the device did not");
  assert.ok(longestCompactLength(e.hub, [e.device!]) <= SMS_MAX_CHARS, "the bound commissioning checks");
  assert.ok(longestCompactLength(e.hub, [e.device!], ["living_room"]) > SMS_MAX_CHARS);
  assert.equal(decodeCompactAlarm(encodeCompactAlarm({ ...e, kind: "alarm", type: "gas" }, KEY)).room, "living_room", "kept where it fits");
});

test("the two path notices go by SMS as device events; no other device event does", () => {
  for (const type of SMS_DEVICE_TYPES) {
    const text = encodeCompactAlarm({ ...base, kind: "device", type, severity: type === "primary_path_down" ? "warning" : "info", device: "cellular-modem", room: undefined }, KEY);
    assert.ok(text.length <= longestCompactLength(base.hub, ["cellular-modem", "gas-kitchen"], ["kitchen"]));
    const d = decodeCompactAlarm(text);
    assert.equal(d.kind, "device");
    assert.equal(d.type, type);
    assert.ok(verifyCompactAlarm(text, KEY));
  }
  assert.throws(() => encodeCompactAlarm({ ...base, kind: "device", type: "battery_low" }, KEY), (e: unknown) => e instanceof SmsCompactError && e.code === "not_sendable");
  const forged = encodeCompactAlarm({ ...base, kind: "device", type: "second_path_test" }, KEY).replace(" Dsecond_path_test ", " Dbattery_low ");
  assert.throws(() => decodeCompactAlarm(forged), (e: unknown) => e instanceof SmsCompactError && e.code === "bad_field");
});

test("heartbeats and readings never go by SMS; other texts are not alarms", () => {
  for (const kind of ["heartbeat", "reading", "device", "audit"] as const) {
    assert.throws(() => encodeCompactAlarm({ ...base, kind }, KEY), (e: unknown) => e instanceof SmsCompactError && e.code === "not_sendable");
  }
  assert.throws(() => decodeCompactAlarm("好的，我马上过去"), (e: unknown) => e instanceof SmsCompactError && e.code === "not_compact");
  const text = encodeCompactAlarm(base, KEY);
  for (const bad of [text.replace("Agas", "Xgas"), text.replace(" c ", " z "), text.replace("12.3456", "12.0"), text.replace("01JF3Z8Y7XWV6T5S4R3Q2P1N0M", "not-an-id"), `${text} extra`]) {
    assert.throws(() => decodeCompactAlarm(bad), (e: unknown) => e instanceof SmsCompactError && e.code === "bad_field", bad);
  }
});
