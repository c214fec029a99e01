// The power watch (gateway/src/power/watch.ts) against a real folder laid out like the kernel's
// power-supply class: mains pulled and put back, the battery running down, garbled attributes, supplies that
// vanish, a journal that refuses events for a while. Polls every few milliseconds; every wait is a bounded
// loop on a condition, never a guess at how fast the machine is.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { pino } from "pino";
import { powerSchema } from "../../gateway/src/config/power.js";
import { readPowerSnapshot } from "../../gateway/src/power/sysfs.js";
import { PowerWatch, type SetTimer } from "../../gateway/src/power/watch.js";
import type { EventDraft } from "../../protocol/envelope.js";
import { FakePowerSupplies, batterySupply, mainsSupply } from "../support/fake-power-supply.js";
import { waitFor } from "../support/wait.js";

const rigs: FakePowerSupplies[] = [];
after(async () => {
  for (const r of rigs) await r.dispose();
});

async function rig(): Promise<FakePowerSupplies> {
  const r = await FakePowerSupplies.create();
  rigs.push(r);
  return r;
}

interface Harness {
  watch: PowerWatch;
  drafts: EventDraft[];
  lines: string[];
  /** Resolves after the watch has read the supplies at least once more. */
  nextRead: () => Promise<void>;
}

function harness(dir: string, over: Record<string, unknown> = {}, append?: (d: EventDraft) => Promise<unknown>): Harness {
  const drafts: EventDraft[] = [];
  const lines: string[] = [];
  // Each read takes the time once: a counter tells one read from the next without the wall clock.
  let clock = 0;
  const watch = new PowerWatch({
    config: powerSchema.parse({ sysfsDir: dir, ...over }),
    append: append ?? (async (d) => void drafts.push(d)),
    log: pino({ level: "info" }, { write: (l: string) => void lines.push(l) }),
    now: () => ++clock,
    pollMs: 5,
  });
  const nextRead = async () => {
    const seen = clock;
    // Two more reads: the one under way may have read the files before the test changed them.
    await waitFor("two more reads", () => clock >= seen + 2);
    await waitFor("the read's events offered", () => (watch.status().readAt ?? 0) >= seen + 2);
  };
  return { watch, drafts, lines, nextRead };
}

const types = (d: EventDraft[]) => d.map((e) => e.type);

test("mains pulled, battery running down, mains back", async () => {
  const fs = await rig();
  await fs.add("AC", mainsSupply(1));
  await fs.add("BAT0", batterySupply(90, "Charging"));
  const h = harness(fs.dir);
  await h.watch.start();
  try {
    assert.deepEqual(h.watch.status(), {
      mains: "online", batteryPercent: 90, batteryStatus: "charging", batteryVoltageV: 4.15, readAt: 1, source: "mains",
      supplies: ["AC", "BAT0"], mainsSupplies: ["AC"], batterySupply: "BAT0", heldEvents: 0,
    });
    assert.equal(h.drafts.length, 0, "on mains at the start: no news");

    // The battery first: a read between the two writes then still sees mains, so no half-changed event.
    await fs.set("BAT0", { status: "Discharging", capacity: 60, voltage_now: 3_950_000 });
    await fs.set("AC", { online: 0 });
    await waitFor("mains_lost", () => h.drafts.length >= 1);
    assert.deepEqual(h.drafts[0], {
      kind: "device", type: "mains_lost", severity: "warning", device: "hub-power",
      data: { mains: "offline", batteryPercent: 60, batteryStatus: "discharging", batteryVoltageV: 3.95, readAt: h.drafts[0]?.data?.readAt },
    });
    assert.equal(h.watch.status().source, "battery");

    await fs.set("BAT0", { capacity: 24 });
    await waitFor("battery_low", () => h.drafts.length >= 2);
    // Jitter around the mark is no news.
    for (const c of [26, 25, 27, 24]) {
      await fs.set("BAT0", { capacity: c });
      await h.nextRead();
    }
    await fs.set("BAT0", { capacity: 9 });
    await waitFor("battery_critical", () => h.drafts.length >= 3);
    await fs.set("AC", { online: 1 });
    await fs.set("BAT0", { status: "Charging", capacity: 10 });
    await waitFor("mains_restored", () => h.drafts.length >= 4);
    await h.nextRead();
    assert.deepEqual(types(h.drafts), ["mains_lost", "battery_low", "battery_critical", "mains_restored"]);
    assert.deepEqual(h.drafts.map((d) => d.severity), ["warning", "warning", "high", "info"]);
    assert.equal(h.drafts[1]?.data?.batteryPercent, 24);
    assert.equal(h.drafts[2]?.data?.batteryPercent, 9);
    assert.equal(typeof h.drafts[3]?.data?.onBatteryS, "number");
  } finally {
    await h.watch.stop();
  }
  // Stopped: no more reads, no more events.
  const at = h.watch.status().readAt;
  await fs.set("AC", { online: 0 });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.watch.status().readAt, at);
  assert.equal(h.drafts.length, 4);
});

