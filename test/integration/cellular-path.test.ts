// The second path end to end: the real hub daemon (simulated gas detector and valve), its cellular module an
// emulator on a real PTY pair, the real relay with its inbound-SMS webhook and call tree. The hub reaches the
// broker through a proxy standing for the home's broadband, which the tests cut or freeze; every SMS the
// module sends is carried to the relay's webhook as the telephony gateway would.
//  - broadband cut → the gas alarm arrives by SMS within 15 s, opens the incident, starts the call tree; the
//    hub's journal keeps it; broadband back → the full event drains over MQTT and is folded into the same row;
//    the same text again is a duplicate, a forged one is refused;
//  - a broker that takes events and answers nothing (frozen link) → SMS after the ack timeout;
//  - a module with a data session → the MQTT session moves to it and no SMS is needed; back to broadband;
//  - no SIM → a maintenance event at the relay; the installer's test fails and says why; with a SIM it passes.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import { provision } from "../../gateway/src/uplink/provision.js";
import { callDaemon } from "../../gateway/src/control/client.js";
import { checkSecondPath } from "../../gateway/src/cellular/commission-check.js";
import type { SimLelDetector } from "../../gateway/src/sim/devices.js";
import type { Envelope } from "../../protocol/envelope.js";
import { decodeCompactAlarm } from "../../protocol/sms-compact.js";
import { listIncidents } from "../../relay/src/incidents/repo.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import { signedHeaders } from "../../relay/src/telephony/signature.js";
import { startRelayForTest, type RelayRig } from "../support/relay-rig.js";
import { startTelephonyStub, type TelephonyStub } from "../support/telephony-stub.js";
import { waitFor } from "../support/hub-rig.js";
import { startPtyPair } from "../support/pty-pair.js";
import { startModemEmulator, type EmulatorState, type ModemEmulator } from "../support/modem-emulator.js";
import { startBroadbandProxy, type BroadbandProxy } from "../support/broadband-proxy.js";
import { batterySupply, FakePowerSupplies, mainsSupply } from "../support/fake-power-supply.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
const log = () => createLogger({ name: "test", level: process.env.ANXIN_TEST_LOG ?? "silent" });
const skip = spawnSync("socat", ["-V"], { stdio: "ignore" }).status === 0 ? false : "socat not found: apt-get install socat";

const SECRET = "cellular-gateway-secret-0123456789abcdef";
const INBOUND = "+8610690000001";

interface Rig {
  relay: RelayRig;
  gw: TelephonyStub;
}

async function startRelaySide(): Promise<Rig> {
  const gw = await startTelephonyStub({ secret: SECRET, defaultStep: { status: "no_answer", silent: true } });
  cleanups.push(() => gw.close());
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-cell-relay-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const secretFile = path.join(dir, "gw.secret");
  await writeFile(secretFile, SECRET, { mode: 0o600 });
  const relay = await startRelayForTest({ config: { telephony: { kind: "http", url: gw.url, secretFile, retries: 0, backoffMs: 0, timeoutMs: 3000 }, escalation: { pollMs: 50 }, sms: { inboundNumber: INBOUND } } });
  cleanups.push(() => relay.stop());
  return { relay, gw };
}

/** What the telephony gateway does with a text the relay's number received: its signed inbound webhook. */
async function deliverToRelay(relay: RelayRig, text: string): Promise<string | undefined> {
  const body = JSON.stringify({ from: "+8613700000009", to: INBOUND, text, receivedAt: Date.now(), messageId: `SM${randomBytes(8).toString("hex")}` });
  const res = await fetch(`${relay.httpUrl}/v1/telephony/inbound-sms`, { method: "POST", headers: { "content-type": "application/json", ...signedHeaders(SECRET, Date.now(), body) }, body });
  return ((await res.json()) as { result?: string }).result;
}

interface HubSide {
  hub: RunningHub;
  modem: ModemEmulator;
  proxy: BroadbandProxy;
  /** What the relay answered for each text the module sent, in order. */
  delivered: Array<{ text: string; result: string | undefined }>;
}

