// Roles come from the real converter definitions' exposes, alarms from the real fromZigbee converters over
// real ZCL bytes (never from hard-coded bits), and the network secrets are random, private and kept.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Zcl, type Events } from "zigbee-herdsman";
import { createLogger } from "../../lib/daemon/logger.js";
import { decode, definitionFor, exposesOf, setConverterLogger, type ZhDevice } from "../../gateway/src/transports/zigbee/definitions.js";
import { pickSirenMode, planRoles } from "../../gateway/src/transports/zigbee/roles.js";
import { Availability, checkInFor, DEFAULT_CHECK_IN } from "../../gateway/src/transports/zigbee/availability.js";
import { loadOrCreateNetworkSecrets } from "../../gateway/src/transports/zigbee/network-keys.js";
import { zigbeeSchema } from "../../gateway/src/config/schema.js";

const log = createLogger({ name: "test", level: "silent" });
setConverterLogger(log);
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Enough of a herdsman device for findByDevice and the converters (as after an interview). */
function fakeDevice(modelID: string, manufacturerName: string): ZhDevice {
  return { modelID, manufacturerName, type: "EndDevice", endpoints: [], customClusters: {}, ieeeAddr: "0x00000000000000aa", meta: {} } as unknown as ZhDevice;
}

async function plan(modelID: string, manufacturerName: string, forced?: Parameters<typeof planRoles>[2]) {
  const device = fakeDevice(modelID, manufacturerName);
  const def = await definitionFor(device);
  assert.ok(def, `a definition for ${modelID}/${manufacturerName}`);
  return { def, device, plan: planRoles(exposesOf(def, device), def.description, forced) };
}

test("roles from the exposes of each supported product's converter definition", async () => {
  const cases: Array<[string, string, string, string[]]> = [
    ["SmokeSensor-EM", "HEIMAN", "HS3SA/HS1SA", ["smoke_detector"]],
    ["RH3070", "HEIMAN", "HS1CG", ["gas_detector"]],
    ["GASSensor-N", "HEIMAN", "HS3CG", ["gas_detector"]],
    ["COSensor-EM", "HEIMAN", "HS1CA-E", ["co_detector"]],
    ["SOS-EM", "HEIMAN", "HS1EB/HS1EB-E", ["sos_button"]],
    ["WarningDevice", "HEIMAN", "HS2WD-E", ["siren"]],
    ["TS0001", "_TZ3000_o4cjetlm", "ZN231392", ["valve"]],
    ["GCM-300Z", "ShinaSystem", "GCM-300Z", ["valve"]],
    ["TS0601", "_TZE200_lu01t0zl", "MIR-HE200-TY", ["presence", "fall_detector"]],
    ["TS0601", "_TZE204_ztc6ggyl", "ZY-M100-L", ["presence"]],
    ["HS2FD-EF1-3.0", "HEIMAN", "HS2FD-EF1-3.0", ["presence", "fall_detector"]],
    ["FDS315", "OWON", "FDS315", ["fall_detector", "breathing_monitor"]],
  ];
  for (const [modelID, man, model, roles] of cases) {
    const { def, plan: p } = await plan(modelID, man);
    assert.equal(def.model, model);
    assert.deepEqual([...p.roles].sort(), [...roles].sort(), model);
    assert.deepEqual(p.problems, [], model);
  }
});

test("what each role reads and drives is taken from the converter: alarm properties, valve values, siren modes, fall values", async () => {
  const gas = (await plan("RH3070", "HEIMAN")).plan;
  assert.equal(gas.gas, "gas");
  assert.equal(gas.tamper, "tamper");
  assert.equal(gas.batteryLow, "battery_low");
  const co = (await plan("COSensor-EM", "HEIMAN")).plan;
  assert.equal(co.co, "carbon_monoxide");
  assert.equal(co.battery, "battery");
  const sos = (await plan("SOS-EM", "HEIMAN")).plan;
  assert.deepEqual(sos.sos, { property: "action", press: ["single", "double", "hold"] });
  const siren = (await plan("WarningDevice", "HEIMAN")).plan;
  assert.deepEqual(siren.siren, { property: "warning", modes: ["stop", "emergency"] });
  const onOff = (await plan("TS0001", "_TZ3000_o4cjetlm")).plan;
  assert.deepEqual(onOff.valve, { property: "state", closed: "OFF", open: "ON", close: "OFF", openCmd: "ON" });
  const shina = (await plan("GCM-300Z", "ShinaSystem")).plan;
  assert.deepEqual(shina.valve, { property: "gas_valve_state", closed: "CLOSE", open: "OPEN", close: "CLOSE", openCmd: "OPEN" });
  assert.deepEqual((await plan("TS0601", "_TZE200_lu01t0zl")).plan.fall, { property: "fall_down_status", fall: ["fall"], maybe: ["maybe_fall"] });
  assert.deepEqual((await plan("HS2FD-EF1-3.0", "HEIMAN")).plan.fall, { property: "fall_status", fall: ["fall_alarm"], maybe: ["fall_warning"] });
  assert.deepEqual((await plan("FDS315", "OWON")).plan.fall, { property: "status", fall: ["falling"], maybe: [] });
  assert.equal((await plan("FDS315", "OWON")).plan.breathing, "breathing_rate");
});

