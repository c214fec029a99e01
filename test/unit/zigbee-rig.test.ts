// The hardware-free Zigbee rig under zigbee-herdsman's real Controller: joins, interviews (IAS enrolment included),
// converter resolution, join control, unreachable devices, adapter loss and database persistence.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Controller } from "zigbee-herdsman";
import { findByDevice } from "zigbee-herdsman-converters";
import { FAKE_COORDINATOR_IEEE } from "../support/zigbee/fake-adapter.js";
import { PRODUCTS, heimanCoHS1CAE, heimanGasHS3CG, heimanSmokeHS1SA, tuyaFallRadar, tuyaGasValve } from "../support/zigbee/products.js";
import { installFakeZigbee, pairDevice as pair, testControllerOptions, waitForInterview, withNetwork } from "../support/zigbee/rig.js";
import { TuyaDpType } from "../support/zigbee/virtual-device.js";

test("every product joins while permitJoin is open, is interviewed and resolves to its converter definition", async () => {
  const entries = Object.entries(PRODUCTS).map(([name, p]) => ({ name, p, d: p.make() }));
  assert.equal(new Set(entries.map((e) => e.d.ieee)).size, entries.length, "distinct ieee per product");
  await withNetwork(
    entries.map((e) => e.d),
    async ({ controller, rig }) => {
      await controller.permitJoin(254);
      assert.deepEqual(rig.adapter().permitJoinCalls, [254]);
      await Promise.all(entries.map((e) => pair(controller, e.d)));
      for (const { name, p, d } of entries) {
        const zh = controller.getDeviceByIeeeAddr(d.ieee);
        assert.ok(zh, `${name} known to herdsman`);
        assert.equal(zh.interviewState, "SUCCESSFUL", name);
        assert.equal(zh.modelID, d.attribute("genBasic", "modelId"), `${name} modelID read over ZCL`);
        assert.equal(zh.manufacturerName, d.attribute("genBasic", "manufacturerName"), name);
        assert.equal(zh.type, d.spec.kind, `${name} type from the node descriptor`);
        assert.equal(zh.manufacturerID, d.spec.manufacturerCode, name);
        assert.deepEqual(
          zh.endpoints.map((ep) => [ep.ID, ep.inputClusters]),
          d.spec.endpoints.map((ep) => [ep.endpoint, ep.inClusters]),
          `${name} simple descriptors`,
        );
        const def = await findByDevice(zh);
        assert.equal(def?.model, p.model, `${name} converter definition`);
        // the definition's configure (binds, reporting, Tuya magic packet…) runs over the same bytes
        await def.configure?.(zh, coordinatorEp(controller), def);
        if (p.ias) {
          assert.equal(d.attribute("ssIasZone", "zoneState"), 1, `${name} enrolled`);
          assert.equal(d.attribute("ssIasZone", "iasCieAddr"), FAKE_COORDINATOR_IEEE, `${name} CIE address written`);
          assert.equal(d.attribute("ssIasZone", "zoneId"), 23, `${name} zone id from enrollRsp`);
          assert.ok(d.received.some((f) => f.cluster === "ssIasZone" && f.command === "enrollRsp"));
        }
        if (zh.getEndpoint(1)!.inputClusters.includes(0x0001)) {
          // battery devices: genPowerCfg bound to the coordinator and batteryPercentageRemaining reported
          assert.ok(d.binds.some((b) => b.clusterId === 0x0001 && b.destination === FAKE_COORDINATOR_IEEE), `${name} genPowerCfg bind`);
          assert.ok(d.reportings.some((r) => r.cluster === "genPowerCfg" && r.attrId === 0x0021), `${name} battery reporting`);
        }
      }
    },
  );
});

