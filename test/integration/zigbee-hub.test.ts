// The hub daemon with a Zigbee coordinator: herdsman's real Controller over the fake adapter, virtual Heiman and
// Tuya products, the real converters. Pairing over the control socket, alarms from each kind of device reaching
// the journal, Zigbee valves and sirens driven by the same rules as RS-485 ones, supervision, and the coordinator
// dropping out while the RS-485 side keeps guarding the home.
import { test, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import { callDaemon, streamDaemon } from "../../gateway/src/control/client.js";
import type { Envelope } from "../../protocol/envelope.js";
import type { SimLelDetector, SimValve } from "../../gateway/src/sim/devices.js";
import { waitFor } from "../support/hub-rig.js";
import { installFakeZigbee, type ZigbeeRig } from "../support/zigbee/rig.js";
import * as products from "../support/zigbee/products.js";
import { TuyaDpType, type VirtualDevice } from "../support/zigbee/virtual-device.js";
import { Endpoint } from "zigbee-herdsman/dist/controller/model/index.js";

const IAS = { alarm1: 1, alarm2: 2, tamper: 4, batteryLow: 8 };

interface Home {
  rig: ZigbeeRig;
  running: RunningHub;
  dir: string;
  configFile: string;
  sock: string;
  devices: Record<string, VirtualDevice>;
  events(): Promise<Envelope[]>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

function makeDevices(): Record<string, VirtualDevice> {
  return {
    smoke: products.heimanSmokeHS1SA(),
    gas1: products.heimanGasHS1CG(),
    gas3: products.heimanGasHS3CG(),
    co: products.heimanCoHS1CAE(),
    sos: products.heimanSosHS1EB(),
    siren: products.heimanSirenHS2WDE(),
    valve: products.tuyaGasValve(),
    fall: products.tuyaFallRadar(),
  };
}

/** Names and rooms per product key, as an installer would write them. */
const ENTRIES: Record<string, string> = {
  smoke: "id: hall-smoke, room: hall",
  gas1: "id: kitchen-gas, room: kitchen",
  gas3: "id: boiler-gas, room: boiler",
  co: "id: bedroom-co, room: bedroom, offlineAfterMs: {co}",
  sos: "id: bed-sos, room: bedroom",
  siren: "id: hall-siren, room: hall",
  valve: "id: zb-valve, room: kitchen, ratedCloseMs: 1500",
  fall: "id: bath-radar, room: bathroom",
};

function zigbeeYaml(d: Record<string, VirtualDevice>, extra = "", coOfflineMs = 600000, sirenSeconds = 30): string {
  return `zigbee:
  adapter: zstack
  path: /dev/ttyFAKE0
  channel: 20
  restartMinMs: 300
  restartMaxMs: 3000
  fallConfirmMs: 1500
  sirenSeconds: ${sirenSeconds}
${extra}  devices:
${Object.entries(d)
  .filter(([k]) => ENTRIES[k])
  .map(([k, v]) => `    - { ieee: "${v.ieee}", ${ENTRIES[k]!.replace("{co}", String(coOfflineMs))} }`)
  .join("\n")}
`;
}

const RS485 = `buses:
  - { name: line1, path: sim }
devices:
  - { id: rs-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen, pollMs: 200 }
  - { id: rs-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen, pollMs: 200 }
rules:
  gas: { clearHoldMs: 300 }
  co: { clearHoldMs: 300 }
  valve: { retryMs: 500 }
`;

async function startHome(opts: { devices?: Record<string, VirtualDevice>; extra?: string; dir?: string; coOfflineMs?: number; sirenSeconds?: number } = {}): Promise<Home> {
  const devices = opts.devices ?? makeDevices();
  const rig = installFakeZigbee({ devices: Object.values(devices) });
  cleanups.push(async () => rig.restore());
  const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), "anxin-zb-")));
  if (!opts.dir) cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const configFile = path.join(dir, "hub.yaml");
  await writeFile(configFile, `hub: { id: zb-hub, dataDir: ./data }\n${RS485}${zigbeeYaml(devices, opts.extra, opts.coOfflineMs, opts.sirenSeconds)}`);
  const running = await startHub(configFile, { log: createLogger({ name: "anxin-hub", level: process.env.ANXIN_TEST_LOG ?? "silent" }) });
  cleanups.push(() => running.stop());
  return {
    rig, running, dir, configFile, devices, sock: running.config.hub.controlSocket!,
    events: async () => (await running.journal.pending(100_000, Number.MAX_SAFE_INTEGER)).map((e) => e.envelope).sort((a, b) => a.seq - b.seq),
  };
}

