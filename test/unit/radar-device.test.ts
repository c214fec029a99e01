// The radar device on a controlled clock and a line the test drives: settling from the first byte (not the
// port opening), the check-in window, the quiet-time query, and echoes that must not pass for a live radar.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { RadarDevice, type ByteLine } from "../../gateway/src/devices/radar-device.js";
import { radarProfileSchema } from "../../gateway/src/profiles/radar-schema.js";
import { seeed5359, encodeReport, encodeProductInfo } from "../../gateway/src/transports/uart/seeed-5359.js";

class FakeLine extends EventEmitter implements ByteLine {
  written: Buffer[] = [];
  echo = false;
  start(): void {
    this.emit("up");
  }
  async stop(): Promise<void> {}
  write(frame: Buffer): boolean {
    this.written.push(frame);
    if (this.echo) this.emit("data", frame);
    return true;
  }
  feed(b: Buffer | Buffer[]): void {
    this.emit("data", Array.isArray(b) ? Buffer.concat(b) : b);
  }
}

const profile = radarProfileSchema.parse({
  id: "seeed-mr60fda1", model: "MR60FDA1", vendor: "Seeed Studio", transport: "uart-frame", protocol: "seeed-5359",
  roles: ["presence", "fall_detector"], gives: ["presence", "motion", "fall"], source: "test",
});

function rig(o: { settleMs?: number; offlineAfterMs?: number } = {}) {
  const clock = { now: 1_000_000 };
  const line = new FakeLine();
  const radar = new RadarDevice({ id: "r1", room: "bathroom", profile, codec: seeed5359, line, settleMs: o.settleMs ?? 1000, offlineAfterMs: o.offlineAfterMs ?? 4000, now: () => clock.now });
  const reports: unknown[] = [];
  const statuses: Array<[boolean, string]> = [];
  radar.on("report", (r) => reports.push(r));
  radar.on("status", (on, why) => statuses.push([on, why]));
  return { clock, line, radar, reports, statuses };
}

test("settling counts from the radar's first byte, not from the port opening", () => {
  const { clock, line, radar, reports } = rig({ settleMs: 1000 });
  radar.start();
  clock.now += 5000; // the port has been open a while; the radar was off
  line.feed(encodeReport({ presence: true }));
  assert.equal(reports.length, 0, "first byte: the radar has just powered up");
  clock.now += 999;
  line.feed(encodeReport({ motion: "moving" }));
  assert.equal(reports.length, 0);
  clock.now += 1;
  line.feed(encodeReport({ fall: "fall" }));
  assert.deepEqual(reports, [{ fall: "fall" }]);
  assert.equal(radar.stats().ignoredWhileSettling, 2);
  // A radar that reports only every few seconds (a vital-sign radar every 3 s, a fall radar on change) has
  // not powered up again: a gap shorter than its check-in window is no power cut.
  clock.now += 3900;
  line.feed(encodeReport({ fall: "clear" }));
  assert.deepEqual(reports.at(-1), { fall: "clear" });
  clock.now += 3000;
  line.feed(encodeReport({ fall: "fall" }));
  assert.deepEqual(reports.at(-1), { fall: "fall" }, "a fall after 3 s of quiet reaches the rules");
});

test("silence past the window is offline once; frames again are online and settle again after a power cut", () => {
  const { clock, line, radar, statuses, reports } = rig({ settleMs: 500, offlineAfterMs: 4000 });
  radar.start();
  line.feed(encodeReport({ presence: true }));
  assert.deepEqual(statuses, [[true, "first frame"]]);
  clock.now += 3999;
  radar.check(clock.now);
  assert.equal(statuses.length, 1);
  clock.now += 1;
  radar.check(clock.now);
  radar.check(clock.now + 10);
  assert.deepEqual(statuses[1], [false, "no valid frame for 4000 ms"]);
  assert.equal(statuses.length, 2, "one offline per silence");
  clock.now += 10_000;
  line.feed(encodeReport({ presence: true }));
  assert.deepEqual(statuses[2], [true, "valid frames again"]);
  assert.equal(reports.length, 0, "back from a silence: settling again");
});

test("a quiet radar is asked for a sign of life; an echo of the question is not an answer", () => {
  const { clock, line, radar, statuses } = rig({ offlineAfterMs: 4000 });
  line.echo = true; // a UART-to-RS-485 pair hears what the hub sends
  radar.start();
  line.feed(encodeReport({ presence: true }));
  const asked = line.written.length;
  clock.now += 2000;
  radar.check(clock.now);
  assert.ok(line.written.length > asked, "asked after half the window of quiet");
  assert.deepEqual(line.written.at(-1), seeed5359.livenessQuery());
  clock.now += 2000;
  radar.check(clock.now);
  assert.equal(statuses.at(-1)?.[0], false, "its own echoed questions did not keep a dead radar online");
  // A real answer carries the model's name.
  line.feed(encodeProductInfo("model", "MR60FDA1"));
  assert.equal(statuses.at(-1)?.[0], true);
  assert.equal(radar.stats().product.model, "MR60FDA1");
});

test("noise and corrupted frames keep nobody online and make no reading", () => {
  const { clock, line, radar, statuses, reports } = rig({ settleMs: 0, offlineAfterMs: 3000 });
  radar.start();
  const good = encodeReport({ fall: "fall" })[0]!;
  const bad = Buffer.from(good);
  bad[6] = 0x02; // fall state 2 with the checksum of state 1
  for (let i = 0; i < 50; i++) {
    line.feed([Buffer.from([0x00, 0x53, 0xff, 0x59]), bad]);
    clock.now += 100;
    radar.check(clock.now);
  }
  assert.equal(reports.length, 0);
  assert.deepEqual(statuses, [[false, "no valid frame since the hub started (3000 ms)"]]);
  assert.equal(radar.stats().counters.checksum, 50);
});