test("the valve obeys genOnOff off/on, reports its state, and a zone alarm reaches herdsman as a message", async () => {
  const valve = tuyaGasValve();
  const smoke = heimanSmokeHS1SA();
  await withNetwork([valve, smoke], async ({ controller }) => {
    await controller.permitJoin(254);
    await pair(controller, valve);
    await pair(controller, smoke);

    const reports: Array<{ type: string; cluster: string | number; data: unknown; ieee: string }> = [];
    controller.on("message", (m) => reports.push({ type: m.type, cluster: m.cluster, data: m.data, ieee: m.device.ieeeAddr }));

    const ep = controller.getDeviceByIeeeAddr(valve.ieee)!.getEndpoint(1)!;
    assert.equal(valve.onOff(), true);
    await ep.command("genOnOff", "off", {});
    assert.equal(valve.onOff(), false, "valve closed");
    const off = await valve.waitForReceived((f) => f.cluster === "genOnOff" && f.command === "off");
    assert.deepEqual([...off.raw.subarray(2)], [0x00], "off command id on air");
    assert.equal(off.raw[0], 0x01, "cluster-specific, client to server, default response wanted");
    assert.deepEqual(await ep.read("genOnOff", ["onOff"]), { onOff: 0 });
    await waitUntil(() => reports.some((r) => r.ieee === valve.ieee && r.type === "attributeReport" && (r.data as { onOff?: number }).onOff === 0));
    await ep.command("genOnOff", "on", {});
    assert.equal(valve.onOff(), true);

    await smoke.zoneStatus(0b1);
    await waitUntil(() => reports.some((r) => r.ieee === smoke.ieee && r.type === "commandStatusChangeNotification"));
    const alarm = reports.find((r) => r.type === "commandStatusChangeNotification")!;
    assert.equal(alarm.cluster, "ssIasZone");
    assert.deepEqual(alarm.data, { zonestatus: 1, extendedstatus: 0, zoneID: 23, delay: 0 });
    // the same bytes as the reference capture "19 2a 00 0100 00 17 0000", apart from the sequence number
    const onAir = smoke.sent.at(-1)!.raw;
    assert.equal(onAir[0], 0x19);
    assert.equal(onAir.subarray(2).toString("hex"), "00010000170000");
  });
});

test("a jammed valve acknowledges off yet reads back and reports open: only the state proves a close", async () => {
  const valve = tuyaGasValve();
  valve.jammed = true;
  await withNetwork([valve], async ({ controller }) => {
    await controller.permitJoin(254);
    await pair(controller, valve);
    const reports: number[] = [];
    controller.on("message", (m) => {
      if (m.type === "attributeReport" && m.cluster === "genOnOff") reports.push((m.data as { onOff: number }).onOff);
    });
    const ep = controller.getDeviceByIeeeAddr(valve.ieee)!.getEndpoint(1)!;
    await ep.command("genOnOff", "off", {}); // the default response says SUCCESS
    await waitUntil(() => reports.length > 0);
    assert.deepEqual(reports, [1], "the position report still says open");
    assert.deepEqual(await ep.read("genOnOff", ["onOff"]), { onOff: 1 });
    valve.jammed = false;
    await ep.command("genOnOff", "off", {});
    await waitUntil(() => reports.length > 1);
    assert.deepEqual(reports, [1, 0]);
  });
});

test("a zone that never enrols fails the whole interview after herdsman's 20 zoneState polls", async () => {
  const smoke = heimanSmokeHS1SA();
  smoke.refuseEnrolment = true;
  await withNetwork([smoke], async ({ controller }) => {
    await controller.permitJoin(254);
    const done = waitForInterview(controller, smoke.ieee);
    await smoke.join();
    assert.equal(await done, "failed");
    assert.equal(controller.getDeviceByIeeeAddr(smoke.ieee)?.interviewState, "FAILED");
    const zoneReads = smoke.received.filter((f) => f.cluster === "ssIasZone" && f.command === "read");
    assert.equal(zoneReads.length, 21, "one read before enrolling, 20 polls after");
  });
});

test("herdsman answers a zone's enroll request, and alarms arrive as messages before the interview completes", async () => {
  const smoke = heimanSmokeHS1SA();
  // the zone holds its enrolment until the hub has seen the alarm, so the interview cannot finish first
  smoke.refuseEnrolment = true;
  await withNetwork(
    [smoke],
    async ({ controller }) => {
      await controller.permitJoin(254);
      let alarmSeenDuring: string | undefined;
      controller.on("message", (m) => {
        if (m.type !== "commandStatusChangeNotification") return;
        alarmSeenDuring = m.device.interviewState;
        smoke.refuseEnrolment = false;
      });
      controller.on("deviceInterview", (e) => {
        if (e.status === "started") void smoke.zoneStatus(0b1);
      });
      const done = waitForInterview(controller, smoke.ieee);
      await smoke.join();
      assert.equal(await done, "successful");
      assert.equal(alarmSeenDuring, "IN_PROGRESS", "the alarm reached the hub before the interview finished");

      const req = smoke.sent.find((f) => f.command === "enrollReq");
      assert.ok(req, "the zone asked to enrol after its CIE address was written");
      assert.ok(
        smoke.received.some((f) => f.command === "enrollRsp" && f.transactionSequenceNumber === req.transactionSequenceNumber),
        "herdsman answered the request with enrollRsp on the same transaction",
      );
    },
    {},
    0.05, // a wider enrolment window (1 s of polls) than the default, as a margin on a loaded machine
  );
});