/** Runs `anxin-hub pair` over the control socket while the given devices join once joining is open. */
async function pair(h: Home, joiners: VirtualDevice[], expect: string[], seconds = 20) {
  const progress: Array<{ event: string; [k: string]: unknown }> = [];
  let joined = false;
  const res = await streamDaemon(h.sock, { cmd: "pair", seconds, expect }, (p) => {
    const line = p as { event: string };
    progress.push(line);
    if (line.event === "open" && !joined) {
      joined = true;
      for (const d of joiners) void d.join();
    }
  });
  assert.equal(res.ok, true, JSON.stringify(res));
  return { progress, result: (res as { result: { devices: Array<{ ieee: string; outcome: string; id?: string; roles: string[]; model?: string; reason?: string; battery: number | null; linkquality: number | null }> } }).result };
}

async function pairAll(h: Home) {
  const all = Object.values(h.devices);
  return pair(h, all, all.map((d) => d.ieee));
}

const byType = async (h: Home, kind: string, type: string, device?: string) =>
  (await h.events()).filter((e) => e.kind === kind && e.type === type && (device === undefined || e.device === device));

test("pairing: joining open with a countdown, only the expected devices admitted, each reported with model, roles, link quality and battery", async () => {
  const devices = makeDevices();
  const stranger = products.tuyaPresenceZYM100();
  const h = await startHome({ devices: { ...devices, stranger } });
  const wanted = Object.values(devices);
  const t0 = Date.now();
  const { progress, result } = await pair(h, [...wanted, stranger], wanted.map((d) => d.ieee), 30);
  assert.ok(progress.some((p) => p.event === "open" && p.seconds === 30));
  assert.ok(progress.some((p) => p.event === "countdown" && typeof p.secondsLeft === "number" && p.secondsLeft <= 30), "a visible countdown");
  // Everything expected reported before the window ran out: the session ends early instead of holding the network open.
  assert.ok(Date.now() - t0 < 30_000);
  const rep = (ieee: string) => result.devices.find((d) => d.ieee === ieee)!;
  const expectRoles: Array<[VirtualDevice, string, string, string[]]> = [
    [devices.smoke!, "hall-smoke", "HS3SA/HS1SA", ["smoke_detector"]],
    [devices.gas1!, "kitchen-gas", "HS1CG", ["gas_detector"]],
    [devices.gas3!, "boiler-gas", "HS3CG", ["gas_detector"]],
    [devices.co!, "bedroom-co", "HS1CA-E", ["co_detector"]],
    [devices.sos!, "bed-sos", "HS1EB/HS1EB-E", ["sos_button"]],
    [devices.siren!, "hall-siren", "HS2WD-E", ["siren"]],
    [devices.valve!, "zb-valve", "ZN231392", ["valve"]],
    [devices.fall!, "bath-radar", "MIR-HE200-TY", ["presence", "fall_detector"]],
  ];
  for (const [d, id, model, roles] of expectRoles) {
    const r = rep(d.ieee);
    assert.equal(r.outcome, "paired", `${model}: ${JSON.stringify(r)}`);
    assert.equal(r.id, id);
    assert.equal(r.model, model);
    assert.deepEqual([...r.roles].sort(), [...roles].sort(), model);
    assert.equal(typeof r.linkquality, "number");
  }
  assert.equal(rep(devices.smoke!.ieee).battery, 100, "battery read through the converter (200 half-percent = 100 %)");
  const s = rep(stranger.ieee);
  assert.equal(s.outcome, "rejected");
  assert.match(s.reason!, /not in the --expect list/);
  assert.ok(progress.some((p) => p.event === "rejected" && p.ieee === stranger.ieee));
  assert.ok(progress.some((p) => p.event === "interviewing"));
  assert.ok(h.rig.adapter().permitJoinCalls.includes(30) && h.rig.adapter().permitJoinCalls.at(-1) === 0, "joining opened for the window and closed after");
  // Battery devices are asked to check in: the hub set up their battery reporting.
  const co = devices.co!.reportings.find((r) => r.cluster === "genPowerCfg");
  assert.ok(co && co.maxRepIntval === 300, JSON.stringify(devices.co!.reportings));
  // The devices command lists them with their state.
  const list = await callDaemon(h.sock, { cmd: "devices" });
  assert.ok(list.ok);
  const rows = (list as { result: Array<{ id: string; transport: string; model?: string }> }).result;
  assert.ok(rows.some((r) => r.id === "hall-smoke" && r.transport === "zigbee" && r.model === "HS3SA/HS1SA"));
  assert.ok(rows.some((r) => r.id === "rs-gas" && r.transport === "modbus"));
  const st = await callDaemon(h.sock, { cmd: "status" });
  assert.equal((st as { result: { zigbee: { state: string; devices: number } } }).result.zigbee.state, "up");
  assert.equal((st as { result: { zigbee: { state: string; devices: number } } }).result.zigbee.devices, 8);
});

