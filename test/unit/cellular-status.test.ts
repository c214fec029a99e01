// The cellular path's maintenance events (gateway/src/cellular/status.ts): a problem at the first check, a
// change between no SIM / no service / ok, and silence while nothing a person must know changes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cellularHealth, cellularStatusEvent, type ModemStatus } from "../../gateway/src/cellular/status.js";

const ok: ModemStatus = { sim: "ready", registration: "home", rssiDbm: -73, operator: "CHINA MOBILE", checkedAt: 1000 };

test("health from the status", () => {
  assert.equal(cellularHealth(ok), "ok");
  assert.equal(cellularHealth({ ...ok, registration: "roaming" }), "ok");
  assert.equal(cellularHealth({ ...ok, sim: "absent" }), "no_sim");
  assert.equal(cellularHealth({ ...ok, sim: "pin" }), "no_sim");
  for (const r of ["searching", "denied", "not_registered", "unknown"] as const) assert.equal(cellularHealth({ ...ok, registration: r }), "no_service", r);
});

test("events for changes only", () => {
  assert.equal(cellularStatusEvent(null, ok), null, "a working path at the first check is no news");
  const noSim = { ...ok, sim: "absent" as const, registration: "not_registered" as const, operator: null, checkedAt: 2000 };
  assert.deepEqual(cellularStatusEvent(null, noSim), {
    kind: "device", type: "cellular_no_sim", severity: "warning", device: "cellular-modem",
    data: { sim: "absent", registration: "not_registered", rssiDbm: -73, operator: null, checkedAt: 2000 },
  });
  const searching = { ...ok, registration: "searching" as const, checkedAt: 3000 };
  const ev = cellularStatusEvent(ok, searching);
  assert.equal(ev?.type, "cellular_no_service");
  assert.equal(ev?.severity, "warning");
  assert.equal(ev?.data?.was, "ok");
  assert.equal(cellularStatusEvent(searching, { ...searching, registration: "denied" }), null, "still no service");
  assert.equal(cellularStatusEvent(ok, { ...ok, rssiDbm: -90 }), null, "signal alone is no event");
  const back = cellularStatusEvent(searching, ok);
  assert.equal(back?.type, "cellular_ok");
  assert.equal(back?.severity, "info");
  assert.equal(back?.data?.was, "no_service");
});