test("Tuya data points and IAS alarms decode through the converters from herdsman's messages", async () => {
  const radar = tuyaFallRadar();
  const co = heimanCoHS1CAE();
  await withNetwork([radar, co], async ({ controller }) => {
    await controller.permitJoin(254);
    await Promise.all([pair(controller, radar), pair(controller, co)]);
    const state = new Map<string, Record<string, unknown>>();
    const pending: Promise<void>[] = [];
    controller.on("message", (m) => {
      pending.push(
        (async () => {
          const def = await findByDevice(m.device);
          if (!def) return;
          const s = state.get(m.device.ieeeAddr) ?? {};
          for (const c of def.fromZigbee.filter((c) => c.cluster === m.cluster && ([] as string[]).concat(c.type).includes(m.type))) {
            const meta = { device: m.device, state: s, deviceExposesChanged: () => {} };
            Object.assign(s, await (c.convert as (...a: unknown[]) => unknown)(def, m, () => {}, {}, meta));
          }
          state.set(m.device.ieeeAddr, s);
        })(),
      );
    });
    await radar.tuyaDp(1, TuyaDpType.enum, 1);
    await radar.tuyaDp(116, TuyaDpType.enum, 2);
    await co.zoneStatus(0b1001);
    await waitUntil(() => pending.length >= 3);
    await Promise.all(pending);
    assert.equal(state.get(radar.ieee)?.presence, true);
    assert.equal(state.get(radar.ieee)?.fall_down_status, "fall");
    assert.equal(state.get(co.ieee)?.carbon_monoxide, true);
    assert.equal(state.get(co.ieee)?.battery_low, true);
    // herdsman acknowledged the Tuya reports (they ask for a default response)
    assert.ok(radar.received.some((f) => f.cluster === "manuSpecificTuya" && f.command === "defaultRsp"));
  });
});

test("address change on announce, removal from the network, and a device leaving on its own", async () => {
  const smoke = heimanSmokeHS1SA();
  const valve = tuyaGasValve();
  await withNetwork([smoke, valve], async ({ controller }) => {
    await controller.permitJoin(254);
    await pair(controller, smoke);
    await pair(controller, valve);

    const moved = new Promise<number>((resolve) => controller.once("deviceNetworkAddressChanged", (e) => resolve(e.device.networkAddress)));
    smoke.nwk = 0x2222;
    smoke.announce();
    assert.equal(await moved, 0x2222);
    await controller.getDeviceByIeeeAddr(smoke.ieee)!.ping();

    await controller.getDeviceByIeeeAddr(valve.ieee)!.removeFromNetwork();
    assert.ok(valve.received.some((f) => f.cluster === "zdo" && f.command === "LEAVE_REQUEST"));
    await waitUntil(() => !valve.joined);
    assert.equal(controller.getDeviceByIeeeAddr(valve.ieee), undefined);

    const left = new Promise<string>((resolve) => controller.once("deviceLeave", (e) => resolve(e.ieeeAddr)));
    smoke.leave();
    assert.equal(await left, smoke.ieee);
    assert.equal(controller.getDeviceByIeeeAddr(smoke.ieee), undefined);
  });
});

test("a device cannot join while joining is closed", async () => {
  const smoke = heimanSmokeHS1SA();
  await withNetwork([smoke], async ({ controller, rig }) => {
    await assert.rejects(smoke.join(), /no network in range permits joining/);
    await controller.permitJoin(254);
    await controller.permitJoin(0);
    assert.deepEqual(rig.adapter().permitJoinCalls, [254, 0]);
    assert.equal(rig.adapter().joinOpen, false);
    await assert.rejects(smoke.join(), /permits joining/);
    assert.equal(controller.getDeviceByIeeeAddr(smoke.ieee), undefined);
  });
});