/** The IAS WD startWarning frames a siren received, as (mode, duration). */
function warnings(siren: VirtualDevice): Array<{ mode: number; duration: number }> {
  return siren.received
    .filter((f) => f.cluster === "ssIasWd" && f.command === "startWarning")
    .map((f) => {
      const p = f.payload as { startwarninginfo: number; warningduration: number };
      return { mode: p.startwarninginfo >> 4, duration: p.warningduration };
    });
}

const offFrames = (valve: VirtualDevice) => valve.received.filter((f) => f.cluster === "genOnOff" && f.command === "off");

test("a gas alarm from a Zigbee detector closes the Zigbee valve (read-back verified) and the RS-485 one, and sounds the Zigbee siren; the model's own alarm bit is used", async () => {
  const h = await startHome();
  await pairAll(h);
  const { gas1, gas3, valve, siren } = h.devices;
  // HS3CG signals gas on alarm2: alarm1 from it is not a gas alarm (the converter knows the model).
  await gas3!.zoneStatus(IAS.alarm1);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await byType(h, "alarm", "gas")).length, 0, "alarm1 on an HS3CG is not gas");
  assert.equal(offFrames(valve!).length, 0);

  await gas3!.zoneStatus(IAS.alarm2);
  const alarm = await waitFor("gas alarm", async () => (await byType(h, "alarm", "gas"))[0]);
  assert.equal(alarm.severity, "critical");
  assert.equal(alarm.device, "boiler-gas");
  assert.equal(alarm.room, "boiler");
  // The device model for the relay's per-model false-alarm report: the converter's model.
  assert.equal((alarm.data as { model: string }).model, "HS3CG");
  assert.deepEqual(alarm.actions?.map((a) => `${a.action}:${a.target}`).sort(), ["siren_on:hall-siren", "valve_close:rs-valve", "valve_close:zb-valve"]);
  await waitFor("the Zigbee valve got its close command", () => offFrames(valve!).length >= 1);
  assert.equal(valve!.onOff(), false, "the virtual valve is closed");
  const verified = await waitFor("Zigbee valve verified by read-back", async () => (await byType(h, "device", "valve_closed", "zb-valve"))[0]);
  assert.equal(verified.actions?.[0]?.ok, true);
  await waitFor("RS-485 valve verified", async () => (await byType(h, "device", "valve_closed", "rs-valve"))[0], 10_000);
  await waitFor("siren started", () => warnings(siren!).some((w) => w.mode === 3 && w.duration === 30));

  // HS1CG signals gas on alarm1.
  await gas1!.zoneStatus(IAS.alarm1);
  await waitFor("the HS1CG detector counted as over", () => h.running.hub.rule.detectors["kitchen-gas"]?.over === true);

  // Both clear: the alarm clears after its hold time, the siren stops, the valves stay closed.
  await gas1!.zoneStatus(0);
  await gas3!.zoneStatus(0);
  await waitFor("gas cleared", async () => (await byType(h, "alarm_cleared", "gas"))[0], 5000);
  await waitFor("siren stopped", () => warnings(siren!).some((w) => w.mode === 0));
  assert.equal(valve!.onOff(), false, "the valve stays closed until reopened on site");
  // The on-site reopen counts the Zigbee detectors too (the CO detector, paired and quiet, counts as clear).
  await waitFor("RS-485 valve at rest", () => h.running.hub.rule.valves["rs-valve"]?.closed === true, 10_000);
  const ok = await callDaemon(h.sock, { cmd: "valve_reopen", by: "installer Li", osUser: "test" });
  assert.equal(ok.ok, true, JSON.stringify(ok));
  await waitFor("the Zigbee valve open again", () => valve!.onOff() === true);
});