test("a plain relay is not a valve unless the install says so; impossible configured roles and role-less devices get a reason", async () => {
  const relay = await plan("TS0001", "_TZ3000_unknownxx");
  assert.deepEqual(relay.plan.roles, []);
  assert.match(relay.plan.problems[0]!, /exposes state.*none of it is a role Anxin uses/);
  const forced = await plan("TS0001", "_TZ3000_unknownxx", ["valve"]);
  assert.deepEqual(forced.plan.roles, ["valve"], "the installer knows it drives a valve");
  const wrong = await plan("RH3070", "HEIMAN", ["gas_detector", "siren"]);
  assert.deepEqual(wrong.plan.roles, ["gas_detector"]);
  assert.match(wrong.plan.problems[0]!, /configured role 'siren' is not possible/);
  assert.equal(await definitionFor(fakeDevice("no.such.model", "Nobody")), undefined, "an unknown model has no definition");
});

test("siren mode: the wanted one when offered, else the nearest the device has", () => {
  assert.equal(pickSirenMode(["stop", "burglar", "fire", "emergency"], "fire"), "fire");
  assert.equal(pickSirenMode(["stop", "emergency"], "fire"), "emergency");
  assert.equal(pickSirenMode(["stop", "emergency"], "emergency"), "emergency");
  assert.equal(pickSirenMode(["stop", "fire"], "emergency"), "fire");
});

/** A ZCL frame from the device, as herdsman hands it over, through the real fromZigbee converters. */
async function decodeHex(modelID: string, man: string, clusterId: number, hex: string) {
  const device = fakeDevice(modelID, man);
  const def = (await definitionFor(device))!;
  const raw = Buffer.from(hex, "hex");
  const frame = Zcl.Frame.fromBuffer(clusterId, Zcl.Header.fromBuffer(raw), raw, {});
  const msg = {
    type: `command${frame.command.name[0]!.toUpperCase()}${frame.command.name.slice(1)}`,
    cluster: frame.cluster.name, data: frame.payload, endpoint: { ID: 1 }, device, meta: { rawData: raw }, linkquality: 200, groupID: 0,
  } as unknown as Events.MessagePayload;
  return decode(def, msg, {}, () => {}, log);
}

const notification = (zonestatus: number) => `192a00${zonestatus.toString(16).padStart(2, "0")}0000170000`;

test("the gas alarm bit is per model: HS1CG alarms on alarm1, HS3CG on alarm2 (real converters over real ZCL bytes)", async () => {
  const ias = Zcl.Clusters.ssIasZone.ID;
  assert.equal((await decodeHex("RH3070", "HEIMAN", ias, notification(0b01))).gas, true);
  assert.equal((await decodeHex("RH3070", "HEIMAN", ias, notification(0b10))).gas, false);
  assert.equal((await decodeHex("GASSensor-N", "HEIMAN", ias, notification(0b01))).gas, false);
  assert.equal((await decodeHex("GASSensor-N", "HEIMAN", ias, notification(0b10))).gas, true);
  const smoke = await decodeHex("SmokeSensor-EM", "HEIMAN", ias, notification(0b1101));
  assert.equal(smoke.smoke, true);
  assert.equal(smoke.tamper, true);
  assert.equal(smoke.battery_low, true);
  assert.equal((await decodeHex("COSensor-EM", "HEIMAN", ias, notification(1))).carbon_monoxide, true);
  assert.equal((await decodeHex("SOS-EM", "HEIMAN", ias, notification(1))).action, "single");
});

test("check-in: the strictest window of a device's roles; defaults are far shorter than a day for safety roles", () => {
  assert.deepEqual(checkInFor(["presence", "fall_detector"]), DEFAULT_CHECK_IN.fall_detector);
  assert.deepEqual(checkInFor(["presence", "smoke_detector"]), DEFAULT_CHECK_IN.smoke_detector);
  for (const r of ["smoke_detector", "gas_detector", "co_detector", "sos_button", "valve", "siren"] as const) {
    const c = DEFAULT_CHECK_IN[r];
    assert.ok(c.windowS <= 3600, `${r}: window ${c.windowS} s`);
    assert.ok(c.windowS >= 3 * c.reportS, `${r}: at least three reports fit in the window`);
  }
});