async function startHubSide(rig: Rig, id: string, o: { modem?: Partial<EmulatorState>; cellular?: string; extra?: string } = {}): Promise<HubSide> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-cell-hub-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const pty = await startPtyPair(path.join(dir, "ttyModem"), path.join(dir, "ttyModemDevice"));
  cleanups.push(() => pty.stop());
  const modem = await startModemEmulator(pty.deviceEnd, o.modem);
  cleanups.push(() => modem.stop());
  const delivered: HubSide["delivered"] = [];
  modem.onSms((sms) => void deliverToRelay(rig.relay, sms.text).then((result) => delivered.push({ text: sms.text, result })));
  const broker = new URL(rig.relay.mqttUrl);
  const proxy = await startBroadbandProxy({ host: broker.hostname, port: Number(broker.port) });
  cleanups.push(() => proxy.close());

  const { code } = await rig.relay.relay.registry.createClaim(id);
  // A care plan, so an alarm starts a call tree (the elder first).
  await setCarePlan(
    rig.relay.relay.db,
    id,
    parseCarePlan({ elder: { name: "Test Elder", phone: "+8613800000400", address: "Flat 4, Test Road", riskLevel: "low" }, contacts: [{ id: "son", name: "Test Son", phone: "+8613800000401", role: "emergency_contact" }], onsiteTeam: { name: "Team", phone: "+8613800000409" }, language: "en" }, "test"),
    { actor: "test", purpose: "setup", at: Date.now() },
  );
  await provision({ relay: rig.relay.httpUrl, hub: id, code, dataDir: path.join(dir, "data"), secretsFile: path.join(dir, "data", "secrets.json") });
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: ${id}, dataDir: ./data }
buses:
  - { name: line1, path: sim }
devices:
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen }
uplink: { url: "${proxy.url}", reconnectMinMs: 200, reconnectMaxMs: 1000 }
cellular:
  port: ${pty.hubEnd}
  relayNumber: "${INBOUND}"
  statusEveryS: 10