test("reopen is refused while a Zigbee gas detector is in alarm or offline", async () => {
  const h = await startHome({ coOfflineMs: 1500 });
  await pairAll(h);
  await h.devices.gas1!.zoneStatus(IAS.alarm1);
  await waitFor("gas alarm", async () => (await byType(h, "alarm", "gas"))[0]);
  const r1 = await callDaemon(h.sock, { cmd: "valve_reopen", by: "neighbour", osUser: "test" });
  assert.equal(r1.ok, false);
  assert.match((r1 as { details: string[] }).details.join(), /gas alarm active/);
  await h.devices.gas1!.zoneStatus(0);
  await waitFor("gas cleared", async () => (await byType(h, "alarm_cleared", "gas"))[0], 5000);
  h.devices.co!.online = false;
  await waitFor("co offline", async () => (await byType(h, "device", "offline", "bedroom-co"))[0], 5000);
  const r2 = await callDaemon(h.sock, { cmd: "valve_reopen", by: "installer", osUser: "test" });
  assert.equal(r2.ok, false);
  assert.match((r2 as { details: string[] }).details.join(), /detector bedroom-co is offline/);
});

test("the anxin-hub pair command: countdown, a line per device, a summary and the exit code", async () => {
  const devices = { smoke: products.heimanSmokeHS1SA(), sos: products.heimanSosHS1EB() };
  const h = await startHome({ devices });
  const missing = "0x00124b0000000042";
  const child = spawn(process.execPath, ["--import", "tsx", path.resolve("gateway/src/cli/main.ts"), "pair", "--socket", h.sock, "--seconds", "4", "--expect", devices.smoke.ieee, devices.sos.ieee, missing], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.on("close", r));
  cleanups.push(async () => void child.kill("SIGKILL"));
  await waitFor("joining open", () => out.includes("joining open"), 30_000);
  await devices.smoke.join();
  await devices.sos.join();
  const code = await exited;
  assert.match(out, /joining open for 4 s, only for/);
  assert.match(out, /\d s left/);
  assert.match(out, new RegExp(`${devices.smoke.ieee}: PAIRED as hall-smoke  Heiman HS3SA/HS1SA  roles smoke_detector  link quality \\d+  battery 100%`));
  assert.match(out, new RegExp(`${devices.sos.ieee}: PAIRED as bed-sos .*roles sos_button`));
  assert.match(out, new RegExp(`${missing}: ABSENT: did not join within 4 s`));
  assert.match(out, /2 of 3 device\(s\) paired/);
  assert.equal(code, 1, `an expected device did not come: exit 1 (${err})`);
});

test("anxin-hub pair --json: standard output is the JSON alone, progress goes to standard error", async () => {
  const devices = { smoke: products.heimanSmokeHS1SA() };
  const h = await startHome({ devices });
  const child = spawn(process.execPath, ["--import", "tsx", path.resolve("gateway/src/cli/main.ts"), "pair", "--json", "--socket", h.sock, "--seconds", "3", "--expect", devices.smoke.ieee], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.on("close", r));
  cleanups.push(async () => void child.kill("SIGKILL"));
  await waitFor("joining open", () => err.includes("joining open"), 30_000);
  await devices.smoke.join();
  assert.equal(await exited, 0, err);
  const result = JSON.parse(out) as { devices: Array<{ ieee: string; outcome: string }> };
  assert.deepEqual(result.devices.map((d) => [d.ieee, d.outcome]), [[devices.smoke.ieee, "paired"]]);
  assert.match(err, new RegExp(`${devices.smoke.ieee}: PAIRED as hall-smoke`));
});

test("a Zigbee valve that does not close → critical valve_fault and the siren keeps sounding", async () => {
  const devices = makeDevices();
  const v = devices.valve!;
  // A jammed valve: it acknowledges the command but stays open (and says so).
  v.jammed = true;
  const h = await startHome({ devices });
  await pairAll(h);
  await devices.co!.zoneStatus(IAS.alarm1);
  const fault = await waitFor("valve_fault", async () => (await byType(h, "alarm", "valve_fault", "zb-valve"))[0], 8000);
  assert.equal(fault.severity, "critical");
  assert.equal((fault.data as { model: string }).model, h.running.zigbee!.byId("zb-valve")!.model);
  assert.match(String((fault.data as { reason: string }).reason), /not confirmed closed within its rated 1500 ms/);
  assert.ok(offFrames(v).length >= 2, "the close was re-sent while unverified");
  assert.equal(fault.actions?.[0]?.ok, false);
  await devices.co!.zoneStatus(0);
  await waitFor("co cleared", async () => (await byType(h, "alarm_cleared", "co"))[0], 5000);
  assert.equal(h.running.hub.rule.sirenOn, true, "the siren stays on while the valve is in fault");
  assert.ok(!warnings(devices.siren!).some((w) => w.mode === 0), "no stop sent to the siren");
});

