// The hub's rule tick runs on a timer it re-arms (SafetyHub.armTick): at its cadence only while something
// timed runs, otherwise it sleeps until inactivity could be due, at most 10 s. This runs a real SafetyHub on
// real timers (a sim RS-485 line, a short cadence) and counts ticks: none while the home is quiet, the cadence
// during a CO alarm, and a fall report that arrives during the long sleep judged at its deadline.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { rulesSchema } from "../../gateway/src/config/schema.js";
import { loadProfiles } from "../../gateway/src/profiles/loader.js";
import { Bus } from "../../gateway/src/transports/modbus/bus.js";
import { SimLink } from "../../gateway/src/sim/sim-link.js";
import { simDeviceFor, type SimCoDetector, type SimDevice } from "../../gateway/src/sim/devices.js";
import { Device } from "../../gateway/src/devices/device.js";
import { SafetyHub } from "../../gateway/src/hub/safety-hub.js";
import { DEFAULT_BEHAVIOUR, DEFAULT_INACTIVITY } from "../../gateway/src/rules/behaviour-params.js";
import type { BehaviourWatch } from "../../gateway/src/hub/behaviour-watch.js";
import type { EventDraft } from "../../protocol/envelope.js";
import { sleep, waitFor } from "../support/wait.js";

const log = createLogger({ name: "test", level: "silent" });
const TICK_MS = 20;

async function rig(t: { after(fn: () => unknown): void }) {
  const { profiles } = await loadProfiles(path.resolve("device-profiles"));
  const sims = new Map<number, SimDevice>([[1, simDeviceFor("greystone-cmd5b4")]]);
  const bus = new Bus(new SimLink(sims, 9600), { name: "line1", quietMs: 5, reconnectMinMs: 100, reconnectMaxMs: 1000, now: Date.now });
  await bus.start();
  t.after(() => bus.stop());
  const co = new Device({ id: "co1", profile: profiles.get("greystone-cmd5b4")!, bus, unit: 1, room: "kitchen", pollMs: 100, offlineAfterMs: 5000, timeoutMs: 500 });
  const drafts: EventDraft[] = [];
  const confirmMs = 300;
  const hub = new SafetyHub({
    devices: [co], buses: [bus], rules: rulesSchema.parse({}), log, tickMs: TICK_MS,
    journal: { append: async (d: EventDraft) => void drafts.push(d) },
    behaviour: { ...DEFAULT_BEHAVIOUR, defaults: { ...DEFAULT_BEHAVIOUR.defaults, fall: { ...DEFAULT_BEHAVIOUR.defaults.fall, confirmMs } } },
    inactivity: { ...DEFAULT_INACTIVITY, enabled: false },
  });
  let ticks = 0;
  const tickNow = hub.tickNow.bind(hub);
  hub.tickNow = () => {
    ticks++;
    tickNow();
  };
  hub.start();
  t.after(() => hub.stop());
  await waitFor("co1 online", () => hub.health("co1")?.status === "online", 5000);
  assert.equal(hub.health("co1")?.status, "online");
  // The behaviour rules are fed by radars and Zigbee devices; this rig has neither, so the test feeds them.
  const behaviour = (hub as unknown as { behaviour: BehaviourWatch }).behaviour;
  return { hub, drafts, sim: sims.get(1) as SimCoDetector, ticks: () => ticks, behaviour, confirmMs };
}

test("a quiet home is not ticked; a CO alarm is ticked at the cadence until it clears", async (t) => {
  const r = await rig(t);
  // Readings every 100 ms, nothing over a threshold: no tick in a second (the idle tick is 10 s away).
  const quiet0 = r.ticks();
  await sleep(1000);
  assert.ok(r.ticks() - quiet0 <= 1, `ticks while quiet: ${r.ticks() - quiet0}`);

  r.sim.setPpm(400);
  await waitFor("CO alarm", () => r.hub.rule.alarms.co, 3000);
  assert.ok(r.hub.rule.alarms.co, "CO alarm raised");
  const busy0 = r.ticks();
  await sleep(1000);
  // 50 at a 20 ms cadence; a busy shared machine fires timers late, so only a clear majority is asked.
  assert.ok(r.ticks() - busy0 >= 20, `ticks during the alarm: ${r.ticks() - busy0}`);
});

test("a fall report arriving while the hub sleeps is raised at its deadline, not at the next idle tick", async (t) => {
  const r = await rig(t);
  await sleep(300); // the hub has settled into its long sleep
  const before = r.ticks();
  const reportAt = Date.now();
  r.behaviour.apply({ type: "reading", device: "bath", room: "bathroom", gives: ["presence", "motion", "fall"], fall: "fall", presence: true, motion: "still" });
  const raised = await waitFor("fall raised", () => r.drafts.find((d) => d.kind === "alarm" && d.type === "fall"), 5000);
  assert.ok(raised, "fall raised");
  const after = Date.now() - reportAt;
  assert.ok(after >= r.confirmMs, `not before its deadline (${after} ms)`);
  // The cadence after the report: a tick lands within one period of the deadline (slack for a busy machine).
  assert.ok(after < r.confirmMs + 1500, `raised ${after} ms after the report (deadline ${r.confirmMs} ms)`);
  assert.ok(r.ticks() - before >= 3, "ticked at the cadence while the report was pending");
  // Raised and still lying there: the alarm is a timed part too (it clears on getting up), so ticks go on.
  const raised0 = r.ticks();
  await sleep(300);
  assert.ok(r.ticks() - raised0 >= 3, "ticks go on while the alarm is raised");
});
