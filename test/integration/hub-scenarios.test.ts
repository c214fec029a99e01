// Whole-hub scenarios against the independent Modbus slave (pymodbus) emulating the CO detector,
// the LEL detector and the motorised valve by their manuals.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { callDaemon } from "../../gateway/src/control/client.js";
import { benchAvailable, startBench, type Bench } from "../support/modbus-bench.js";
import { startHubRig, waitFor, type HubRig } from "../support/hub-rig.js";

const avail = benchAvailable();
const skip = avail.ok ? false : avail.reason;
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const CONFIG = `buses:
  - { name: line1, path: "{{path}}", quietMs: 200, reconnectMinMs: 200 }
devices:
  - { id: kitchen-co, profile: greystone-cmd5b4, bus: line1, unit: 1, room: kitchen, pollMs: 200 }
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen, pollMs: 200 }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen, pollMs: 500, ratedCloseMs: 4000 }
  - { id: hall-siren, profile: modbus-relay-siren, bus: line1, unit: 4, room: hall }
rules:
  gas: { clearHoldMs: 1000 }
  co: { clearHoldMs: 1000 }
`;

async function rig(): Promise<{ bench: Bench; hub: HubRig }> {
  const bench = await startBench({ devices: { co: 1, lel: 2, valve: 3, relay: 4 } });
  cleanups.push(() => bench.stop());
  const hub = await startHubRig(bench.path, CONFIG);
  cleanups.push(() => hub.stop());
  await waitFor("every device online", () => hub.running.hub.poller.devices().every((d) => hub.running.hub.health(d.id)?.status === "online"));
  return { bench, hub };
}

const sock = (h: HubRig) => h.running.config.hub.controlSocket!;

test("CO rises → valve closed and verified by its limit switch → alarm journaled; reopen refused until clear, then done on site", { skip }, async () => {
  const { bench, hub } = await rig();
  const decisions: string[] = [];
  hub.running.hub.on("decision", (d) => decisions.push(d.do));

  await bench.slave.send({ cmd: "co", unit: 1, ppm: 350 });
  await waitFor("valve verified", () => decisions.includes("valve_verified"), 10_000);
  const di = await bench.slave.send({ cmd: "get", unit: 3, table: "di", address: 0, count: 3 });
  assert.deepEqual(di.values, [0, 1, 0], "the slave's valve is at its closed limit");
  assert.ok(((await bench.slave.send({ cmd: "stats", unit: 3 })).close_commands ?? 0) >= 1);

  const ev = await hub.events();
  const alarm = ev.find((e) => e.kind === "alarm" && e.type === "co");
  assert.ok(alarm, "co alarm journaled");
  assert.equal(alarm.severity, "critical");
  assert.equal(alarm.device, "kitchen-co");
  assert.equal((alarm.data as { value: number }).value, 350);
  // The device model for the relay's per-model false-alarm report: an RS-485 device's profile id.
  assert.equal((alarm.data as { model: string }).model, "greystone-cmd5b4");
  assert.deepEqual(alarm.actions?.map((a) => `${a.action}:${a.target}`), ["valve_close:gas-valve", "siren_on:hall-siren"]);
  const siren = await bench.slave.send({ cmd: "get", unit: 4, table: "co", address: 0, count: 1 });
  assert.deepEqual(siren.values, [1], "the siren's relay output is on");
  const closed = ev.find((e) => e.type === "valve_closed");
  assert.ok(closed && closed.seq > alarm.seq);
  assert.equal(closed.actions?.[0]?.ok, true);

  const refused = await callDaemon(sock(hub), { cmd: "valve_reopen", by: "neighbour", osUser: "test" });
  assert.equal(refused.ok, false);
  assert.match((refused as { details: string[] }).details.join(), /co alarm active/);
  assert.ok((await hub.events()).some((e) => e.type === "valve_reopen_refused" && (e.data as { by: string }).by === "neighbour"));

  await bench.slave.send({ cmd: "co", unit: 1, ppm: 3 });
  await waitFor("alarm cleared", () => decisions.includes("clear"), 10_000);
  const di2 = await bench.slave.send({ cmd: "get", unit: 3, table: "di", address: 1, count: 1 });
  assert.deepEqual(di2.values, [1], "clearing the alarm leaves the valve closed");
  await waitFor("siren off", async () => (await bench.slave.send({ cmd: "get", unit: 4, table: "co", address: 0, count: 1 })).values?.[0] === 0, 3000);

  const ok = await callDaemon(sock(hub), { cmd: "valve_reopen", by: "installer Li", osUser: "test" });
  assert.equal(ok.ok, true, JSON.stringify(ok));
  await waitFor("valve at its open limit", async () => (await bench.slave.send({ cmd: "get", unit: 3, table: "di", address: 2, count: 1 })).values?.[0] === 1, 8000);
  const audit = (await hub.events()).find((e) => e.type === "valve_reopen");
  assert.equal((audit?.data as { by: string }).by, "installer Li");
});