test("smoke, CO, SOS (with a chirp), fall, tamper and battery-low from Zigbee devices reach the journal", async () => {
  const h = await startHome();
  await pairAll(h);
  const d = h.devices;

  await d.sos!.zoneStatus(IAS.alarm1);
  const sos = await waitFor("sos alarm", async () => (await byType(h, "alarm", "sos"))[0]);
  assert.equal(sos.severity, "critical");
  assert.equal(sos.device, "bed-sos");
  assert.equal((sos.data as { model: string }).model, "HS1EB/HS1EB-E");
  assert.deepEqual(sos.actions?.map((a) => `${a.action}:${a.target}`), ["siren_chirp:hall-siren"]);
  await waitFor("a chirp on the siren", () => warnings(d.siren!).some((w) => w.duration === 1));

  await d.smoke!.zoneStatus(IAS.alarm1);
  const smoke = await waitFor("smoke alarm", async () => (await byType(h, "alarm", "smoke"))[0]);
  assert.equal(smoke.severity, "critical");
  assert.equal(smoke.room, "hall");
  assert.equal((smoke.data as { model: string }).model, "HS3SA/HS1SA");
  assert.deepEqual(smoke.actions?.map((a) => a.action), ["siren_on"]);
  // HS2WD-E offers stop and emergency only: the nearest to fire it has.
  await waitFor("siren on for smoke", () => warnings(d.siren!).some((w) => w.mode === 3 && w.duration === 30));
  await d.smoke!.zoneStatus(0);
  await waitFor("smoke cleared", async () => (await byType(h, "alarm_cleared", "smoke"))[0]);
  await waitFor("siren stopped", () => warnings(d.siren!).some((w) => w.mode === 0));

  await d.co!.zoneStatus(IAS.alarm1);
  const co = await waitFor("co alarm", async () => (await byType(h, "alarm", "co"))[0]);
  assert.equal(co.device, "bedroom-co");
  assert.equal((co.data as { model: string }).model, "HS1CA-E");
  await d.co!.zoneStatus(0);

  // Fall: reported and nobody seen getting up within the confirmation window → alarm. This radar gives no
  // movement, so the flag clearing ends the alarm only after the window; and the radar taking its own flag
  // back is not the elder getting up, so a report withdrawn at once still raises.
  await d.fall!.tuyaDp(116, TuyaDpType.enum, 2);
  const fall = await waitFor("fall alarm", async () => (await byType(h, "alarm", "fall"))[0], 5000);
  assert.equal(fall.device, "bath-radar");
  assert.equal(fall.severity, "critical");
  assert.equal((fall.data as { model: string }).model, h.running.zigbee!.byId("bath-radar")!.model);
  assert.notEqual((fall.data as { model: string }).model, "");
  assert.equal((fall.data as { trigger: string }).trigger, "fall_report");
  assert.ok((fall.data as { afterMs: number }).afterMs >= 1500);
  await d.fall!.tuyaDp(116, TuyaDpType.enum, 0);
  await waitFor("fall cleared", async () => (await byType(h, "alarm_cleared", "fall"))[0]);
  await d.fall!.tuyaDp(116, TuyaDpType.enum, 2);
  await d.fall!.tuyaDp(116, TuyaDpType.enum, 0);
  await waitFor("a withdrawn report still raises", async () => ((await byType(h, "alarm", "fall")).length === 2 ? true : undefined), 5000);

  await d.gas1!.zoneStatus(IAS.tamper);
  const tamper = await waitFor("tamper", async () => (await byType(h, "device", "tamper", "kitchen-gas"))[0]);
  assert.equal(tamper.severity, "warning");
  await d.co!.zoneStatus(IAS.batteryLow);
  const low = await waitFor("battery_low", async () => (await byType(h, "device", "battery_low", "bedroom-co"))[0]);
  assert.equal(low.severity, "warning");
  assert.equal((await byType(h, "alarm", "co")).length, 1, "battery low is not a CO alarm");
});