test("on battery at the start is reported at once", async () => {
  const fs = await rig();
  await fs.add("AC", mainsSupply(0));
  await fs.add("BAT0", batterySupply(20, "Discharging"));
  const h = harness(fs.dir);
  await h.watch.start();
  try {
    assert.deepEqual(types(h.drafts), ["mains_lost", "battery_low"], "offered before start() resolves");
  } finally {
    await h.watch.stop();
  }
});

test("garbled attributes read as unknown and never stop the watch", async () => {
  const fs = await rig();
  await fs.add("AC", mainsSupply(1));
  await fs.add("BAT0", batterySupply(80, "Charging"));
  const h = harness(fs.dir);
  await h.watch.start();
  try {
    const garbage: Array<[string, string, string | Buffer]> = [
      ["AC", "online", "banana\n"],
      ["BAT0", "capacity", "1e9\n"],
      ["BAT0", "status", "constructor\n"],
      ["BAT0", "voltage_now", "\u0000\u0001\xff"],
    ];
    for (const [s, a, b] of garbage) await fs.raw(s, a, b);
    await h.nextRead();
    const st = h.watch.status();
    assert.equal(st.mains, "unknown");
    assert.equal(st.batteryPercent, null);
    assert.equal(st.batteryStatus, "unknown");
    assert.equal(st.batteryVoltageV, null);
    assert.equal(st.source, "mains", "a reading that cannot tell keeps the last source known");
    assert.equal(h.drafts.length, 0);

    // Oversized, negative, out of range, a folder where a file should be.
    await fs.raw("AC", "online", `${"1".repeat(500)}\n`);
    await fs.raw("BAT0", "capacity", "-3");
    await fs.raw("BAT0", "voltage_now", "999999999999");
    await fs.remove("BAT0/status");
    await mkdir(path.join(fs.dir, "BAT0", "status"));
    await h.nextRead();
    assert.equal(h.watch.status().mains, "unknown");
    assert.equal(h.watch.status().batteryPercent, null);
    assert.equal(h.watch.status().batteryStatus, "unknown");

    // Sane again, now on battery: the watch is still going.
    await fs.set("BAT0", { capacity: 50 });
    await fs.set("AC", { online: 0 });
    await waitFor("mains_lost", () => h.drafts.length >= 1);
    assert.deepEqual(types(h.drafts), ["mains_lost"]);
    assert.equal(h.drafts[0]?.data?.batteryPercent, 50);
  } finally {
    await h.watch.stop();
  }
});

test("a supply that disappears, and comes back", async () => {
  const fs = await rig();
  await fs.add("AC", mainsSupply(1));
  await fs.add("BAT0", batterySupply(70, "Charging"));
  const h = harness(fs.dir);
  await h.watch.start();
  try {
    await fs.remove("AC");
    await h.nextRead();
    let st = h.watch.status();
    assert.deepEqual(st.supplies, ["BAT0"]);
    assert.equal(st.mains, "unknown");
    assert.equal(st.source, "mains", "the battery still charges");
    await fs.remove("BAT0");
    await h.nextRead();
    st = h.watch.status();
    assert.deepEqual([st.supplies, st.mains, st.batteryPercent, st.batterySupply], [[], "unknown", null, null]);
    assert.equal(h.drafts.length, 0, "a vanished supply is no mains loss");
    assert.ok(h.lines.some((l) => l.includes("no mains or battery supply found")), "said in the log");
    // The gauge comes back discharging, with no mains supply: a gauge-only UPS's status stands in.
    await fs.add("BAT0", batterySupply(40, "Discharging"));
    await waitFor("mains_lost", () => h.drafts.length >= 1);
    assert.deepEqual(types(h.drafts), ["mains_lost"]);
    assert.equal(h.drafts[0]?.data?.mains, "unknown");
    assert.ok(h.lines.some((l) => l.includes("the supplies changed")));
  } finally {
    await h.watch.stop();
  }
});

test("a sysfs folder that does not exist is nothing found, not a crash", async () => {
  const fs = await rig();
  const h = harness(path.join(fs.dir, "missing"));
  await h.watch.start();
  try {
    await h.nextRead();
    assert.deepEqual(h.watch.status().supplies, []);
    assert.equal(h.drafts.length, 0);
  } finally {
    await h.watch.stop();
  }
});

