// The Pi-class calibration's arithmetic and the parsing of a bench's result lines (bench/pi-class.ts); the
// cgroup part needs root and is exercised by bench/pi-hub.bench.ts itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PI_REFERENCE, benchLines, quotaPercentFor } from "../../bench/pi-class.js";

test("the quota is the Pi's sysbench figure over this machine's, as a percentage of one core", () => {
  assert.equal(quotaPercentFor("pi4", PI_REFERENCE.boards.pi4.eventsPerSec * 2), 50);
  assert.equal(quotaPercentFor("pi3", PI_REFERENCE.boards.pi3.eventsPerSec * 4), 25);
  // A machine slower than the board would need more than a core: the figure says so rather than capping it.
  assert.ok(quotaPercentFor("pi4", 1000) > 100);
});

test("bench result lines are found by name among the other output; malformed ones are skipped", () => {
  const out = [
    "machine: x",
    '{"bench":"zigbee","idle":{"cpuPct":0.5}}',
    "| table | row |",
    '{"bench":"broken"',
    '{"bench":"zigbee","idle":{"cpuPct":0.7}}',
    '{"bench":"valve-latency","idleP99Ms":2}',
  ].join("\n");
  const lines = benchLines(out);
  assert.deepEqual([...lines.keys()].sort(), ["valve-latency", "zigbee"]);
  assert.deepEqual(lines.get("zigbee"), { bench: "zigbee", idle: { cpuPct: 0.7 } });
});
