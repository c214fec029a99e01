// Consent withdrawn at the relay, carried out by a real hub: the relay (HTTP API, embedded broker, store) and the
// hub daemon with a vital-sign radar and a fall radar (the built-in radar simulator on each line). The hub's
// commissioning report reaches the relay over the journal; the elder's guardian withdraws consent for the
// vital-sign radar; the relay's signed retire_device reaches the hub, which records the radar as retired, reloads
// without it and answers; the relay marks it done. A report that calls the fall radar a vital-sign radar gets the
// relay to ask for it too: the hub refuses (a fall radar is never switched off remotely) and the relay raises an
// operator alert. After a restart the retired radar stays off.
import { test, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { superviseHub, type SupervisedHub } from "../../gateway/src/daemon/reloading.js";
import { provision } from "../../gateway/src/uplink/provision.js";
import { callDaemon } from "../../gateway/src/control/client.js";
import { RETIRED_FILE } from "../../gateway/src/retire/retired-devices.js";
import { COMMISSIONING_REPORT_TYPE, type CommissioningReport } from "../../protocol/commissioning.js";
import { addToken } from "../../relay/src/auth/tokens.js";
import { listOperatorAlerts } from "../../relay/src/alerts/operator-alerts.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { waitFor } from "../support/hub-rig.js";
import { BEDBOUND } from "../support/households.js";

const cleanups: Array<() => Promise<unknown>> = [];
const done = async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
};
afterEach(done);
after(done);
const log = () => createLogger({ name: "test", level: process.env.ANXIN_TEST_LOG ?? "silent" });
const HUB = "hub-retire-e2e";

test("a withdrawn consent retires the vital-sign radar on the real hub; a fall radar asked for by mistake is refused; the retirement outlives a restart", { timeout: 120_000 }, async () => {
  const rig = await startRelayForTest({});
  cleanups.push(() => rig.stop());
  const token = (await addToken(rig.relay.db, "ivan", "installer", Date.now())).token;
  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${rig.httpUrl}${p}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = (await res.json()) as Record<string, unknown>;
    assert.ok(res.ok, `${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const home = (await call("POST", "/v1/households", { hub: HUB, elder: { name: "Test Elder" }, address: "Flat 3, Test Road", street: "Changshou", community: "Lane 1" })).id as string;
  await call("PUT", `/v1/households/${home}/assessment`, BEDBOUND);
  await call("POST", `/v1/households/${home}/consents`, { device: "vital_radar", granted: true, givenBy: "elder" });

  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-retire-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const { code } = await rig.relay.registry.createClaim(HUB);
  await provision({ relay: rig.httpUrl, hub: HUB, code, dataDir: path.join(dir, "data"), secretsFile: path.join(dir, "data", "secrets.json") });
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: ${HUB}, dataDir: ./data }
radars:
  - { id: bed-radar, profile: seeed-mr60bha1, path: sim, room: bedroom }
  - { id: bath-fall, profile: seeed-mr60fda1, path: sim, room: bathroom }
uplink: { reconnectMaxMs: 2000 }
`,
  );
  let sup: SupervisedHub = await superviseHub(file, { log: log(), quietPollMs: 200 });
  cleanups.push(() => sup.stop());
  await waitFor("uplink connected", () => sup.current().uplink?.status().state === "connected", 15_000);
  const first = sup.current();

  // The hub's report, as commissioning files it; it (wrongly) lists the fall radar as a second vital-sign radar.
  const at = Date.now() - 60_000;
  const report: CommissioningReport = {
    v: 1, hub: HUB, household: home, installer: "Ivan", startedAt: at, finishedAt: at + 30_000, state: "commissioned",
    plan: { version: 1, level: "high", items: [{ kind: "vital_radar", count: 1, rooms: ["bedroom"] }] },
    devices: [
      { id: "bed-radar", kind: "vital_radar", model: "MR60BHA1", address: "uart:sim", room: "bedroom", result: "passed" },
      { id: "bath-fall", kind: "vital_radar", model: "MR60FDA1", address: "uart:sim", room: "bathroom", result: "passed" },
    ],
  };
  first.hub.record({ kind: "audit", type: COMMISSIONING_REPORT_TYPE, severity: "info", data: report });
  await waitFor("the report stored at the relay", async () => (await rig.relay.store.listEvents({ hub: HUB, limit: 100 })).some((e) => e.type === COMMISSIONING_REPORT_TYPE), 15_000);

  // The guardian withdraws consent.
  const withdrawn = await call("POST", `/v1/households/${home}/consents`, { device: "vital_radar", granted: false, givenBy: "guardian" });
  assert.deepEqual((withdrawn.retirements as Array<{ device: string; state: string }>).map((r) => `${r.device}:${r.state}`).sort(), ["bath-fall:pending", "bed-radar:pending"]);

  const states = async () => Object.fromEntries(((await call("GET", `/v1/households/${home}`)).retirements as Array<{ device: string; state: string; reason?: string }>).map((r) => [r.device, r]));
  await waitFor("both answered by the hub", async () => {
    const s = await states();
    return s["bed-radar"]?.state === "done" && s["bath-fall"]?.state === "refused";
  }, 30_000);
  assert.match((await states())["bath-fall"]!.reason ?? "", /only a vital-sign radar can be retired remotely/);
  const alerts = await listOperatorAlerts(rig.relay.db, {});
  assert.ok(alerts.some((a) => a.kind === "device_retire_refused" && a.detail.includes(`hub ${HUB}`) && a.detail.includes("bath-fall")), JSON.stringify(alerts));

  // On the hub: reloaded without the vital-sign radar, the fall radar still watching.
  await waitFor("the hub reloaded without the radar", () => sup.current() !== first && !sup.current().hub.radarDevices().some((r) => r.id === "bed-radar"), 20_000);
  assert.deepEqual(sup.current().hub.radarDevices().map((r) => r.id), ["bath-fall"]);
  const st = (await callDaemon(sup.current().config.hub.controlSocket!, { cmd: "status" })) as { ok: true; result: { retired: Array<{ id: string; reason: string }> } };
  assert.deepEqual(st.result.retired.map((r) => [r.id, r.reason]), [["bed-radar", "consent_withdrawn"]]);
  assert.equal((await stat(path.join(dir, "data", RETIRED_FILE))).mode & 0o777, 0o600, "the list is owner-only");

  // A restart (not a reload): the radar stays retired though hub.yaml still names it.
  await sup.stop();
  sup = await superviseHub(file, { log: log() });
  await waitFor("uplink connected again", () => sup.current().uplink?.status().state === "connected", 15_000);
  assert.deepEqual(sup.current().hub.radarDevices().map((r) => r.id), ["bath-fall"]);
  const events = (await rig.relay.store.listEvents({ hub: HUB, limit: 1000 })).map((e) => JSON.parse(e.payload) as { type: string; data?: Record<string, unknown> });
  assert.equal(events.filter((e) => e.type === "device_retired").length, 1, "answered once");
  assert.equal(events.find((e) => e.type === "device_retire_refused")?.data?.device, "bath-fall");
});