test("network secrets: random on first start, 0600, reused after; a corrupt file is an error, never replaced", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-zbkey-"));
  dirs.push(dir);
  const a = await loadOrCreateNetworkSecrets(path.join(dir, "zigbee"));
  assert.equal(a.created, true);
  assert.equal((await stat(a.file)).mode & 0o777, 0o600);
  assert.equal(a.secrets.networkKey.length, 16);
  assert.notDeepEqual(a.secrets.networkKey, [1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 13]);
  assert.ok(a.secrets.panID >= 1 && a.secrets.panID <= 0xfffe);
  await chmod(a.file, 0o644);
  const b = await loadOrCreateNetworkSecrets(path.join(dir, "zigbee"));
  assert.equal(b.created, false);
  assert.deepEqual(b.secrets, a.secrets);
  assert.equal((await stat(a.file)).mode & 0o777, 0o600, "permissions put back");
  const other = await loadOrCreateNetworkSecrets(path.join(dir, "other"));
  assert.notDeepEqual(other.secrets.networkKey, a.secrets.networkKey);
  await writeFile(a.file, "{ not json");
  await assert.rejects(loadOrCreateNetworkSecrets(path.join(dir, "zigbee")), /not JSON: restore it from backup/);
  assert.equal(await readFile(a.file, "utf8"), "{ not json", "left for the installer to restore");
});

test("zigbee config: adapter, serial or tcp path, channel 11–26, ieee keys checked", () => {
  const ok = zigbeeSchema.safeParse({ adapter: "zstack", path: "tcp://192.168.1.20:6638", channel: 25, devices: [{ ieee: "0x000d6f0011a5e001", room: "hall", roles: ["smoke_detector"] }] });
  assert.equal(ok.success, true, JSON.stringify(ok.error?.issues));
  assert.equal(zigbeeSchema.parse({ adapter: "ember", path: "/dev/ttyUSB0" }).channel, 15);
  const issues = (v: unknown) => (zigbeeSchema.safeParse(v).error?.issues ?? []).map((i) => `${i.path.join(".")}: ${i.message}`);
  assert.match(issues({ adapter: "zstack", path: "/dev/x", channel: 27 }).join(), /channel/);
  assert.match(issues({ adapter: "zstack", path: "ttyUSB0" }).join(), /path: a serial device path/);
  assert.match(issues({ adapter: "xbee", path: "/dev/x" }).join(), /adapter/);
  assert.match(issues({ adapter: "zstack", path: "/dev/x", devices: [{ ieee: "00:11" }] }).join(), /devices\.0\.ieee: an IEEE address/);
  assert.match(issues({ adapter: "zstack", path: "/dev/x", devices: [{ ieee: "0x000d6f0011a5e001" }, { ieee: "0x000d6f0011a5e001" }] }).join(), /listed twice/);
  assert.match(issues({ adapter: "zstack", path: "/dev/x", devices: [{ ieee: "0x000d6f0011a5e001", roles: ["toaster"] }] }).join(), /roles/);
});

test("availability: a battery device silent past its window goes offline once and back online when heard; mains devices are pinged; a paused coordinator hides nothing", async () => {
  let now = 1_000_000;
  const av = new Availability({ pingMs: 120_000, now: () => now });
  const events: string[] = [];
  av.on("status", (id, online, reason) => events.push(`${id}:${online ? "online" : "offline"}:${reason}`));
  av.track({ id: "co", mains: false, windowMs: 960_000 }, now);
  assert.deepEqual(events, ["co:online:first frame"], "heard within its window at pairing: online");
  let pingOk = true;
  let pings = 0;
  av.track({ id: "valve", mains: true, windowMs: 120_000, ping: async () => { pings++; if (!pingOk) throw new Error("MAC no ack"); } });
  now += 959_000;
  av.check();
  assert.equal(events.length, 1);
  av.seen("co", now);
  now += 961_000;
  av.check();
  av.check();
  assert.match(events.at(-1)!, /^co:offline:no frame for 961 s \(check-in window 960 s\)$/);
  assert.equal(events.filter((e) => e.startsWith("co:offline")).length, 1, "one offline event, not one per check");
  av.seen("co", now);
  assert.equal(events.at(-1), "co:online:heard from again");
  assert.ok(pings >= 1, "the quiet mains valve was pinged");
  await new Promise((r) => setImmediate(r));
  assert.ok(!events.some((e) => e.startsWith("valve:offline")), "it answered");
  pingOk = false;
  now += 121_000;
  av.check();
  await new Promise((r) => setImmediate(r));
  assert.match(events.at(-1)!, /^valve:offline:no answer to ping .*MAC no ack/);
  // While the coordinator is down nothing can be heard: no offline events, and a full window after it is back.
  av.pause();
  now += 10_000_000;
  av.check();
  const before = events.length;
  av.resume();
  av.check();
  assert.equal(events.length, before);
});