test("a battery device that goes silent past its check-in window → offline event; heard again → online", async () => {
  const h = await startHome({ coOfflineMs: 1500 });
  await pairAll(h);
  const co = h.devices.co!;
  co.online = false;
  const off = await waitFor("offline", async () => (await byType(h, "device", "offline", "bedroom-co"))[0], 5000);
  assert.equal(off.severity, "warning");
  assert.match(String((off.data as { reason: string }).reason), /check-in window 2 s|check-in window 1 s/);
  // Nothing else went offline: mains devices are pinged, not timed out.
  assert.deepEqual((await byType(h, "device", "offline")).map((e) => e.device), ["bedroom-co"]);
  co.online = true;
  await co.report("genPowerCfg", { batteryPercentageRemaining: 180 });
  await waitFor("online", async () => (await byType(h, "device", "online", "bedroom-co"))[0]);
});

test("the coordinator dropping out is a fault event and is restarted with backoff, while an RS-485 gas alarm still closes its valve", async () => {
  const h = await startHome();
  await pairAll(h);
  const first = h.rig.adapter();
  first.disconnect();
  const fault = await waitFor("fault event", async () => (await byType(h, "device", "fault", "zigbee-coordinator"))[0]);
  assert.equal((fault.data as { component: string }).component, "zigbee");
  assert.match(String((fault.data as { reason: string }).reason), /adapterDisconnected/);
  assert.ok((fault.data as { retryInMs: number }).retryInMs >= 300);

  // The RS-485 side does not wait for Zigbee.
  const link = h.running.sim.get("line1")!;
  (link.devices.get(2) as SimLelDetector).setLel(35);
  await waitFor("RS-485 gas alarm", async () => (await byType(h, "alarm", "gas"))[0]);
  await waitFor("RS-485 valve closed and verified", async () => (await byType(h, "device", "valve_closed", "rs-valve"))[0], 10_000);
  assert.equal((link.devices.get(3) as SimValve).bank.get("di", 1), 1);

  const back = await waitFor("coordinator restarted", async () => (await byType(h, "device", "fault_cleared", "zigbee-coordinator"))[0], 10_000);
  assert.ok((back.data as { downForMs: number }).downForMs >= 300);
  assert.notEqual(h.rig.adapter(), first, "a new adapter was started");
  // The Zigbee devices work again from the database, without pairing: the alarm still active closes the Zigbee valve.
  await waitFor("the Zigbee valve closed after the restart", () => h.devices.valve!.onOff() === false, 10_000);
  await h.devices.smoke!.zoneStatus(IAS.alarm1);
  await waitFor("smoke alarm after the restart", async () => (await byType(h, "alarm", "smoke"))[0]);
});

test("the network key file is 0600, random, and reused across restarts; paired devices come back from the database", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-zb-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const devices = makeDevices();
  const h1 = await startHome({ dir, devices });
  await pair(h1, [devices.smoke!], [devices.smoke!.ieee]);
  const file = path.join(h1.running.config.hub.dataDir, "zigbee", "network.json");
  const st = await stat(file);
  assert.equal(st.mode & 0o777, 0o600);
  const net1 = JSON.parse(await readFile(file, "utf8")) as { networkKey: number[]; panID: number };
  assert.notDeepEqual(net1.networkKey, [1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 13], "not herdsman's public default key");
  assert.equal(net1.networkKey.length, 16);
  await h1.running.stop();
  h1.rig.restore();
  cleanups.splice(0);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));

  const h2 = await startHome({ dir, devices });
  assert.deepEqual(JSON.parse(await readFile(file, "utf8")), net1, "the same key, PAN and extended PAN");
  const given = (h2.rig.adapter() as unknown as { networkOptions: { networkKey?: number[]; panID: number } }).networkOptions;
  assert.equal(given.networkKey?.join(), net1.networkKey.join(), "herdsman was given the stored key");
  assert.equal(given.panID, net1.panID);
  assert.ok(h2.running.zigbee!.byId("hall-smoke"), "restored without pairing");
  await devices.smoke!.zoneStatus(IAS.alarm1);
  await waitFor("smoke alarm from the restored device", async () => (await byType(h2, "alarm", "smoke"))[0]);
});