test("choosing supplies: named ones, or the system's battery and any online mains", async () => {
  const fs = await rig();
  // A laptop-style board: an unused USB port, an empty battery slot, a Bluetooth mouse's battery.
  await fs.add("ucsi-source-psy-1", { type: "USB", online: 0 });
  await fs.add("ac", mainsSupply(1));
  await fs.add("BAT0", batterySupply(0, "Unknown", { present: 0 }));
  await fs.add("hid-mouse-battery", batterySupply(5, "Discharging", { scope: "Device" }));
  await fs.add("max17048-0", { type: "Battery", capacity: 77, status: "Full", voltage_now: 4_190_000 });
  let s = await readPowerSnapshot({ dir: fs.dir, now: 1 });
  assert.deepEqual(
    [s.mains, s.mainsSupplies, s.batterySupply, s.batteryPercent, s.batteryStatus, s.batteryVoltageV],
    ["online", ["ac", "ucsi-source-psy-1"], "max17048-0", 77, "full", 4.19],
  );
  await fs.set("ac", { online: 0 });
  s = await readPowerSnapshot({ dir: fs.dir, now: 2 });
  assert.equal(s.mains, "offline", "every mains supply reads 0");
  await fs.raw("ac", "online", "?");
  s = await readPowerSnapshot({ dir: fs.dir, now: 3 });
  assert.equal(s.mains, "unknown", "one reads 0, one cannot be read");
  s = await readPowerSnapshot({ dir: fs.dir, mains: "ucsi-source-psy-1", battery: "hid-mouse-battery", now: 4 });
  assert.deepEqual([s.mains, s.mainsSupplies, s.batterySupply, s.batteryPercent], ["offline", ["ucsi-source-psy-1"], "hid-mouse-battery", 5], "named supplies are taken as named");
  s = await readPowerSnapshot({ dir: fs.dir, mains: "nope", battery: "gone", now: 5 });
  assert.deepEqual([s.mains, s.batterySupply, s.batteryPercent, s.batteryStatus], ["unknown", null, null, "unknown"]);
  // Entries that are no supply name are ignored.
  await mkdir(path.join(fs.dir, ".hidden"));
  s = await readPowerSnapshot({ dir: fs.dir, now: 6 });
  assert.ok(!s.supplies.includes(".hidden"));
});

test("an event the journal refuses is kept, offered again, and sent once, in order", async () => {
  const fs = await rig();
  await fs.add("AC", mainsSupply(1));
  await fs.add("BAT0", batterySupply(30, "Charging"));
  const taken: EventDraft[] = [];
  let refusing = true;
  let refusals = 0;
  const h = harness(fs.dir, {}, async (d) => {
    if (refusing) {
      refusals++;
      throw new Error("journal: commit failed (disk I/O error)");
    }
    taken.push(d);
  });
  await h.watch.start();
  try {
    await fs.set("BAT0", { status: "Discharging", capacity: 22 });
    await fs.set("AC", { online: 0 });
    await waitFor("several refusals", () => refusals >= 3);
    assert.equal(h.watch.status().heldEvents, 2, "mains_lost and battery_low held");
    assert.deepEqual(taken, []);
    refusing = false;
    await waitFor("held events taken", () => taken.length >= 2);
    await h.nextRead();
    assert.deepEqual(types(taken), ["mains_lost", "battery_low"]);
    assert.equal(h.watch.status().heldEvents, 0);
    const warnings = h.lines.filter((l) => l.includes("journal append failed"));
    assert.equal(warnings.length, 1, "one warning per outage, not one per read");
    assert.match(warnings[0] ?? "", /"type":"mains_lost"/);
    assert.ok(h.lines.some((l) => l.includes("journal append works again")));
  } finally {
    await h.watch.stop();
  }
});

test("an injected timer drives the polling", async () => {
  const fs = await rig();
  await fs.add("AC", mainsSupply(1));
  await fs.add("BAT0", batterySupply(90, "Charging"));
  const pending: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  const setTimer: SetTimer = (fn, ms) => {
    const t = { fn, ms, cancelled: false };
    pending.push(t);
    return () => void (t.cancelled = true);
  };
  const drafts: EventDraft[] = [];
  let now = 0;
  const watch = new PowerWatch({
    config: powerSchema.parse({ sysfsDir: fs.dir, pollS: 7 }),
    append: async (d) => void drafts.push(d),
    log: pino({ level: "silent" }),
    now: () => now,
    setTimer,
  });
  await watch.start();
  assert.equal(pending.length, 1);
  assert.equal(pending[0]?.ms, 7000, "pollS from the configuration");
  await fs.set("AC", { online: 0 });
  await fs.set("BAT0", { status: "Discharging" });
  now = 60_000;
  pending[0]?.fn();
  await waitFor("mains_lost", () => drafts.length === 1);
  await waitFor("the next read scheduled", () => pending.length === 2);
  await fs.set("AC", { online: 1 });
  now = 150_000;
  pending[1]?.fn();
  await waitFor("mains_restored", () => drafts.length === 2);
  assert.equal(drafts[1]?.data?.onBatteryS, 90);
  await waitFor("the next read scheduled", () => pending.length === 3);
  await watch.stop();
  assert.equal(pending[2]?.cancelled, true, "stop cancels the timer");
});
