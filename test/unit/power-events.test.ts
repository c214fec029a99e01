// The hub's power events (gateway/src/power/events.ts): mains lost and restored, the battery's low and
// critical marks with re-arming REARM_POINTS above them, the first reading, and readings that cannot tell.
import { test } from "node:test";
import assert from "node:assert/strict";
import { powerSchema } from "../../gateway/src/config/power.js";
import { POWER_DEVICE_ID, REARM_POINTS, powerSource, powerStep, type PowerState } from "../../gateway/src/power/events.js";
import type { PowerSnapshot } from "../../gateway/src/power/sysfs.js";

const config = powerSchema.parse({}); // low 25, critical 10

let clock = 1_000_000;
function snap(over: Partial<PowerSnapshot> = {}): PowerSnapshot {
  clock += 5000;
  return {
    mains: "online", batteryPercent: 90, batteryStatus: "charging", batteryVoltageV: 4.1, readAt: clock,
    supplies: ["AC", "BAT0"], mainsSupplies: ["AC"], batterySupply: "BAT0", ...over,
  };
}
const onBattery = (batteryPercent: number | null, over: Partial<PowerSnapshot> = {}) => snap({ mains: "offline", batteryStatus: "discharging", batteryPercent, ...over });

/** Feeds the readings in turn; the event types of each step. */
function run(readings: PowerSnapshot[], from: PowerState | null = null): { types: string[][]; state: PowerState | null } {
  let state = from;
  const types: string[][] = [];
  for (const r of readings) {
    const step = powerStep(state, r, config);
    state = step.state;
    types.push(step.events.map((e) => e.type));
  }
  return { types, state };
}