test("a corrupt network file stops only the Zigbee side: the hub runs, says why, and guards the RS-485 devices", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-zb-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, "data", "zigbee"), { recursive: true });
  await writeFile(path.join(dir, "data", "zigbee", "network.json"), "{ half a file");
  const h = await startHome({ dir });
  const fault = await waitFor("fault event", async () => (await byType(h, "device", "fault", "zigbee-coordinator"))[0]);
  assert.match(String((fault.data as { reason: string }).reason), /not JSON: restore it from backup/);
  const st = (await callDaemon(h.sock, { cmd: "status" })) as { ok: true; result: { zigbee: { state: string; error: string } } };
  assert.equal(st.result.zigbee.state, "failed");
  const r = await callDaemon(h.sock, { cmd: "pair", seconds: 5 });
  assert.equal(r.ok, false);
  assert.match((r as { error: string }).error, /coordinator is not running/);
  (h.running.sim.get("line1")!.devices.get(2) as SimLelDetector).setLel(40);
  await waitFor("RS-485 valve closed and verified", async () => (await byType(h, "device", "valve_closed", "rs-valve"))[0], 10_000);
});

// ---- Second-read findings: each test below failed before its fix ------------------------------------------------

test("an alarm reaches the valve first even when herdsman's database cannot be written (the save is never on the alarm path)", async () => {
  const h = await startHome();
  await pairAll(h);
  const { gas3, valve } = h.devices;
  // The detector's herdsman device: its save rewrites and fsyncs the whole database file; here the disk fails.
  const zh = h.running.zigbee!.stack!.up!.getDeviceByIeeeAddr(gas3!.ieee)!;
  const offAtSave: number[] = [];
  const save = zh.save.bind(zh);
  // The disk heals before the daemon stops (herdsman saves every device on stop).
  cleanups.push(async () => void (zh.save = save));
  zh.save = () => {
    offAtSave.push(offFrames(valve!).length);
    throw new Error("EIO: i/o error, fsync");
  };
  await gas3!.zoneStatus(IAS.alarm2);
  await waitFor("gas alarm", async () => (await byType(h, "alarm", "gas", "boiler-gas"))[0]);
  await waitFor("the Zigbee valve got its close command", () => offFrames(valve!).length >= 1);
  await waitFor("the detector's state save was tried (and failed) after the close", () => offAtSave.length >= 1, 5000);
  assert.ok(offAtSave.every((n) => n >= 1), `the database save ran before the close frame went out: ${JSON.stringify(offAtSave)}`);
});

test("a converter value that is not true/false (undefined, a string) is never taken for clear air or a moved valve", async () => {
  const h = await startHome();
  await pairAll(h);
  const zb = h.running.zigbee!;
  await h.devices.gas3!.zoneStatus(IAS.alarm2);
  await waitFor("gas alarm", async () => (await byType(h, "alarm", "gas", "boiler-gas"))[0]);
  await waitFor("Zigbee valve verified", async () => (await byType(h, "device", "valve_closed", "zb-valve"))[0]);
  const gas = zb.byId("boiler-gas")!;
  const valve = zb.byId("zb-valve")!;
  for (const change of [{ gas: undefined }, { gas: "false" }, { gas: 0 }]) zb.emit("change", { device: gas, change, at: Date.now() });
  zb.emit("change", { device: valve, change: { state: undefined }, at: Date.now() });
  // clearHoldMs is 300 ms: well past it, the alarm must still stand and the valve still count as closed.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(h.running.hub.rule.detectors["boiler-gas"]?.flag, true, "the detector still counts as in alarm");
  assert.equal((await byType(h, "alarm_cleared", "gas")).length, 0, "bad input cleared the gas alarm");
  assert.equal(h.running.hub.rule.valves["zb-valve"]?.closed, true, "bad input moved the valve");
  // A real clear still clears.
  await h.devices.gas3!.zoneStatus(0);
  await waitFor("gas cleared", async () => (await byType(h, "alarm_cleared", "gas"))[0], 5000);
});

test("a Zigbee siren that misses its first command during an alarm is tried again soon, not after half its sound time", async () => {
  // One command sounds for an hour: before the fix the siren was only re-sent after 30 minutes.
  const h = await startHome({ sirenSeconds: 3600 });
  await pairAll(h);
  const siren = h.devices.siren!;
  siren.online = false;
  await h.devices.gas3!.zoneStatus(IAS.alarm2);
  await waitFor("gas alarm", async () => (await byType(h, "alarm", "gas"))[0]);
  assert.equal(warnings(siren).length, 0);
  await new Promise((r) => setTimeout(r, 300));
  siren.online = true;
  await waitFor("the siren sounds once it answers again", () => warnings(siren).some((w) => w.mode === 3 && w.duration === 3600), 10_000);
});

