// Invariant 9 with Zigbee devices: a gas alarm raised by a Zigbee detector, with a Zigbee valve closed by it,
// survives a hub restart. The Zigbee side comes back after the rules' state was taken over: the valve is
// commanded closed again as soon as it is back, the siren sounds again, the detector counts only once heard
// again, and its clear clears the original episode. herdsman's real Controller over the fake adapter.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import { callDaemon, streamDaemon } from "../../gateway/src/control/client.js";
import type { Envelope } from "../../protocol/envelope.js";
import { waitFor } from "../support/hub-rig.js";
import { installFakeZigbee, type ZigbeeRig } from "../support/zigbee/rig.js";
import * as products from "../support/zigbee/products.js";
import type { VirtualDevice } from "../support/zigbee/virtual-device.js";

const IAS_ALARM2 = 2;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

interface Home {
  rig: ZigbeeRig;
  running: RunningHub;
  events(): Promise<Envelope[]>;
}

async function startHome(dir: string, devices: Record<string, VirtualDevice>): Promise<Home> {
  const rig = installFakeZigbee({ devices: Object.values(devices) });
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: zb-restart-hub, dataDir: ./data }
rules:
  gas: { clearHoldMs: 300 }
  valve: { retryMs: 500 }
zigbee:
  adapter: zstack
  path: /dev/ttyFAKE0
  channel: 20
  restartMinMs: 300
  restartMaxMs: 3000
  devices:
    - { ieee: "${devices.gas!.ieee}", id: boiler-gas, room: boiler }
    - { ieee: "${devices.valve!.ieee}", id: zb-valve, room: kitchen, ratedCloseMs: 1500 }
    - { ieee: "${devices.siren!.ieee}", id: hall-siren, room: hall }
`,
  );
  const running = await startHub(file, { log: createLogger({ name: "anxin-hub", level: process.env.ANXIN_TEST_LOG ?? "silent" }) });
  return { rig, running, events: async () => (await running.journal.pending(100_000, Number.MAX_SAFE_INTEGER)).map((e) => e.envelope).sort((a, b) => a.boot - b.boot || a.seq - b.seq) };
}

const offFrames = (valve: VirtualDevice) => valve.received.filter((f) => f.cluster === "genOnOff" && f.command === "off");
const warnings = (siren: VirtualDevice) => siren.received.filter((f) => f.cluster === "ssIasWd" && f.command === "startWarning");

test("a Zigbee gas alarm and the Zigbee valve it closed survive a restart: re-closed when back, siren again, one clear for the original episode", { timeout: 90_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-zb-restart-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const devices = { gas: products.heimanGasHS3CG(), valve: products.tuyaGasValve(), siren: products.heimanSirenHS2WDE() };

  // --- first run: pair, gas, the valve closes (verified by read-back), the siren sounds ------------------
  const h1 = await startHome(dir, devices);
  const all = Object.values(devices);
  let joined = false;
  const paired = await streamDaemon(h1.running.config.hub.controlSocket!, { cmd: "pair", seconds: 20, expect: all.map((d) => d.ieee) }, (p) => {
    if ((p as { event: string }).event === "open" && !joined) {
      joined = true;
      for (const d of all) void d.join();
    }
  });
  assert.equal(paired.ok, true, JSON.stringify(paired));
  await devices.gas.zoneStatus(IAS_ALARM2);
  await waitFor("Zigbee valve verified", async () => (await h1.events()).some((e) => e.type === "valve_closed" && e.device === "zb-valve"), 10_000);
  const since = h1.running.hub.rule.alarms.gas?.since;
  assert.ok(since);
  await h1.running.stop();
  h1.rig.restore();

  // While the hub is down the valve is opened by hand and the siren stops; the gas is still there.
  devices.valve.setAttribute("genOnOff", "onOff", 1);
  const offBefore = offFrames(devices.valve).length;
  const warnBefore = warnings(devices.siren).length;

  // --- second run ----------------------------------------------------------------------------------------
  const h2 = await startHome(dir, devices);
  cleanups.push(async () => {
    await h2.running.stop();
    h2.rig.restore();
  });
  assert.equal(h2.running.hub.rule.alarms.gas?.since, since, "the same episode, taken over before the Zigbee side is back");
  const refused = await callDaemon(h2.running.config.hub.controlSocket!, { cmd: "valve_reopen", by: "neighbour", osUser: "test" });
  assert.equal(refused.ok, false);
  assert.match((refused as { details: string[] }).details.join(), /gas alarm active/);
  await waitFor("the Zigbee valve commanded closed again once it is back", () => offFrames(devices.valve).length > offBefore, 10_000);
  await waitFor("the valve closed again", () => devices.valve.onOff() === false, 10_000);
  await waitFor("the Zigbee siren sounds again", () => warnings(devices.siren).length > warnBefore, 10_000);

  await devices.gas.zoneStatus(0);
  const cleared = await waitFor("gas cleared", async () => (await h2.events()).find((e) => e.kind === "alarm_cleared" && e.type === "gas"), 10_000);
  assert.equal((cleared.data as { since: number }).since, since, "the clear names the original episode");
  const ev = await h2.events();
  assert.equal(ev.filter((e) => e.kind === "alarm" && e.type === "gas").length, 1, "no second gas alarm");
  assert.equal(ev.filter((e) => e.kind === "alarm_cleared" && e.type === "gas").length, 1);
});