test("gas with a jammed valve → critical valve_fault, siren kept on", { skip }, async () => {
  const { bench, hub } = await rig();
  await bench.slave.send({ cmd: "valve", unit: 3, mode: "jam" });
  await bench.slave.send({ cmd: "lel", unit: 2, percent: 31 });
  await waitFor("valve_fault journaled", async () => (await hub.events()).find((e) => e.type === "valve_fault"), 10_000);
  const ev = await hub.events();
  const gasAlarm = ev.find((e) => e.kind === "alarm" && e.type === "gas");
  const fault = ev.find((e) => e.type === "valve_fault")!;
  assert.equal((fault.data as { model: string }).model, "rotork-iq-modbus");
  assert.ok(gasAlarm && fault.seq > gasAlarm.seq);
  assert.equal(fault.severity, "critical");
  assert.match(String((fault.data as { reason: string }).reason), /jammed|obstructed/);
  assert.equal(hub.running.hub.rule.sirenOn, true);
  assert.deepEqual(fault.actions?.map((a) => a.action), ["valve_closed", "siren_on"]);
  assert.equal(fault.actions?.[0]?.ok, false);
  // The gas goes away; the valve is still in fault, so the siren stays on.
  await bench.slave.send({ cmd: "lel", unit: 2, percent: 0 });
  await waitFor("gas cleared", async () => (await hub.events()).find((e) => e.kind === "alarm_cleared" && e.type === "gas"), 10_000);
  assert.equal(hub.running.hub.rule.sirenOn, true);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual((await bench.slave.send({ cmd: "get", unit: 4, table: "co", address: 0, count: 1 })).values, [1], "siren output still on");
});

test("a valve that ignores the command → retried, then valve_fault after its rated time", { skip }, async () => {
  const { bench, hub } = await rig();
  await bench.slave.send({ cmd: "valve", unit: 3, mode: "stuck" });
  const t0 = Date.now();
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 500 });
  const fault = await waitFor("valve_fault", async () => (await hub.events()).find((e) => e.type === "valve_fault"), 15_000);
  assert.match(String((fault.data as { reason: string }).reason), /not confirmed closed within its rated 4000 ms/);
  assert.ok(Date.now() - t0 >= 4000);
  assert.ok(((await bench.slave.send({ cmd: "stats", unit: 3 })).close_commands ?? 0) >= 2, "close re-sent while waiting");
});

test("a detector that stops answering goes offline, and reopen is refused while it is", { skip }, async () => {
  const { bench, hub } = await rig();
  await bench.killSlave();
  const off = await waitFor("offline events", async () => {
    const ev = (await hub.events()).filter((e) => e.kind === "device" && e.type === "offline");
    return ev.length >= 4 && ev;
  }, 20_000);
  assert.deepEqual(off.map((e) => e.device).sort(), ["gas-valve", "hall-siren", "kitchen-co", "kitchen-gas"]);
  assert.match(String((off[0]!.data as { reason: string }).reason), /no good reading/);
  const r = await callDaemon(sock(hub), { cmd: "valve_reopen", by: "installer", osUser: "test" });
  assert.equal(r.ok, false);
  assert.match((r as { details: string[] }).details.join(), /offline/);
  await bench.restartSlave();
  await waitFor("back online", async () => (await hub.events()).filter((e) => e.type === "online" && e.device !== "line1").length >= 4, 10_000);
});