test("the configuration's defaults and messages", () => {
  assert.deepEqual(config, { sysfsDir: "/sys/class/power_supply", pollS: 5, lowPercent: 25, criticalPercent: 10 });
  const problems = (v: unknown) => {
    const r = powerSchema.safeParse(v);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  assert.deepEqual(problems({ mains: "AC", battery: "max17048-0", pollS: 1 }), []);
  assert.match(problems({ pollS: 0 }).join(), /pollS: at least 1 second/);
  assert.match(problems({ pollS: 2.5 }).join(), /pollS: whole seconds/);
  assert.match(problems({ lowPercent: 101 }).join(), /lowPercent: 0 to 100/);
  assert.match(problems({ lowPercent: 10, criticalPercent: 10 }).join(), /criticalPercent: criticalPercent must be below lowPercent/);
  assert.match(problems({ battery: "../../etc" }).join(), /battery: a supply name/);
  assert.match(problems({ mains: "AC/online" }).join(), /mains: a supply name/);
  assert.match(problems({ mains: "" }).join(), /mains: a supply name/);
  assert.match(problems({ gpio: 4 }).join(), /gpio/);
});

test("where the power comes from", () => {
  assert.equal(powerSource(snap()), "mains");
  assert.equal(powerSource(snap({ mains: "offline", batteryStatus: "charging" })), "battery", "the mains supply decides");
  assert.equal(powerSource(snap({ mains: "unknown", batteryStatus: "discharging" })), "battery", "a gauge-only UPS: its status stands in");
  assert.equal(powerSource(snap({ mains: "unknown", batteryStatus: "full" })), "mains");
  assert.equal(powerSource(snap({ mains: "unknown", batteryStatus: "not_charging" })), "unknown");
  assert.equal(powerSource(snap({ mains: "unknown", batteryStatus: "unknown" })), "unknown");
});

test("first reading: only a problem is news", () => {
  assert.deepEqual(powerStep(null, snap(), config).events, [], "on mains");
  assert.deepEqual(powerStep(null, snap({ batteryPercent: 5 }), config).events, [], "a low battery charging on mains");
  assert.deepEqual(powerStep(null, snap({ mains: "unknown", batteryStatus: "unknown", batteryPercent: 60 }), config).events, [], "cannot tell, battery fine");
  const r = onBattery(60, { readAt: 7000 });
  assert.deepEqual(powerStep(null, r, config).events, [
    {
      kind: "device", type: "mains_lost", severity: "warning", device: POWER_DEVICE_ID,
      data: { mains: "offline", batteryPercent: 60, batteryStatus: "discharging", batteryVoltageV: 4.1, readAt: 7000 },
    },
  ]);
  assert.deepEqual(run([onBattery(20)]).types, [["mains_lost", "battery_low"]]);
  assert.deepEqual(run([onBattery(8)]).types, [["mains_lost", "battery_critical"]], "critical alone: it says all low would");
  assert.deepEqual(run([snap({ mains: "unknown", batteryStatus: "unknown", batteryPercent: 8 })]).types, [["battery_critical"]], "cannot tell the source: a nearly empty battery is still news");
});

test("mains lost and restored, with the time on battery", () => {
  const a = snap();
  const lost = onBattery(80);
  const restored = snap({ batteryPercent: 78 });
  const s1 = powerStep(null, a, config);
  const s2 = powerStep(s1.state, lost, config);
  assert.deepEqual(s2.events.map((e) => [e.type, e.severity]), [["mains_lost", "warning"]]);
  assert.equal(s2.events[0]?.data?.batteryPercent, 80);
  const s3 = powerStep(s2.state, onBattery(79), config);
  assert.deepEqual(s3.events, [], "still on battery");
  const s4 = powerStep(s3.state, restored, config);
  assert.deepEqual(s4.events.map((e) => [e.type, e.severity]), [["mains_restored", "info"]]);
  assert.equal(s4.events[0]?.data?.onBatteryS, (restored.readAt - lost.readAt) / 1000);
  assert.equal(s4.events[0]?.data?.batteryPercent, 78);
  assert.deepEqual(powerStep(s4.state, snap(), config).events, [], "still on mains");
});

test("a reading that cannot tell keeps the last source known", () => {
  const garbled = snap({ mains: "unknown", batteryStatus: "unknown", batteryPercent: null });
  assert.deepEqual(run([snap(), garbled, snap()]).types, [[], [], []], "on mains, a garbled read is no news");
  assert.deepEqual(run([snap(), garbled, onBattery(70)]).types, [[], [], ["mains_lost"]]);
  assert.deepEqual(run([onBattery(70), garbled, onBattery(69)]).types, [["mains_lost"], [], []], "on battery, a garbled read is no restore");
  assert.deepEqual(
    run([snap(), snap({ mains: "unknown", batteryStatus: "unknown", batteryPercent: 20 })]).types,
    [[], []],
    "a low battery while the last known source is mains is charging, not news",
  );
  // A gauge with no value keeps the mark: no low event out of nothing, none repeated after it.
  assert.deepEqual(run([onBattery(24), onBattery(null), onBattery(24)]).types, [["mains_lost", "battery_low"], [], []]);
});

test("battery marks while on battery, once per crossing", () => {
  const percents = [40, 30, 26, 25, 24, 20, 15, 11, 10, 9, 5];
  const { types } = run([snap(), ...percents.map((p) => onBattery(p))]);
  assert.deepEqual(types, [[], ["mains_lost"], [], [], ["battery_low"], [], [], [], [], ["battery_critical"], [], []]);
});

test("hysteresis: jitter around a mark is one event; re-armed REARM_POINTS above it", () => {
  assert.equal(REARM_POINTS, 5);
  const jitter = [26, 25, 26, 25, 27, 24, 29, 25];
  assert.deepEqual(run(jitter.map((p) => onBattery(p))).types.flat(), ["mains_lost", "battery_low"], "below 30 never re-arms");
  // 30 is 25 + 5: re-armed, so falling to 25 again is news.
  assert.deepEqual(run([25, 30, 25].map((p) => onBattery(p))).types, [["mains_lost", "battery_low"], [], ["battery_low"]]);
  assert.deepEqual(run([10, 11, 10, 14, 9].map((p) => onBattery(p))).types.flat(), ["mains_lost", "battery_critical"]);
  // Critical re-arms at 15 and drops back to low (no event going up), then critical again is news.
  const { types, state } = run([10, 15, 12, 10].map((p) => onBattery(p)));
  assert.deepEqual(types, [["mains_lost", "battery_critical"], [], [], ["battery_critical"]]);
  assert.equal(state?.band, "critical");
  assert.deepEqual(run([10, 15, 30, 25].map((p) => onBattery(p))).types, [["mains_lost", "battery_critical"], [], [], ["battery_low"]]);
});

test("every time on battery starts afresh; on mains a low battery is no news", () => {
  const { types } = run([onBattery(20), onBattery(8), snap({ batteryPercent: 8 }), snap({ batteryPercent: 12 }), onBattery(12), onBattery(10)]);
  assert.deepEqual(types, [
    ["mains_lost", "battery_low"],
    ["battery_critical"],
    ["mains_restored"],
    [],
    ["mains_lost", "battery_low"],
    ["battery_critical"],
  ]);
});

test("the events' data", () => {
  const { state } = run([snap(), onBattery(30)]);
  const low = powerStep(state, onBattery(25, { batteryVoltageV: null, readAt: 99 }), config).events[0];
  assert.deepEqual(low, {
    kind: "device", type: "battery_low", severity: "warning", device: "hub-power",
    data: { mains: "offline", batteryPercent: 25, batteryStatus: "discharging", batteryVoltageV: null, readAt: 99, thresholdPercent: 25 },
  });
  const custom = powerSchema.parse({ lowPercent: 50, criticalPercent: 20 });
  const crit = powerStep(null, onBattery(20), custom).events[1];
  assert.equal(crit?.type, "battery_critical");
  assert.equal(crit?.severity, "high");
  assert.equal(crit?.data?.thresholdPercent, 20);
});
