// The duty console on the real relay, in Debian's chromium: two operators sign in with their own accounts; a
// gas alarm raised by a real hub daemon (its detector on the built-in RS-485 simulator, its signed event over
// the relay's broker) appears in both queues within a second of the relay storing it, flashing with its sound;
// one operator takes it and the other sees who; the second takes it over after being asked. The page's
// requests carry the session cookie and the CSRF token; a request without the token, and an installer's
// session, are refused by the relay itself.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { buildConsole } from "../../relay/console/build.js";
import { createAccount } from "../../relay/src/console/auth/accounts.js";
import { consoleAuthDb } from "../../relay/src/console/auth/tables.js";
import { startHub } from "../../gateway/src/daemon/run.js";
import { provision } from "../../gateway/src/uplink/provision.js";
import type { SimLelDetector } from "../../gateway/src/sim/devices.js";
import { createLogger } from "../../lib/daemon/logger.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { waitFor } from "../support/hub-rig.js";
import { browserSkipReason, launchBrowser, screenshot, type TestBrowser } from "../support/browser.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});
const skip = browserSkipReason();
const PASSWORD = "correct horse battery";

async function signIn(page: Page, url: string, username: string): Promise<void> {
  await page.goto(url);
  await page.getByRole("heading", { name: "值班人员登录" }).waitFor();
  await page.getByLabel("用户名").fill(username);
  await page.getByLabel("密码").fill(PASSWORD);
  await page.getByRole("button", { name: "登录" }).click();
}

test("two operators on the real relay: a real gas alarm in both queues within 1 s, taken by one, seen by the other, taken over", { skip, timeout: 120_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-console-e2e-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const consoleDir = path.join(dir, "console");
  await buildConsole({ outDir: consoleDir });
  const rig = await startRelayForTest({ consoleDir });
  cleanups.push(() => rig.stop());
  const db = consoleAuthDb(rig.relay.db);
  const by = { actor: "test", purpose: "test setup", at: Date.now() };
  await createAccount(db, { username: "wang", displayName: "王芳", role: "operator", password: PASSWORD }, by);
  await createAccount(db, { username: "li", displayName: "李明", role: "operator", password: PASSWORD }, by);
  await createAccount(db, { username: "zhao", displayName: "赵装", role: "installer", password: PASSWORD }, by);

  // A real hub with a gas detector and a valve, enrolled at this relay.
  const hubId = "hub-console-1";
  const { code } = await rig.relay.registry.createClaim(hubId);
  await provision({ relay: rig.httpUrl, hub: hubId, code, dataDir: path.join(dir, "data"), secretsFile: path.join(dir, "data", "secrets.json") });
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: ${hubId}, dataDir: ./data }
buses:
  - { name: line1, path: sim }
devices:
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen, pollMs: 200 }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen, pollMs: 300, ratedCloseMs: 4000 }
uplink: { reconnectMaxMs: 2000 }
`,
  );
  const hub = await startHub(file, { log: createLogger({ name: "test", level: process.env.ANXIN_TEST_LOG ?? "silent" }) });
  cleanups.push(() => hub.stop());
  await waitFor("the hub's uplink", () => hub.uplink?.status().state === "connected", 15_000);
  await waitFor("the detector online", () => hub.hub.health("kitchen-gas")?.status === "online", 10_000);

  const browsers: TestBrowser[] = [];
  const open = async () => {
    const b = await launchBrowser();
    browsers.push(b);
    cleanups.push(() => b.close());
    return b.newPage();
  };
  const url = `${rig.httpUrl}/console/`;
  const wang = await open();
  const li = await open();
  await signIn(wang, url, "wang");
  await signIn(li, url, "li");
  // An empty queue: its heading and the live mark (the event stream is open).
  for (const p of [wang, li]) await p.getByTestId("live").filter({ hasText: "实时更新中" }).waitFor();
  assert.equal(await wang.getByTestId("who").innerText(), "当前值班：王芳（值班员）");
  assert.equal(await wang.locator("tr.incident").count(), 0, "no incident yet");

  // The gas leak: the hub raises it, the relay stores it and opens an incident; both pages show it.
  (hub.sim.get("line1")!.devices.get(2) as SimLelDetector).setLel(40);
  const incident = await waitFor("the incident at the relay", async () => (await rig.relay.store.listEvents({ hub: hubId, limit: 100 })).find((e) => e.type === "gas"), 15_000);
  const storedAt = incident.receivedAt;
  for (const p of [wang, li]) await p.locator("tr.incident").first().waitFor({ timeout: 5000 });
  const seenAt = Date.now();
  assert.ok(seenAt - storedAt < 1000 + 100, `on both screens ${seenAt - storedAt} ms after the relay stored the alarm (bound 1 s; the 100 ms is the test's own polling)`);
  const row = (p: Page) => p.locator("tr.incident").first();
  assert.equal(await row(wang).locator('td[data-col="type"]').innerText(), "燃气泄漏");
  assert.equal(await row(wang).getAttribute("data-alarm"), "on", "flashing until someone takes it");
  assert.equal(await wang.evaluate(() => (window as unknown as { __anxinAlarm: { playing: boolean } }).__anxinAlarm.playing), true, "and its sound playing");
  await screenshot(wang, "console-queue-live");

  // Wang takes it; Li sees it taken by Wang, without reloading.
  await row(wang).locator("[data-testid=take]").click();
  await row(wang).locator('td[data-col="takenBy"]', { hasText: "由您接警" }).waitFor();
  await row(li).locator('td[data-col="takenBy"]', { hasText: "王芳" }).waitFor({ timeout: 5000 });
  assert.equal(await row(li).getAttribute("data-alarm"), "off", "taken: no more flashing on the other screen either");

  // Li takes it over after being asked; Wang's screen follows.
  await row(li).locator("[data-testid=take]").click();
  await li.getByTestId("take-over").waitFor();
  await li.getByTestId("take-over-confirm").click();
  await row(li).locator('td[data-col="takenBy"]', { hasText: "由您接警" }).waitFor();
  await row(wang).locator('td[data-col="takenBy"]', { hasText: "李明" }).waitFor({ timeout: 5000 });

  // The relay's own checks, from inside Wang's signed-in page: no CSRF token, no change.
  const id = await row(wang).getAttribute("data-id");
  const noToken = await wang.evaluate(async (incidentId) => (await fetch(`/console/api/incidents/${incidentId}/take`, { method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" }, body: "{}" })).status, id);
  assert.equal(noToken, 403);
  // An installer's session does not see the queue.
  const zhao = await open();
  await signIn(zhao, url, "zhao");
  await zhao.getByTestId("who").filter({ hasText: "赵装" }).waitFor();
  const asInstaller = await zhao.evaluate(async () => (await fetch("/console/api/incidents", { credentials: "same-origin" })).status);
  assert.equal(asInstaller, 403);
});
