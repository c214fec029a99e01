// What the journal is told: events say only what the hub really did, and repeats are not news.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Reading } from "../../gateway/src/devices/device.js";
import type { HubDevice } from "../../gateway/src/devices/hub-device.js";
import type * as gas from "../../gateway/src/rules/gas.js";
import { DeviceNews } from "../../gateway/src/hub/device-news.js";
import { coordinatorEvent, gasDecisionEvent, smokeDecisionEvent, sosDecisionEvent, type ShapingContext } from "../../gateway/src/hub/event-shaping.js";

const rooms: Record<string, string> = { det: "kitchen", v1: "kitchen" };
const ctx = (sirens: string[]): ShapingContext => ({ room: (id) => rooms[id], sirens: sirens.map((id) => ({ id })) });
const raise: gas.Decision = { do: "raise", alarm: "gas", device: "det", room: "kitchen", trigger: "gas_lel 30 ≥ 20", value: 30, setpoint: 20 };

test("a gas alarm reports the valve closes of its pass, and the sirens only when the pass sounded them", () => {
  const pass: gas.Decision[] = [raise, { do: "close_valve", valve: "v1", attempt: 1 }, { do: "siren", on: true, reason: "gas" }];
  const e = gasDecisionEvent(raise, pass, ctx(["s1"]));
  assert.equal(e?.kind, "alarm");
  assert.equal(e?.severity, "critical");
  assert.deepEqual(e?.data, { value: 30, unit: "%LEL", setpoint: 20, trigger: "gas_lel 30 ≥ 20" });
  assert.deepEqual(e?.actions, [
    { action: "valve_close", target: "v1", detail: "commanded; verification follows" },
    { action: "siren_on", target: "s1" },
  ]);
  assert.deepEqual(gasDecisionEvent(raise, [raise], ctx(["s1"]))?.actions, [], "no command in the pass: none claimed");
  assert.deepEqual(gasDecisionEvent(raise, pass, ctx([]))?.actions, [{ action: "valve_close", target: "v1", detail: "commanded; verification follows" }], "no siren in the home: no siren action");
});

test("commands themselves are logged, not journaled; the outcomes are journaled with the device's room", () => {
  assert.equal(gasDecisionEvent({ do: "close_valve", valve: "v1", attempt: 2 }, [], ctx([])), null);
  assert.equal(gasDecisionEvent({ do: "siren", on: true, reason: "gas" }, [], ctx([])), null);
  const fault = gasDecisionEvent({ do: "valve_fault", valve: "v1", reason: "no closed limit within 15000 ms", afterMs: 15000 }, [], ctx(["s1"]));
  assert.equal(fault?.room, "kitchen");
  assert.deepEqual(fault?.actions, [{ action: "valve_closed", target: "v1", ok: false, detail: "no closed limit within 15000 ms" }, { action: "siren_on", target: "s1" }]);
  assert.equal(gasDecisionEvent({ do: "clear", alarm: "co", device: "det", since: 5, peak: 120 }, [], ctx([]))?.kind, "alarm_cleared");
});

test("smoke and SOS events", () => {
  const smoke = smokeDecisionEvent({ do: "raise", alarm: "smoke", device: "sd", room: "hall" }, { ...ctx(["s1", "s2"]) });
  assert.deepEqual(smoke?.actions?.map((a) => a.target), ["s1", "s2"]);
  assert.deepEqual(smokeDecisionEvent({ do: "spread", device: "sd2", room: "bed" }, { ...ctx([]), alarmSince: 42 })?.data, { alarmSince: 42 });
  const sos = sosDecisionEvent({ do: "raise", alarm: "sos", device: "b", room: "bed", action: "single" }, { chirped: [{ id: "s1" }] });
  assert.deepEqual(sos?.actions, [{ action: "siren_chirp", target: "s1", detail: "local feedback to the caller" }]);
  assert.equal(sosDecisionEvent({ do: "chirp", device: "b" }, { chirped: [] }), null);
});

test("the coordinator: down is a fault, back after being down clears it, a first start is not news", () => {
  assert.equal(coordinatorEvent({ up: false, reason: "port gone", attempt: 2, retryInMs: 1000 })?.type, "fault");
  assert.equal(coordinatorEvent({ up: true, attempt: 3, downForMs: 4000 })?.type, "fault_cleared");
  assert.equal(coordinatorEvent({ up: true, attempt: 1, downForMs: null }), null);
});

const dev = { id: "det", room: "kitchen", model: "m" } as HubDevice;
const reading = (fault: boolean | undefined, at = 0): Reading => ({ device: "det", at, values: { f: fault ? 1 : 0 }, labels: {}, problems: [], signals: fault === undefined ? {} : { fault } });

test("a fault is news when it flips; a first 'no fault' is not", () => {
  const news = new DeviceNews(60_000);
  assert.equal(news.fault(dev, reading(false)), null);
  assert.equal(news.fault(dev, reading(undefined)), null);
  assert.equal(news.fault(dev, reading(true))?.type, "fault");
  assert.equal(news.fault(dev, reading(true)), null, "a repeat is not news");
  assert.equal(news.fault(dev, reading(false))?.type, "fault_cleared");
});

test("tamper and battery flags: news when they appear or go away", () => {
  const news = new DeviceNews(60_000);
  assert.equal(news.flag(dev, "tamper", "tamper", { tamper: false }, undefined), null);
  assert.equal(news.flag(dev, "tamper", "tamper", { other: true }, undefined), null, "a report without the flag says nothing");
  assert.deepEqual(news.flag(dev, "battery_low", "battery_low", { battery_low: true }, 9)?.data, { model: "m", battery: 9 });
  assert.equal(news.flag(dev, "battery_low", "battery_low", { battery_low: true }, 8), null);
  assert.equal(news.flag(dev, "battery_low", "battery_low", { battery_low: false }, 80)?.type, "battery_ok");
  assert.equal(news.flag(dev, "tamper", "tamper", { tamper: true }, undefined)?.type, "tamper");
  assert.equal(news.flag(dev, "tamper", "tamper", { tamper: false }, undefined)?.type, "tamper_cleared");
});

test("a reading is due for the journal once per period", () => {
  const news = new DeviceNews(60_000);
  assert.equal(news.readingDue("det", 100_000), true);
  assert.equal(news.readingDue("det", 159_999), false);
  assert.equal(news.readingDue("other", 100_001), true, "per device");
  assert.equal(news.readingDue("det", 160_000), true);
});