test("a Zigbee valve that closes without reporting it is verified by read-back, not by the converter's optimistic state", async () => {
  const devices = makeDevices();
  const v = devices.valve!;
  // This valve moves and answers reads, but never reports on its own.
  const report = v.report.bind(v);
  v.report = async (cluster, attrs, ep) => (cluster === "genOnOff" ? undefined : report(cluster, attrs, ep));
  const h = await startHome({ devices });
  await pairAll(h);
  await devices.co!.zoneStatus(IAS.alarm1);
  await waitFor("the Zigbee valve got its close command", () => offFrames(v).length >= 1);
  assert.equal(v.onOff(), false);
  const verified = await waitFor("Zigbee valve verified by read-back", async () => (await byType(h, "device", "valve_closed", "zb-valve"))[0], 8000);
  assert.equal(verified.actions?.[0]?.ok, true);
  assert.equal((await byType(h, "alarm", "valve_fault", "zb-valve")).length, 0, "no false valve_fault");
});

test("after a restart every paired device is back at once, even while a sleeping device does not answer a read", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-zb-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const devices = makeDevices();
  const h1 = await startHome({ dir, devices });
  await pairAll(h1);
  await h1.running.stop();
  h1.rig.restore();
  cleanups.splice(0);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  // Sleeping battery devices: a read of their battery is not answered (a real one can take minutes to time out).
  // eslint-disable-next-line @typescript-eslint/unbound-method -- saved to be put back; the patch calls it with .call(this)
  const read = Endpoint.prototype.read;
  Endpoint.prototype.read = function (this: Endpoint, cluster, ...rest) {
    return cluster === "genPowerCfg" ? new Promise(() => {}) : read.call(this, cluster, ...rest);
  } as typeof read;
  cleanups.push(async () => void (Endpoint.prototype.read = read));

  const h2 = await startHome({ dir, devices });
  // The valve was paired after six battery devices; it must not wait for them.
  await waitFor("the Zigbee valve restored", () => h2.running.zigbee!.byId("zb-valve") !== undefined, 5000);
  await devices.gas3!.zoneStatus(IAS.alarm2);
  await waitFor("gas alarm", async () => (await byType(h2, "alarm", "gas", "boiler-gas"))[0]);
  await waitFor("the restored Zigbee valve closed", () => devices.valve!.onOff() === false, 5000);
});

test("pairing a Zigbee valve sets its power-on behaviour to 'previous', so a power cut never opens a closed valve", async () => {
  const devices = { valve: products.tuyaGasValve(), gas3: products.heimanGasHS3CG() };
  // Shipped set to "on": after a power cut it would open by itself.
  devices.valve.setAttribute("genOnOff", "32770", 1);
  const h = await startHome({ devices });
  const { result } = await pair(h, [devices.valve], [devices.valve.ieee], 5);
  assert.equal(result.devices[0]?.outcome, "paired", JSON.stringify(result));
  assert.equal(devices.valve.attribute("genOnOff", "32770"), 2, "power-on behaviour is 'previous'");
});

test("a device that leaves is dropped from the gas rule: a detector's last 'clear' stops counting, and a valve paired again during the alarm is closed again", async () => {
  const h = await startHome();
  await pairAll(h);
  const { gas1, gas3, valve } = h.devices;
  await gas3!.zoneStatus(IAS.alarm2);
  await waitFor("gas alarm", async () => (await byType(h, "alarm", "gas"))[0]);
  await waitFor("Zigbee valve verified", async () => (await byType(h, "device", "valve_closed", "zb-valve"))[0]);
  assert.ok(h.running.hub.rule.detectors["kitchen-gas"], "the quiet HS1CG counts as a detector");

  gas1!.leave();
  await waitFor("the detector that left is out of the rule", () => h.running.hub.rule.detectors["kitchen-gas"] === undefined);
  valve!.leave();
  await waitFor("the valve that left is out of the rule", () => h.running.hub.rule.valves["zb-valve"] === undefined);
  await waitFor("left events", async () => (await byType(h, "device", "left")).length === 2);

  const before = offFrames(valve!).length;
  await pair(h, [valve!], [valve!.ieee]);
  await waitFor("the re-paired valve is commanded closed during the alarm", () => offFrames(valve!).length > before);
  assert.ok(h.running.hub.rule.valves["zb-valve"]?.commandedAt !== null);
});