${o.cellular ?? "  data: { enabled: false }\n  test: { firstAfterS: 3600 }"}
${o.extra ?? ""}`,
  );
  const hub = await startHub(file, { log: log(), cellularTickMs: 100 });
  cleanups.push(() => hub.stop());
  await waitFor("uplink connected", () => hub.uplink?.status().state === "connected", 15_000);
  await waitFor("devices online", () => hub.hub.poller.devices().every((d) => hub.hub.health(d.id)?.status === "online"), 10_000);
  return { hub, modem, proxy, delivered };
}

const leak = (h: RunningHub) => (h.sim.get("line1")!.devices.get(2) as SimLelDetector).setLel(35);
const gasAt = async (rig: Rig, hub: string) => {
  const rows = await rig.relay.relay.store.listEvents({ hub, limit: 1000 });
  return rows.filter((r) => r.kind === "alarm" && r.type === "gas");
};
const alarmTexts = (m: ModemEmulator) => m.sent.filter((s) => / Agas /.test(s.text));

test("broadband cut: the gas alarm reaches the relay by SMS within 15 s and starts the call tree; broadband back: the full event drains and is folded in", { skip, timeout: 90_000 }, async () => {
  const rig = await startRelaySide();
  const s = await startHubSide(rig, "hub-cell-1");

  s.proxy.cut();
  const t0 = Date.now();
  leak(s.hub);
  const [row] = await waitFor("the gas alarm at the relay by SMS", async () => {
    const g = await gasAt(rig, "hub-cell-1");
    return g.length ? g : undefined;
  }, 20_000);
  const tookMs = Date.now() - t0;
  assert.ok(tookMs <= 15_000, `the alarm arrived ${tookMs} ms after the cut`);
  assert.equal(row!.path, "sms");
  assert.equal(alarmTexts(s.modem).length, 1, "one SMS for the alarm");
  assert.equal(alarmTexts(s.modem)[0]!.number, INBOUND);
  const incidents = await waitFor("an incident", async () => {
    const l = await listIncidents(rig.relay.relay.db, { hub: "hub-cell-1" });
    return l.length ? l : undefined;
  }, 10_000);
  assert.equal(incidents[0]!.type, "gas");
  await rig.gw.waitForCalls(1);
  const path = s.hub.cellular!.status().path!;
  assert.equal(path.mode, "down");
  assert.match(path.reason ?? "", /no MQTT connection/);
  // Nothing leaves the hub's journal before the relay's ack over MQTT: the alarm is still there.
  const pending = await s.hub.journal.pending(100, Number.MAX_SAFE_INTEGER);
  assert.ok(pending.some((r) => r.envelope.id === JSON.parse(row!.payload).id), "the alarm stays journaled");
  assert.equal(s.hub.hub.rule.valves["gas-valve"] !== undefined, true);

  // The same text again (a replay) is a duplicate; a forged one is refused; neither adds an event.
  const text = alarmTexts(s.modem)[0]!.text;
  const before = await rig.relay.relay.store.countEvents("hub-cell-1");
  assert.equal(await deliverToRelay(rig.relay, text), "duplicate");
  const forged = text.replace(/ c gas-valve | c kitchen-gas /, " c kitchen-gas2 ");
  assert.notEqual(forged, text);
  assert.equal(await deliverToRelay(rig.relay, forged), "refused");
  assert.equal(await rig.relay.relay.store.countEvents("hub-cell-1"), before);

  // Broadband back: the journal drains over MQTT; the relay folds the full event into the SMS's row.
  s.proxy.restore();
  await waitFor("journal drained", async () => (await s.hub.journal.stats()).rows === 0, 20_000);
  const [full] = await gasAt(rig, "hub-cell-1");
  assert.equal(full!.path, "sms+mqtt");
  assert.match((JSON.parse(full!.payload) as Envelope).sig ?? "", /^[0-9a-f]{64}$/, "the full signed envelope");
  assert.equal((await gasAt(rig, "hub-cell-1")).length, 1, "one gas event");
  assert.equal((await listIncidents(rig.relay.relay.db, { hub: "hub-cell-1" })).filter((i) => i.type === "gas").length, 1, "one incident");
  await waitFor("path back to broadband", () => s.hub.cellular!.status().path!.mode === "primary", 10_000);
  const sent = (await rig.relay.relay.store.listEvents({ hub: "hub-cell-1", limit: 1000 })).find((r) => r.kind === "audit" && r.type === "sms_sent");
  assert.ok(sent, "the hub's record of the SMS reached the relay");
  assert.equal(alarmTexts(s.modem).length, 1, "no second SMS for the same alarm");
});

test("a broker that takes events and never answers: the alarm goes by SMS once the ack timeout has passed", { skip, timeout: 90_000 }, async () => {
  const rig = await startRelaySide();
  const s = await startHubSide(rig, "hub-cell-2", { cellular: "  primary: { ackTimeoutS: 4 }\n  data: { enabled: false }\n  test: { firstAfterS: 3600 }" });
  s.proxy.freeze();
  const t0 = Date.now();
  leak(s.hub);
  await waitFor("the alarm's SMS", () => alarmTexts(s.modem)[0], 15_000);
  const tookMs = Date.now() - t0;
  assert.ok(tookMs >= 3500, `not before the ack timeout (${tookMs} ms)`);
  assert.match(s.hub.cellular!.status().path!.reason ?? "", /no ack from the relay/);
  await waitFor("stored by SMS", async () => (await gasAt(rig, "hub-cell-2"))[0]?.path === "sms", 10_000);
  s.proxy.restore();
  await waitFor("journal drained", async () => (await s.hub.journal.stats()).rows === 0, 20_000);
  assert.equal((await gasAt(rig, "hub-cell-2"))[0]!.path, "sms+mqtt");
});

test("a module with a data session: the MQTT session moves to it, the alarm needs no SMS, and moves back when the broadband returns", { skip, timeout: 90_000 }, async () => {
  const rig = await startRelaySide();
  const s = await startHubSide(rig, "hub-cell-3", {
    modem: { dataAddress: "127.0.0.2" },
    cellular: "  primary: { noticeAfterS: 1 }\n  data: { enabled: true, waitS: 4, probeEveryS: 5 }\n  test: { firstAfterS: 3600 }",
  });
  s.proxy.cut();
  await waitFor("on the data session", () => s.hub.cellular!.status().path!.mode === "cellular_data" && s.hub.uplink!.status().state === "connected", 20_000);
  assert.equal(s.hub.uplink!.status().boundTo, "127.0.0.2");
  assert.ok(s.proxy.cellularConnections >= 1, "the session came from the module's address");
  leak(s.hub);
  await waitFor("the alarm over MQTT on the data session", async () => (await gasAt(rig, "hub-cell-3"))[0], 10_000);
  assert.equal((await gasAt(rig, "hub-cell-3"))[0]!.path, "mqtt");
  await waitFor("the outage noticed at the relay", async () => (await rig.relay.relay.store.listEvents({ hub: "hub-cell-3", limit: 1000 })).find((r) => r.type === "primary_path_down"), 10_000);
  await new Promise((r) => setTimeout(r, 4500));
  assert.equal(alarmTexts(s.modem).length, 0, "acknowledged over the data session: no SMS");

  s.proxy.restore();
  await waitFor("back on broadband", () => s.hub.cellular!.status().path!.mode === "primary" && s.hub.uplink!.status().state === "connected", 20_000);
  assert.equal(s.hub.uplink!.status().boundTo, null);
  await waitFor("restored noticed at the relay", async () => (await rig.relay.relay.store.listEvents({ hub: "hub-cell-3", limit: 1000 })).find((r) => r.type === "primary_path_restored"), 10_000);
});

test("no SIM: a maintenance event reaches the relay and the installer's test says why it fails; with a SIM the test SMS arrives; mains loss is an event", { skip, timeout: 90_000 }, async () => {
  const rig = await startRelaySide();
  const supplies = await FakePowerSupplies.create();
  cleanups.push(() => supplies.dispose());
  await supplies.add("ACAD", mainsSupply(1));
  await supplies.add("BAT0", batterySupply(80, "Charging"));
  const s = await startHubSide(rig, "hub-cell-4", { modem: { sim: "absent" }, extra: `power: { sysfsDir: "${supplies.dir}", pollS: 1 }\n` });
  const noSim = await waitFor("cellular_no_sim at the relay", async () => (await rig.relay.relay.store.listEvents({ hub: "hub-cell-4", limit: 1000 })).find((r) => r.type === "cellular_no_sim"), 15_000);
  assert.equal(noSim.kind, "device");
  assert.equal(noSim.severity, "warning");

  // Commissioning's check says why the path would not carry an alarm.
  const atInstall = await checkSecondPath(s.hub.cellular!, "hub-cell-4", ["kitchen-gas", "gas-valve"], ["kitchen"]);
  assert.equal(atInstall.ok, false);
  assert.equal(atInstall.detail, "no usable SIM (absent)");
  assert.ok(atInstall.longestSms <= 160);

  const socket = s.hub.config.hub.controlSocket!;
  const failed = await callDaemon(socket, { cmd: "cellular_test" });
  assert.equal(failed.ok, false);
  assert.match(failed.ok ? "" : failed.error, /second path test failed: the module cannot send/);
  await waitFor("second_path_test_failed at the relay", async () => (await rig.relay.relay.store.listEvents({ hub: "hub-cell-4", limit: 1000 })).find((r) => r.type === "second_path_test_failed"), 10_000);

  // The installer puts the SIM in; the module says so (+CPIN: READY) and the hub checks again.
  s.modem.state.sim = "ready";
  s.modem.urc("+CPIN: READY");
  await waitFor("cellular_ok at the relay", async () => (await rig.relay.relay.store.listEvents({ hub: "hub-cell-4", limit: 1000 })).find((r) => r.type === "cellular_ok"), 15_000);
  const passed = await callDaemon(socket, { cmd: "cellular_test" });
  assert.equal(passed.ok, true, JSON.stringify(passed));
  const testSms = await waitFor("the test SMS", () => s.modem.sent.find((m) => / Dsecond_path_test /.test(m.text)), 5000);
  assert.equal(testSms.number, INBOUND);
  await waitFor("the relay took the test text", () => s.delivered.find((d) => d.text === testSms.text), 5000);
  // The broadband is up, so the same event also goes over MQTT; whichever comes first stores it.
  assert.ok(["stored", "duplicate"].includes(s.delivered.find((d) => d.text === testSms.text)!.result ?? ""));
  const testId = decodeCompactAlarm(testSms.text).id;
  await waitFor("the test recorded as come by SMS", async () => (await rig.relay.relay.store.getEvent(testId))?.path === "sms+mqtt", 10_000);
  const fixed = await checkSecondPath(s.hub.cellular!, "hub-cell-4", ["kitchen-gas", "gas-valve"], ["kitchen"]);
  assert.equal(fixed.ok, true, JSON.stringify(fixed));
  assert.equal(fixed.operator, "CHINA MOBILE");
  assert.equal(typeof fixed.mr, "number", "a test SMS went out");
  const tooLong = await checkSecondPath(s.hub.cellular!, `hub-${"x".repeat(60)}`, [`dev-${"y".repeat(60)}`], []);
  assert.equal(tooLong.ok, false);
  assert.match(tooLong.detail ?? "", /over 160: shorten the hub or device ids/);
  const status = s.hub.cellular!.status();
  assert.equal(status.path!.lastTest!.ok, true);
  assert.equal(status.modem.modem!.sim, "ready");

  // The router and the hub share the flat's power: a power cut is news before the home goes silent.
  await supplies.set("ACAD", mainsSupply(0));
  await supplies.set("BAT0", batterySupply(78, "Discharging"));
  const lost = await waitFor("mains_lost at the relay", async () => (await rig.relay.relay.store.listEvents({ hub: "hub-cell-4", limit: 1000 })).find((r) => r.type === "mains_lost"), 10_000);
  assert.equal(lost.severity, "warning");
  assert.equal(s.hub.power!.status().source, "battery");
});
