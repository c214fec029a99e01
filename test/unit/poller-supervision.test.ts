// The RS-485 poller's supervision sleeps until the next check-in window ends instead of waking four times a
// second. This holds it to its windows on a simulated line with real timers: a device whose read hangs (the
// poll never returns, so nothing but the supervisor's own timer can judge it) goes offline at its deadline, a
// silent device (reads time out) likewise, and it comes back with its next good reading.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { loadProfiles } from "../../gateway/src/profiles/loader.js";
import { Bus } from "../../gateway/src/transports/modbus/bus.js";
import { SimLink } from "../../gateway/src/sim/sim-link.js";
import { simDeviceFor, type SimDevice } from "../../gateway/src/sim/devices.js";
import { Device } from "../../gateway/src/devices/device.js";
import { Poller, type DeviceStatus } from "../../gateway/src/devices/poller.js";
import { waitFor } from "../support/wait.js";

const OFFLINE_AFTER_MS = 400;

async function rig(t: { after(fn: () => unknown): void }) {
  const { profiles } = await loadProfiles(path.resolve("device-profiles"));
  const sim = simDeviceFor("greystone-cmd5b4");
  const link = new SimLink(new Map<number, SimDevice>([[1, sim]]), 9600);
  let hang = false;
  const read = link.read.bind(link);
  link.read = (...a) => (hang ? new Promise<number[]>(() => {}) : read(...a));
  const bus = new Bus(link, { name: "line1", quietMs: 5, reconnectMinMs: 100, reconnectMaxMs: 1000, now: Date.now });
  await bus.start();
  t.after(() => bus.stop());
  const device = new Device({ id: "co1", profile: profiles.get("greystone-cmd5b4")!, bus, unit: 1, room: "kitchen", pollMs: 100, offlineAfterMs: OFFLINE_AFTER_MS, timeoutMs: 150 });
  const poller = new Poller([device]);
  const changes: Array<{ status: DeviceStatus; at: number; reason: string }> = [];
  poller.on("status", (_d, status, reason) => changes.push({ status, at: Date.now(), reason }));
  poller.start();
  t.after(() => poller.stop());
  const until = (what: string, ok: () => boolean) => waitFor(what, ok, 5000);
  await until("online", () => poller.health("co1")?.status === "online");
  return { poller, sim, changes, until, hang: (on: boolean) => void (hang = on) };
}

test("a device whose read hangs goes offline at the end of its window, judged by the supervisor's own timer", async (t) => {
  const r = await rig(t);
  r.hang(true);
  const lastGood = r.poller.health("co1")!.lastGoodAt!;
  await r.until("offline", () => r.poller.health("co1")?.status === "offline");
  const off = r.changes.find((c) => c.status === "offline")!;
  assert.ok(off.at - lastGood > OFFLINE_AFTER_MS, `not before its window ended (${off.at - lastGood} ms)`);
  // At its deadline: a busy shared machine fires timers late, so the bound is generous.
  assert.ok(off.at - lastGood < OFFLINE_AFTER_MS + 500, `offline ${off.at - lastGood} ms after the last good reading`);
  assert.match(off.reason, /no reading for \d+ ms/);
});

test("a silent device goes offline after its window and comes back online with its next good reading", async (t) => {
  const r = await rig(t);
  r.sim.silent = true;
  await r.until("offline", () => r.poller.health("co1")?.status === "offline");
  assert.match(r.changes.at(-1)!.reason, /last error: .*no reply in time/);
  r.sim.silent = false;
  await r.until("online again", () => r.poller.health("co1")?.status === "online");
  assert.equal(r.changes.at(-1)!.reason, "readings again");
});

test("a poller without devices arms no timer", (t) => {
  const poller = new Poller([]);
  poller.start();
  t.after(() => poller.stop());
  assert.equal((poller as unknown as { supervisor?: NodeJS.Timeout }).supervisor, undefined);
});