test("acceptJoiningDeviceHandler returning false keeps a device out (herdsman sends it a leave)", async () => {
  const gas = heimanGasHS3CG();
  const valve = tuyaGasValve();
  const asked: string[] = [];
  await withNetwork(
    [gas, valve],
    async ({ controller }) => {
      await controller.permitJoin(254);
      await pair(controller, valve);
      await gas.join();
      await gas.waitForReceived((f) => f.cluster === "zdo" && f.command === "LEAVE_REQUEST");
      await waitUntil(() => !gas.joined);
      assert.equal(controller.getDeviceByIeeeAddr(gas.ieee), undefined);
      assert.deepEqual(asked.sort(), [gas.ieee, valve.ieee].sort());
      assert.ok(controller.getDeviceByIeeeAddr(valve.ieee));
    },
    {
      acceptJoiningDeviceHandler: async (ieee) => {
        asked.push(ieee);
        return ieee !== gas.ieee;
      },
    },
  );
});

test("a command to an unreachable device rejects", async () => {
  const valve = tuyaGasValve();
  await withNetwork([valve], async ({ controller }) => {
    await controller.permitJoin(254);
    await pair(controller, valve);
    valve.online = false;
    const ep = controller.getDeviceByIeeeAddr(valve.ieee)!.getEndpoint(1)!;
    await assert.rejects(ep.command("genOnOff", "off", {}, { disableRecovery: true }), /MAC no ack/);
    assert.equal(valve.onOff(), true, "state unchanged");
    await assert.rejects(controller.getDeviceByIeeeAddr(valve.ieee)!.ping(), /MAC no ack/);
    valve.online = true;
    await ep.command("genOnOff", "off", {});
    assert.equal(valve.onOff(), false);
  });
});

test("losing the adapter yields the Controller's adapterDisconnected event", async () => {
  await withNetwork([], async ({ controller, rig }) => {
    const lost = new Promise<void>((resolve) => controller.once("adapterDisconnected", () => resolve()));
    rig.adapter().disconnect();
    await lost;
    assert.equal(controller.isAdapterDisconnected(), true);
  });
});

test("the herdsman database survives a Controller stop/start: devices still known, no re-interview", async () => {
  const smoke = heimanSmokeHS1SA();
  const valve = tuyaGasValve();
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-zigbee-"));
  const rig = installFakeZigbee({ devices: [smoke, valve] });
  try {
    const options = testControllerOptions(dir);
    const first = new Controller(options);
    await first.start();
    await first.permitJoin(254);
    await pair(first, smoke);
    await pair(first, valve);
    await first.stop();
    const readsBefore = smoke.received.filter((f) => f.cluster === "genBasic").length;

    const second = new Controller(options);
    const interviews: string[] = [];
    second.on("deviceInterview", (e) => interviews.push(`${e.device.ieeeAddr}:${e.status}`));
    try {
      assert.equal(await second.start(), "resumed");
      assert.equal(rig.adapters().length, 2);
      for (const d of [smoke, valve]) {
        const zh = second.getDeviceByIeeeAddr(d.ieee);
        assert.ok(zh, `${d.product} still known`);
        assert.equal(zh.interviewState, "SUCCESSFUL");
        assert.equal(zh.modelID, d.attribute("genBasic", "modelId"));
      }
      const announced = new Promise<void>((resolve) => second.once("deviceAnnounce", () => resolve()));
      smoke.announce();
      await announced;
      await second.getDeviceByIeeeAddr(valve.ieee)!.getEndpoint(1)!.command("genOnOff", "off", {});
      assert.equal(valve.onOff(), false, "commands reach devices through the new adapter");
      assert.deepEqual(interviews, []);
      assert.equal(smoke.received.filter((f) => f.cluster === "genBasic").length, readsBefore, "no genBasic re-read");
      assert.equal((await findByDevice(second.getDeviceByIeeeAddr(smoke.ieee)!))?.model, "HS3SA/HS1SA");
    } finally {
      await second.stop();
    }
  } finally {
    rig.restore();
    await rm(dir, { recursive: true, force: true });
  }
});

function coordinatorEp(controller: Controller) {
  const ep = controller.getDevicesByType("Coordinator")[0]?.getEndpoint(1);
  assert.ok(ep, "coordinator endpoint 1");
  return ep;
}

async function waitUntil(probe: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
