// The homes board's judgement, without a database: which facts make a problem (the ledger's device health,
// the valve latch and its reopen, retired devices), and the order of problems and homes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compareHomes, homeRank, hubProblems, urgencyOf, type HubFacts, type Problem } from "../../relay/src/console/homes/problems.js";

function facts(over: Partial<HubFacts> & { events?: Record<string, Record<string, number>> } = {}): HubFacts {
  const { events, ...rest } = over;
  return {
    hub: "hub-1",
    online: true,
    offlineSince: null,
    deviceEvents: new Map(Object.entries(events ?? {}).map(([d, t]) => [d, new Map(Object.entries(t))])),
    valveFaults: new Map(),
    openedOnSite: new Map(),
    reopenedAt: null,
    retiredAt: new Map(),
    batteryLevels: new Map(),
    ...rest,
  };
}

const kinds = (ps: Problem[]) => ps.map((p) => `${p.kind}:${p.device ?? "-"}`);

test("a quiet hub has no problem; a raise followed by its clear is no problem either", () => {
  assert.deepEqual(hubProblems(facts()), []);
  assert.deepEqual(hubProblems(facts({ events: { s1: { offline: 10, online: 20, battery_low: 5, battery_ok: 6, fault: 1, fault_cleared: 2 } } })), []);
});

test("device problems come from the ledger's device health, with since and the battery level", () => {
  const ps = hubProblems(facts({ events: { s1: { online: 1, offline: 50 }, co: { fault: 40 }, sos: { battery_low: 30 } }, batteryLevels: new Map([["sos", 12]]) }));
  assert.deepEqual(kinds(ps), ["device_offline:s1", "device_fault:co", "battery_low:sos"]);
  assert.equal(ps[0]?.since, 50);
  assert.equal(ps[2]?.battery, 12);
  assert.equal(hubProblems(facts({ events: { sos: { battery_low: 30 } } }))[0]?.battery, null, "no level reported: null, not a guess");
});

test("a valve is latched from its verified close until a reopen on site (of the hub, or by hand at that valve)", () => {
  assert.deepEqual(kinds(hubProblems(facts({ events: { v1: { valve_closed: 100 } } }))), ["valve_latched:v1"]);
  assert.deepEqual(hubProblems(facts({ events: { v1: { valve_closed: 100 } }, reopenedAt: 150 })), []);
  assert.deepEqual(hubProblems(facts({ events: { v1: { valve_closed: 100 } }, openedOnSite: new Map([["v1", 120]]) })), []);
  // Closed again by a later alarm: latched again.
  assert.deepEqual(kinds(hubProblems(facts({ events: { v1: { valve_closed: 200 } }, reopenedAt: 150 }))), ["valve_latched:v1"]);
  // A valve that never closed during an alarm is the most urgent of all, until its close is proven or reopened.
  assert.deepEqual(kinds(hubProblems(facts({ valveFaults: new Map([["v2", { raised: 90 }]]) }))), ["valve_fault:v2"]);
  assert.deepEqual(hubProblems(facts({ valveFaults: new Map([["v2", { raised: 90, cleared: 95 }]]) })), []);
  assert.deepEqual(hubProblems(facts({ valveFaults: new Map([["v2", { raised: 90 }]]), reopenedAt: 99 })), []);
});

test("a retired device's last words no longer count; a device heard after retirement does again", () => {
  assert.deepEqual(hubProblems(facts({ events: { cam: { offline: 10 } }, retiredAt: new Map([["cam", 20]]) })), []);
  assert.deepEqual(kinds(hubProblems(facts({ events: { cam: { offline: 30 } }, retiredAt: new Map([["cam", 20]]) }))), ["device_offline:cam"]);
});

test("problems at one home: valve fault, valve latched, hub offline, device offline, fault, battery", () => {
  const ps = hubProblems(
    facts({
      online: false,
      offlineSince: 500,
      events: { s1: { offline: 10 }, co: { fault: 5 }, sos: { battery_low: 1 }, v1: { valve_closed: 300 } },
      valveFaults: new Map([["v2", { raised: 400 }]]),
    }),
  );
  assert.deepEqual(kinds(ps), ["valve_fault:v2", "valve_latched:v1", "hub_offline:-", "device_offline:s1", "device_fault:co", "battery_low:sos"]);
  assert.deepEqual(ps.map((p) => urgencyOf(p.kind)), ["urgent", "urgent", "urgent", "attention", "attention", "notice"]);
});

test("homes: the worst problem first, then the longest-standing, then more problems, then the hub id", () => {
  const home = (hub: string, ...problems: Problem[]) => ({ hub, problems });
  const battery = (since: number): Problem => ({ kind: "battery_low", device: "b", since });
  const offline = (since: number | null): Problem => ({ kind: "hub_offline", device: null, since });
  const latched: Problem = { kind: "valve_latched", device: "v", since: 1000 };
  const deviceOff: Problem = { kind: "device_offline", device: "d", since: 1 };
  const homes = [
    home("h-battery-new", battery(50)),
    home("h-battery-old", battery(10)),
    home("h-offline", offline(700)),
    home("h-never-seen", offline(null)),
    home("h-device", deviceOff),
    home("h-valve", latched),
    home("h-device-more", deviceOff, battery(2)),
  ];
  assert.deepEqual(
    homes.sort(compareHomes).map((h) => h.hub),
    ["h-valve", "h-never-seen", "h-offline", "h-device-more", "h-device", "h-battery-old", "h-battery-new"],
  );
  assert.equal(homeRank(home("x", latched, battery(1))), 1);
});
